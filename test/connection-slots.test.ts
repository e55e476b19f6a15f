// A connection the relay closes after a response must give its slot back,
// whatever the client does next. Before the fix, a socket paused for a
// pipelined request (or under backpressure) never saw the client's FIN, and a
// client that never closed held its slot forever: with --max-connections, any
// local process could lock every other client out.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { b, rawExchange, request, responsesComplete, startProxy, startUpstream, waitFor } from './support/harness.js';
import { startRelay } from './support/wire.js';

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

// Issue 19: past the cap, an idle connection gives way to a new one, as nginx
// reclaims idle keep-alive connections; only busy slots can turn a client away.

/** A client socket that records how the relay ended it: FIN ('end') or reset ('error'). */
interface Held {
  sock: net.Socket;
  data: Buffer[];
  ended: boolean;
  error: boolean;
}

function hold(port: number): Held {
  const h: Held = { sock: net.connect(port, '127.0.0.1'), data: [], ended: false, error: false };
  h.sock.on('data', (d: Buffer) => h.data.push(d));
  h.sock.on('end', () => (h.ended = true)).on('error', () => (h.error = true));
  return h;
}

test('with 2,000 idle sockets held, a normal client gets 200 and the idle ones go with a FIN', async () => {
  const up = await startUpstream();
  // The default cap (512); no head timeout closes an idle one meanwhile.
  const proxy = await startProxy(['--upstream-url', up.url, '--head-timeout', '3600']);
  const held: Held[] = [];
  try {
    // In batches, so the listen queue (511) never overflows into SYN retries.
    for (let batch = 0; batch < 20; batch++) {
      const some = Array.from({ length: 100 }, () => hold(proxy.port));
      held.push(...some);
      await Promise.all(some.map((h) => new Promise((r) => h.sock.once('connect', r).once('error', r))));
    }
    assert.equal(held.filter((h) => h.error).length, 0);
    // The relay evicts the oldest idle ones as the newer ones are accepted.
    await waitFor('the cap reached', () => held.filter((h) => h.ended).length >= 2000 - 512, 60_000);
    const res = await rawExchange(proxy.port, [request()], { until: responsesComplete, ms: 15_000 });
    assert.equal(res.status, 200);
    await waitFor('one more idle one gone', () => held.filter((h) => h.ended).length === 2000 - 512 + 1, 15_000);
    assert.equal(held.filter((h) => h.error).length, 0, 'no idle connection was reset');
    assert.equal(held.filter((h) => h.data.length > 0).length, 0, 'nothing was written to an idle connection');
    assert.equal(proxy.proc.exitCode, null);
  } finally {
    for (const h of held) h.sock.destroy();
    await proxy.stop();
    await up.close();
  }
});

test('with an exchange in progress in every slot, the next client gets 503 too_many_connections and a FIN', async () => {
  // The first two answers are held until the test lets them go.
  const answers: (() => void)[] = [];
  const up = await startUpstream((_r, sock) => {
    const answer = (): void => void sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    if (up.received.length <= 2) answers.push(answer);
    else answer();
  });
  const proxy = await startProxy(['--upstream-url', up.url, '--max-connections', '2']);
  const busy = [hold(proxy.port), hold(proxy.port)];
  try {
    for (const h of busy) h.sock.write(request());
    await waitFor('both requests upstream', () => answers.length === 2);
    const late = hold(proxy.port);
    late.sock.write(request());
    await waitFor('the refusal', () => late.ended || late.error, 10_000);
    const text = Buffer.concat(late.data).toString('latin1');
    assert.match(text, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    assert.match(text, /"code":"too_many_connections"/);
    assert.ok(responsesComplete(Buffer.concat(late.data)), 'the whole 503');
    assert.equal(late.error, false, 'closed with a FIN, not a reset');
    late.sock.destroy();
    // The busy exchanges were not touched, and once one ends its slot serves again.
    for (const a of answers) a();
    await waitFor('both answers', () => busy.every((h) => responsesComplete(Buffer.concat(h.data))));
    assert.ok(busy.every((h) => !h.ended && !h.error));
    const res = await rawExchange(proxy.port, [request()], { until: responsesComplete, ms: 10_000 });
    assert.equal(res.status, 200);
  } finally {
    for (const h of busy) h.sock.destroy();
    await proxy.stop();
    await up.close();
  }
});

test('a kept-alive connection gives way only once its response is out: never cut mid-response', async () => {
  // The relay in this process, so the test can see its side of the client
  // connection: the response must end while bytes still wait to be written.
  const head = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  let upSock: net.Socket | undefined;
  const up = await startUpstream((_r, sock) => {
    if (upSock) return void sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    upSock = sock;
    sock.write(head);
  });
  const relay = await startRelay(up.url, { maxConnections: 1 });
  const slow = hold(relay.port);
  try {
    // The client reads nothing.
    slow.sock.pause();
    slow.sock.write(request());
    await waitFor('the request upstream', () => upSock);
    const [server] = relay.clients;
    // Chunks until the kernel takes no more and the relay buffers the rest,
    // below its high-water mark, so it still reads the upstream's last chunk.
    const piece = `4000\r\n${'x'.repeat(0x4000)}\r\n`;
    let sent = 0;
    for (let i = 0; i < 4096 && server!.writableLength === 0; i++) {
      upSock!.write(piece);
      sent += piece.length;
      await waitFor('the chunk relayed', () => server!.bytesWritten >= head.length + sent);
    }
    assert.ok(server!.writableLength > 0, 'the client side filled up');
    upSock!.write('0\r\n\r\n');
    await waitFor('the end relayed', () => server!.bytesWritten >= head.length + sent + 5);
    const refused = await rawExchange(relay.port, [request()], { until: responsesComplete, ms: 10_000 });
    assert.equal(refused.status, 503, 'the slot is not idle while its response waits to be written');
    assert.equal(slow.ended || slow.error, false);
    // Read it all: the same connection, now idle, gives way to the next client.
    slow.sock.resume();
    await waitFor('the whole answer', () => Buffer.concat(slow.data).length === head.length + sent + 5, 30_000);
    const served = await rawExchange(relay.port, [request()], { until: responsesComplete, ms: 10_000 });
    assert.equal(served.status, 200);
    await waitFor('the idle one closed', () => slow.ended || slow.error);
    assert.equal(slow.error, false, 'closed with a FIN');
    assert.ok(Buffer.concat(slow.data).toString('latin1').endsWith('\r\n0\r\n\r\n'), 'one whole response, and nothing after it');
  } finally {
    slow.sock.destroy();
    await relay.close();
    await up.close();
  }
});
