// Egress through an http proxy (issue 12): which variable applies, NO_PROXY,
// the CONNECT exchange byte for byte, TLS verified inside the tunnel before
// any request byte, refusals and stalls, streaming and keep-alive through
// the tunnel, and the key never visible to the proxy over https.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parseEgressEnv, proxyFor, EgressError, type EgressConfig } from '../src/transport/egress.js';
import { makeTestPki, type TestPki } from './support/certs.js';
import { REFUSAL_BODY, startConnectProxy, type ConnectProxy, type ProxyMode } from './support/connect-proxy.js';
import { KEY, rawExchange, REFUSED_PORT, request, responsesComplete, runCli, startProxy, startUpstream, type Upstream } from './support/harness.js';

const NAME = 'api.example.test';
const URL_HTTPS = `https://${NAME}/v1/responses`;
const URL_HTTP = `http://${NAME}/v1/responses`;

describe('choosing the proxy', () => {
  const https = (host: string, port = 443) => ({ secure: true, host, port });
  const http = (host: string, port = 80) => ({ secure: false, host, port });
  const via = (c: EgressConfig, d: { secure: boolean; host: string; port: number }) => {
    const p = proxyFor(d, c);
    return p ? `${p.host}:${p.port}` : null;
  };

  test('each variable, its lowercase form, and which applies to which scheme', () => {
    for (const name of ['HTTPS_PROXY', 'https_proxy', 'ALL_PROXY', 'all_proxy']) {
      assert.equal(via(parseEgressEnv({ [name]: 'http://p:1' }), https(NAME)), 'p:1', name);
    }
    for (const name of ['HTTP_PROXY', 'http_proxy', 'ALL_PROXY', 'all_proxy']) {
      assert.equal(via(parseEgressEnv({ [name]: 'http://p:1' }), http(NAME)), 'p:1', name);
    }
    assert.equal(via(parseEgressEnv({ HTTPS_PROXY: 'http://p:1' }), http(NAME)), null, 'HTTPS_PROXY is not for http upstreams');
    assert.equal(via(parseEgressEnv({ HTTP_PROXY: 'http://p:1' }), https(NAME)), null, 'HTTP_PROXY is not for https upstreams');
  });

  test('lowercase first, scheme-specific before ALL_PROXY, empty counts as unset, HTTP_PROXY ignored under CGI', () => {
    assert.equal(via(parseEgressEnv({ HTTPS_PROXY: 'http://upper:1', https_proxy: 'http://lower:1' }), https(NAME)), 'lower:1');
    assert.equal(via(parseEgressEnv({ https_proxy: '', HTTPS_PROXY: 'http://upper:1' }), https(NAME)), 'upper:1');
    assert.equal(via(parseEgressEnv({ ALL_PROXY: 'http://all:1', HTTPS_PROXY: 'http://s:1' }), https(NAME)), 's:1');
    assert.equal(via(parseEgressEnv({ all_proxy: 'http://lower:1', ALL_PROXY: 'http://upper:1' }), https(NAME)), 'lower:1');
    assert.equal(via(parseEgressEnv({ HTTP_PROXY: 'http://p:1', REQUEST_METHOD: 'GET' }), http(NAME)), null);
    assert.equal(via(parseEgressEnv({ http_proxy: 'http://p:1', REQUEST_METHOD: 'GET' }), http(NAME)), 'p:1');
    // No scheme means http, as in curl and reqwest; no port means 80.
    assert.equal(via(parseEgressEnv({ HTTPS_PROXY: 'proxy.corp:3128' }), https(NAME)), 'proxy.corp:3128');
    assert.equal(via(parseEgressEnv({ HTTPS_PROXY: 'http://proxy.corp' }), https(NAME)), 'proxy.corp:80');
  });

  test('NO_PROXY forms: exact, suffix with and without a dot, *, host:port, IP literals and CIDR', () => {
    const cases: [string, { secure: boolean; host: string; port: number }, boolean][] = [
      ['api.example.test', https(NAME), true],
      ['example.test', https(NAME), true],
      ['.example.test', https(NAME), true],
      ['*.example.test', https(NAME), true],
      ['example.test', https('example.test'), true],
      ['.example.test', https('example.test'), true],
      ['ample.test', https(NAME), false],
      ['notexample.test', https('example.test'), false],
      ['other.test, EXAMPLE.TEST', https(NAME), true],
      ['*', https('anything.anywhere'), true],
      ['api.example.test:443', https(NAME), true],
      ['api.example.test:8443', https(NAME), false],
      ['api.example.test:8443', https(NAME, 8443), true],
      ['10.1.2.3', https('10.1.2.3'), true],
      ['10.1.2.3', https('10.1.2.4'), false],
      ['10.0.0.0/8', https('10.200.3.4'), true],
      ['10.0.0.0/8', https('11.0.0.1'), false],
      ['192.168.1.0/24', https('192.168.1.77'), true],
      ['10.1.2.3:443', https('10.1.2.3'), true],
      ['2001:db8::1', https('2001:db8::1'), true],
      ['[2001:db8::1]:443', https('2001:db8::1'), true],
      ['2001:db8::/32', https('2001:db8:ffff::5'), true],
      ['2001:db8::/32', https('2001:db9::5'), false],
      ['10.0.0.0/8', https('ten.example'), false],
    ];
    for (const [no, dest, bypassed] of cases) {
      for (const name of ['NO_PROXY', 'no_proxy']) {
        const got = via(parseEgressEnv({ HTTPS_PROXY: 'http://p:1', [name]: no }), dest);
        assert.equal(got === null, bypassed, `${name}=${no} for ${dest.host}:${dest.port}`);
      }
    }
    assert.equal(via(parseEgressEnv({ HTTPS_PROXY: 'http://p:1', NO_PROXY: NAME, no_proxy: 'other.test' }), https(NAME)), 'p:1', 'no_proxy wins');
  });

  test('loopback upstreams never go through a proxy', () => {
    const c = parseEgressEnv({ HTTPS_PROXY: 'http://p:1', HTTP_PROXY: 'http://p:1' });
    for (const host of ['localhost', '127.0.0.1', '127.8.9.10', '::1']) {
      assert.equal(via(c, https(host)), null, host);
      assert.equal(via(c, http(host)), null, host);
    }
  });

  test('credentials are percent-decoded into Proxy-Authorization; bad URLs are refused without echoing them', () => {
    const p = proxyFor(https(NAME), parseEgressEnv({ HTTPS_PROXY: 'http://u%40corp:p%3Aw%40rd@proxy:8080' }))!;
    assert.equal(p.authLine.toString('latin1'), `Proxy-Authorization: Basic ${Buffer.from('u@corp:p:w@rd').toString('base64')}\r\n`);
    assert.equal(`${p.host}:${p.port}`, 'proxy:8080');
    for (const [value, message] of [
      ['https://proxy:443', /https:\/\/ proxy URLs .* not supported/],
      ['socks5://proxy:1080', /only http:\/\/ proxies/],
      ['http://user:s3cretpw@[bad', /not a valid proxy URL/],
      ['http://user:s3cretpw@proxy:8080/path', /no path/],
      ['http://user:%ZZs3cretpw@proxy:8080', /valid percent-encoding|not a valid proxy URL/],
    ] as const) {
      assert.throws(() => parseEgressEnv({ HTTPS_PROXY: value }), (err: Error) => err instanceof EgressError && message.test(err.message) && !err.message.includes('s3cretpw'), value);
    }
  });
});

describe('through a CONNECT proxy', () => {
  let pki: TestPki;
  let up: Upstream;
  let silent: net.Server;
  let silentPort: number;
  const proxies: ConnectProxy[] = [];
  before(async () => {
    pki = makeTestPki([NAME]);
    up = await startUpstream(undefined, { key: pki.key, cert: pki.cert });
    silent = net.createServer((s) => s.on('error', () => {}));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    silentPort = (silent.address() as net.AddressInfo).port;
  });
  after(async () => {
    for (const p of proxies) await p.close();
    await up.close();
    silent.close();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  });
  const proxy = async (mode: ProxyMode = 'tunnel', target = up.port) => {
    const p = await startConnectProxy(target, mode);
    proxies.push(p);
    return p;
  };
  const env = (vars: Record<string, string>, trusted = true) => ({ PATH: process.env.PATH ?? '', ...(trusted ? { NODE_EXTRA_CA_CERTS: pki.caFile } : {}), ...vars });

  test('HTTPS_PROXY with credentials: the exact CONNECT head, TLS inside, the key never visible to the proxy', async () => {
    const p = await proxy();
    const relay = await startProxy(['--upstream-url', URL_HTTPS], { env: env({ HTTPS_PROXY: `http://u%40corp:p%3Aw%40rd@127.0.0.1:${p.port}` }) });
    try {
      const before = up.received.length;
      const res = await rawExchange(relay.port, [request()], { until: responsesComplete });
      assert.equal(res.status, 200);
      const auth = Buffer.from('u@corp:p:w@rd').toString('base64');
      assert.equal(p.heads[0], `CONNECT ${NAME}:443 HTTP/1.1\r\nHost: ${NAME}:443\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`);
      assert.equal(up.received.length, before + 1);
      assert.ok(up.received.at(-1)!.head.includes(`\r\nHost: ${NAME}\r\nAuthorization: Bearer ${KEY}\r\n`));
      assert.equal((up.conns.at(-1) as import('node:tls').TLSSocket).servername, NAME);
      // Everything the proxy saw: the CONNECT head, then TLS records only.
      const seen = p.raw[0]!;
      assert.ok(!seen.includes(KEY) && !seen.includes('/v1/responses') && !seen.includes('Bearer'));
      assert.ok(!relay.stderr().includes('p:w@rd') && !relay.stderr().includes(auth) && !relay.stderr().includes('corp'));
    } finally {
      await relay.stop();
    }
  });

  for (const name of ['https_proxy', 'ALL_PROXY', 'all_proxy']) {
    test(`${name} tunnels an https upstream`, async () => {
      const p = await proxy();
      const relay = await startProxy(['--upstream-url', URL_HTTPS], { env: env({ [name]: p.url }) });
      try {
        const res = await rawExchange(relay.port, [request()], { until: responsesComplete });
        assert.equal(res.status, 200);
        assert.equal(p.heads[0], `CONNECT ${NAME}:443 HTTP/1.1\r\nHost: ${NAME}:443\r\n\r\n`);
      } finally {
        await relay.stop();
      }
    });
  }

  for (const name of ['HTTP_PROXY', 'http_proxy']) {
    test(`${name}: an http upstream gets an absolute-form request through the proxy`, async () => {
      const plain = await startUpstream();
      const p = await proxy('tunnel', plain.port);
      const relay = await startProxy(['--upstream-url', URL_HTTP], { env: env({ [name]: `http://u:pw@127.0.0.1:${p.port}` }) });
      try {
        const res = await rawExchange(relay.port, [request()], { until: responsesComplete });
        assert.equal(res.status, 200);
        assert.ok(p.heads[0]!.startsWith(`POST http://${NAME}/v1/responses HTTP/1.1\r\nHost: ${NAME}\r\nProxy-Authorization: Basic ${Buffer.from('u:pw').toString('base64')}\r\nAuthorization: Bearer ${KEY}\r\n`));
        assert.equal(plain.received.length, 1);
      } finally {
        await relay.stop();
        await plain.close();
      }
    });
  }

  test('NO_PROXY naming the upstream: the proxy is not used', async () => {
    const p = await proxy();
    for (const no of [NAME, 'example.test', '.example.test', '*']) {
      const relay = await startProxy(['--upstream-url', URL_HTTPS, '--connect-timeout', '1'], { env: env({ HTTPS_PROXY: p.url, no_proxy: no }) });
      try {
        // Direct, the reserved .test name (RFC 6761) does not resolve: 502,
        // or 504 where the resolver does not answer within the deadline.
        // Either way the proxy saw nothing.
        const res = await rawExchange(relay.port, [request()], { until: responsesComplete });
        assert.ok(res.status === 502 || res.status === 504, String(res.status));
        assert.equal(p.connections, 0, no);
      } finally {
        await relay.stop();
      }
    }
  });

  test('a client Proxy-Authorization line is never forwarded', async () => {
    const p = await proxy();
    const relay = await startProxy(['--upstream-url', URL_HTTPS], { env: env({ HTTPS_PROXY: p.url }) });
    try {
      const res = await rawExchange(relay.port, [request(undefined, 'Proxy-Authorization: Basic Y2xpZW50OnB3\r\n')], { until: responsesComplete });
      assert.equal(res.status, 200);
      assert.ok(!up.received.at(-1)!.head.toString('latin1').toLowerCase().includes('proxy-authorization'));
    } finally {
      await relay.stop();
    }
  });

  test('an upstream certificate that fails verification in the tunnel: 502, zero request bytes written', async () => {
    for (const [url, trusted] of [
      [URL_HTTPS, false],
      // Trusted CA, wrong name: verified exactly as a direct connection.
      ['https://wrong.example.test/v1/responses', true],
    ] as const) {
      const p = await proxy();
      const relay = await startProxy(['--upstream-url', url], { env: env({ HTTPS_PROXY: p.url }, trusted) });
      try {
        const before = up.received.length;
        const res = await rawExchange(relay.port, [request()], { until: responsesComplete });
        assert.equal(res.status, 502);
        assert.match(res.data.toString(), /"code":"upstream_tls"/);
        assert.equal(p.connections, 1);
        // The ClientHello went through the tunnel: TLS was tried there and failed.
        assert.ok(p.raw[0]!.length > p.heads[0]!.length, 'the handshake crossed the tunnel');
        assert.equal(up.received.length, before);
        assert.ok(!p.raw[0]!.includes(KEY));
      } finally {
        await relay.stop();
      }
    }
  });

  test('a 407 refusal: 502 naming the status, not the body', async () => {
    const p = await proxy('refuse');
    const relay = await startProxy(['--upstream-url', URL_HTTPS], { env: env({ HTTPS_PROXY: `http://u:secretpw@127.0.0.1:${p.port}` }) });
    try {
      const res = await rawExchange(relay.port, [request()], { until: responsesComplete });
      assert.equal(res.status, 502);
      assert.match(res.data.toString(), /"code":"proxy_refused","message":"egress proxy refused the CONNECT tunnel \(PROXY_STATUS_407\)"/);
      assert.ok(!res.data.includes(REFUSAL_BODY) && !relay.stderr().includes(REFUSAL_BODY));
      assert.ok(!relay.stderr().includes('secretpw') && !res.data.includes('secretpw'));
    } finally {
      await relay.stop();
    }
  });

  test('a proxy that closes mid-handshake, or sends bytes after its 200 head: 502 before any request byte', async () => {
    for (const [mode, code] of [
      ['close-mid-handshake', 'upstream_'],
      ['extra-bytes', 'proxy_protocol'],
    ] as const) {
      const p = await proxy(mode);
      const relay = await startProxy(['--upstream-url', URL_HTTPS], { env: env({ HTTPS_PROXY: p.url }) });
      try {
        const res = await rawExchange(relay.port, [request()], { until: responsesComplete });
        assert.equal(res.status, 502, mode);
        assert.ok(res.data.toString().includes(`"code":"${code}`), `${mode}: ${res.data.toString()}`);
        assert.ok(!p.raw.some((r) => r.includes(KEY)));
      } finally {
        await relay.stop();
      }
    }
  });

  test('a proxy that is down: 502 naming the proxy connection', async () => {
    const relay = await startProxy(['--upstream-url', URL_HTTPS], { env: env({ HTTPS_PROXY: `http://127.0.0.1:${REFUSED_PORT}` }) });
    try {
      const res = await rawExchange(relay.port, [request()], { until: responsesComplete });
      assert.equal(res.status, 502);
      assert.match(res.data.toString(), /"code":"proxy_unreachable","message":"egress proxy connection failed \(PROXY_ECONNREFUSED\)"/);
    } finally {
      await relay.stop();
    }
  });

  test('--connect-timeout covers the CONNECT exchange and the TLS handshake in the tunnel: 504', async () => {
    const stalled = await proxy('stall');
    // Tunnels to a listener that accepts and never speaks TLS.
    const mute = await proxy('tunnel', silentPort);
    for (const p of [stalled, mute]) {
      const relay = await startProxy(['--upstream-url', URL_HTTPS, '--connect-timeout', '1'], { env: env({ HTTPS_PROXY: p.url }) });
      try {
        const res = await rawExchange(relay.port, [request()], { until: responsesComplete });
        assert.equal(res.status, 504, p.mode);
        assert.match(res.data.toString(), /"code":"upstream_timeout"/);
      } finally {
        await relay.stop();
      }
    }
  });

  test('SSL_CERT_FILE and SSL_CERT_DIR add trusted roots, as for the original; NODE_EXTRA_CA_CERTS still works beside them', async () => {
    const dir = fs.mkdtempSync(`${pki.dir}/certdir-`);
    fs.copyFileSync(pki.caFile, `${dir}/test-ca.pem`);
    const unrelated = makeTestPki();
    try {
      for (const [vars, status] of [
        [{ SSL_CERT_FILE: pki.caFile }, 200],
        [{ SSL_CERT_DIR: dir }, 200],
        // Extra roots are added to Node's store, not put in its place.
        [{ SSL_CERT_FILE: unrelated.caFile, NODE_EXTRA_CA_CERTS: pki.caFile }, 200],
        [{ SSL_CERT_FILE: unrelated.caFile }, 502],
      ] as const) {
        const p = await proxy();
        const relay = await startProxy(['--upstream-url', URL_HTTPS], { env: env({ HTTPS_PROXY: p.url, ...vars }, false) });
        try {
          const res = await rawExchange(relay.port, [request()], { until: responsesComplete });
          assert.equal(res.status, status, JSON.stringify(vars));
        } finally {
          await relay.stop();
        }
      }
    } finally {
      fs.rmSync(unrelated.dir, { recursive: true, force: true });
    }
  });

  test('streaming and keep-alive through the tunnel', async () => {
    let release: (() => void) | null = null;
    const sse = await startUpstream(
      (_req, sock) => {
        sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
        sock.write(chunk('data: one\n\n'));
        release = () => sock.write(`${chunk('data: two\n\n')}0\r\n\r\n`);
      },
      { key: pki.key, cert: pki.cert },
    );
    const p = await proxy('tunnel', sse.port);
    const relay = await startProxy(['--upstream-url', URL_HTTPS], { env: env({ HTTPS_PROXY: p.url }) });
    try {
      const client = net.connect(relay.port, '127.0.0.1');
      let data = '';
      client.on('data', (d: Buffer) => (data += d.toString('latin1')));
      const waitData = (pred: () => boolean) =>
        new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`timed out: ${JSON.stringify(data)}`)), 10000);
          const check = () => (pred() ? (clearTimeout(t), client.removeListener('data', check), resolve()) : undefined);
          client.on('data', check);
          check();
        });
      for (let i = 0; i < 2; i++) {
        const start = data.length;
        client.write(request());
        // The first event arrives while the upstream still holds the second.
        await waitData(() => data.includes('data: one', start));
        assert.ok(!data.includes('data: two', start));
        release!();
        await waitData(() => data.endsWith('0\r\n\r\n') && data.includes('data: two', start));
      }
      client.destroy();
      assert.equal(p.connections, 1, 'both requests went through one tunnel');
      assert.equal(sse.connections, 1);
      assert.equal(sse.received.length, 2);
    } finally {
      await relay.stop();
      await sse.close();
    }
  });
});

describe('start-up', () => {
  test('a bad proxy URL is one line on stderr and exit 2, without its credentials', async () => {
    for (const value of ['http://user:s3cretpw@[bad', 'https://user:s3cretpw@proxy:443', 'socks5://proxy:1080']) {
      const r = await runCli([], `${KEY}\n`, { PATH: process.env.PATH ?? '', HTTPS_PROXY: value });
      assert.equal(r.code, 2, value);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^codex-responses-api-proxy: HTTPS_PROXY/);
      assert.ok(!r.stderr.includes('s3cretpw'));
    }
  });

  test('an unreadable SSL_CERT_FILE is one line and exit 2', async () => {
    const r = await runCli([], `${KEY}\n`, { PATH: process.env.PATH ?? '', SSL_CERT_FILE: '/nonexistent/ca.pem' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^codex-responses-api-proxy: SSL_CERT_FILE: cannot read \/nonexistent\/ca.pem \(ENOENT\)\n$/);
  });
});

const chunk = (s: string): string => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`;

