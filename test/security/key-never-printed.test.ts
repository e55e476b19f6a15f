// Issue 5, never reflected: with a distinctive key, drive allowed, denied,
// malformed, upstream-down and TLS-failure requests, stop the proxies, then
// look for the key in every byte they printed, every response, and every
// file they wrote (their working folder and the server-info folder).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { makeTestPki, opensslMissing } from '../support/certs.js';
import { b, CLI, rawExchange, REFUSED_PORT, startUpstream, tmpDir, waitFor, type Upstream } from '../support/harness.js';
import { AUTH_MODES, distinctiveKey, driveClientCases, keyOfLength } from '../support/keys.js';
import { filesUnder } from '../support/memory.js';

interface Run {
  port: number;
  out: Buffer[];
  exited: Promise<number | string>;
  dir: string;
}

/** The CLI with its own working folder, so every file it writes is found. */
async function start(key: string, args: string[]): Promise<Run> {
  const dir = tmpDir();
  const info = path.join(dir, 'info', 'server-info.json');
  const proc = spawn(process.execPath, [CLI, '--http-shutdown', '--server-info', info, ...args], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
  const out: Buffer[] = [];
  proc.stdout!.on('data', (d: Buffer) => out.push(d));
  proc.stderr!.on('data', (d: Buffer) => out.push(d));
  const exited = new Promise<number | string>((r) => proc.on('exit', (c, s) => r(c ?? s ?? -1)));
  proc.stdin!.end(`${key}\n`);
  const text = await waitFor('server-info', () => fs.existsSync(info) && fs.readFileSync(info, 'utf8'));
  // Kept: the proxy removes the file when it exits.
  out.push(Buffer.from(text));
  return { port: (JSON.parse(text) as { port: number }).port, out, exited, dir };
}

async function shutdown(r: Run): Promise<void> {
  await rawExchange(r.port, [b('GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')], { ms: 5000 });
  assert.equal(await r.exited, 0);
}

// Issue 11's key lengths, each with `.` and `=` (keyOfLength), and issue 12's
// api-key line with an Azure-length key.
const CASES = [...[32, 164, 1017, 16384].map((length) => ({ length, mode: AUTH_MODES[0]! })), { length: 32, mode: AUTH_MODES[1]! }];
for (const { length, mode } of CASES) test(`${length}-byte key, ${mode.name}: appears in no output, response or written file`, async (t) => {
  const key = keyOfLength(length);
  const needle = Buffer.from(key, 'latin1');
  const clientSecret = distinctiveKey('clientsecret');
  const seen: { what: string; bytes: Buffer }[] = [];

  const up = await startUpstream();
  const cases: [string, string][] = [
    ['relaying', up.url],
    ['upstream down', `http://127.0.0.1:${REFUSED_PORT}/v1/responses`],
  ];
  const noTls = opensslMissing();
  let tlsUp: Upstream | undefined;
  if (noTls) t.diagnostic(`TLS-failure case skipped: ${noTls}`);
  else {
    // From a CA the proxy is not given: the handshake must fail.
    const untrusted = makeTestPki();
    tlsUp = await startUpstream(undefined, { key: untrusted.key, cert: untrusted.cert });
    cases.push(['TLS failure', tlsUp.url]);
  }
  try {
    for (const [name, url] of cases) {
      const run = await start(key, ['--upstream-url', url, ...mode.args]);
      const replies = await driveClientCases(run.port, clientSecret);
      for (const r of replies) seen.push({ what: `${name}: response`, bytes: r });
      const first = replies[0]!.toString('latin1');
      if (name === 'relaying') assert.match(first, /^HTTP\/1\.1 200 /);
      else assert.match(first, /^HTTP\/1\.1 502 /, `${name}: ${first}`);
      if (name === 'TLS failure') assert.match(first, /TLS/);
      await shutdown(run);
      seen.push({ what: `${name}: stdout+stderr`, bytes: Buffer.concat(run.out) });
      for (const f of filesUnder(run.dir)) seen.push({ what: `${name}: file ${path.relative(run.dir, f)}`, bytes: fs.readFileSync(f) });
    }
    // The upstream did receive the key: the needle is right, the search can hit.
    assert.ok(up.received.some((r) => r.head.includes(`\r\n${mode.line}${key}\r\n`)));
    assert.ok(seen.some((s) => s.what.endsWith('stdout+stderr') && s.bytes.includes('{"port":')), 'the server-info file was searched');
    assert.ok(seen.some((s) => s.what.startsWith('upstream down') && s.bytes.includes('upstream request failed')), 'the 502 was logged');
    for (const s of seen) {
      assert.equal(s.bytes.includes(needle), false, `the key leaked into ${s.what}`);
      assert.equal(s.bytes.includes(clientSecret), false, `the client's Authorization leaked into ${s.what}`);
      assert.equal(s.bytes.includes('Bearer '), false, `an Authorization value leaked into ${s.what}`);
    }
  } finally {
    await up.close();
    await tlsUp?.close();
  }
});
