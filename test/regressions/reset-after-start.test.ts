// Issue 10, defects 4 and 6. Once response bytes went out, a failed exchange
// must end the client connection with a reset, never a FIN: after a FIN, a
// body delimited by the connection's close looks complete. And the valid
// bytes in the same read as a bad one are relayed before the reset.
import assert from 'node:assert/strict';
import net, { connect } from 'node:net';
import { describe, test } from 'node:test';
import { b, relayFixture, request, waitFor } from '../support/harness.js';
import { clientOutcome } from '../support/outcome.js';

const EVENTS = 'data: {"type":"response.created"}\n\ndata: {"type":"response.output_text.delta"}\n\n';

/** What each test's upstream does with the request: picked by the request body. */
const behaviours: Record<string, (sock: net.Socket) => void> = {
  // Close-delimited SSE body, two events, then a RST.
  close_rst: (sock) => {
    sock.write(`HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n${EVENTS}`, () => setTimeout(() => sock.resetAndDestroy(), 50));
  },
  // The same, then a clean FIN: the one ending that is a complete response.
  close_fin: (sock) => {
    sock.write(`HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n${EVENTS}`, () => setTimeout(() => sock.end(), 50));
  },
  // A chunked body cut by a RST.
  chunked_rst: (sock) => {
    sock.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${EVENTS.length.toString(16)}\r\n${EVENTS}\r\n`, () => setTimeout(() => sock.resetAndDestroy(), 50));
  },
  // A chunked body cut by a FIN before its last chunk.
  chunked_fin: (sock) => {
    sock.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${EVENTS.length.toString(16)}\r\n${EVENTS}\r\n`, () => setTimeout(() => sock.end(), 50));
  },
  // Defect 6: head, a valid chunk and a bad chunk size, all in one write.
  bad_chunk: (sock) => {
    sock.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${EVENTS.length.toString(16)}\r\n${EVENTS}\r\nZZ\r\nmore\r\n`);
  },
  // A Content-Length body cut short by a RST.
  length_rst: (sock) => {
    sock.write(`HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n${EVENTS}`, () => setTimeout(() => sock.resetAndDestroy(), 50));
  },
};

describe('after response bytes, a failure resets the client connection', () => {
  const fx = relayFixture([], (req, sock) => behaviours[req.body.toString('latin1')]!(sock));

  for (const name of ['close_rst', 'chunked_rst', 'chunked_fin', 'length_rst']) {
    test(`${name}: the client gets every relayed byte, then a reset`, async () => {
      const r = await clientOutcome(fx.proxy.port, [request(name)]);
      assert.ok(r.data.includes(EVENTS), `${name}: both events arrived`);
      assert.equal(r.end, 'reset', `${name}: the client connection ended with ${r.end}`);
    });
  }

  test('close_fin: a close-delimited body that ends with the upstream FIN is complete: the client gets a FIN', async () => {
    const r = await clientOutcome(fx.proxy.port, [request('close_fin')]);
    assert.ok(r.data.toString('latin1').endsWith(EVENTS));
    assert.equal(r.end, 'fin');
  });

  test('bad_chunk: the valid bytes of the read that holds a bad chunk size reach the client, then a reset', async () => {
    const r = await clientOutcome(fx.proxy.port, [request('bad_chunk')]);
    const want = `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${EVENTS.length.toString(16)}\r\n${EVENTS}\r\n`;
    assert.equal(r.data.toString('latin1'), want);
    assert.equal(r.end, 'reset');
  });
});

describe('a bad chunk size in the request body', () => {
  const fx = relayFixture();

  test('the valid chunks in the same read reach the upstream, which then gets a FIN and never a complete request; the client gets 400', async () => {
    const marker = `X-Case: flush-${process.pid}-${Date.now()}`;
    const head = b(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${fx.proxy.port}\r\n${marker}\r\nTransfer-Encoding: chunked\r\n\r\n`);
    const valid = '5\r\nhello\r\n3\r\nabc\r\n';
    const sock = netConnect(fx.proxy.port);
    let reply = '';
    sock.on('data', (d: Buffer) => (reply += d.toString('latin1')));
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    sock.write(head);
    // The exchange is attached once the head has reached the upstream.
    const at = await waitFor('the head upstream', () => {
      const i = fx.up.raw.findIndex((r) => r.includes(marker));
      return i >= 0 ? i + 1 : 0;
    });
    sock.write(b(`${valid}ZZ\r\nxyz\r\n0\r\n\r\n`));
    await closed;
    assert.match(reply, /^HTTP\/1\.1 400 /);
    const conn = fx.up.conns[at - 1]!;
    await waitFor('the upstream connection to end', () => conn.readableEnded || conn.destroyed);
    const raw = fx.up.raw[at - 1]!.toString('latin1');
    assert.ok(raw.endsWith(`\r\n\r\n${valid}`), `the upstream got ${JSON.stringify(raw.slice(-60))}`);
    assert.ok(!fx.up.received.some((r) => r.head.includes(marker)), 'the upstream saw the request complete');
  });
});

function netConnect(port: number): net.Socket {
  const sock = connect(port, '127.0.0.1');
  sock.on('error', () => {});
  return sock;
}
