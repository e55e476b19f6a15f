// The command line as users meet it: flags, exit codes, the key on stdin,
// the server-info file and the start-up line.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { KEY, rawExchange, request, responsesComplete, runCli, startProxy, startUpstream, tmpDir } from './support/harness.js';

const UP = ['--upstream-url', 'http://127.0.0.1:9/v1/responses'];

describe('usage errors: one line on stderr, exit 2, nothing written', () => {
  const cases: [string, string[]][] = [
    ['port out of range', ['--port', '65536']],
    ['negative port', ['--port', '-1']],
    ['port not a number', ['--port', 'http']],
    ['relative URL', ['--upstream-url', '/v1/responses']],
    ['URL that is not http(s)', ['--upstream-url', 'ftp://example.com/v1/responses']],
    ['URL with credentials', ['--upstream-url', 'https://user:pw@example.com/v1/responses']],
    ['URL with a fragment', ['--upstream-url', 'https://example.com/v1/responses#frag']],
    ['unknown flag', ['--bogus']],
    ['flag given twice', ['--port', '1', '--port', '2']],
  ];
  for (const [name, args] of cases) {
    test(name, async () => {
      const info = path.join(tmpDir(), 'sub', 'info.json');
      const r = await runCli([...args, '--server-info', info], `${KEY}\n`);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^codex-responses-api-proxy: /);
      assert.ok(!fs.existsSync(path.dirname(info)));
    });
  }

  test('--help and --version exit 0 without reading a key', async () => {
    const help = await runCli(['--help'], '');
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--upstream-url/);
    const version = await runCli(['--version'], '');
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  });
});

describe('the key on stdin', () => {
  const bad: [string, string | Buffer, RegExp][] = [
    ['empty input', '', /no API key/],
    ['only a newline', '\n', /no API key/],
    ['invalid character', 'sk-abc$def\n', /may only contain/],
    ['space inside', 'sk-abc def\n', /may only contain/],
    ['1018 bytes', `${'k'.repeat(1018)}\n`, /too long/],
    ['far too long', 'k'.repeat(5000), /too long/],
    ['extra lines after the key', `${KEY}\nsecond-line\n`, /exactly one line/],
    ['NUL byte', Buffer.from('sk-a\0b\n'), /may only contain/],
  ];
  for (const [name, input, message] of bad) {
    test(`${name}: exit 1, one line, key not echoed`, async () => {
      const r = await runCli(UP, input);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      const text = typeof input === 'string' ? input.trim() : '';
      if (text.length > 3) assert.ok(!r.stderr.includes(text.split('\n')[0]!));
      assert.ok(!r.stderr.includes('listening'));
    });
  }

  test('a 1017-byte key, CRLF-terminated, is accepted and sent as Bearer', async () => {
    const up = await startUpstream();
    const key = 'A'.repeat(1017);
    const proxy = await startProxy(['--upstream-url', up.url], { key: `${key}\r\n` });
    try {
      const res = await rawExchange(proxy.port, [request()], { until: responsesComplete });
      assert.equal(res.status, 200);
      assert.ok(up.received[0]!.head.includes(`\r\nAuthorization: Bearer ${key}\r\n`));
    } finally {
      await proxy.stop();
      await up.close();
    }
  });

  test('a key without a trailing newline is accepted', async () => {
    const up = await startUpstream();
    const proxy = await startProxy(['--upstream-url', up.url], { key: KEY });
    try {
      await rawExchange(proxy.port, [request()], { until: responsesComplete });
      assert.ok(up.received[0]!.head.includes(`\r\nAuthorization: Bearer ${KEY}\r\n`));
    } finally {
      await proxy.stop();
      await up.close();
    }
  });
});

describe('start-up', () => {
  test('server-info is one JSON line with port and pid, in a folder created for it', async () => {
    const dir = path.join(tmpDir(), 'a', 'b');
    const info = path.join(dir, 'server-info.json');
    const proxy = await startProxy(UP, { serverInfo: info });
    try {
      const text = fs.readFileSync(info, 'utf8');
      assert.equal(text, `{"port":${proxy.port},"pid":${proxy.proc.pid}}\n`);
      assert.deepEqual(fs.readdirSync(dir), ['server-info.json']);
      assert.equal(proxy.stderr(), `responses-api-proxy listening on 127.0.0.1:${proxy.port}\n`);
    } finally {
      await proxy.stop();
    }
  });

  test('--port binds 127.0.0.1 on that port; a taken port is one line and exit 1', async () => {
    const free = net.createServer();
    await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
    const port = (free.address() as net.AddressInfo).port;
    const taken = await runCli([...UP, '--port', String(port)], `${KEY}\n`);
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/);
    await new Promise((r) => free.close(r));
    const proxy = await startProxy([...UP, '--port', String(port)]);
    try {
      assert.equal(proxy.port, port);
    } finally {
      await proxy.stop();
    }
  });

  test('a form only yargs reads (--http-shutdown=true) means what the quick path means', async () => {
    const proxy = await startProxy(['--http-shutdown=true', '--upstream-url=http://127.0.0.1:9/v1/responses']);
    const res = await rawExchange(proxy.port, [Buffer.from('GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')]);
    assert.equal(res.status, 200);
    assert.equal(await proxy.exited, 0);
  });

  test('SIGTERM ends the process by that signal', async () => {
    const proxy = await startProxy(UP);
    proxy.proc.kill('SIGTERM');
    assert.equal(await proxy.exited, 'SIGTERM');
  });
});
