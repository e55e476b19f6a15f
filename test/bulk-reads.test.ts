// How response bytes are read and written in bulk (issue 18): writes to the
// client held across a burst of large reads are flushed at the end of the
// burst even when the upstream then goes quiet; every byte arrives intact and
// in order whatever the read sizes, over plain http and TLS; and a client that
// stops reading stops a TLS upstream, as it does a plain one.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { makeTestPki, type TestPki } from './support/certs.js';
import { b, startProxy, startUpstream, waitFor, type Proxy, type Responder, type Upstream } from './support/harness.js';

const KiB = 1024;
const MiB = 1 << 20;

/** Byte i of a body: a pattern that shows any lost, repeated or overwritten range. */
const pattern = (from: number, n: number): Buffer => {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) out[i] = (from + i) % 251;
  return out;
};

/** A client that sends one request and collects the reply; `paused` until resume(). */
function client(port: number, paused = false) {
  const sock = net.connect(port, '127.0.0.1');
  const parts: Buffer[] = [];
  let got = 0;
  sock.on('error', () => {});
  sock.on('data', (d: Buffer) => {
    parts.push(d);
    got += d.length;
  });
  if (paused) sock.pause();
  sock.write(b('POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}'));
  return {
    sock,
    get got() {
      return got;
    },
    body(): Buffer {
      const all = Buffer.concat(parts);
      return all.subarray(all.indexOf('\r\n\r\n') + 4);
    },
  };
}

const HEAD_64K = `HTTP/1.1 200 OK\r\nContent-Length: ${64 * KiB}\r\n\r\n`;

describe('bulk reads', () => {
  let pki: TestPki;
  before(() => {
    pki = makeTestPki();
  });

  for (const scheme of ['http', 'https'] as const) {
    describe(`${scheme} upstream`, () => {
      let up: Upstream;
      let proxy: Proxy;
      /** What the next request's responder does, set by each test. */
      let respond: Responder = () => {};
      before(async () => {
        up = await startUpstream((req, sock) => respond(req, sock), scheme === 'https' ? { key: pki.key, cert: pki.cert } : undefined);
        const url = `${scheme}://localhost:${up.port}/v1/responses`;
        proxy = await startProxy(['--upstream-url', url], { env: { PATH: process.env.PATH ?? '', NODE_EXTRA_CA_CERTS: pki.caFile } });
      });
      after(async () => {
        await proxy.stop();
        await up.close();
      });

      test('a burst of full 16 KiB reads reaches the client while the upstream goes quiet after it', async () => {
        let rest: (() => void) | null = null;
        respond = (_req, sock) => {
          // The head, then three full TLS records (or plain reads of 16 and
          // 32 KiB) that end a write, then nothing until the client has them.
          sock.write(HEAD_64K);
          setTimeout(() => sock.write(pattern(0, 48 * KiB)), 20);
          rest = () => sock.write(pattern(48 * KiB, 16 * KiB));
        };
        const c = client(proxy.port);
        try {
          await waitFor('the 48 KiB sent before the upstream went quiet', () => c.got >= HEAD_64K.length + 48 * KiB);
          rest!();
          await waitFor('the whole body', () => c.got >= HEAD_64K.length + 64 * KiB);
          assert.ok(c.body().equals(pattern(0, 64 * KiB)));
        } finally {
          c.sock.destroy();
        }
      });

      test('bytes of every read size arrive intact and in order to a client that reads late', async () => {
        // Sizes around the copy and record thresholds, and large ones.
        const sizes = [1, 120, 4095, 4096, 4097, 9000, 16383, 16384, 16385, 40000, 65536, 200000, 7, 16384, 16384, 16384, 300];
        const total = sizes.reduce((a, n) => a + n, 0) * 4;
        let at = 0;
        respond = (_req, sock) => {
          sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${total}\r\n\r\n`);
          let i = 0;
          // One write per loop turn, so the relay sees reads of about these sizes.
          const next = (): void => {
            if (at >= total || sock.destroyed) return;
            const n = sizes[i++ % sizes.length]!;
            sock.write(pattern(at, n));
            at += n;
            setImmediate(next);
          };
          next();
        };
        // Paused first, so the relay's writes queue and hold on to what it read.
        const c = client(proxy.port, true);
        try {
          await waitFor('the upstream to start sending', () => at > 0);
          // Until it has sent all, or stopped for back-pressure.
          let last = -1;
          for (let i = 0; i < 40 && at !== last && at < total; i++) {
            last = at;
            await new Promise((r) => setTimeout(r, 250));
          }
          c.sock.resume();
          await waitFor('the whole body', () => c.got >= total);
          const body = c.body();
          assert.equal(body.length, total);
          assert.ok(body.equals(pattern(0, total)), 'a range of the body was lost, repeated or overwritten');
        } finally {
          c.sock.destroy();
        }
      });

      test('a client that stops reading stops the upstream; all bytes arrive when it reads again', async () => {
        const TOTAL = 48;
        let sent = 0;
        respond = (_req, sock) => {
          sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${TOTAL * MiB}\r\n\r\n`);
          const pump = (): void => {
            while (sent < TOTAL && !sock.destroyed) {
              sent++;
              if (!sock.write(pattern((sent - 1) * MiB, MiB))) return void sock.once('drain', pump);
            }
          };
          pump();
        };
        const c = client(proxy.port, true);
        try {
          await waitFor('the upstream to start sending', () => sent > 0);
          // Settle: the count stops moving once every buffer on the way is full.
          let last = -1;
          for (let i = 0; i < 40 && sent !== last; i++) {
            last = sent;
            await new Promise((r) => setTimeout(r, 250));
          }
          assert.ok(sent < TOTAL / 2, `upstream pushed ${sent} MiB into a client that reads nothing`);
          c.sock.resume();
          await waitFor('the whole body', () => c.got >= TOTAL * MiB, 60_000);
          assert.ok(c.body().equals(pattern(0, TOTAL * MiB)));
        } finally {
          c.sock.destroy();
        }
      });
    });
  }
});
