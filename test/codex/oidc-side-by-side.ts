// GitHub OIDC side by side: the original (codex 0.171.0 responses-api-proxy)
// and this relay, driven by the same local fakes (test/support/oidc-fakes.ts).
//
// Opt-in, not part of `npm test`: it needs the cached original, found as in
// test:codex (.cache/codex/0.171.0-linux-x64/vendor/...) or at $CODEX_BIN.
//   npx tsc -p tsconfig.json && node dist/test/codex/oidc-side-by-side.js
//
// The original has no flag or variable that moves its exchange
// (CODEX_REFRESH_TOKEN_URL_OVERRIDE does not), nor does it accept a
// non-default --upstream-url in this mode. It does honour HTTPS_PROXY and
// SSL_CERT_FILE, so it is reached through a local CONNECT proxy that
// terminates TLS for auth.openai.com and api.openai.com with a certificate
// from the test CA and hands the bytes to the same fakes. This relay is
// pointed at the fakes with its documented test hook. Prints one JSON object
// per implementation: what the fakes saw and what a client got.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { exchangeAnswer, reply, startFakes, type Fakes } from '../support/oidc-fakes.js';
import { b, CLI, rawExchange, responsesComplete, ROOT, startUpstream, waitFor, type Upstream } from '../support/harness.js';

const ORIGINAL = process.env['CODEX_BIN'] ?? path.join(ROOT, '.cache/codex/0.171.0-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CONNECT auth.openai.com:443 → the exchange fake; api.openai.com:443 → the upstream fake. */
async function connectProxy(f: Fakes, up: Upstream): Promise<net.Server> {
  const server = net.createServer((c) => {
    c.on('error', () => {});
    c.once('data', (d: Buffer) => {
      const host = /^CONNECT ([^:]+):/.exec(d.toString('latin1'))?.[1];
      c.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      const inner = new tls.TLSSocket(c, { isServer: true, key: f.pki.key, cert: f.pki.cert });
      inner.on('error', () => {});
      const out: net.Socket =
        host === 'auth.openai.com' ? tls.connect({ host: '127.0.0.1', port: f.exchange.port, servername: 'localhost', ca: fs.readFileSync(f.pki.caFile) }) : net.connect(up.port, '127.0.0.1');
      out.on('error', () => inner.destroy());
      inner.pipe(out).pipe(inner);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

interface Running {
  port: number;
  stderr: () => string;
  code: () => number | null;
  kill: () => void;
}

async function start(cmd: string[], env: NodeJS.ProcessEnv, token: string): Promise<Running> {
  const info = path.join(fs.mkdtempSync('/tmp/oidc-sbs-'), 'info.json');
  const p = spawn(cmd[0]!, [...cmd.slice(1), '--server-info', info], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  let code: number | null = null;
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  p.on('exit', (c) => (code = c ?? -1));
  p.stdin.end(`${token}\n`);
  await waitFor('start-up or exit', () => fs.existsSync(info) || code !== null, 20000).catch(() => null);
  await sleep(100);
  const port = fs.existsSync(info) ? (JSON.parse(fs.readFileSync(info, 'utf8')) as { port: number }).port : 0;
  fs.rmSync(path.dirname(info), { recursive: true, force: true });
  return {
    port,
    // The original adds a "Stack backtrace" of "<unknown>" frames to each error.
    stderr: () => err.split('\n').filter((l) => l && !/^\s+\d+: <unknown>|^Stack backtrace:/.test(l)).join(' | '),
    code: () => code,
    kill: () => p.kill('SIGTERM'),
  };
}

async function ask(port: number): Promise<string> {
  const body = '{"model":"m","input":"hi"}';
  const req = b(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  const r = await rawExchange(port, [req], { until: (d) => responsesComplete(d), ms: 15000, quiet: true });
  const text = r.data.toString('latin1');
  return `${r.status || 'closed'} ${text.slice(text.indexOf('\r\n\r\n') + 4, text.indexOf('\r\n\r\n') + 100)}`.trim();
}

const lastAuth = (up: Upstream): string => /\r\nauthorization: Bearer ([^\r]*)/i.exec(up.received.at(-1)?.head.toString('latin1') ?? '')?.[1] ?? '';

async function main(): Promise<void> {
  if (!fs.existsSync(ORIGINAL)) throw new Error(`no original at ${ORIGINAL}; see test:codex or set CODEX_BIN`);
  const f = await startFakes(['auth.openai.com', 'api.openai.com']);
  let upStatus = 200;
  const up = await startUpstream((_req, sock) => {
    const s = upStatus;
    upStatus = 200;
    sock.write(`HTTP/1.1 ${s} X\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}`);
  });
  const proxy = await connectProxy(f, up);
  const args = f.args();
  const impls: Record<string, { cmd: string[]; env: NodeJS.ProcessEnv }> = {
    original: {
      cmd: [ORIGINAL, 'responses-api-proxy', ...args],
      env: { HTTPS_PROXY: `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`, NO_PROXY: '127.0.0.1', SSL_CERT_FILE: f.pki.caFile },
    },
    relay: { cmd: [process.execPath, CLI, ...args, '--upstream-url', up.url], env: f.env() },
  };
  const token = `ghr.${'x'.repeat(40)}`;
  const results: Record<string, Record<string, unknown>> = {};
  for (const [name, im] of Object.entries(impls)) {
    const r: Record<string, unknown> = (results[name] = {});
    const reset = (): void => {
      f.onGithub = f.onExchange = null;
      f.lifetime = 3600;
      upStatus = 200;
    };
    // Start-up and one request: the raw requests the fakes saw.
    reset();
    let x = await start(im.cmd, im.env, token);
    r['githubRequest'] = f.github.received.at(-1)?.head.toString('latin1');
    const ex = f.exchange.received.at(-1);
    r['exchangeRequest'] = ex && ex.head.toString('latin1') + ex.body.toString('latin1');
    r['firstRequest'] = await ask(x.port);
    x.kill();
    // 5 s lifetime, no requests for 6 s: does renewal happen without a request?
    reset();
    f.lifetime = 5;
    x = await start(im.cmd, im.env, token);
    const ex0 = f.exchange.received.length;
    await sleep(6000);
    r['exchangesIn6sWithoutRequests'] = f.exchange.received.length - ex0;
    r['requestAfter6s'] = await ask(x.port);
    x.kill();
    // An upstream 401, then the next request.
    reset();
    x = await start(im.cmd, im.env, token);
    upStatus = 401;
    r['upstream401'] = await ask(x.port);
    const gh = f.github.received.length;
    await sleep(300);
    r['githubCallsWithin300msOf401'] = f.github.received.length - gh;
    r['nextRequest'] = await ask(x.port);
    r['nextRequestUsedNewToken'] = lastAuth(up) === f.accessTokens.at(-1);
    x.kill();
    // 10 s lifetime, GitHub failing after start-up: a request 0.7 s before expiry, one after.
    reset();
    f.lifetime = 10;
    x = await start(im.cmd, im.env, token);
    f.onGithub = (_req, sock) => reply(sock, 500, { message: 'BODY' });
    await sleep(9300);
    r['whileValidRenewalFailing'] = await ask(x.port);
    await sleep(1700);
    r['afterExpiryRenewalFailing'] = await ask(x.port);
    f.onGithub = null;
    await sleep(2500);
    r['2500msAfterGithubRecovers'] = await ask(x.port);
    r['stderr'] = x.stderr().slice(0, 500);
    x.kill();
    // Start-up failures.
    const failures: [string, () => void][] = [
      ['github500', () => (f.onGithub = (_q, s) => reply(s, 500, { message: 'BODY' }))],
      ['github302', () => (f.onGithub = (_q, s) => reply(s, 302, '', 'Location: https://127.0.0.1:1/x\r\n'))],
      ['githubEscapedValue', () => (f.onGithub = (_q, s) => reply(s, 200, '{"value":"eyJh\\u0062.x.y"}'))],
      ['exchange401', () => (f.onExchange = (_q, s) => reply(s, 401, { error: 'BODY' }))],
      ['tokenTypeLowercase', () => (f.onExchange = exchangeAnswer({ token_type: 'bearer' }))],
      ['expiresIn3601', () => (f.onExchange = exchangeAnswer({ expires_in: 3601 }))],
      ['expiresInFraction', () => (f.onExchange = exchangeAnswer({ expires_in: 60.5 }))],
      ['noExpiresAt', () => (f.onExchange = exchangeAnswer({ expires_at: undefined }))],
      ['issuedTypeJwt', () => (f.onExchange = exchangeAnswer({ issued_token_type: 'urn:ietf:params:oauth:token-type:jwt' }))],
      ['accessTokenWithSpace', () => (f.onExchange = exchangeAnswer({ access_token: 'a b' }))],
    ];
    for (const [k, arrange] of failures) {
      reset();
      arrange();
      x = await start(im.cmd, im.env, token);
      r[`startup:${k}`] = x.port ? `listening (${await ask(x.port)})` : `exit ${x.code()}: ${x.stderr()}`;
      x.kill();
    }
  }
  console.log(JSON.stringify(results, null, 1));
  proxy.close();
  await up.close();
  await f.close();
}

await main();
process.exit(0);
