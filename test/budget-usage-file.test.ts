// --usage-file over real sockets (issue 16): what it holds after each reply,
// a refusal and exit; that it outlives the proxy, is 0644 and never written
// through a planted link; the one summary line at exit; --usage-file alone;
// and the flags' usage errors.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, test } from 'node:test';
import { KEY, runCli, startProxy, startUpstream, tmpDir, waitFor, type Proxy, type Upstream } from './support/harness.js';
import { ask, scripted } from './support/replies.js';

interface UsageFile {
  requests: number;
  refused: number;
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  unmetered: number;
  invalid_usage: number;
  models: Record<string, { responses: number; total_tokens: number }>;
  budgets: { max_requests: number | null; max_tokens: number | null };
  exhausted: string | null;
}

function read(file: string): UsageFile | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as UsageFile;
  } catch {
    return undefined;
  }
}

async function start(args: string[], extra: string[] = []): Promise<{ up: Upstream; proxy: Proxy; file: string; dir: string }> {
  const dir = tmpDir();
  const file = path.join(dir, 'out', 'usage.json');
  const up = await startUpstream(scripted);
  const proxy = await startProxy(['--upstream-url', up.url, '--usage-file', file, ...args, ...extra]);
  return { up, proxy, file, dir };
}

describe('--usage-file', () => {
  test('1 request and 600 tokens after the first reply, then 2 requests, 1 refusal and 1,200 tokens; kept after exit with one summary line', async () => {
    const { up, proxy, file } = await start(['--max-tokens', '1000']);
    try {
      const initial = read(file)!;
      assert.deepEqual(
        { requests: initial.requests, refused: initial.refused, total: initial.total_tokens, budgets: initial.budgets, exhausted: initial.exhausted },
        { requests: 0, refused: 0, total: 0, budgets: { max_requests: null, max_tokens: 1000 }, exhausted: null },
        'written before listening',
      );
      assert.equal((await ask(proxy.port, { mode: 'sse', tokens: 600, lateMs: 300 }, 'completed')).status, 200);
      const first = await waitFor('the first reply counted', () => (read(file)?.requests === 1 && read(file)?.total_tokens === 600 ? read(file) : undefined));
      assert.equal(first.input_tokens, 500);
      assert.equal(first.output_tokens, 100);
      assert.equal(first.unmetered, 0);
      assert.equal((await ask(proxy.port, { mode: 'sse', tokens: 600 })).status, 200);
      assert.equal((await ask(proxy.port, { mode: 'sse', tokens: 600 })).status, 429);
      const last = await waitFor('the refusal counted', () => (read(file)?.refused === 1 ? read(file) : undefined));
      assert.deepEqual(last, {
        requests: 2,
        refused: 1,
        input_tokens: 1000,
        cached_input_tokens: 0,
        output_tokens: 200,
        reasoning_tokens: 0,
        total_tokens: 1200,
        unmetered: 0,
        invalid_usage: 0,
        models: { 'gpt-test': { responses: 2, input_tokens: 1000, cached_input_tokens: 0, output_tokens: 200, reasoning_tokens: 0, total_tokens: 1200 } },
        budgets: { max_requests: null, max_tokens: 1000 },
        exhausted: '--max-tokens 1000 reached',
      });
      assert.equal(fs.statSync(file).mode & 0o777, 0o644);
      assert.equal(up.received.length, 2);
    } finally {
      await proxy.stop();
      await up.close();
    }
    assert.equal(await proxy.exited, 'SIGTERM');
    assert.equal(read(file)?.refused, 1, 'the file outlives the proxy');
    const lines = proxy.stderr().trim().split('\n');
    assert.equal(lines.filter((l) => l.includes('usage:')).length, 1);
    assert.equal(lines.at(-1), 'codex-responses-api-proxy: usage: 2 requests admitted, 1 refused, 1200 tokens (1000 input, 0 cached, 200 output, 0 reasoning), 0 replies unmetered');
  });

  test('without a budget flag it counts alone; an upstream 500 is a request without tokens; /shutdown writes it a last time', async () => {
    const { up, proxy, file } = await start([], ['--http-shutdown']);
    try {
      assert.equal((await ask(proxy.port, { mode: 'json', tokens: 250, model: 'gpt-a' })).status, 200);
      assert.equal((await ask(proxy.port, { mode: 'error' })).status, 500);
      assert.equal((await ask(proxy.port, { mode: 'gzip', tokens: 50, model: 'gpt-b' })).status, 200);
      const u = await waitFor('three replies counted', () => (read(file)?.models['gpt-b'] ? read(file) : undefined));
      assert.equal(u.requests, 3);
      assert.equal(u.refused, 0);
      assert.equal(u.total_tokens, 300);
      assert.equal(u.unmetered, 1);
      assert.deepEqual(Object.keys(u.models).sort(), ['gpt-a', 'gpt-b']);
      assert.deepEqual(u.budgets, { max_requests: null, max_tokens: null });
      assert.equal(u.exhausted, null);
      await new Promise<void>((resolve, reject) => http.get(`http://127.0.0.1:${proxy.port}/shutdown`, (res) => res.resume().on('end', resolve)).on('error', reject));
      assert.equal(await proxy.exited, 0);
      assert.equal(read(file)?.requests, 3);
      assert.match(proxy.stderr(), /: usage: 3 requests admitted, 0 refused, 300 tokens \(.*\), 1 reply unmetered\n$/);
    } finally {
      await proxy.stop();
      await up.close();
    }
  });

  test('a client that leaves mid-stream: the reply is unmetered, and counted as such at once', async () => {
    const { up, proxy, file } = await start([]);
    try {
      const r = await ask(proxy.port, { mode: 'hang' }, 'completed');
      assert.equal(r.status, 200);
      await waitFor('the abandoned reply counted', () => read(file)?.unmetered === 1);
      assert.equal(read(file)?.total_tokens, 0);
    } finally {
      await proxy.stop();
      await up.close();
    }
  });

  test('a symlink planted at FILE is replaced, never written through', async () => {
    const dir = tmpDir();
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'precious\n');
    const file = path.join(dir, 'usage.json');
    fs.symlinkSync(victim, file);
    const up = await startUpstream(scripted);
    const proxy = await startProxy(['--upstream-url', up.url, '--usage-file', file]);
    try {
      assert.equal(fs.readFileSync(victim, 'utf8'), 'precious\n');
      assert.ok(fs.lstatSync(file).isFile());
    } finally {
      await proxy.stop();
      await up.close();
    }
  });

  test('a FILE that cannot be written stops start-up: one line, exit 1, nothing listening', async () => {
    const dir = tmpDir();
    const info = path.join(dir, 'info.json');
    const r = await runCli(['--usage-file', dir, '--server-info', info, '--upstream-url', 'http://127.0.0.1:9/v1/responses'], `${KEY}\n`);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^codex-responses-api-proxy: cannot write --usage-file .* \(EISDIR\)\n$/);
    assert.ok(!fs.existsSync(info));
  });

  for (const args of [['--max-tokens', '0'], ['--max-requests', '-1'], ['--max-tokens', '1e3'], ['--max-requests', 'x'], ['--usage-file', '']]) {
    test(`${args.join(' ')} is a usage error (exit 2)`, async () => {
      const r = await runCli([...args, '--upstream-url', 'http://127.0.0.1:9/v1/responses'], `${KEY}\n`);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    });
  }

  test('--help lists the three flags', async () => {
    const help = await runCli(['--help'], '');
    for (const flag of ['--max-requests', '--max-tokens', '--usage-file']) assert.match(help.stdout, new RegExp(flag));
  });
});
