// Admission over real sockets: exactly POST /v1/responses is forwarded;
// everything else is refused from the head alone, and the decision and the
// upstream's bytes do not depend on how the client's bytes are cut.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { b, rawExchange, relayFixture, request, responsesComplete, startProxy } from './support/harness.js';

const fx = relayFixture();

const reqLine = (line: string, body = '{}') => b(`${line}\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\n\r\n${body}`);

// [name, bytes, statuses accepted]: where RFC and llhttp allow either a
// syntax error (400) or a refusal (403), both count; neither reaches upstream.
const DENIED: [string, Buffer, number[]][] = [
  ['GET', reqLine('GET /v1/responses HTTP/1.1'), [403]],
  ['PUT', reqLine('PUT /v1/responses HTTP/1.1'), [403]],
  ['DELETE', reqLine('DELETE /v1/responses HTTP/1.1'), [403]],
  ['OPTIONS', reqLine('OPTIONS /v1/responses HTTP/1.1'), [403]],
  ['HEAD', reqLine('HEAD /v1/responses HTTP/1.1'), [403]],
  ['PATCH', reqLine('PATCH /v1/responses HTTP/1.1'), [403]],
  ['lower-case method', reqLine('post /v1/responses HTTP/1.1'), [400, 403]],
  ['other path', reqLine('POST /v1/chat/completions HTTP/1.1'), [403]],
  ['root', reqLine('POST / HTTP/1.1'), [403]],
  ['trailing slash', reqLine('POST /v1/responses/ HTTP/1.1'), [403]],
  ['query string', reqLine('POST /v1/responses?stream=true HTTP/1.1'), [403]],
  ['empty query', reqLine('POST /v1/responses? HTTP/1.1'), [403]],
  ['fragment', reqLine('POST /v1/responses#x HTTP/1.1'), [400, 403]],
  ['upper-case path', reqLine('POST /V1/RESPONSES HTTP/1.1'), [403]],
  ['mixed-case path', reqLine('POST /v1/Responses HTTP/1.1'), [403]],
  ['percent-encoded letter', reqLine('POST /v1/%72esponses HTTP/1.1'), [403]],
  ['percent-encoded slash', reqLine('POST /v1%2fresponses HTTP/1.1'), [403]],
  ['dot segment', reqLine('POST /v1/./responses HTTP/1.1'), [403]],
  ['dot-dot segment', reqLine('POST /v2/../v1/responses HTTP/1.1'), [403]],
  ['double slash', reqLine('POST //v1/responses HTTP/1.1'), [403]],
  ['absolute form', reqLine('POST http://127.0.0.1/v1/responses HTTP/1.1'), [400, 403]],
  ['absolute form https', reqLine('POST https://api.openai.com/v1/responses HTTP/1.1'), [400, 403]],
  ['authority form', reqLine('CONNECT api.openai.com:443 HTTP/1.1'), [400, 403]],
  ['asterisk form', reqLine('OPTIONS * HTTP/1.1'), [400, 403]],
  ['shutdown without --http-shutdown', b('GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'), [403]],
  ['HTTP/1.0', reqLine('POST /v1/responses HTTP/1.0'), [505]],
  ['refused path over HTTP/1.0: still 403', b('GET /v1/models HTTP/1.0\r\n\r\n'), [403]],
  ['refused path with ambiguous framing: still 403', b('PUT /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'), [400, 403]],
  ['refused path without Host: still 403', b('GET /v1/responses HTTP/1.1\r\n\r\n'), [403]],
  ['no body length', b('POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'), [411]],
  ['two Host lines', b('POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}'), [400]],
  ['two Host lines, one foreign: still 400', b('POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\nContent-Length: 2\r\n\r\n{}'), [400]],
  ['no Host line', b('POST /v1/responses HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}'), [400]],
  ['not HTTP at all', b('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03'), [400, 505]],
];

describe('admission matrix', () => {
  test('POST /v1/responses is forwarded', async () => {
    const res = await rawExchange(fx.proxy.port, [request()], { until: responsesComplete });
    assert.equal(res.status, 200);
  });

  for (const [name, bytes, statuses] of DENIED) {
    test(`${name}: refused with ${statuses.join(' or ')}, Connection: close, nothing upstream`, async () => {
      const before = fx.up.raw.reduce((n, r) => n + r.length, 0);
      const res = await rawExchange(fx.proxy.port, [bytes]);
      assert.ok(statuses.includes(res.status), `got ${res.status}: ${res.data.toString('latin1')}`);
      assert.match(res.data.toString('latin1'), /\r\nConnection: close\r\n/);
      assert.ok(res.closed);
      assert.equal(fx.up.raw.reduce((n, r) => n + r.length, 0), before);
    });
  }

  test('the decision is made from the head: a 403 arrives while the declared body is still unsent', async () => {
    const sock = net.connect(fx.proxy.port, '127.0.0.1');
    sock.write(b('PUT /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n'));
    const first = await new Promise<string>((r) => sock.once('data', (d: Buffer) => r(d.toString('latin1'))));
    sock.destroy();
    assert.match(first, /^HTTP\/1\.1 403 Forbidden\r\n/);
  });

  test('with --http-shutdown, GET /shutdown answers 200 and the process exits 0', async () => {
    const p = await startProxy(['--upstream-url', fx.up.url, '--http-shutdown']);
    const res = await rawExchange(p.port, [b(`GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1:${p.port}\r\n\r\n`)]);
    assert.equal(res.status, 200);
    assert.equal(await p.exited, 0);
  });
});

// Every fixture at every split point: same client response, same upstream
// bytes. `{port}` stands for the proxy's port.
const FIXTURES: [string, Buffer][] = [
  ['allowed, listener Host with port, fetch metadata of a typed navigation', b('POST /v1/responses HTTP/1.1\r\nHost: localhost:{port}\r\nsec-fetch-mode: cors\r\nSec-Fetch-Site: none\r\nContent-Length: 2\r\n\r\n{}')],
  ['refused, rebinding Host', b('POST /v1/responses HTTP/1.1\r\nHost: attacker.example:{port}\r\nOrigin: http://attacker.example:{port}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}')],
  ['refused, Origin', b('POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: null\r\nContent-Length: 2\r\n\r\n{}')],
  ['refused, Sec-Fetch-Site on GET /shutdown', b('GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nSec-Fetch-Site: cross-site\r\n\r\n')],
  ['refused, WebSocket attempt', b('GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n')],
  ['allowed, Content-Length', b('POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer c\r\nX-A: 1\r\nContent-Length: 9\r\n\r\n{"a":"b"}')],
  ['allowed, chunked with extension and trailer', b('POST /v1/responses HTTP/1.1\r\nhost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n4;e=1\r\n{"a"\r\n5\r\n:"b"}\r\n0\r\nT: 1\r\n\r\n')],
  ['allowed, duplicate Authorization', b('POST /v1/responses HTTP/1.1\r\nAuthorization: a\r\nHost: [::1]\r\nauthorization: b\r\nContent-Length: 2\r\n\r\n{}')],
  ['denied, query', b('POST /v1/responses?a=b HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}')],
  ['denied, method', b('GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')],
  ['malformed, two Hosts', b('POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: b\r\nContent-Length: 2\r\n\r\n{}')],
];

async function outcome(parts: Buffer[]): Promise<{ reply: string; upstream: string }> {
  const mark = fx.up.received.length;
  const res = await rawExchange(fx.proxy.port, parts, { until: (d) => d.includes('Connection: close') || responsesComplete(d) });
  const got = fx.up.received.slice(mark);
  return { reply: res.data.toString('latin1').replace(/^Date: .*\r\n/m, ''), upstream: got.map((r) => r.head.toString('latin1') + r.body.toString('latin1')).join('|') };
}

const withPort = (bytes: Buffer): Buffer => b(bytes.toString('latin1').replaceAll('{port}', String(fx.proxy.port)));

describe('split invariance', () => {
  for (const [name, fixture] of FIXTURES) {
    test(`${name}: identical at every split point`, async () => {
      const bytes = withPort(fixture);
      const whole = await outcome([bytes]);
      for (let i = 1; i < bytes.length; i++) {
        assert.deepEqual(await outcome([bytes.subarray(0, i), bytes.subarray(i)]), whole, `split at ${i}`);
      }
    });
  }

  test('one byte per write', async () => {
    const bytes = withPort(FIXTURES[0]![1]);
    const whole = await outcome([bytes]);
    assert.deepEqual(await outcome([...bytes].map((c) => Buffer.from([c]))), whole);
  });
});
