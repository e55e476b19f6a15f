// Scripted Responses replies for the spend guard and dump tests: a request's
// JSON body says how the upstream answers ({"mode":…,"tokens":…}), and the
// client side knows the exact bytes to wait for. Each SSE event goes out as
// its own chunk (gzip: its own gzip member, which a gunzip reads as one
// stream), so the relay sees them arrive one by one.
import zlib from 'node:zlib';
import { rawExchange, type RawResult, type Responder } from './harness.js';

export type Mode = 'sse' | 'gzip' | 'json' | 'error' | 'hang';

export interface Ask {
  mode: Mode;
  tokens?: number;
  /** The raw JSON text of `usage` in the reply, instead of one made from `tokens`. */
  usage?: string;
  /** Milliseconds between response.completed and the chunk terminator. */
  lateMs?: number;
  model?: string;
}

export function usageOf(tokens: number): string {
  const output = Math.min(100, tokens);
  return JSON.stringify({
    input_tokens: tokens - output,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: tokens,
  });
}

const HEAD_SSE = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n';

function events(ask: Ask): string[] {
  const usage = ask.usage ?? usageOf(ask.tokens ?? 0);
  const model = JSON.stringify(ask.model ?? 'gpt-test');
  const response = (status: string, u: string) => `{"id":"resp_1","object":"response","model":${model},"status":"${status}","output":[],"usage":${u}}`;
  return [
    `event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":${response('in_progress', 'null')}}\n\n`,
    `event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":1,"delta":"Hello"}\n\n`,
    `event: response.completed\ndata: {"type":"response.completed","sequence_number":2,"response":${response('completed', usage)}}\n\n`,
  ];
}

const chunk = (b: Buffer): Buffer => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
const TERMINATOR = Buffer.from('0\r\n\r\n');

/** The reply's bytes up to and including response.completed, and what follows (the terminator). */
export function replyBytes(ask: Ask): { upToCompleted: Buffer; rest: Buffer } {
  switch (ask.mode) {
    case 'sse':
    case 'gzip': {
      const gz = ask.mode === 'gzip';
      const head = Buffer.from(`${HEAD_SSE}${gz ? 'Content-Encoding: gzip\r\n' : ''}\r\n`);
      const body = events(ask).map((e) => chunk(gz ? zlib.gzipSync(e) : Buffer.from(e)));
      return { upToCompleted: Buffer.concat([head, ...body]), rest: TERMINATOR };
    }
    case 'json': {
      const usage = ask.usage ?? usageOf(ask.tokens ?? 0);
      const body = `{"id":"resp_1","object":"response","model":${JSON.stringify(ask.model ?? 'gpt-test')},"status":"completed","output":[],"usage":${usage}}`;
      return { upToCompleted: Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`), rest: Buffer.alloc(0) };
    }
    case 'error': {
      const body = '{"error":{"type":"server_error","message":"boom"}}';
      return { upToCompleted: Buffer.from(`HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`), rest: Buffer.alloc(0) };
    }
    case 'hang': {
      // Headers and one event, then nothing: a stream the client leaves mid-way.
      const head = Buffer.from(`${HEAD_SSE}\r\n`);
      return { upToCompleted: Buffer.concat([head, chunk(Buffer.from(events(ask)[0]!))]), rest: Buffer.alloc(0) };
    }
  }
}

/** The upstream side: answers each request as its body asks; timers die with the socket. */
export const scripted: Responder = (req, sock) => {
  const ask = JSON.parse(req.body.toString()) as Ask;
  const { upToCompleted, rest } = replyBytes(ask);
  sock.write(upToCompleted);
  if (rest.length === 0) return;
  if (!ask.lateMs) return void sock.write(rest);
  const t = setTimeout(() => sock.writable && sock.write(rest), ask.lateMs);
  sock.once('close', () => clearTimeout(t));
};

export function post(port: number, ask: Ask): Buffer {
  const body = JSON.stringify(ask);
  return Buffer.from(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
}

/**
 * One request on a fresh connection. 'whole' reads the reply to its end;
 * 'completed' closes as Codex does, as soon as response.completed (or the
 * JSON body) is in, without waiting for the terminator.
 */
export function ask(port: number, a: Ask, read: 'whole' | 'completed' = 'whole'): Promise<RawResult> {
  const { upToCompleted, rest } = replyBytes(a);
  const want = read === 'whole' ? upToCompleted.length + rest.length : upToCompleted.length;
  // A refusal comes in one write and ends with the proxy's close.
  return rawExchange(port, [post(port, a)], { until: (d) => d.length >= want, ms: 15000 });
}

/** The status and JSON body of a refusal. */
export function refusal(r: RawResult): { status: number; head: string; body: { error: { type: string; code: string; message: string } } } {
  const end = r.data.indexOf('\r\n\r\n');
  return { status: r.status, head: r.data.subarray(0, end).toString('latin1'), body: JSON.parse(r.data.subarray(end + 4).toString()) as never };
}
