// The proxy at a terminal (issue 17): --help fits the terminal's width, and a
// key typed at the prompt is not echoed. Run on a real pseudo-terminal.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { CLI, KEY, rawExchange, request, responsesComplete, runCli, startUpstream, tmpDir, waitFor } from './support/harness.js';
import { ptyMissing, runInPty } from './support/pty.js';

const widest = (text: string): number => Math.max(...text.split(/\r?\n/).map((l) => l.length));
const skip = ptyMissing();

describe('--help fits the terminal', () => {
  for (const columns of [80, 60]) {
    test(`on a ${columns}-column terminal, no line is wider`, { skip }, async () => {
      const r = await runInPty([process.execPath, CLI, '--help'], [], { columns });
      assert.equal(r.status, 0, r.output);
      assert.match(r.output, /--upstream-url/);
      assert.ok(widest(r.output) <= columns, `widest line: ${widest(r.output)}\n${r.output}`);
    });
  }

  test('a wide terminal gets wide lines', { skip }, async () => {
    const r = await runInPty([process.execPath, CLI, '--help'], [], { columns: 160 });
    assert.ok(widest(r.output) > 80, `widest line: ${widest(r.output)}`);
  });

  test('into a pipe: 80 columns', async () => {
    const r = await runCli(['--help'], '');
    assert.equal(r.code, 0);
    assert.ok(widest(r.stdout) <= 80, `widest line: ${widest(r.stdout)}`);
    assert.ok(widest(r.stdout) > 60, 'wraps at 80, not narrower');
  });
});

describe('a key typed at the terminal', () => {
  test('is not echoed, the proxy starts with it, and echo is back at once', { skip }, async () => {
    const up = await startUpstream();
    const dir = tmpDir();
    const info = path.join(dir, 'server-info.json');
    const done = path.join(dir, 'done');
    const run = runInPty(
      [process.execPath, CLI, '--server-info', info, '--upstream-url', up.url],
      [
        { wait: 'reading the API key from stdin' },
        { echo: true },
        // Enter on a terminal is CR; the line discipline turns it into LF.
        { send: `${KEY}\r` },
        { wait: 'listening on 127\\.0\\.0\\.1:' },
        { echo: true },
        { waitFile: done },
        { send: '\x03' },
      ],
    );
    try {
      const port = await waitFor('server-info', () => fs.existsSync(info) && (JSON.parse(fs.readFileSync(info, 'utf8')) as { port: number }).port);
      await rawExchange(port, [request()], { until: responsesComplete });
      assert.ok(up.received[0]!.head.includes(`\r\nAuthorization: Bearer ${KEY}\r\n`), 'the typed key reached the upstream');
    } finally {
      fs.writeFileSync(done, '');
    }
    const r = await run;
    await up.close();
    assert.deepEqual(r.echo, [false, true, true], 'off at the prompt, on once the key is read, on after exit');
    assert.ok(!r.output.includes(KEY.slice(3)), `the key was echoed: ${JSON.stringify(r.output)}`);
    assert.equal(r.status, 'SIGINT', r.output);
  });

  test('Ctrl-C half-way through the key ends the process, and echo is back', { skip }, async () => {
    const partial = 'sk-half-typed-key';
    const r = await runInPty(
      [process.execPath, CLI, '--upstream-url', 'http://127.0.0.1:9/v1/responses'],
      [{ wait: 'reading the API key from stdin' }, { echo: true }, { send: partial }, { send: '\x03' }],
    );
    assert.equal(r.status, 'SIGINT', r.output);
    assert.deepEqual(r.echo, [false, true]);
    assert.ok(!r.output.includes(partial), `echoed: ${JSON.stringify(r.output)}`);
    assert.doesNotMatch(r.output, /listening/);
  });
});
