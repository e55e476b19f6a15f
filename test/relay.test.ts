// The relay path over real sockets: rewrite, streaming, keep-alive,
// pipelining, 100-continue, upstream failures and client aborts.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { b, KEY, okJson, rawExchange, REFUSED_PORT, relayFixture, request, responsesComplete, startProxy, startUpstream, waitFor, type Responder } from './support/harness.js';

const EXPECTED_PREFIX = (port: number) => `POST /v1/responses?api-version=1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${KEY}\r\n`;

describe('rewrite', () => {
  const fx = relayFixture([], okJson(), { target: '/v1/responses?api-version=1' });

  test('replaces the target, every Host and every Authorization line; keeps all else byte for byte', async () => {
    const body = '{"model":"gpt","input":"héllo"}';
    const head =
      'POST /v1/responses HTTP/1.1\r\n' +
      `host: LocalHost:${fx.proxy.port}\r\n` +
      'X-Custom:  spaced value \r\n' +
      'authorization: Bearer client-secret\r\n' +
      'Accept: text/event-stream\r\n' +
      'X-Dup: 1\r\n' +
      'AUTHORIZATION:Basic Zm9vOmJhcg==\r\n' +
      'X-Dup: 2\r\n' +
      'X-Obs: caf\xe9\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    const res = await rawExchange(fx.proxy.port, [Buffer.concat([b(head), Buffer.from(body)])], { until: responsesComplete });
    assert.equal(res.status, 200);
    const got = fx.up.received.at(-1)!;
    const want =
      EXPECTED_PREFIX(fx.up.port) +
      'X-Custom:  spaced value \r\n' +
      'Accept: text/event-stream\r\n' +
      'X-Dup: 1\r\n' +
      'X-Dup: 2\r\n' +
      'X-Obs: caf\xe9\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    assert.equal(got.head.toString('latin1'), want);
    assert.deepEqual(got.body, Buffer.from(body));
    assert.ok(!fx.up.raw.some((r) => r.includes('client-secret')));
  });

  test('adds nothing: no Accept-Encoding, Via, or Connection the client did not send', async () => {
    await rawExchange(fx.proxy.port, [request('{}')], { until: responsesComplete });
    const head = fx.up.received.at(-1)!.head.toString('latin1');
    assert.equal(head, `${EXPECTED_PREFIX(fx.up.port)}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n`);
  });

  test('a chunked body passes exactly as framed, extensions and trailers included', async () => {
    const chunked = '5;ext="a b"\r\nhello\r\n1\r\n!\r\n0\r\nX-Trailer: t\r\n\r\n';
    const req = b(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`);
    const res = await rawExchange(fx.proxy.port, [req], { until: responsesComplete });
    assert.equal(res.status, 200);
    assert.equal(fx.up.received.at(-1)!.body.toString('latin1'), chunked);
  });
});

describe('streaming', () => {
  test('each SSE event reaches the client before the upstream sends the next', async () => {
    // The upstream sends event i+1 only after the client has seen event i:
    // if the relay held events back, this would never finish.
    const events = 20;
    let sendNext: (() => void) | undefined;
    const up = await startUpstream((_req, sock) => {
      sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n');
      let i = 0;
      sendNext = () => {
        const ev = `event: response.output_text.delta\ndata: {"i":${i}}\n\n`;
        sock.write(`${Buffer.byteLength(ev).toString(16)}\r\n${ev}\r\n`);
        if (++i === events) sock.write('0\r\n\r\n');
      };
      sendNext();
    });
    const proxy = await startProxy(['--upstream-url', up.url]);
    try {
      const seen: number[] = [];
      await new Promise<void>((resolve, reject) => {
        const sock = net.connect(proxy.port, '127.0.0.1', () => sock.write(request()));
        let text = '';
        sock.on('data', (d: Buffer) => {
          text += d.toString('latin1');
          for (const m of text.matchAll(/\{"i":(\d+)\}/g)) if (!seen.includes(Number(m[1]))) seen.push(Number(m[1]));
          if (text.endsWith('0\r\n\r\n')) {
            sock.destroy();
            resolve();
          } else if (seen.length && seen.at(-1)! < events - 1 && seen.length === seen.at(-1)! + 1) sendNext!();
        });
        sock.on('error', reject);
        setTimeout(() => reject(new Error(`stalled after ${seen.length} events`)), 10000).unref();
      });
      assert.deepEqual(seen, [...Array(events).keys()]);
    } finally {
      await proxy.stop();
      await up.close();
    }
  });
});

describe('connections', () => {
  let respond: Responder = okJson();
  const fx = relayFixture([], (r, s) => respond(r, s));

  test('keep-alive: three requests in turn on one client connection reuse one upstream connection', async () => {
    respond = okJson();
    const before = fx.up.connections;
    const sock = net.connect(fx.proxy.port, '127.0.0.1');
    let data = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => (data = Buffer.concat([data, d])));
    for (let i = 1; i <= 3; i++) {
      sock.write(request(`{"n":${i}}`));
      await waitFor(`response ${i}`, () => responsesComplete(data, i));
    }
    sock.destroy();
    assert.equal(fx.up.connections - before, 1);
    assert.deepEqual(fx.up.received.slice(-3).map((r) => r.body.toString()), ['{"n":1}', '{"n":2}', '{"n":3}']);
  });

  test('pipelining: requests sent in one write are relayed one after another, in order', async () => {
    respond = (r, s) => okJson(r.body.toString())(r, s);
    const res = await rawExchange(fx.proxy.port, [Buffer.concat([request('{"p":1}'), request('{"p":2}'), request('{"p":3}')])], { until: (d) => responsesComplete(d, 3) });
    const bodies = [...res.data.toString().matchAll(/\{"p":\d\}/g)].map((m) => m[0]);
    assert.deepEqual(bodies, ['{"p":1}', '{"p":2}', '{"p":3}']);
  });

  test('Expect: 100-continue: the interim response reaches the client, then the final one', async () => {
    respond = (_r, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone');
    const body = '{"x":1}';
    const head = b(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`);
    // An upstream that answers 100 as soon as it has the head.
    const sock = net.connect(fx.proxy.port, '127.0.0.1');
    let data = '';
    sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
    sock.write(head);
    // The relay forwards the head at once, before any body byte exists.
    const at = await waitFor('head upstream', () => fx.up.raw.findIndex((r) => r.includes('Expect: 100-continue')) + 1);
    fx.up.conns[at - 1]!.write('HTTP/1.1 100 Continue\r\n\r\n');
    await waitFor('100 Continue at the client', () => data.startsWith('HTTP/1.1 100 Continue\r\n\r\n'));
    sock.write(body);
    await waitFor('final response', () => data.endsWith('done'));
    sock.destroy();
    assert.equal(data, 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone');
  });

  test('a request with an Idempotency-Key on a pooled connection the upstream drops: replayed once on a new one', async () => {
    // Models the race where an idle keep-alive connection is closed by the
    // upstream just as the relay reuses it: the second request on any
    // connection is met with a close, never an answer.
    const seen = new Map<number, number>();
    let drops = 0;
    respond = (r, s) => {
      const n = (seen.get(r.conn) ?? 0) + 1;
      seen.set(r.conn, n);
      if (n > 1) {
        drops++;
        s.destroy();
      } else okJson(r.body.toString())(r, s);
    };
    for (let i = 1; i <= 3; i++) {
      const res = await rawExchange(fx.proxy.port, [request(`{"r":${i}}`, `Idempotency-Key: k-${i}\r\n`)], { until: responsesComplete });
      assert.equal(res.status, 200);
      assert.ok(res.data.toString().endsWith(`{"r":${i}}`));
    }
    assert.ok(drops >= 2, `the upstream dropped ${drops} reused connections`);
  });

  test('a POST without an Idempotency-Key on a pooled connection the upstream drops: 502, never sent twice', async () => {
    // The relay cannot tell an idle-close race from an upstream that took
    // the request and died: without a key, a second copy could run twice.
    const seen = new Map<number, number>();
    respond = (r, s) => {
      const n = (seen.get(r.conn) ?? 0) + 1;
      seen.set(r.conn, n);
      if (n > 1) s.destroy();
      else okJson()(r, s);
    };
    await rawExchange(fx.proxy.port, [request('{"warm":1}')], { until: responsesComplete });
    const before = fx.up.received.length;
    const res = await rawExchange(fx.proxy.port, [request('{"once":1}')], { until: responsesComplete });
    assert.equal(res.status, 502);
    assert.equal(fx.up.received.slice(before).filter((r) => r.body.toString() === '{"once":1}').length, 1);
  });

  test('client abort: the upstream connection is closed at once', async () => {
    respond = (_r, s) => s.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    const sock = net.connect(fx.proxy.port, '127.0.0.1');
    let data = '';
    sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
    sock.write(request('{"abort":1}'));
    await waitFor('first event', () => data.includes('hello'));
    const upSock = [...fx.up.sockets].at(-1)!;
    const closed = new Promise<void>((r) => upSock.once('close', () => r()));
    sock.destroy();
    await closed;
    assert.ok(upSock.destroyed);
  });

  test('a response with bytes after its end is relayed, and that upstream connection is not reused', async () => {
    respond = (_r, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmug!');
    const first = await rawExchange(fx.proxy.port, [request()], { until: responsesComplete });
    assert.equal(first.data.toString('latin1'), 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    respond = okJson('{"clean":true}');
    const before = fx.up.connections;
    const second = await rawExchange(fx.proxy.port, [request()], { until: responsesComplete });
    assert.ok(second.data.toString().endsWith('{"clean":true}'));
    assert.equal(fx.up.connections, before + 1);
  });
});

describe('upstream failures', () => {
  test('upstream down: 502 with a JSON body naming the cause, and the proxy keeps serving', async () => {
    const proxy = await startProxy(['--upstream-url', `http://127.0.0.1:${REFUSED_PORT}/v1/responses`]);
    try {
      for (let i = 0; i < 2; i++) {
        const res = await rawExchange(proxy.port, [request()], { until: responsesComplete });
        assert.equal(res.status, 502);
        const body = JSON.parse(res.data.toString().split('\r\n\r\n')[1]!) as { error: { type: string; message: string } };
        assert.equal(body.error.type, 'proxy_error');
        assert.match(body.error.message, /ECONNREFUSED/);
        assert.ok(!res.data.includes(KEY));
      }
      assert.match(proxy.stderr(), /upstream request failed: upstream_unreachable \(ECONNREFUSED\)/);
    } finally {
      await proxy.stop();
    }
  });

  test('upstream closes without answering: 502; after the response started: the client is closed', async () => {
    let mode = 'silent';
    const up = await startUpstream((_r, s) => {
      if (mode === 'partial') s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial');
      s.end();
    });
    const proxy = await startProxy(['--upstream-url', up.url]);
    try {
      const silent = await rawExchange(proxy.port, [request()]);
      assert.equal(silent.status, 502);
      mode = 'partial';
      const partial = await rawExchange(proxy.port, [request()]);
      assert.ok(partial.closed);
      assert.equal(partial.data.toString(), 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial');
    } finally {
      await proxy.stop();
      await up.close();
    }
  });
});

describe('timers on a kept-alive connection', () => {
  test('the head timeout, not the idle timeout, bounds a second head that stalls', async () => {
    const up = await startUpstream();
    const proxy = await startProxy(['--upstream-url', up.url, '--head-timeout', '1', '--idle-timeout', '600']);
    try {
      const sock = net.connect(proxy.port, '127.0.0.1');
      let data = '';
      sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
      sock.write(request());
      await waitFor('first response', () => responsesComplete(Buffer.from(data, 'latin1')));
      sock.write('POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      await waitFor('408 for the stalled second head', () => data.includes('HTTP/1.1 408 Request Timeout'), 20000);
      sock.destroy();
    } finally {
      await proxy.stop();
      await up.close();
    }
  });
});
