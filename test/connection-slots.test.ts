// A connection the relay closes after a response must give its slot back,
// whatever the client does next. Before the fix, a socket paused for a
// pipelined request (or under backpressure) never saw the client's FIN, and a
// client that never closed held its slot forever: with --max-connections, any
// local process could lock every other client out.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { b, rawExchange, request, responsesComplete, startProxy, startUpstream, waitFor } from './support/harness.js';

const CLOSE_RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok';

/** Resolves once a new client is served, retrying while the one slot is still taken. */
async function slotFree(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const res = await rawExchange(port, [request()], { until: responsesComplete, ms: 5000, quiet: true });
    if (res.status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail('the connection slot never came back');
}

test('a pipelined request held when the upstream says Connection: close does not keep the slot', async () => {
  let answer: (() => void) | undefined;
  const up = await startUpstream((r, sock) => {
    if (r.body.toString() === '{"first":1}') answer = () => sock.write(CLOSE_RESPONSE);
    else sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  });
  const proxy = await startProxy(['--upstream-url', up.url, '--max-connections', '1']);
  try {
    const sock = net.connect(proxy.port, '127.0.0.1');
    let data = '';
    sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
    const ended = new Promise<void>((r) => sock.on('end', () => r()));
    sock.write(request('{"first":1}'));
    await waitFor('the first request upstream', () => answer);
    // The second request is held (and the socket paused); the third then
    // waits in the paused stream's buffer, in front of the client's FIN.
    sock.write(request('{"second":2}'));
    await new Promise((r) => setTimeout(r, 50));
    sock.write(request('{"third":3}'));
    await new Promise((r) => setTimeout(r, 50));
    answer!();
    await ended;
    assert.equal(data, CLOSE_RESPONSE);
    sock.destroy();
    await slotFree(proxy.port);
  } finally {
    await proxy.stop();
    await up.close();
  }
});

test('a client that never closes after a Connection: close response loses its slot after the linger', async () => {
  const up = await startUpstream((_r, sock) => sock.write(CLOSE_RESPONSE));
  const proxy = await startProxy(['--upstream-url', up.url, '--max-connections', '1']);
  // allowHalfOpen: the client does not answer the relay's FIN with its own.
  const sock = net.connect({ port: proxy.port, host: '127.0.0.1', allowHalfOpen: true });
  try {
    let data = '';
    sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
    sock.write(request());
    await waitFor('the response', () => data === CLOSE_RESPONSE);
    // The client keeps its end open and says nothing more.
    await slotFree(proxy.port);
  } finally {
    sock.destroy();
    await proxy.stop();
    await up.close();
  }
});

test('an early complete response to an unfinished upload does not keep the slot', async () => {
  // The first upstream connection answers 413 from the head and stops
  // reading; later ones answer 200.
  let conns = 0;
  const open = new Set<net.Socket>();
  const early = net.createServer((s) => {
    const n = conns++;
    open.add(s);
    s.on('error', () => {});
    s.once('data', () => {
      if (n > 0) return void s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      s.pause();
      s.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n');
    });
  });
  await new Promise<void>((r) => early.listen(0, '127.0.0.1', r));
  const port = (early.address() as net.AddressInfo).port;
  const proxy = await startProxy(['--upstream-url', `http://127.0.0.1:${port}/v1/responses`, '--max-connections', '1']);
  try {
    const sock = net.connect(proxy.port, '127.0.0.1');
    sock.on('error', () => {});
    let data = '';
    sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
    // More body than the socket buffers between here and the stalled
    // upstream hold, so the relay has paused the client when the 413 lands.
    sock.write(b(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${64 << 20}\r\n\r\n`));
    for (let i = 0; i < 32; i++) sock.write(Buffer.alloc(1 << 20));
    await waitFor('the early 413', () => data.startsWith('HTTP/1.1 413'));
    sock.destroy();
    await slotFree(proxy.port);
  } finally {
    await proxy.stop();
    for (const s of open) s.destroy();
    await new Promise((r) => early.close(r));
  }
});

test('a client still uploading after an early answer is read to the end, not cut after the linger', async () => {
  // The upstream answers 413 from the head; the client goes on sending its
  // body for longer than the 2 s quiet-linger, at a steady pace.
  const early = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.end('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
  });
  await new Promise<void>((r) => early.listen(0, '127.0.0.1', r));
  const port = (early.address() as net.AddressInfo).port;
  const proxy = await startProxy(['--upstream-url', `http://127.0.0.1:${port}/v1/responses`]);
  try {
    const sock = net.connect({ port: proxy.port, host: '127.0.0.1', allowHalfOpen: true });
    let error: Error | undefined;
    sock.on('error', (e) => (error = e));
    let data = '';
    sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
    const chunks = 30;
    sock.write(b(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${chunks * 100_000}\r\n\r\n`));
    for (let i = 0; i < chunks && !error; i++) {
      await new Promise<void>((r) => sock.write(Buffer.alloc(100_000), () => r()));
      await new Promise((r) => setTimeout(r, 100));
    }
    sock.end();
    await waitFor('the 413', () => data.startsWith('HTTP/1.1 413'));
    assert.equal(error, undefined);
    sock.destroy();
  } finally {
    await proxy.stop();
    early.close();
  }
});
