// The command line as users meet it: flags, exit codes, the key on stdin,
// the server-info file and the start-up line.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { CLI, KEY, rawExchange, request, responsesComplete, runCli, startProxy, startUpstream, tmpDir, waitFor } from './support/harness.js';

const UP = ['--upstream-url', 'http://127.0.0.1:9/v1/responses'];

describe('usage errors: one line on stderr, exit 2, nothing written', () => {
  const cases: [string, string[]][] = [
    ['port out of range', ['--port', '65536']],
    ['negative port', ['--port', '-1']],
    ['port not a number', ['--port', 'http']],
    ['unknown flag', ['--bogus']],
    ['flag given twice', ['--port', '1', '--port', '2']],
    ['hex port on the yargs path', ['--port', '0x10', '--http-shutdown=true']],
    ['number flag without its value', ['--head-timeout', '--http-shutdown=true']],
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
    // Issue 8: numbers shown as numbers, and a usage line that never wraps.
    // (Issue 17: at 80 columns the type and default may sit on the next line.)
    assert.match(help.stdout, /--max-head-bytes\s[^[]*\[number\] \[default: 65536\]\n/);
    assert.doesNotMatch(help.stdout, /\[string\] \[default: "\d+"\]/);
    assert.match(help.stdout, /^Usage: codex-responses-api-proxy \[OPTIONS\] < KEY\n/);
    const version = await runCli(['--version'], '');
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
    // Issue 17: clap's short flag for the version too.
    const short = await runCli(['-V'], '');
    assert.equal(short.code, 0, short.stderr);
    assert.equal(short.stdout, version.stdout);
  });
});

describe('a bad --upstream-url: one line on stderr, exit 1, nothing written', () => {
  // Issue 17: the original exits 1 for a bad URL (its check runs after
  // clap's parsing); the line and the nothing-written rule are the same.
  const badUrls: [string, string][] = [
    ['relative URL', '/v1/responses'],
    ['URL that is not http(s)', 'ftp://example.com/v1/responses'],
    ['URL with credentials', 'https://user:pw@example.com/v1/responses'],
    ['URL with a fragment', 'https://example.com/v1/responses#frag'],
  ];
  for (const [name, url] of badUrls) {
    test(name, async () => {
      const info = path.join(tmpDir(), 'sub', 'info.json');
      const r = await runCli(['--upstream-url', url, '--server-info', info], `${KEY}\n`);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^codex-responses-api-proxy: /);
      assert.ok(!fs.existsSync(path.dirname(info)));
    });
  }
});

describe('the key on stdin', () => {
  const bad: [string, string | Buffer, RegExp][] = [
    ['empty input', '', /no API key/],
    ['only a newline', '\n', /no API key/],
    ['invalid character', 'sk-abc$def\n', /may only contain/],
    ['space inside', 'sk-abc def\n', /may only contain/],
    ['16,385 bytes', `${'k'.repeat(16385)}\n`, /too long/],
    ['far too long', 'k'.repeat(50000), /too long/],
    ['a key on the second line only', `\n${KEY}\n`, /no API key/],
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

  for (const [name, key] of [
    ['a 1017-byte key (the original\'s limit)', 'A'.repeat(1017)],
    ['a 16,384-byte token68 key with = and .', `${'eyJ0'.repeat(2048)}.${'Zz+/_~-9'.repeat(1023)}a==`],
  ] as const) test(`${name}, CRLF-terminated, is accepted and sent as Bearer`, async () => {
    const up = await startUpstream();
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

  // Issue 8: a starter that keeps the pipe open (or a terminal) must get a
  // proxy once the line end is in: stdin is never closed here.
  test('the proxy starts on the first line without waiting for EOF, and uses only that line', async () => {
    const up = await startUpstream();
    const info = path.join(tmpDir(), 'server-info.json');
    const proc = spawn(process.execPath, [CLI, '--server-info', info, '--upstream-url', up.url], { stdio: ['pipe', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
    let err = '';
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    try {
      proc.stdin.write(`${KEY}\nsecond line, never a key\n`);
      const text = await waitFor('server-info with stdin still open', () => proc.exitCode === null && fs.existsSync(info) && fs.readFileSync(info, 'utf8'));
      const { port } = JSON.parse(text) as { port: number };
      await rawExchange(port, [request()], { until: responsesComplete });
      assert.ok(up.received[0]!.head.includes(`\r\nAuthorization: Bearer ${KEY}\r\n`));
      assert.match(err, /warning: stdin held more than one line/);
      assert.ok(!err.includes('second line'));
    } finally {
      proc.kill('SIGKILL');
      await up.close();
    }
  });

  // codex-action's exact launch: `exec env -u PROXY_API_KEY -u NODE_OPTIONS
  // NODE_OPTIONS=--disable-sigusr1 codex-responses-api-proxy --http-shutdown
  // --server-info "$F" <<< "$KEY"` (a here-string: the key and one LF).
  test('codex-action\'s launch line: NODE_OPTIONS=--disable-sigusr1, a here-string key, /shutdown', { skip: process.allowedNodeEnvironmentFlags.has('--disable-sigusr1') ? false : `Node ${process.version} has no --disable-sigusr1` }, async () => {
    const up = await startUpstream();
    const info = path.join(tmpDir(), 'server-info.json');
    const proxy = await startProxy(['--http-shutdown', '--upstream-url', up.url], { serverInfo: info, env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: '--disable-sigusr1' } });
    try {
      await rawExchange(proxy.port, [request()], { until: responsesComplete });
      assert.ok(up.received[0]!.head.includes(`\r\nAuthorization: Bearer ${KEY}\r\n`));
      const res = await rawExchange(proxy.port, [Buffer.from(`GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\n\r\n`)]);
      assert.equal(res.status, 200);
      assert.equal(await proxy.exited, 0);
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
    assert.deepEqual(fs.readdirSync(dir), [], 'removed at exit');
  });

  // Issue 8 (codex-action#133: a stale file broke the next run).
  const exits: [string, (p: Awaited<ReturnType<typeof startProxy>>) => Promise<void>, number | string][] = [
    ['/shutdown', async (p) => void (await rawExchange(p.port, [Buffer.from(`GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1:${p.port}\r\n\r\n`)])), 0],
    // Issue 19: the signals that dump core get the same treatment; a review
    // found the last six (no core) skipping every clean-up.
    ...(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGABRT', 'SIGTRAP', 'SIGSYS', 'SIGXCPU', 'SIGUSR2', 'SIGALRM', 'SIGVTALRM', 'SIGIO', 'SIGPWR', 'SIGSTKFLT'] as const).map((sig): [string, (p: Awaited<ReturnType<typeof startProxy>>) => Promise<void>, string] => [
      sig,
      async (p) => void p.proc.kill(sig),
      sig,
    ]),
  ];
  for (const [name, end, status] of exits) {
    test(`server-info is removed after ${name}`, async () => {
      const info = path.join(tmpDir(), 'server-info.json');
      const proxy = await startProxy(['--http-shutdown', ...UP], { serverInfo: info });
      assert.ok(fs.existsSync(info));
      await end(proxy);
      assert.equal(await proxy.exited, status);
      assert.equal(fs.existsSync(info), false);
    });
  }

  test('server-info replaces a stale file and a planted symlink, never writing through it', async () => {
    const dir = tmpDir();
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'precious\n', { mode: 0o600 });
    const info = path.join(dir, 'server-info.json');
    fs.symlinkSync(victim, info);
    const proxy = await startProxy(UP, { serverInfo: info });
    try {
      assert.equal(fs.lstatSync(info).isFile(), true);
      assert.equal(fs.readFileSync(info, 'utf8'), `{"port":${proxy.port},"pid":${proxy.proc.pid}}\n`);
      assert.equal(fs.readFileSync(victim, 'utf8'), 'precious\n');
      assert.deepEqual(fs.readdirSync(dir).sort(), ['server-info.json', 'victim'], 'no temp file left');
    } finally {
      await proxy.stop();
    }
  });

 // Issue 17: the error alone, no "listening" line before it.
  test('server-info where no folder can be made (/proc/nope/x.json): one line, exit 1', async () => {
    const r = await runCli(['--server-info', '/proc/nope/x.json', ...UP], `${KEY}\n`);
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^codex-responses-api-proxy: cannot write --server-info \/proc\/nope\/x\.json \(E[A-Z]+\)$/);
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
