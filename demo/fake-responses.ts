// A fake OpenAI Responses API upstream for the demo and the client tests.
//
// It answers `POST <anything>/responses` the way the real API does: with
// `stream: true`, a `text/event-stream` of Responses streaming events up to
// `response.completed`; otherwise one JSON response object. The events carry
// the fields the official `openai` SDK and the Codex CLI read (type,
// sequence_number, ids, indexes, and a full `response` object with usage on
// created/in_progress/completed), so both clients accept the stream.
//
// It only ever listens on 127.0.0.1, keeps every request it received for the
// tests to inspect, and can pace its events: a fixed delay, and/or a gate that
// the caller resolves (used to prove an event reached the client before the
// next one was sent, without timing assertions).

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';

/** The answer used when the caller names none. */
export const DEFAULT_ANSWER = 'Hello from the fake Responses upstream: every event was relayed as soon as it was sent.';

/** Name of the SSE comment field that carries the upstream's send time (see `timestampComments`). */
export const SENT_AT_COMMENT = 'sent_at_ms';

/** Request bodies larger than this are refused with 413; nothing here needs more. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

export interface FakeResponsesOptions {
  /** The assistant's answer; split into `deltas` on word boundaries unless `deltas` is given. */
  text?: string;
  /** The exact `response.output_text.delta` pieces; their concatenation is the answer. */
  deltas?: readonly string[];
  /** Milliseconds to wait before each streamed event after the first (default 0). */
  delayMs?: number;
  /**
   * Awaited before event `index` (0-based) of each stream is written. Lets a test
   * hold the stream until its client has seen the previous event.
   */
  beforeEvent?: (index: number, type: string) => Promise<void> | void;
  /**
   * Write an SSE comment `: sent_at_ms=<epoch ms, fractional>` just before each
   * event, taken right before the write. Clients ignore comments (WHATWG SSE
   * §9.2.6), so this is safe for the SDK and Codex; the demo reads it.
   */
  timestampComments?: boolean;
}

export interface RecordedRequest {
  method: string;
  /** The request target exactly as received. */
  url: string;
  headers: IncomingHttpHeaders;
  /** Header names and values in arrival order, as Node reports them. */
  rawHeaders: string[];
  /** The body as received (still encoded if Content-Encoding was set). */
  body: Buffer;
  /** The decoded body parsed as JSON, or undefined when that failed. */
  json: unknown;
}

export interface FakeResponsesServer {
  readonly port: number;
  /** `http://127.0.0.1:PORT/v1` — what a client's base URL should be. */
  readonly baseUrl: string;
  /** `http://127.0.0.1:PORT/v1/responses` — what the proxy's `--upstream-url` should be. */
  readonly responsesUrl: string;
  /** Every request received, in order of arrival (recorded once its body has ended). */
  readonly requests: RecordedRequest[];
  /** The streamed events of each SSE answer, in order, as written (for comparing with what clients got). */
  readonly streams: StreamedEvent[][];
  close(): Promise<void>;
}

/** One Responses streaming event: the SSE `event:` name and the JSON `data:` payload. */
export interface StreamedEvent {
  type: string;
  data: Record<string, unknown>;
}

/** Start the fake upstream on 127.0.0.1 with an ephemeral port. */
export async function startFakeResponses(options: FakeResponsesOptions = {}): Promise<FakeResponsesServer> {
  const requests: RecordedRequest[] = [];
  const streams: StreamedEvent[][] = [];
  const sockets = new Set<Socket>();

  const server: Server = createServer({ noDelay: true }, (req, res) => {
    handle(req, res, options, requests, streams).catch((err: unknown) => {
      // A handler failure must not take the test process down; end this exchange only.
      if (!res.headersSent) {
        sendJson(res, 500, { error: { type: 'fake_upstream_error', message: String(err) } });
      } else {
        res.destroy();
      }
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    port,
    baseUrl: `http://127.0.0.1:${port}/v1`,
    responsesUrl: `http://127.0.0.1:${port}/v1/responses`,
    requests,
    streams,
    close: () =>
      new Promise<void>((resolve) => {
        // Keep-alive sockets would hold close() open; this server is ours, end them all.
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  options: FakeResponsesOptions,
  requests: RecordedRequest[],
  streams: StreamedEvent[][],
): Promise<void> {
  const body = await readBody(req);
  if (body === undefined) {
    sendJson(res, 413, apiError('invalid_request_error', 'request body too large for the fake upstream'));
    return;
  }
  const json = parseBody(body, req.headers['content-encoding']);
  requests.push({
    method: req.method ?? '',
    url: req.url ?? '',
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    body,
    json,
  });

  const path = (req.url ?? '').split('?')[0] ?? '';
  if (req.method !== 'POST' || !path.endsWith('/responses')) {
    sendJson(res, 404, apiError('invalid_request_error', `the fake upstream serves only POST .../responses, not ${req.method} ${path}`));
    return;
  }
  if (!isRecord(json)) {
    sendJson(res, 400, apiError('invalid_request_error', 'the request body is not a JSON object'));
    return;
  }

  const plan = planResponse(json, options);
  if (json['stream'] !== true) {
    // The real API defaults to a plain JSON answer when `stream` is absent or false.
    sendJson(res, 200, plan.completed, { 'x-request-id': plan.requestId });
    return;
  }
  await stream(req, res, plan, options, streams);
}

async function stream(
  req: IncomingMessage,
  res: ServerResponse,
  plan: ResponsePlan,
  options: FakeResponsesOptions,
  streams: StreamedEvent[][],
): Promise<void> {
  let gone = false;
  res.on('close', () => {
    gone = true;
  });
  req.socket.setNoDelay(true);
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-request-id': plan.requestId,
  });
  res.flushHeaders();

  const written: StreamedEvent[] = [];
  streams.push(written);
  const delayMs = options.delayMs ?? 0;
  // Bounded: the plan is a finite list of events.
  for (const [index, event] of plan.events.entries()) {
    if (index > 0 && delayMs > 0) await sleep(delayMs);
    if (options.beforeEvent) await options.beforeEvent(index, event.type);
    if (gone) return;
    const comment = options.timestampComments ? `: ${SENT_AT_COMMENT}=${nowEpochMs().toFixed(3)}\n` : '';
    res.write(`${comment}event: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`);
    written.push(event);
  }
  res.end();
}

/** Epoch milliseconds with sub-millisecond precision, comparable across processes on one machine. */
export function nowEpochMs(): number {
  return performance.timeOrigin + performance.now();
}

interface ResponsePlan {
  requestId: string;
  events: StreamedEvent[];
  /** The final response object (as in `response.completed`), also the non-streaming answer. */
  completed: Record<string, unknown>;
}

/** Build the events for one answer, shaped as the Responses API streams them. */
function planResponse(request: Record<string, unknown>, options: FakeResponsesOptions): ResponsePlan {
  const deltas = options.deltas ? [...options.deltas] : splitWords(options.text ?? DEFAULT_ANSWER);
  const text = deltas.join('');
  const responseId = `resp_${randomHex(24)}`;
  const itemId = `msg_${randomHex(24)}`;
  const createdAt = Math.floor(Date.now() / 1000);

  const inputTokens = Math.max(1, Math.ceil(JSON.stringify(request['input'] ?? '').length / 4));
  const outputTokens = Math.max(1, deltas.length);
  const part = { type: 'output_text', text, annotations: [], logprobs: [] };
  const doneItem = { id: itemId, type: 'message', status: 'completed', content: [part], role: 'assistant' };

  const base = (status: string, output: unknown[], usage: unknown): Record<string, unknown> => ({
    id: responseId,
    object: 'response',
    created_at: createdAt,
    status,
    background: false,
    error: null,
    incomplete_details: null,
    instructions: request['instructions'] ?? null,
    max_output_tokens: request['max_output_tokens'] ?? null,
    max_tool_calls: null,
    model: typeof request['model'] === 'string' ? request['model'] : 'gpt-fake',
    output,
    parallel_tool_calls: request['parallel_tool_calls'] ?? true,
    previous_response_id: request['previous_response_id'] ?? null,
    prompt_cache_key: request['prompt_cache_key'] ?? null,
    reasoning: { effort: null, summary: null },
    safety_identifier: null,
    service_tier: 'default',
    store: request['store'] ?? true,
    temperature: 1,
    text: { format: { type: 'text' }, verbosity: 'medium' },
    tool_choice: 'auto',
    tools: [],
    top_logprobs: 0,
    top_p: 1,
    truncation: 'disabled',
    usage,
    user: null,
    metadata: {},
  });
  const completed = base('completed', [doneItem], {
    input_tokens: inputTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: outputTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: inputTokens + outputTokens,
  });

  const shapes: Array<[string, Record<string, unknown>]> = [
    ['response.created', { response: base('in_progress', [], null) }],
    ['response.in_progress', { response: base('in_progress', [], null) }],
    [
      'response.output_item.added',
      { output_index: 0, item: { id: itemId, type: 'message', status: 'in_progress', content: [], role: 'assistant' } },
    ],
    [
      'response.content_part.added',
      { item_id: itemId, output_index: 0, content_index: 0, part: { ...part, text: '' } },
    ],
    ...deltas.map((delta): [string, Record<string, unknown>] => [
      'response.output_text.delta',
      { item_id: itemId, output_index: 0, content_index: 0, delta, logprobs: [] },
    ]),
    ['response.output_text.done', { item_id: itemId, output_index: 0, content_index: 0, text, logprobs: [] }],
    ['response.content_part.done', { item_id: itemId, output_index: 0, content_index: 0, part }],
    ['response.output_item.done', { output_index: 0, item: doneItem }],
    ['response.completed', { response: completed }],
  ];
  const events = shapes.map(([type, fields], sequence): StreamedEvent => ({
    type,
    // The real API puts `type` first and numbers every event of a stream from 0.
    data: { type, sequence_number: sequence, ...fields },
  }));
  return { requestId: `req_${randomHex(16)}`, events, completed };
}

/** Split text into word-sized deltas that join back to exactly the same text. */
export function splitWords(text: string): string[] {
  const pieces: string[] = text.match(/\s*\S+/g) ?? [];
  const joined = pieces.join('');
  // Trailing whitespace is not matched by the pattern; keep it in the last piece.
  if (joined.length < text.length) pieces.push(text.slice(joined.length));
  return pieces.length > 0 ? pieces : [text];
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

function parseBody(body: Buffer, encoding: string | undefined): unknown {
  try {
    let decoded = body;
    if (encoding === 'gzip') decoded = gunzipSync(body);
    else if (encoding === 'deflate') decoded = inflateSync(body);
    else if (encoding === 'br') decoded = brotliDecompressSync(body);
    else if (encoding !== undefined && encoding !== 'identity') return undefined;
    return JSON.parse(decoded.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': String(body.length) });
  res.end(body);
}

function apiError(type: string, message: string): Record<string, unknown> {
  return { error: { type, message, param: null, code: null } };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** One event as a client reads it off the wire. */
export interface ParsedSseEvent {
  /** The `event:` field, or undefined when absent. */
  event: string | undefined;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The text of each comment line (after the colon and one optional space). */
  comments: string[];
}

/**
 * A small incremental SSE reader (WHATWG HTML §9.2.6, minus `id`/`retry`):
 * feed it decoded text as it arrives; it returns the events completed so far.
 */
export class SseReader {
  #pending = '';
  #event: string | undefined = undefined;
  #data: string[] = [];
  #comments: string[] = [];

  push(text: string): ParsedSseEvent[] {
    this.#pending += text;
    const done: ParsedSseEvent[] = [];
    // Bounded by the input: each pass consumes one line.
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.#pending);
      // A lone trailing CR may be the first half of CRLF: wait for the next chunk.
      if (!match || (match[0] === '\r' && match.index === this.#pending.length - 1)) break;
      const line = this.#pending.slice(0, match.index);
      this.#pending = this.#pending.slice(match.index + match[0].length);
      if (line === '') {
        if (this.#data.length > 0 || this.#event !== undefined) {
          done.push({ event: this.#event, data: this.#data.join('\n'), comments: this.#comments });
        }
        this.#event = undefined;
        this.#data = [];
        this.#comments = [];
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === '') this.#comments.push(value);
      else if (field === 'event') this.#event = value;
      else if (field === 'data') this.#data.push(value);
    }
    return done;
  }
}
