// Findings of the hostile review of the merged relay (issues 8-12):
// - a head that arrives in many small reads must cost about its own size,
//   not a Buffer object per read (~127 bytes of memory per head byte);
// - a connection attempt the relay gives up on must end at once, not at
//   --connect-timeout, so the exchange it holds (its queued request bytes)
//   is freed.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parseUpstream } from '../../src/transport/upstream.js';
import { Connector } from '../../src/transport/connect.js';
import { NO_EGRESS } from '../../src/transport/egress.js';
import { Trust } from '../../src/transport/trust.js';
import { b, startProxy, type Proxy } from '../support/harness.js';
import { rss } from '../support/outcome.js';

const CONNS = 24;
const HEAD_BYTES = 24 * 1024;
// Issue 10's bound for any input: +64 MB. The defect cost +212.7 MB here;
// the fixed relay +7.5 MB on Node 20 and +23 to +25 MB on Node 24 (its read
// path leaves more garbage before a GC), so 24 MB failed one Node 24 run in two.
const BOUND_MB = 64;

/** Sends `bytes` one byte per write, each written only once the previous one left. Bounded: bytes.length writes. */
async function trickle(sock: net.Socket, bytes: Buffer): Promise<void> {
  for (let i = 0; i < bytes.length && !sock.destroyed; i++) {
    await new Promise<void>((r) => sock.write(bytes.subarray(i, i + 1), () => r()));
  }
}

describe('a head sent a byte at a time', () => {
  let proxy: Proxy;
  before(async () => {
    // The upstream is never reached: every head here stays incomplete.
    proxy = await startProxy(['--upstream-url', 'http://127.0.0.1:1/v1/responses']);
  });
  after(() => proxy.stop());

  test(`${CONNS} connections × ${HEAD_BYTES / 1024} KiB of head in 1-byte writes: memory within +${BOUND_MB} MB`, async (t) => {
    const base = rss(proxy.proc.pid!).now;
    const head = b(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nX-Pad: ${'p'.repeat(HEAD_BYTES)}`).subarray(0, HEAD_BYTES);
    const socks = await Promise.all(
      Array.from({ length: CONNS }, () => new Promise<net.Socket>((resolve) => {
        const s = net.connect(proxy.port, '127.0.0.1', () => resolve(s));
        s.setNoDelay(true);
        s.on('error', () => {});
      })),
    );
    try {
      await Promise.all(socks.map((s) => trickle(s, head)));
      const grew = rss(proxy.proc.pid!).peak - base;
      t.diagnostic(`resident memory grew by ${grew.toFixed(1)} MB for ${(CONNS * HEAD_BYTES) / 1024} KiB of held head bytes`);
      assert.ok(grew <= BOUND_MB, `resident memory grew by ${grew.toFixed(1)} MB`);
    } finally {
      for (const s of socks) s.destroy();
    }
  });
});

describe('a connection attempt given up on', () => {
  let silent: net.Server;
  let port = 0;
  const held: net.Socket[] = [];
  before(async () => {
    // Accepts and never answers: a TLS handshake to it stalls.
    silent = net.createServer((s) => {
      held.push(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    port = (silent.address() as net.AddressInfo).port;
  });
  after(async () => {
    for (const s of held) s.destroy();
    await new Promise((r) => silent.close(r));
  });

  test('https: destroying the socket mid-handshake ends the attempt at once, not at its 600 s deadline', async () => {
    const u = parseUpstream(`https://127.0.0.1:${port}/v1/responses`);
    let sock: net.Socket | null = null;
    const ended = new Promise<NodeJS.ErrnoException | null>((resolve) => {
      sock = new Connector(NO_EGRESS, new Trust()).connect(u, 600_000, (err) => resolve(err));
    });
    // Connected to the silent server: the TLS handshake now waits forever.
    await new Promise<void>((r) => sock!.once('connect', () => r()));
    sock!.destroy();
    const bounded = new Promise<'deadline'>((r) => setTimeout(() => r('deadline'), 20_000).unref());
    const err = await Promise.race([ended, bounded]);
    assert.notEqual(err, 'deadline', 'the attempt did not end when its socket was destroyed');
    assert.ok(err, 'a handshake cut short is an error');
  });
});

describe('a version llhttp will not speak, cut right after its digits', () => {
  test('HTTP/9.9 is refused as a version (505 path), wherever the read ends', async () => {
    const { MessageParser, Ev, loadParser } = await import('../../src/http/parser.js');
    loadParser();
    const wire = b('POST /v1/responses HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n');
    const versionEnd = wire.indexOf('\r\n');
    // Every cut from inside the request line to just past its CRLF.
    for (let cut = 1; cut <= versionEnd + 2; cut++) {
      const p = new MessageParser('REQUEST', 65536);
      let step = p.execute(wire.subarray(0, cut), 0);
      if (step.ev === Ev.More) step = p.execute(wire.subarray(cut), 0);
      assert.equal(step.ev, Ev.Error, `cut at ${cut}`);
      assert.equal(p.versionRefused, true, `cut at ${cut}: refused as a malformed line, not as a version`);
      p.destroy();
    }
  });
});
