// GitHub OIDC mode (issue 11), black-box: the proxy as a child process
// against local https fakes for GitHub and the token exchange (a CA made at
// test time) and a recording upstream. Time is driven by short token
// lifetimes; every wait is for an event the fakes or the proxy's stderr show,
// and bounded.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exchangeAnswer, fakeRequestToken, reply, startFakes, type Fakes } from './support/oidc-fakes.js';
import { b, CLI, rawExchange, responsesComplete, runCli, startProxy, startUpstream, tmpDir, waitFor, type Proxy, type Upstream } from './support/harness.js';

const TOKEN = fakeRequestToken();

// Folders for --server-info files, removed when the file's tests end.
const made: string[] = [];
function infoPath(): string {
  const dir = tmpDir();
  made.push(dir);
  return path.join(dir, 'server-info.json');
}
after(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

function post(port: number, body = '{"model":"m","input":"hi"}'): Buffer {
  return b(
    `POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nAuthorization: Bearer client-supplied\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

async function ask(port: number): Promise<{ status: number; text: string }> {
  const r = await rawExchange(port, [post(port)], { until: (d) => responsesComplete(d), ms: 15000 });
  return { status: r.status, text: r.data.toString('latin1') };
}

/** The Authorization line of each request the upstream received. */
function authLines(up: Upstream): string[] {
  return up.received.map((r) => /\r\n(authorization:[^\r]*)\r\n/i.exec(r.head.toString('latin1'))?.[1] ?? '(none)');
}

function noSecretIn(text: string, f: Fakes): void {
  for (const s of [TOKEN, ...f.jwts, ...f.accessTokens]) assert.ok(!text.includes(s), 'a secret was printed');
}

describe('github oidc: flags', () => {
  const base = ['--github-oidc', '--oidc-audience', 'a', '--identity-provider-id', 'i', '--service-account-id', 's', '--github-oidc-request-url', 'https://127.0.0.1:1/t'];
  const without = (flag: string): string[] => {
    const i = base.indexOf(flag);
    return flag === '--github-oidc' ? base.filter((x) => x !== flag) : [...base.slice(0, i), ...base.slice(i + 2)];
  };

  test('--help lists the five flags', async () => {
    const r = await runCli(['--help'], '');
    assert.equal(r.code, 0);
    for (const f of ['--github-oidc', '--oidc-audience', '--identity-provider-id', '--service-account-id', '--github-oidc-request-url']) assert.ok(r.stdout.includes(f), f);
  });

  test('all or nothing: any one missing is a usage error naming it', async () => {
    for (const f of ['--github-oidc', '--oidc-audience', '--identity-provider-id', '--service-account-id', '--github-oidc-request-url']) {
      const r = await runCli(without(f), `${TOKEN}\n`);
      assert.equal(r.code, 2, f);
      assert.match(r.stderr, new RegExp(`missing: ${f}\\n`), f);
    }
    const r = await runCli(['--oidc-audience', 'a'], `${TOKEN}\n`);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing: --github-oidc, --identity-provider-id, --service-account-id, --github-oidc-request-url\n$/);
    assert.equal(r.stderr.split('\n').length, 2, 'one line');
  });

  test('each exit-1 check, in the original words', async () => {
    const set = (flag: string, value: string): string[] => {
      const a = [...base];
      a[a.indexOf(flag) + 1] = value;
      return a;
    };
    const rows: [string[], RegExp][] = [
      [[...base, '--upstream-url', 'https://example.com/v1/responses'], /workload identity requires the default OpenAI Responses endpoint/],
      [set('--oidc-audience', ''), /workload identity requires a nonempty --oidc-audience/],
      [set('--oidc-audience', ' \t'), /workload identity requires a nonempty --oidc-audience/],
      [set('--identity-provider-id', ' '), /workload identity requires a nonempty --identity-provider-id/],
      [set('--service-account-id', ''), /workload identity requires a nonempty --service-account-id/],
      [set('--github-oidc-request-url', '/relative'), /invalid GitHub OIDC request URL/],
      [set('--github-oidc-request-url', 'http://127.0.0.1:1/t'), /GitHub OIDC request URL must be HTTPS without user info or fragment/],
      [set('--github-oidc-request-url', 'https://u:p@127.0.0.1:1/t'), /GitHub OIDC request URL must be HTTPS without user info or fragment/],
      [set('--github-oidc-request-url', 'https://127.0.0.1:1/t#f'), /GitHub OIDC request URL must be HTTPS without user info or fragment/],
    ];
    for (const [args, msg] of rows) {
      const r = await runCli(args, `${TOKEN}\n`);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, msg);
      assert.equal(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
      assert.ok(!r.stderr.includes(TOKEN));
    }
    const env = { PATH: process.env.PATH ?? '', CODEX_RESPONSES_API_PROXY_TOKEN_EXCHANGE_URL: 'http://127.0.0.1:1/oauth/token' };
    const r = await runCli(base, `${TOKEN}\n`, env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /CODEX_RESPONSES_API_PROXY_TOKEN_EXCHANGE_URL must be an absolute HTTPS URL/);
  });
});

describe('github oidc: start-up', () => {
  let f: Fakes;
  before(async () => {
    f = await startFakes();
  });
  after(() => f.close());

  test('stdin: first line only, no wait for EOF, one CR dropped, token68 of 1 to 16,384 bytes', async () => {
    const long = `${'aZ09-._~+/'.repeat(1638)}====`;
    assert.equal(long.length, 16384);
    const info = infoPath();
    // The pipe stays open: the proxy must start on the line end alone.
    const proc = spawn(process.execPath, [CLI, '--server-info', info, ...f.args()], { stdio: ['pipe', 'ignore', 'pipe'], env: f.env() });
    let err = '';
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    proc.stdin.write(`${long}\r\nsecond line\n`);
    try {
      await waitFor('server-info with stdin still open', () => fs.existsSync(info), 15000);
      assert.ok(f.github.received.at(-1)!.head.includes(b(`\r\nAuthorization: Bearer ${long}\r\n`)));
      assert.match(err, /only the first is used/);
      assert.ok(!err.includes(long));
    } finally {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
    const tooLong = await runCli(f.args(), `${long}A\n`, f.env());
    assert.equal(tooLong.code, 1);
    assert.match(tooLong.stderr, /GitHub OIDC request credential too large: at most 16384 bytes\n$/);
    for (const bad of [`${TOKEN.slice(0, 20)}"${TOKEN.slice(20)}`, `${TOKEN} x`, '\n']) {
      const r = await runCli(f.args(), `${bad}\n`, f.env());
      assert.equal(r.code, 1);
      assert.match(r.stderr, /GitHub OIDC request credential/);
      assert.equal(r.stderr.split('\n').length, 2);
    }
  });

  test('GitHub and exchange requests byte for byte; listening only after the exchange', async () => {
    const info = infoPath();
    let release: (() => void) | null = null;
    f.onExchange = (req, sock) => {
      release = () => exchangeAnswer({ access_token: 'oat.first-token.AbC_-~+/==' })(req, sock);
    };
    const up = await startUpstream();
    const [ghAt, exAt] = [f.github.received.length, f.exchange.received.length];
    const proxyP = startProxy(f.args(['--upstream-url', up.url]), { key: `${TOKEN}\r\n`, env: f.env(), serverInfo: info });
    try {
      await waitFor('the exchange request', () => release !== null, 15000);
      // Both calls made, the exchange unanswered: nothing listens, nothing is written.
      assert.equal(fs.existsSync(info), false, 'server-info written before the exchange answered');
      const gh = f.github.received[ghAt]!;
      assert.equal(
        gh.head.toString('latin1'),
        `GET /_apis/oidctoken?api-version=2.0&audience=api%3A%2F%2Fopenai+workload HTTP/1.1\r\nHost: 127.0.0.1:${f.github.port}\r\nAuthorization: Bearer ${TOKEN}\r\nAccept: application/json\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(gh.body.length, 0);
      const ex = f.exchange.received[exAt]!;
      const body = `{"grant_type":"urn:ietf:params:oauth:grant-type:token-exchange","subject_token_type":"urn:ietf:params:oauth:token-type:jwt","subject_token":"${f.jwts.at(-1)}","identity_provider_id":"idp_0123","service_account_id":"sa_4567"}`;
      assert.equal(
        ex.head.toString('latin1'),
        `POST /oauth/token HTTP/1.1\r\nHost: localhost:${f.exchange.port}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(ex.body.toString('latin1'), body);
      release!();
      const proxy = await proxyP;
      const r = await ask(proxy.port);
      assert.equal(r.status, 200);
      assert.deepEqual(authLines(up), ['Authorization: Bearer oat.first-token.AbC_-~+/==']);
      assert.ok(!up.received[0]!.head.includes(b('client-supplied')));
      noSecretIn(proxy.stderr(), f);
      await proxy.stop();
    } finally {
      await (await proxyP.catch(() => null))?.stop();
      await up.close();
      f.onExchange = null;
    }
  });

  test('a chunked GitHub answer with other members and escapes is read', async () => {
    f.onGithub = (_req, sock) => {
      const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln';
      f.jwts.push(jwt);
      const body = `{"count":2,"note":"a \\"quoted\\" \\u0076alue}","nested":{"value":"x"},"value":"${jwt}"}`;
      const half = Math.floor(body.length / 2);
      sock.end(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${half.toString(16)}\r\n${body.slice(0, half)}\r\n${(body.length - half).toString(16)};ext=1\r\n${body.slice(half)}\r\n0\r\n\r\n`);
    };
    const proxy = await startProxy(f.args(), { serverInfo: infoPath(), key: `${TOKEN}\n`, env: f.env() });
    try {
      assert.equal(f.exchange.received.at(-1)!.body.includes(b('"subject_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"')), true);
    } finally {
      await proxy.stop();
      f.onGithub = null;
    }
  });

  const failures: [string, (f: Fakes) => void, RegExp][] = [
    ['GitHub 500', (f) => (f.onGithub = (_r, s) => reply(s, 500, { message: 'SECRET-BODY-MARKER' })), /^codex-responses-api-proxy: GitHub OIDC token request rejected \(HTTP 500\)\n$/],
    ['GitHub redirect', (f) => (f.onGithub = (_r, s) => reply(s, 302, '', 'Location: https://127.0.0.1:1/elsewhere\r\n')), /GitHub OIDC token request rejected \(HTTP 302\)\n$/],
    ['GitHub array', (f) => (f.onGithub = (_r, s) => reply(s, 200, '["value"]')), /GitHub OIDC token request failed: the answer is not a JSON object\n$/],
    ['GitHub bad JSON', (f) => (f.onGithub = (_r, s) => reply(s, 200, '{"value":"abc",}')), /GitHub OIDC token request failed: the answer is not a JSON object\n$/],
    ['GitHub no value', (f) => (f.onGithub = (_r, s) => reply(s, 200, { count: 1 })), /GitHub OIDC token request failed: the answer's value is not a token68 string/],
    ['GitHub numeric value', (f) => (f.onGithub = (_r, s) => reply(s, 200, { value: 12 })), /the answer's value is not a token68 string/],
    ['GitHub empty value', (f) => (f.onGithub = (_r, s) => reply(s, 200, { value: '' })), /the answer's value is not a token68 string/],
    ['GitHub escaped value', (f) => (f.onGithub = (_r, s) => reply(s, 200, '{"value":"ab\\u0063"}')), /the answer's value is not a token68 string/],
    ['GitHub value too long', (f) => (f.onGithub = (_r, s) => reply(s, 200, { value: 'a'.repeat(16385) })), /the answer's value is not a token68 string of 1 to 16384 bytes/],
    ['GitHub duplicate value', (f) => (f.onGithub = (_r, s) => reply(s, 200, '{"value":"a","value":"b"}')), /the answer repeats value/],
    ['GitHub over 64 KiB', (f) => (f.onGithub = (_r, s) => reply(s, 200, { pad: 'x'.repeat(65536), value: 'abc' })), /GitHub OIDC token request failed: answer larger than 65536 bytes/],
    ['GitHub closes early', (f) => (f.onGithub = (_r, s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"value"')), /GitHub OIDC token request failed: connection closed before the answer ended/],
    ['exchange 401', (f) => (f.onExchange = (_r, s) => reply(s, 401, { error: 'SECRET-BODY-MARKER' })), /^codex-responses-api-proxy: OpenAI workload identity token request rejected \(HTTP 401\)\n$/],
    ['access_token missing', (f) => (f.onExchange = exchangeAnswer({ access_token: undefined })), /exchange failed: access_token is not a token68 string/],
    ['access_token with space', (f) => (f.onExchange = exchangeAnswer({ access_token: 'abc def' })), /exchange failed: access_token is not a token68 string/],
    ['access_token too long', (f) => (f.onExchange = exchangeAnswer({ access_token: 'A'.repeat(16385) })), /exchange failed: access_token is not a token68 string of 1 to 16384 bytes/],
    ['issued_token_type', (f) => (f.onExchange = exchangeAnswer({ issued_token_type: 'urn:ietf:params:oauth:token-type:jwt' })), /exchange failed: issued_token_type is not urn:ietf:params:oauth:token-type:access_token\n$/],
    ['token_type', (f) => (f.onExchange = exchangeAnswer({ token_type: 'DPoP' })), /exchange failed: token_type is not Bearer\n$/],
    ['expires_in 0', (f) => (f.onExchange = exchangeAnswer({ expires_in: 0 })), /exchange failed: expires_in is not an integer from 1 to 3600\n$/],
    ['expires_in 3601', (f) => (f.onExchange = exchangeAnswer({ expires_in: 3601 })), /expires_in is not an integer from 1 to 3600/],
    ['expires_in 1.5', (f) => (f.onExchange = exchangeAnswer({ expires_in: 1.5 })), /expires_in is not an integer from 1 to 3600/],
    ['expires_in string', (f) => (f.onExchange = exchangeAnswer({ expires_in: '60' })), /expires_in is not an integer from 1 to 3600/],
    ['expires_at past', (f) => (f.onExchange = exchangeAnswer({ expires_at: Math.floor(Date.now() / 1000) - 10 })), /exchange failed: expires_at is not an integer Unix time in the future\n$/],
    ['expires_at missing', (f) => (f.onExchange = exchangeAnswer({ expires_at: undefined })), /expires_at is not an integer Unix time in the future/],
  ];
  for (const [name, arrange, message] of failures) {
    test(`start-up failure, one line and exit 1: ${name}`, async () => {
      arrange(f);
      try {
        const info = infoPath();
        const r = await runCli(['--server-info', info, ...f.args()], `${TOKEN}\n`, f.env());
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, message);
        assert.equal(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
        assert.ok(!r.stderr.includes('SECRET-BODY-MARKER'), 'a body was printed');
        noSecretIn(r.stderr, f);
        assert.equal(fs.existsSync(info), false);
      } finally {
        f.onGithub = null;
        f.onExchange = null;
      }
    });
  }

  test('a 1 B and a 16,384 B token68 access token are both injected as given', async () => {
    for (const token of ['A', `${'aZ09-._~+/'.repeat(1638)}====`]) {
      f.onExchange = exchangeAnswer({ access_token: token });
      const up = await startUpstream();
      const proxy = await startProxy(f.args(['--upstream-url', up.url]), { serverInfo: infoPath(), key: `${TOKEN}\n`, env: f.env() });
      try {
        assert.equal((await ask(proxy.port)).status, 200);
        assert.deepEqual(authLines(up), [`Authorization: Bearer ${token}`]);
      } finally {
        await proxy.stop();
        await up.close();
        f.onExchange = null;
      }
    }
  });
});

describe('github oidc: renewal', () => {
  let f: Fakes;
  let up: Upstream;
  let proxy: Proxy | null = null;
  let upstreamStatus = 200;
  before(async () => {
    f = await startFakes();
    up = await startUpstream((_req, sock) => {
      const status = upstreamStatus;
      upstreamStatus = 200;
      sock.write(`HTTP/1.1 ${status} X\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}`);
    });
  });
  after(async () => {
    await proxy?.stop();
    await up.close();
    await f.close();
  });

  test('renews in the background before expiry; a 401 renews before the next request, one flight at a time', async () => {
    f.lifetime = 3;
    proxy = await startProxy(f.args(['--upstream-url', up.url]), { serverInfo: infoPath(), key: `${TOKEN}\n`, env: f.env() });
    assert.equal(f.accessTokens.length, 1);
    // Background renewal runs only while requests come in (issue 19): one
    // request, then none, so the second exchange can only be the background
    // renewal, 5 s (the floor) after start-up.
    assert.equal((await ask(proxy.port)).status, 200);
    await waitFor('a background renewal', () => f.accessTokens.length >= 2, 15000);
    f.lifetime = 3600;
    await waitFor('the renewal to settle', () => f.accessTokens.length >= 3, 15000);
    assert.equal((await ask(proxy.port)).status, 200);
    assert.equal(authLines(up).at(-1), `Authorization: Bearer ${f.accessTokens.at(-1)}`);
    const githubBefore = f.github.received.length;

    // The renewal a 401 starts is held here, so requests meanwhile must wait.
    let release: (() => void) | null = null;
    f.onGithub = (_req, sock) => {
      release = () => {
        f.onGithub = null;
        const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZW5ld2VkIn0.c2ln';
        f.jwts.push(jwt);
        reply(sock, 200, { value: jwt });
      };
    };
    // The upstream rejects the token: the 401 reaches the client as is.
    upstreamStatus = 401;
    const r401 = await ask(proxy.port);
    assert.equal(r401.status, 401);
    assert.match(r401.text, /\{"ok":true\}$/);
    await waitFor('the renewal after the 401', () => release !== null, 15000);
    const replies = Array.from({ length: 10 }, () => ask(proxy!.port));
    // A second flight would show at the GitHub fake; give it a bounded chance to.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(f.github.received.length, githubBefore + 1, 'one flight at a time');
    const seen = up.received.length;
    release!();
    for (const r of await Promise.all(replies)) assert.equal(r.status, 200);
    assert.equal(f.github.received.length, githubBefore + 1);
    const renewed = `Authorization: Bearer ${f.accessTokens.at(-1)}`;
    assert.deepEqual(authLines(up).slice(seen), Array(10).fill(renewed), 'every waiting request used the renewed token');
    noSecretIn(proxy.stderr(), f);
    assert.match(proxy.stderr(), /upstream answered 401: renewing the access token/);
    await proxy.stop();
    proxy = null;
  });

  test('a failed renewal keeps serving while valid, backs off, 503 once expired, recovers', async () => {
    f.lifetime = 10;
    proxy = await startProxy(f.args(['--upstream-url', up.url]), { serverInfo: infoPath(), key: `${TOKEN}\n`, env: f.env() });
    const first = `Authorization: Bearer ${f.accessTokens.at(-1)}`;
    const githubAt = f.github.received.length;
    f.onGithub = (_req, sock) => reply(sock, 500, { message: 'SECRET-BODY-MARKER' });
    // A request keeps background renewal on (issue 19).
    assert.equal((await ask(proxy.port)).status, 200);
    // Renewal starts with 1 s (10 %) of the lifetime left and fails at once.
    await waitFor('the first renewal attempt', () => f.github.received.length > githubAt, 15000);
    const valid = await ask(proxy.port);
    assert.equal(valid.status, 200, 'a request the current token can serve is served');
    assert.equal(authLines(up).at(-1), first);
    // The back-off starts at the 5 s floor (issue 19; it was 1, 2, 4 … 30 s).
    await waitFor('back-off: 5 s, then 10 s', () => /retrying in 5 s[^]*retrying in 10 s/.test(proxy!.stderr()), 15000);
    // The token has expired by the second failure: no valid token is left,
    // and the retry is 10 s away: a 503 at once, naming the failure.
    const down = await ask(proxy.port);
    assert.equal(down.status, 503);
    assert.match(down.text, /"code":"credential_unavailable","message":"no valid upstream credential \(GITHUB_HTTP_500\)"/);
    const exchangesBefore = f.accessTokens.length;
    f.onGithub = null;
    await waitFor('recovery', () => f.accessTokens.length > exchangesBefore, 15000);
    const back = await ask(proxy.port);
    assert.equal(back.status, 200);
    assert.equal(authLines(up).at(-1), `Authorization: Bearer ${f.accessTokens.at(-1)}`);
    assert.ok(!proxy.stderr().includes('SECRET-BODY-MARKER'));
    noSecretIn(proxy.stderr(), f);
    f.lifetime = 3600;
    await proxy.stop();
    proxy = null;
  });
});

describe('github oidc: renewal under 50 concurrent streams', () => {
  test('every request carries one whole, current-or-previous token line; none zeroed or mixed', async () => {
    const f = await startFakes();
    f.lifetime = 2;
    // Answers trickle out over a few reads, so exchanges span renewals.
    const up = await startUpstream((_req, sock) => {
      sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 33\r\n\r\n');
      let n = 0;
      const tick = (): void => {
        if (sock.destroyed) return;
        sock.write('data: 0123\n\n');
        if (++n < 2) setTimeout(tick, 20);
        else sock.write('data: x\n\n');
      };
      setTimeout(tick, 20);
    });
    const proxy = await startProxy(f.args(['--upstream-url', up.url]), { serverInfo: infoPath(), key: `${TOKEN}\n`, env: f.env() });
    try {
      let stop = false;
      const statuses: number[] = [];
      const stream = async (): Promise<void> => {
        for (let i = 0; i < 400 && !stop; i++) {
          const r = await rawExchange(proxy.port, [post(proxy.port)], { until: (d) => responsesComplete(d), ms: 15000 });
          statuses.push(r.status);
        }
      };
      const streams = Array.from({ length: 50 }, stream);
      await waitFor('two renewals under load', () => f.accessTokens.length >= 3, 30000);
      stop = true;
      await Promise.all(streams);
      assert.ok(statuses.length >= 50);
      assert.ok(statuses.every((s) => s === 200), `statuses: ${[...new Set(statuses)].join(',')}`);
      const allowed = new Set(f.accessTokens.map((t) => `Authorization: Bearer ${t}`));
      const used = new Set<string>();
      for (const r of up.received) {
        const head = r.head.toString('latin1');
        assert.ok(!r.head.includes(Buffer.alloc(4)), 'a zeroed line was sent');
        const line = /\r\n(Authorization:[^\r]*)\r\n/.exec(head)?.[1] ?? '';
        assert.ok(allowed.has(line), `a mixed or unknown line: ${JSON.stringify(line.slice(0, 40))}`);
        used.add(line);
      }
      assert.ok(used.size >= 2, 'requests spanned a renewal');
      noSecretIn(proxy.stderr(), f);
    } finally {
      await proxy.stop();
      await up.close();
      await f.close();
    }
  });
});
