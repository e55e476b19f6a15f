// Flow control in both directions: when one side stops reading, the relay
// stops reading the other, so its memory stays bounded, and every byte still
// arrives once reading resumes.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { b, relayFixture, startProxy, startUpstream, waitFor } from './support/harness.js';

const MiB = 1 << 20;
const TOTAL = 64;

/** Resolves once `progress()` has not changed for `quietMs` (a settle wait, not an assertion). */
async function settled(progress: () => number, quietMs = 400): Promise<number> {
  let last = -1;
  let since = Date.now();
  for (let i = 0; i < 200; i++) {
    const now = progress();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return now;
    await new Promise((r) => setTimeout(r, 25));
  }
  return progress();
}

describe('backpressure', () => {
  let upSent = 0;
  const fx = relayFixture([], (_req, sock) => {
    sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${TOTAL * MiB}\r\n\r\n`);
    const chunk = Buffer.alloc(MiB, 0x61);
    const pump = (): void => {
      while (upSent < TOTAL) {
        upSent++;
        if (!sock.write(chunk)) return void sock.once('drain', pump);
      }
    };
    pump();
  });

  test('a client that stops reading stops the upstream; all bytes arrive when it reads again', async () => {
    const sock = net.connect(fx.proxy.port, '127.0.0.1');
    sock.pause();
    sock.write(b('POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}'));
    await waitFor('the upstream to start sending', () => upSent > 0);
    const stuckAt = await settled(() => upSent);
    assert.ok(stuckAt < TOTAL / 2, `upstream pushed ${stuckAt} MiB into a client that reads nothing`);
    let got = 0;
    const done = new Promise<void>((resolve) =>
      sock.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= TOTAL * MiB) resolve();
      }),
    );
    sock.resume();
    await done;
    sock.destroy();
    assert.equal(upSent, TOTAL);
  });

  test('an upstream that stops reading stops the client; the whole body arrives when it reads again', async () => {
    const body = 48 * MiB;
    const stalled = await startUpstream((_req, sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'));
    const p = await startProxy(['--upstream-url', stalled.url]);
    try {
      const sock = net.connect(p.port, '127.0.0.1');
      sock.on('error', () => {});
      let sent = 0;
      const chunk = Buffer.alloc(MiB, 0x62);
      sock.write(b(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body}\r\n\r\n`));
      const pump = (): void => {
        while (sent < body) {
          sent += chunk.length;
          if (!sock.write(chunk)) return void sock.once('drain', pump);
        }
      };
      await waitFor('the upstream connection', () => stalled.conns.length === 1);
      stalled.conns[0]!.pause();
      pump();
      const stuckAt = await settled(() => sent);
      assert.ok(stuckAt < body / 2, `client pushed ${stuckAt / MiB} MiB towards an upstream that reads nothing`);
      let reply = '';
      sock.on('data', (d: Buffer) => (reply += d.toString()));
      stalled.conns[0]!.resume();
      await waitFor('the response', () => reply.startsWith('HTTP/1.1 200 OK'), 20000);
      assert.equal(stalled.received[0]!.body.length, body);
      sock.destroy();
    } finally {
      await p.stop();
      await stalled.close();
    }
  });
});
