// Issue 9: a web page is a local client too, driven by whoever wrote it. A
// page that rebinds its own DNS name to 127.0.0.1 sends a same-origin POST
// whose answer it can read; without rebinding, a cross-site "simple" POST
// (text/plain, no preflight) still spends tokens, and an <img> can reach
// GET /shutdown. Each form below is refused from the head: the status is
// asserted, not one byte reaches the upstream, and the proxy keeps running
// and serving. The clients the relay exists for (Codex, Node's fetch and
// with it the openai SDK, curl) name the listener in Host and send neither
// Origin nor Sec-Fetch-Site, and are relayed byte for byte.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { b, KEY, rawExchange, relayFixture, request, responsesComplete, runCli, startProxy, startUpstream, type Proxy, type Upstream } from '../support/harness.js';
import { expectedUpstream } from '../support/wire.js';

// --http-shutdown on, so that a refused GET /shutdown is refused by the
// caller checks and not merely because shutdown is off.
const fx = relayFixture(['--http-shutdown']);

const upstreamBytes = (u: Upstream): number => u.raw.reduce((n, r) => n + r.length, 0);
const BODY = '{"model":"gpt-5","input":"spend the key"}';
const post = (fields: string, body = BODY): Buffer => b(`POST /v1/responses HTTP/1.1\r\n${fields}Content-Length: ${body.length}\r\n\r\n${body}`);

/** Sends `bytes`, asserts the refusal, that nothing reached `u`, and that `p` still runs and serves. */
async function assertRefused(p: Proxy, u: Upstream, bytes: Buffer, status: number, code: string): Promise<void> {
  const bytesBefore = upstreamBytes(u);
  const connsBefore = u.connections;
  const res = await rawExchange(p.port, [bytes]);
  const text = res.data.toString('latin1');
  assert.equal(res.status, status, text);
  assert.match(text, new RegExp(`"code":"${code}"`));
  assert.ok(res.closed, 'the connection is closed after the refusal');
  // The canary's arrival upstream marks the end of anything the refused request could have sent.
  const canary = await rawExchange(p.port, [request('{"canary":1}')], { until: responsesComplete });
  assert.equal(canary.status, 200, 'the proxy still serves');
  assert.equal(p.proc.exitCode, null, 'the proxy is still running');
  const last = u.received.at(-1)!;
  assert.equal(last.body.toString(), '{"canary":1}');
  assert.equal(upstreamBytes(u) - bytesBefore, last.head.length + last.body.length, 'not one byte of the refused request reached the upstream');
  assert.ok(u.connections <= connsBefore + 1, 'the refused request opened no upstream connection');
}

describe('requests a web page can make are refused before anything goes upstream', () => {
  test('DNS rebinding: same-origin POST from http://attacker.example:PORT gets 421', async () => {
    const host = `attacker.example:${fx.proxy.port}`;
    await assertRefused(
      fx.proxy,
      fx.up,
      post(`Host: ${host}\r\nOrigin: http://${host}\r\nSec-Fetch-Site: same-origin\r\nSec-Fetch-Mode: cors\r\nSec-Fetch-Dest: empty\r\nContent-Type: text/plain;charset=UTF-8\r\n`),
      421,
      'misdirected',
    );
  });

  test('DNS rebinding with the listener port but no browser fields (a non-browser or older browser): 421', async () => {
    await assertRefused(fx.proxy, fx.up, post(`Host: attacker.example:${fx.proxy.port}\r\nContent-Type: text/plain\r\n`), 421, 'misdirected');
  });

  test('a foreign Host with no Origin: 421', async () => {
    await assertRefused(fx.proxy, fx.up, post('Host: api.openai.com\r\nContent-Type: application/json\r\n'), 421, 'misdirected');
  });

  test('cross-site "simple" POST (text/plain, no preflight) to 127.0.0.1: 403', async () => {
    await assertRefused(
      fx.proxy,
      fx.up,
      post(`Host: 127.0.0.1:${fx.proxy.port}\r\nOrigin: https://evil.example\r\nSec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: empty\r\nContent-Type: text/plain;charset=UTF-8\r\n`),
      403,
      'from_browser',
    );
  });

  test('Origin: null (sandboxed iframe, file: page), with nothing else a browser sends: 403', async () => {
    await assertRefused(fx.proxy, fx.up, post(`Host: 127.0.0.1:${fx.proxy.port}\r\nOrigin: null\r\nContent-Type: text/plain\r\n`), 403, 'from_browser');
  });

  test('Sec-Fetch-Site: cross-site without Origin on POST /v1/responses: 403', async () => {
    await assertRefused(fx.proxy, fx.up, post(`Host: 127.0.0.1:${fx.proxy.port}\r\nSec-Fetch-Site: cross-site\r\nContent-Type: application/json\r\n`), 403, 'from_browser');
  });

  test('Sec-Fetch-Site: same-site (a page on localhost:OTHER) without Origin: 403', async () => {
    await assertRefused(fx.proxy, fx.up, post(`Host: localhost:${fx.proxy.port}\r\nSec-Fetch-Site: same-site\r\nContent-Type: application/json\r\n`), 403, 'from_browser');
  });

  test('a cross-site <img src=http://127.0.0.1:PORT/shutdown> with --http-shutdown: 403, and the proxy does not shut down', async () => {
    const img = `GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1:${fx.proxy.port}\r\nConnection: keep-alive\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0\r\nAccept: image/avif,image/webp,image/apng,image/*,*/*;q=0.8\r\nSec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Dest: image\r\nReferer: https://evil.example/\r\n\r\n`;
    await assertRefused(fx.proxy, fx.up, b(img), 403, 'from_browser');
  });

  test('GET /shutdown with a foreign Host (a rebinding page) and --http-shutdown: 421, and the proxy does not shut down', async () => {
    await assertRefused(fx.proxy, fx.up, b(`GET /shutdown HTTP/1.1\r\nHost: attacker.example:${fx.proxy.port}\r\nSec-Fetch-Site: same-origin\r\n\r\n`), 421, 'misdirected');
  });
});

describe('the clients the relay serves are relayed byte for byte', () => {
  async function assertRelayed(bytes: Buffer): Promise<void> {
    const seen = fx.up.received.length;
    const bytesBefore = upstreamBytes(fx.up);
    const res = await rawExchange(fx.proxy.port, [bytes], { until: responsesComplete });
    assert.equal(res.status, 200, res.data.toString('latin1'));
    const got = fx.up.received.slice(seen);
    assert.equal(got.length, 1);
    const forwarded = Buffer.concat([got[0]!.head, got[0]!.body]);
    assert.equal(forwarded.toString('latin1'), expectedUpstream(bytes, `127.0.0.1:${fx.up.port}`).toString('latin1'));
    assert.equal(upstreamBytes(fx.up) - bytesBefore, forwarded.length);
  }

  // Captured from Codex 0.171.0 (`codex exec` with a custom provider), turn metadata shortened.
  const codexFields = (host: string): string =>
    'x-codex-beta-features: remote_compaction_v2\r\n' +
    'x-codex-window-id: 01a234aa-0f46-7612-a6ed-a06cb43508ba:0\r\n' +
    'x-codex-turn-metadata: {"session_id":"01a234aa-0f46-7612-a6ed-a06cb43508ba","request_kind":"turn","sandbox":"seccomp"}\r\n' +
    'x-openai-internal-codex-responses-lite: true\r\n' +
    'x-client-request-id: 01a234aa-0f46-7612-a6ed-a06cb43508ba\r\n' +
    'session-id: 01a234aa-0f46-7612-a6ed-a06cb43508ba\r\n' +
    'thread-id: 01a234aa-0f46-7612-a6ed-a06cb43508ba\r\n' +
    'accept: text/event-stream\r\n' +
    'content-type: application/json\r\n' +
    'originator: codex_exec\r\n' +
    'user-agent: codex_exec/0.171.0 (Debian 12.0.0; x86_64) unknown (codex_exec; 0.171.0)\r\n' +
    'accept-encoding: zstd,gzip\r\n' +
    `host: ${host}\r\n` +
    `authorization: Bearer sk-codex-own-placeholder\r\n`;

  for (const name of ['127.0.0.1', 'localhost', '[::1]']) {
    test(`Codex's header set with Host ${name}:<port>`, async () => {
      await assertRelayed(b(`POST /v1/responses HTTP/1.1\r\n${codexFields(`${name}:${fx.proxy.port}`)}content-length: ${BODY.length}\r\n\r\n${BODY}`));
    });
  }

  test("exactly the header set Node's fetch sends (Node 20 and 24), sec-fetch-mode: cors included", async () => {
    // As captured from `fetch()` on Node 20.20 and 24: no Origin, no Sec-Fetch-Site.
    const fetchHead =
      'POST /v1/responses HTTP/1.1\r\n' +
      `host: 127.0.0.1:${fx.proxy.port}\r\n` +
      'connection: keep-alive\r\n' +
      'content-type: application/json\r\n' +
      'accept: */*\r\n' +
      'accept-language: *\r\n' +
      'sec-fetch-mode: cors\r\n' +
      'user-agent: node\r\n' +
      'accept-encoding: gzip, deflate\r\n' +
      `content-length: ${BODY.length}\r\n\r\n`;
    await assertRelayed(b(fetchHead + BODY));
  });

  test("this Node's own fetch() is relayed, whatever it sends", async () => {
    const seen = fx.up.received.length;
    const res = await fetch(`http://127.0.0.1:${fx.proxy.port}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '{"ok":true}');
    const head = fx.up.received[seen]!.head.toString('latin1');
    assert.match(head, /\r\nsec-fetch-mode: cors\r\n/i);
    assert.match(head, new RegExp(`\r\nAuthorization: Bearer ${KEY}\r\n`));
  });

  test('Sec-Fetch-Site: none (a navigation the user typed) is not refused', async () => {
    await assertRelayed(post(`Host: 127.0.0.1:${fx.proxy.port}\r\nSec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\nSec-Fetch-Dest: document\r\n`));
  });
});

describe('WebSocket attempts get 426 at once', () => {
  // Codex 0.171.0's handshake with supports_websockets, as captured.
  const handshake = (port: number, extra = ''): Buffer =>
    b(
      `GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: 2kMqoF5FcQHrjbJGV4R78Q==\r\n` +
        'user-agent: codex_exec/0.171.0 (Debian 12.0.0; x86_64) unknown (codex_exec; 0.171.0)\r\noriginator: codex_exec\r\nopenai-beta: responses_websockets=2026-02-06\r\n' +
        `authorization: Bearer sk-codex-own-placeholder\r\n${extra}sec-websocket-extensions: permessage-deflate; client_max_window_bits\r\n\r\n`,
    );

  test("Codex's handshake: 426 with Upgrade: HTTP/1.1 and the JSON body, nothing upstream", async () => {
    const bytesBefore = upstreamBytes(fx.up);
    const res = await rawExchange(fx.proxy.port, [handshake(fx.proxy.port)]);
    const text = res.data.toString('latin1');
    const body = '{"error":{"type":"proxy_error","code":"websocket","message":"WebSocket is not supported: send POST /v1/responses over HTTP/1.1"}}';
    assert.equal(text, `HTTP/1.1 426 Upgrade Required\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nUpgrade: HTTP/1.1\r\nConnection: upgrade, close\r\n\r\n${body}`);
    assert.ok(res.closed);
    assert.equal(upstreamBytes(fx.up), bytesBefore);
    assert.equal(fx.proxy.proc.exitCode, null);
  });

  test('a browser WebSocket (it always sends Origin) is refused as a web page: 403', async () => {
    await assertRefused(fx.proxy, fx.up, handshake(fx.proxy.port, 'Origin: https://evil.example\r\n'), 403, 'from_browser');
  });

  test('other paths and other upgrades keep their 403', async () => {
    for (const bytes of [
      b(`GET /v1/realtime HTTP/1.1\r\nHost: 127.0.0.1:${fx.proxy.port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`),
      b(`GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${fx.proxy.port}\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n`),
      b(`GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${fx.proxy.port}\r\n\r\n`),
    ]) {
      await assertRefused(fx.proxy, fx.up, bytes, 403, 'forbidden');
    }
  });
});

describe('--allow-host', () => {
  test('admits exactly the names given, repeatable; Origin is still refused; other names still get 421', async () => {
    const u = await startUpstream();
    const p = await startProxy(['--upstream-url', u.url, '--allow-host', 'Host.Docker.Internal', '--allow-host=gateway.example:8443']);
    try {
      const ok = (host: string): Buffer => post(`Host: ${host}\r\nContent-Type: application/json\r\n`);
      for (const host of [`host.docker.internal:${p.port}`, 'HOST.docker.internal', 'gateway.example:8443', `127.0.0.1:${p.port}`]) {
        const res = await rawExchange(p.port, [ok(host)], { until: responsesComplete });
        assert.equal(res.status, 200, `${host}: ${res.data.toString('latin1')}`);
      }
      for (const host of ['host.docker.internal:1', 'gateway.example', `gateway.example:${p.port}`, 'docker.internal', 'evil.host.docker.internal']) {
        await assertRefused(p, u, ok(host), 421, 'misdirected');
      }
      await assertRefused(p, u, post(`Host: host.docker.internal:${p.port}\r\nOrigin: http://host.docker.internal:${p.port}\r\n`), 403, 'from_browser');
    } finally {
      await p.stop();
      await u.close();
    }
  });

  test('off by default: host.docker.internal gets 421', async () => {
    await assertRefused(fx.proxy, fx.up, post(`Host: host.docker.internal:${fx.proxy.port}\r\n`), 421, 'misdirected');
  });

  test('the yargs path reads repeated values too', async () => {
    const u = await startUpstream();
    // --http-shutdown=false is not a form util.parseArgs takes, so yargs reads this command line.
    const p = await startProxy(['--upstream-url', u.url, '--http-shutdown=false', '--allow-host', 'one.example', '--allow-host', 'two.example']);
    try {
      for (const host of ['one.example', 'two.example']) {
        const res = await rawExchange(p.port, [post(`Host: ${host}\r\n`)], { until: responsesComplete });
        assert.equal(res.status, 200, host);
      }
      await assertRefused(p, u, post('Host: three.example\r\n'), 421, 'misdirected');
    } finally {
      await p.stop();
      await u.close();
    }
  });

  for (const bad of ['*', '*.example', '', 'a b', 'http://x', 'x:0', 'x:65536', 'x:08080', 'user@x']) {
    test(`--allow-host ${JSON.stringify(bad)}: usage error, exit 2, one line`, async () => {
      const r = await runCli(['--upstream-url', 'http://127.0.0.1:9/v1/responses', '--allow-host', bad], `${KEY}\n`);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^codex-responses-api-proxy: --allow-host /);
    });
  }
});
