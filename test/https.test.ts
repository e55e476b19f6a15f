// An https upstream: verified with NODE_EXTRA_CA_CERTS, SNI only for names,
// and an unverifiable certificate gives 502 before any request byte is sent.
import assert from 'node:assert/strict';
import net from 'node:net';
import type tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { makeTestPki, type TestPki } from './support/certs.js';
import { KEY, rawExchange, request, responsesComplete, startProxy, startUpstream, waitFor, type Upstream } from './support/harness.js';

describe('https upstream', () => {
  let pki: TestPki;
  let up: Upstream;
  before(async () => {
    pki = makeTestPki();
    up = await startUpstream(undefined, { key: pki.key, cert: pki.cert });
  });
  after(() => up.close());

  const env = () => ({ PATH: process.env.PATH ?? '', NODE_EXTRA_CA_CERTS: pki.caFile });

  test('a certificate from a CA in NODE_EXTRA_CA_CERTS is accepted; SNI names the host; keep-alive holds', async () => {
    const proxy = await startProxy(['--upstream-url', `https://localhost:${up.port}/v1/responses`], { env: env() });
    try {
      const before = up.connections;
      for (let i = 0; i < 2; i++) {
        const res = await rawExchange(proxy.port, [request()], { until: responsesComplete });
        assert.equal(res.status, 200);
      }
      assert.equal(up.connections - before, 1);
      const sock = up.conns.at(-1) as tls.TLSSocket;
      assert.equal(sock.servername, 'localhost');
      assert.ok(up.received.at(-1)!.head.includes(`\r\nHost: localhost:${up.port}\r\nAuthorization: Bearer ${KEY}\r\n`));
    } finally {
      await proxy.stop();
    }
  });

  test('a new connection resumes the verified TLS session', async () => {
    const proxy = await startProxy(['--upstream-url', `https://localhost:${up.port}/v1/responses`], { env: env() });
    try {
      await rawExchange(proxy.port, [request()], { until: responsesComplete });
      const first = up.conns.length;
      // Close the pooled connection from the upstream side: the next request needs a new one.
      for (const s of up.conns.slice(first - 1)) s.end();
      await waitFor('the pooled connection to close', () => up.sockets.size === 0);
      const res = await rawExchange(proxy.port, [request()], { until: responsesComplete });
      assert.equal(res.status, 200);
      assert.equal(up.conns.length, first + 1);
      assert.ok((up.conns.at(-1) as tls.TLSSocket).isSessionReused());
    } finally {
      await proxy.stop();
    }
  });

  test('an IP host is verified against the IP SAN and sends no SNI', async () => {
    const proxy = await startProxy(['--upstream-url', `https://127.0.0.1:${up.port}/v1/responses`], { env: env() });
    try {
      const res = await rawExchange(proxy.port, [request()], { until: responsesComplete });
      assert.equal(res.status, 200);
      assert.equal((up.conns.at(-1) as tls.TLSSocket).servername, false);
    } finally {
      await proxy.stop();
    }
  });

  test('an upstream that accepts but never finishes the handshake: 504 at --connect-timeout', async () => {
    const silent = net.createServer((s) => s.on('error', () => {}));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    const proxy = await startProxy(['--upstream-url', `https://localhost:${port}/v1/responses`, '--connect-timeout', '1'], { env: env() });
    try {
      const res = await rawExchange(proxy.port, [request()], { until: responsesComplete });
      assert.equal(res.status, 504);
      assert.match(res.data.toString(), /"code":"upstream_timeout"/);
    } finally {
      await proxy.stop();
      silent.close();
    }
  });

  test('an untrusted certificate: 502 naming a TLS failure, and the upstream never sees a request byte', async () => {
    const proxy = await startProxy(['--upstream-url', `https://localhost:${up.port}/v1/responses`]);
    try {
      const received = up.received.length;
      const res = await rawExchange(proxy.port, [request()], { until: responsesComplete });
      assert.equal(res.status, 502);
      assert.match(res.data.toString(), /"code":"upstream_tls","message":"upstream TLS verification failed \([A-Z_]+\)"/);
      assert.equal(up.received.length, received);
      assert.ok(!res.data.includes(KEY) && !proxy.stderr().includes(KEY));
    } finally {
      await proxy.stop();
    }
  });
});
