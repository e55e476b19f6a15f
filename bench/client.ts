// The measuring client: one raw HTTP/1.1 request over node:net, so every path
// is read by the same few lines of code and nothing (no agent, no decoder of
// ours beyond chunked framing) sits between the socket and the clock.
//
// Arrival time is taken once per socket read, at the top of the 'data'
// handler, with process.hrtime.bigint(): CLOCK_MONOTONIC on Linux, the same
// clock the upstream child stamps into each event, so arrival − send is the
// event's end-to-end delay on one machine.
import net from 'node:net';

export interface Request {
  port: number;
  /** JSON body; the fake upstream reads its scenario from it. */
  body: string;
  /** Sent only on the direct path: a relay must inject it. */
  authorization?: string;
  /** Parse the body as SSE and record one arrival per event. */
  sse: boolean;
  timeoutMs: number;
}

export interface Arrival {
  /** The event's index and send time, as the upstream wrote them. */
  i: number;
  sent: bigint;
  arrived: bigint;
}

export interface Response {
  status: number;
  /** Connect start to first response byte, in ms. */
  ttfbMs: number;
  /** Connect start to the last body byte, in ms. */
  totalMs: number;
  bodyBytes: number;
  events: Arrival[];
  error?: string;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const HEAD_CAP = 64 * 1024;

export function request(req: Request): Promise<Response> {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const ms = (t: bigint) => Number(t - start) / 1e6;
    const res: Response = { status: 0, ttfbMs: -1, totalMs: -1, bodyBytes: 0, events: [] };
    let head: Buffer | null = Buffer.alloc(0);
    let body: BodyReader | null = null;
    let sseText = '';
    let settled = false;

    const finish = (error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      res.totalMs = ms(process.hrtime.bigint());
      if (error !== undefined) res.error = error;
      socket.destroy();
      resolve(res);
    };
    const timer = setTimeout(() => finish(`timeout after ${req.timeoutMs} ms`), req.timeoutMs);

    const onBody = (chunk: Buffer, now: bigint) => {
      res.bodyBytes += chunk.length;
      if (!req.sse) return;
      sseText += chunk.toString('latin1');
      let end: number;
      while ((end = sseText.indexOf('\n\n')) >= 0) {
        const event = sseText.slice(0, end);
        sseText = sseText.slice(end + 2);
        const m = /"i":(\d+),"t":"(\d+)"/.exec(event);
        if (m) res.events.push({ i: Number(m[1]), sent: BigInt(m[2]!), arrived: now });
      }
    };

    const socket = net.connect({ host: '127.0.0.1', port: req.port });
    socket.setNoDelay(true);
    socket.on('connect', () => {
      const lines = [
        'POST /v1/responses HTTP/1.1',
        `Host: 127.0.0.1:${req.port}`,
        'Content-Type: application/json',
        `Content-Length: ${Buffer.byteLength(req.body)}`,
        ...(req.authorization ? [`Authorization: ${req.authorization}`] : []),
      ];
      socket.write(lines.join('\r\n') + '\r\n\r\n' + req.body);
    });
    socket.on('data', (chunk: Buffer) => {
      const now = process.hrtime.bigint();
      if (res.ttfbMs < 0) res.ttfbMs = ms(now);
      if (head) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf(HEAD_END);
        if (end < 0) {
          if (head.length > HEAD_CAP) finish('response head too large');
          return;
        }
        const text = head.subarray(0, end).toString('latin1');
        const rest = head.subarray(end + 4);
        head = null;
        res.status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
        body = bodyReader(text);
        chunk = rest;
      }
      if (body && chunk.length > 0 && body.push(chunk, (b) => onBody(b, now))) finish();
      else if (body?.done) finish();
    });
    socket.on('end', () => finish(body?.closeDelimited ? undefined : 'connection closed before the response ended'));
    socket.on('error', (err) => finish(err.message));
  });
}

interface BodyReader {
  /** Feeds bytes; returns true once the body is complete. */
  push(chunk: Buffer, onData: (b: Buffer) => void): boolean;
  done: boolean;
  closeDelimited: boolean;
}

function bodyReader(head: string): BodyReader {
  if (/^transfer-encoding:.*chunked/im.test(head)) return new Chunked();
  const len = /^content-length:\s*(\d+)/im.exec(head);
  if (len) return new Sized(Number(len[1]));
  return { push: (c, on) => (on(c), false), done: false, closeDelimited: true };
}

class Sized implements BodyReader {
  closeDelimited = false;
  constructor(private left: number) {}
  get done() {
    return this.left === 0;
  }
  push(chunk: Buffer, onData: (b: Buffer) => void) {
    const take = chunk.subarray(0, this.left);
    this.left -= take.length;
    onData(take);
    return this.left === 0;
  }
}

// RFC 9112 §7.1 chunked framing, decoded incrementally: nginx and the naive
// proxy re-chunk, so an event may be split across chunk boundaries.
class Chunked implements BodyReader {
  closeDelimited = false;
  done = false;
  private state: 'size' | 'data' | 'data-end' | 'trailer' = 'size';
  private line = '';
  private left = 0;

  push(chunk: Buffer, onData: (b: Buffer) => void) {
    let i = 0;
    while (i < chunk.length && !this.done) {
      if (this.state === 'data') {
        const take = chunk.subarray(i, i + this.left);
        onData(take);
        this.left -= take.length;
        i += take.length;
        if (this.left === 0) this.state = 'data-end';
        continue;
      }
      const nl = chunk.indexOf(10, i);
      const stop = nl < 0 ? chunk.length : nl;
      this.line += chunk.toString('latin1', i, stop);
      i = stop;
      if (nl < 0) break;
      i++;
      const line = this.line.replace(/\r$/, '');
      this.line = '';
      if (this.state === 'size') {
        this.left = parseInt(line.split(';')[0]!, 16);
        this.state = this.left > 0 ? 'data' : 'trailer';
      } else if (this.state === 'data-end') {
        this.state = 'size';
      } else if (line === '') {
        this.done = true;
      }
    }
    return this.done;
  }
}
