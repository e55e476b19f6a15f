// The limits, through the CLI flags that set them: head size (431), head
// timeout (408 and close), keep-alive idle timeout, connection cap; and that
// no limit ever cuts a healthy stream that outlasts every timeout. Small flag
// values keep the tests short; each asserts an outcome, never a duration.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { b, relayFixture, request, waitFor } from './support/harness.js';
import { play } from './support/wire.js';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('head size: --max-head-bytes', () => {
  const fx = relayFixture(['--max-head-bytes', '1024']);

  test('a head within the budget is forwarded', async () => {
    const r = await play(fx.proxy.port, [request('{}', `X-Pad: ${'a'.repeat(800)}\r\n`)], { responses: 1 });
    assert.deepEqual(r.statuses, [200]);
  });

  test('a head past the budget gets 431 and a close, and nothing reaches the upstream', async () => {
    const seen = fx.up.raw.reduce((n, r) => n + r.length, 0);
    const r = await play(fx.proxy.port, [request('{}', `X-Pad: ${'a'.repeat(2000)}\r\n`)]);
    assert.deepEqual(r.statuses, [431]);
    assert.ok(r.closed);
    assert.equal(fx.up.raw.reduce((n, r) => n + r.length, 0), seen);
  });

  test('the budget counts bytes, not reads: the same head sent in 64-byte writes also gets 431', async () => {
    const head = request('{}', `X-Pad: ${'a'.repeat(2000)}\r\n`);
    const parts: Buffer[] = [];
    for (let i = 0; i < head.length; i += 64) parts.push(head.subarray(i, i + 64));
    const r = await play(fx.proxy.port, parts);
    assert.deepEqual(r.statuses, [431]);
  });

  test('an endless head without a line end is cut at the budget', async () => {
    const r = await play(fx.proxy.port, [b(`POST /v1/responses HTTP/1.1\r\nX-A: ${'a'.repeat(4096)}`)]);
    assert.deepEqual(r.statuses, [431]);
    assert.ok(r.closed);
  });
});

describe('timeouts: --head-timeout and --idle-timeout', () => {
  const fx = relayFixture(['--head-timeout', '1', '--idle-timeout', '1']);

  test('a head that stalls (slowloris) gets 408 and a close', async () => {
    const r = await play(fx.proxy.port, [b('POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ')], { ms: 10000 });
    assert.deepEqual(r.statuses, [408]);
    assert.ok(r.closed);
  });

  test('a head dripping one byte at a time past the deadline still gets 408', async () => {
    const sock = net.connect(fx.proxy.port, '127.0.0.1');
    let data = '';
    sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
    sock.on('error', () => {});
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    const head = 'POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: abcdefghijklmnopqrstuvwxyz\r\n';
    for (let i = 0; i < head.length && !sock.destroyed; i++) {
      sock.write(head[i]!);
      await pause(100);
    }
    await Promise.race([closed, pause(10000)]);
    sock.destroy();
    assert.match(data, /^HTTP\/1\.1 408 /);
  });

  test('a connection that never sends a byte is closed quietly', async () => {
    const r = await play(fx.proxy.port, [], { ms: 10000 });
    assert.ok(r.closed);
    assert.equal(r.data.length, 0);
  });

  test('an idle keep-alive connection is closed after its answer', async () => {
    const r = await play(fx.proxy.port, [request()], { ms: 10000 });
    assert.deepEqual(r.statuses, [200]);
    assert.ok(r.closed, 'closed by the idle timeout');
  });

  test('a request body that trickles in for longer than both timeouts is not cut', async () => {
    const body = '{"model":"m","input":"slow upload"}';
    const head = b(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\n\r\n`);
    const sock = net.connect(fx.proxy.port, '127.0.0.1');
    let data = '';
    sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
    sock.on('error', () => {});
    await new Promise((r) => sock.on('connect', r));
    sock.write(head);
    for (let i = 0; i < body.length; i += 5) {
      await pause(150);
      sock.write(body.slice(i, i + 5));
    }
    for (let i = 0; i < 100 && !data.includes('{"ok":true}'); i++) await pause(50);
    sock.destroy();
    assert.match(data, /^HTTP\/1\.1 200 /);
    assert.equal(fx.up.received.at(-1)!.body.toString(), body);
  });
});

describe('a healthy long stream outlasts every timeout', () => {
  const EVENTS = 12;
  // One SSE event every 250 ms: the stream lasts three times the timeouts.
  const fx = relayFixture(['--head-timeout', '1', '--idle-timeout', '1'], (_req, sock) => {
    sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
    let n = 0;
    const tick = setInterval(() => {
      if (sock.destroyed) return clearInterval(tick);
      const ev = `data: {"n":${n}}\n\n`;
      sock.write(`${ev.length.toString(16)}\r\n${ev}\r\n`);
      if (++n === EVENTS) {
        clearInterval(tick);
        sock.write('0\r\n\r\n');
      }
    }, 250);
  });

  test('every event arrives and the response ends at its last chunk', async () => {
    const r = await play(fx.proxy.port, [request()], { ms: 15000 });
    const text = r.data.toString('latin1');
    for (let n = 0; n < EVENTS; n++) assert.ok(text.includes(`data: {"n":${n}}`), `event ${n}`);
    assert.ok(text.endsWith('0\r\n\r\n'));
  });
});

describe('connection cap: --max-connections', () => {
  const fx = relayFixture(['--max-connections', '3']);

  test('past the cap the oldest idle connection gives way with a FIN; the new one is served', async () => {
    const held: { sock: net.Socket; ended: boolean; error: boolean }[] = [];
    for (let i = 0; i < 3; i++) {
      const h = { sock: net.connect(fx.proxy.port, '127.0.0.1'), ended: false, error: false };
      h.sock.on('end', () => (h.ended = true)).on('error', () => (h.error = true));
      await new Promise((r) => h.sock.on('connect', r));
      held.push(h);
    }
    // The listen queue is first in, first out: the fourth is accepted after the three.
    const ok = await play(fx.proxy.port, [request()], { responses: 1, ms: 5000 });
    assert.deepEqual(ok.statuses, [200]);
    await waitFor('the oldest held connection closed', () => held[0]!.ended);
    assert.deepEqual(
      held.map((h) => [h.ended, h.error]),
      [
        [true, false],
        [false, false],
        [false, false],
      ],
      'only the oldest was closed, by a FIN',
    );
    for (const h of held) h.sock.destroy();
    assert.equal(fx.proxy.proc.exitCode, null);
  });
});
