// Issue 10, defect 1: a trailer flood in either direction must not grow the
// proxy's memory. llhttp-wasm's wrapper kept every trailer field and value
// as JS strings until the next message (+196-256 MB for 40 MB of request
// trailers, +110-256 MB for response trailers). Now trailers are only
// counted: request trailers past --max-head-bytes get 431 and the upstream
// never sees the request end; response trailers past 256 KiB reset the client.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { b, request, startProxy, type Proxy } from '../support/harness.js';
import { clientOutcome, rss } from '../support/outcome.js';

const MB = 1 << 20;
const BLOCKS = 40;
const LINE = 'x-t: v0123456789\r\n';
const BLOCK = b(LINE.repeat(Math.floor(MB / LINE.length)));
const BOUND_MB = 64;

/** Writes the 40 MB flood with backpressure; stops early if the peer goes away. Bounded: BLOCKS writes. */
async function flood(sock: net.Socket): Promise<number> {
  let sent = 0;
  for (let i = 0; i < BLOCKS && !sock.destroyed && sock.writable; i++) {
    if (!sock.write(BLOCK)) await new Promise<void>((r) => {
      const go = (): void => {
        sock.off('drain', go).off('close', go);
        r();
      };
      sock.on('drain', go).on('close', go);
    });
    sent += BLOCK.length;
  }
  if (!sock.destroyed && sock.writable) sock.write('\r\n');
  return sent;
}

/** A raw upstream that records what each connection sent (the first 2 MB) and whether it closed. */
interface RawUp {
  server: net.Server;
  port: number;
  conns: { bytes: number; head: Buffer[]; closed: boolean; sock: net.Socket }[];
}
async function rawUpstream(onRequest: (sock: net.Socket) => void = () => {}): Promise<RawUp> {
  const up: RawUp = { server: net.createServer(), port: 0, conns: [] };
  up.server.on('connection', (sock) => {
    const c = { bytes: 0, head: [] as Buffer[], closed: false, sock };
    up.conns.push(c);
    sock.on('error', () => {});
    let answered = false;
    sock.on('data', (d: Buffer) => {
      if (c.bytes < 2 * MB) c.head.push(d);
      c.bytes += d.length;
      if (!answered && Buffer.concat(c.head).includes('\r\n\r\n')) {
        answered = true;
        onRequest(sock);
      }
    });
    sock.on('close', () => (c.closed = true));
  });
  await new Promise<void>((r) => up.server.listen(0, '127.0.0.1', r));
  up.port = (up.server.address() as net.AddressInfo).port;
  return up;
}

async function warm(proxy: Proxy): Promise<number> {
  // One ordinary exchange first, so the baseline includes a compiled relay path.
  await new Promise<void>((resolve) => {
    const s = net.connect(proxy.port, '127.0.0.1', () => s.end(request('{}', '', '/v1/models')));
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.resume();
  });
  return rss(proxy.proc.pid!).now;
}

describe('trailer flood', () => {
  let proxy: Proxy;
  let up: RawUp;
  let floodResponse = false;
  before(async () => {
    up = await rawUpstream((sock) => {
      if (!floodResponse) return;
      sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n');
      void flood(sock);
    });
    proxy = await startProxy(['--upstream-url', `http://127.0.0.1:${up.port}/v1/responses`]);
  });
  after(async () => {
    await proxy.stop();
    for (const c of up.conns) c.sock.destroy();
    await new Promise((r) => up.server.close(r));
  });

  test('40 MB of request trailers: 431, memory within +64 MB, and the upstream never sees the request end', async (t) => {
    const base = await warm(proxy);
    const sock = net.connect(proxy.port, '127.0.0.1');
    sock.on('error', () => {});
    let reply = '';
    sock.on('data', (d: Buffer) => (reply += d.toString('latin1')));
    await new Promise((r) => sock.on('connect', r));
    sock.write(b(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n`));
    await flood(sock);
    const grew = rss(proxy.proc.pid!).peak - base;
    sock.destroy();
    t.diagnostic(`resident memory grew by ${grew.toFixed(1)} MB (VmHWM after - VmRSS before)`);
    assert.ok(grew <= BOUND_MB, `resident memory grew by ${grew.toFixed(1)} MB`);
    assert.match(reply, /^HTTP\/1\.1 431 /);
    assert.match(reply, /trailers_too_large/);
    const c = up.conns.at(-1)!;
    assert.ok(c.bytes < 2 * MB, `the upstream got ${c.bytes} bytes of the flood`);
    const sent = Buffer.concat(c.head);
    const body = sent.subarray(sent.indexOf('\r\n\r\n') + 4);
    assert.equal(body.indexOf('\r\n\r\n'), -1, 'the upstream saw the trailer section end');
    for (let i = 0; i < 500 && !c.closed; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(c.closed, 'the upstream connection was closed');
  });

  test('40 MB of response trailers: the client is reset, memory within +64 MB', async (t) => {
    floodResponse = true;
    const base = rss(proxy.proc.pid!).now;
    const r = await clientOutcome(proxy.port, [request()], 60000);
    const grew = rss(proxy.proc.pid!).peak - base;
    const got = r.data.length;
    t.diagnostic(`resident memory grew by ${grew.toFixed(1)} MB (VmHWM after - VmRSS before)`);
    assert.ok(grew <= BOUND_MB, `resident memory grew by ${grew.toFixed(1)} MB`);
    assert.equal(r.end, 'reset');
    assert.ok(got < 2 * MB, `the client got ${got} bytes of the flood`);
  });
});
