// One-shot https calls on the relay's own raw client: a fresh connection from
// the transport's Connector (so the egress route and the trusted CAs apply),
// the request written from Buffers, the answer framed by llhttp. Never
// node:https, whose headers are JS strings. The answer's body is collected
// from the parser's de-chunked body spans straight into off-heap memory, and
// the received bytes it came from are zeroed as they are copied.
import type net from 'node:net';
import { offHeap } from '../secret/key.js';
import { MessageParser } from '../http/parser.js';
import { readMessage, type MessageEvents } from '../http/message.js';
import type { Connector } from '../transport/connect.js';
import type { Upstream } from '../transport/upstream.js';

/** Connection to last byte (as the original: 30 s). */
export const CALL_TIMEOUT_MS = 30_000;
/** Largest answer body read, counted in body data (chunk framing aside). */
export const MAX_BODY = 64 * 1024;
const MAX_ANSWER_HEAD = 16 * 1024;

/**
 * Why a call failed, in words that never hold a body byte, and an
 * errno-style `code`. `status` is set for an answer outside 2xx, whose body
 * is never read: a failing endpoint's body may echo what it was sent.
 */
export class CallError extends Error {
  constructor(message: string, readonly code: string, readonly status = 0) {
    super(message);
  }
}

/**
 * One request on a fresh connection; resolves with the body of a 2xx answer
 * (off-heap: the caller zeroes it), rejects with a CallError. The caller owns
 * the request parts: once this settles the connection is destroyed, so no
 * write still uses them and they may be zeroed.
 */
export function httpsCall(connector: Connector, ep: Upstream, parts: Buffer[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const res = new MessageParser('RESPONSE', MAX_ANSWER_HEAD);
    const body = offHeap(MAX_BODY);
    let length = 0;
    let over = false;
    let sock: net.Socket | null = null;
    let done = false;
    const finish = (err: CallError | null): void => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      sock?.destroy();
      res.destroy();
      if (!err) return resolve(body.subarray(0, length));
      body.fill(0);
      reject(err);
    };
    const fail = (why: string, code: string): void => finish(new CallError(why, code));
    const deadline = setTimeout(() => fail(`no answer within ${CALL_TIMEOUT_MS / 1000} s`, 'TIMEOUT'), CALL_TIMEOUT_MS);
    // Only after a 2xx head (a refused answer stops at its head). Called
    // inside the parser's execute(), which must finish: a body past the cap
    // is noted here and refused once execute() returns.
    res.onBody = (data) => {
      if (length + data.length > MAX_BODY) over = true;
      if (!over) length += data.copy(body, length);
      data.fill(0);
    };
    const complete = (): void => (over ? fail(`answer larger than ${MAX_BODY} bytes`, 'TOO_LARGE') : finish(null));
    const answer: MessageEvents = {
      head: () => {
        if (res.interim) return false;
        if (res.status >= 200 && res.status <= 299) return false;
        finish(new CallError(`HTTP ${res.status}`, `HTTP_${res.status}`, res.status));
        return true;
      },
      end: complete,
      error: () => fail('invalid HTTP answer', 'BAD_HTTP'),
    };
    const onData = (chunk: Buffer): void => {
      if (done) return;
      readMessage(res, chunk, answer);
      if (over) complete();
    };
    const onEnd = (): void => {
      if (done) return;
      // A body delimited by the connection's close ends here (RFC 9112 §6.3).
      if (res.headDone && res.finish()) return complete();
      fail('connection closed before the answer ended', 'CLOSED');
    };
    sock = connector.connect(ep, CALL_TIMEOUT_MS, (err, s) => {
      if (done) return;
      if (err) return fail(`cannot connect (${err.code ?? 'error'})`, err.code && /^[A-Z0-9_]{1,40}$/.test(err.code) ? err.code : 'CONNECT');
      s.on('data', onData).on('end', onEnd).on('close', onEnd);
      s.on('error', (e: NodeJS.ErrnoException) => fail(`connection failed (${e.code ?? 'error'})`, 'CONNECTION'));
      s.cork();
      for (const p of parts) s.write(p);
      s.uncork();
    });
  });
}
