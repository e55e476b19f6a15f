// --dump-dir: an optional observer of one admitted exchange (it implements
// the relay's observer interface). The relay hands it the client's head
// (never the rewritten one, so never the credential line), the request body
// bytes as forwarded, the response head and its de-chunked body data as
// relayed, and how the exchange ended. On the byte path it only copies bytes, up to a
// cap, into blocks it owns, and notes a stream's terminal event (sse.ts);
// de-chunking, decoding, JSON and file writes run in a worker thread
// (dump-writer.ts), so no relayed byte waits for them.
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { RequestHead } from '../http/head.js';
import type { ExchangeObserver, Observer, Outcome } from '../relay/observer.js';
import { ResponseReader } from '../relay/sse.js';

/** Body bytes (as framed on the wire) a dump keeps per direction; the rest is counted only. */
export const DUMP_CAP = 4 * 1024 * 1024;
/**
 * Bytes all dumps may hold at once, in open exchanges and queued for the
 * writer: 512 connections at DUMP_CAP each would otherwise be 4 GiB. Past it
 * a dump is truncated early, never the relay slowed.
 */
export const DUMP_BUDGET = 128 * 1024 * 1024;
const BLOCK = 64 * 1024;

/**
 * Headers whose values are never decoded into a string nor written: the
 * credentials a client or an upstream may carry. Also any name containing
 * one of SECRET_PARTS.
 */
const SECRET_NAMES = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'api-key',
  'x-api-key',
  'x-goog-api-key',
  'x-auth-token',
  'x-amz-security-token',
]);
const SECRET_PARTS = ['token', 'secret', 'cookie'];
export const REDACTED = '[REDACTED]';

export interface Header {
  name: string;
  value: string;
}

/** One file for the writer; `body` blocks are transferred, not copied. */
export interface DumpRecord {
  file: string;
  kind: 'request' | 'response';
  method?: string;
  url?: string;
  status?: number;
  headers: Header[];
  body: Uint8Array[];
  /** Body bytes seen on the wire, kept or not. */
  bodyBytes: number;
  truncated: boolean;
  chunked: boolean;
  /** Content-Encoding as sent, '' when none. */
  encoding: string;
  /** Request only: the body never reached its end. */
  incomplete?: boolean;
  /** Response only: how it ended, when not at its framing. */
  ended?: string;
}

/** What the writer sends back: the bytes it released, and a line to log if the file failed. */
export interface WriterReply {
  released: number;
  error?: string;
}

/** The dump directory, the sequence, the shared byte budget and the writer thread. */
export class Dump implements Observer {
  private seq = 0;
  private held = 0;
  private worker: Worker | null = null;

  /** Budget bytes posted to the current writer and not yet acknowledged. */
  private posted = 0;
  /** Records expected or posted and not yet written (or failed), and who waits for none. */
  private inFlight = 0;
  private waiters: (() => void)[] = [];

  constructor(readonly dir: string, private readonly log: (line: string) => void) {
    // Started now, at start-up: starting a thread later would stall the
    // event loop in the middle of the first exchange.
    this.writer();
  }

  /** A tap for an admitted request; numbering and its time are taken now. */
  open(head: RequestHead): Tap {
    const stem = `${String(++this.seq).padStart(6, '0')}-${Date.now()}`;
    return new Tap(this, path.join(this.dir, stem), head);
  }

  /** Takes `n` bytes of the shared budget, if that many are left. */
  reserve(n: number): boolean {
    if (this.held + n > DUMP_BUDGET) return false;
    this.held += n;
    return true;
  }

  release(n: number): void {
    this.held -= n;
  }

  write(rec: DumpRecord, reserved: number): void {
    const transfer = rec.body.map((b) => b.buffer as ArrayBuffer);
    const w = this.writer();
    this.posted += reserved;
    this.inFlight++;
    w.postMessage({ rec, reserved }, transfer);
  }

  /**
   * Resolves once every record posted so far is written (or has failed), or
   * after `ms`: GET /shutdown waits for it, so the last turn's dump is not
   * lost when a workflow shuts the proxy down right after its client ends.
   */
  written(ms: number): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** A record is on its way, not yet posted: written() waits for it too. */
  expect(): void {
    this.inFlight++;
  }

  /** `records` are written, failed, or (for expect()) posted. */
  settle(records: number): void {
    this.inFlight = Math.max(0, this.inFlight - records);
    if (this.inFlight === 0) for (const wake of this.waiters.splice(0)) wake();
  }

  private writer(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./writer.js', import.meta.url));
    w.on('message', (m: WriterReply) => {
      this.posted -= m.released;
      this.release(m.released);
      if (m.error) this.log(m.error);
      this.settle(1);
    });
    // A writer that died loses the dumps it held and gives their budget
    // back; the next dump starts a new one.
    w.on('error', (err) => this.log(`dump writer failed: ${err.name}`));
    w.on('exit', () => {
      if (this.worker !== w) return;
      this.worker = null;
      this.release(this.posted);
      this.posted = 0;
      this.settle(this.inFlight);
    });
    // Dumps must not keep a shutting-down relay alive.
    w.unref();
    this.worker = w;
    return w;
  }
}

/** Body bytes copied into blocks this tap owns, within the cap and the shared budget. */
class Sink {
  blocks: Buffer[] = [];
  private used = BLOCK;
  /** Bytes of the shared budget held (whole blocks). */
  reserved = 0;
  kept = 0;
  seen = 0;
  /** The budget ran out once: later bytes are not kept either, so a dump is a prefix, never holed. */
  private full = false;

  constructor(private readonly dump: Dump) {}

  add(bytes: Buffer, from = 0): void {
    this.seen += bytes.length - from;
    let at = from;
    while (at < bytes.length && this.kept < DUMP_CAP && !this.full) {
      if (this.used === BLOCK) {
        if (!this.dump.reserve(BLOCK)) {
          this.full = true;
          return;
        }
        this.reserved += BLOCK;
        // Its own ArrayBuffer (not the shared pool), so it can be transferred.
        this.blocks.push(Buffer.allocUnsafeSlow(BLOCK));
        this.used = 0;
      }
      const take = Math.min(bytes.length - at, BLOCK - this.used, DUMP_CAP - this.kept);
      bytes.copy(this.blocks.at(-1)!, this.used, at, at + take);
      this.used += take;
      this.kept += take;
      at += take;
    }
  }

  /** The kept bytes, trimmed to length; the sink is handed over and emptied. */
  take(): Buffer[] {
    const out = this.blocks;
    if (out.length > 0 && this.used < BLOCK) out[out.length - 1] = out.at(-1)!.subarray(0, this.used);
    this.blocks = [];
    return out;
  }
}

export class Tap implements ExchangeObserver {
  private readonly request: Sink;
  private readonly response: Sink;
  private readonly reqHeaders: Header[];
  private readonly reqMethod: string;
  private readonly reqUrl: string;
  private readonly reqChunked: boolean;
  private readonly reqEncoding: string;
  private requestWritten = false;
  private done = false;
  /** 0 until the final response head. */
  private status = 0;
  private resHeaders: Header[] = [];
  /** Whether a stream's terminal event went by (sse.ts); only the ending is asked of it. */
  private reader: ResponseReader | null = null;

  constructor(private readonly dump: Dump, private readonly stem: string, head: RequestHead) {
    this.request = new Sink(dump);
    this.response = new Sink(dump);
    const buf = head.buf;
    this.reqMethod = buf.toString('latin1', head.method[0], head.method[1]);
    this.reqUrl = buf.toString('latin1', head.target[0], head.target[1]);
    this.reqHeaders = head.fields.map((f) => header(buf, f.start, f.colon, f.vStart, f.vEnd));
    this.reqChunked = isChunked(this.reqHeaders);
    this.reqEncoding = encodingOf(this.reqHeaders);
  }

  /** Request body bytes exactly as forwarded (framing included). */
  requestBody(bytes: Buffer): void {
    if (!this.requestWritten) this.request.add(bytes);
  }

  /** The request body reached its end: its file is written now, before any answer. */
  requestEnd(): void {
    if (!this.requestWritten) this.writeRequest(false);
  }

  responseHead(status: number, head: Buffer): void {
    if (this.done) return;
    this.status = status;
    this.resHeaders = responseHeaders(head);
    this.reader = new ResponseReader(head, noop, noop);
  }

  responseBody(data: Buffer): void {
    if (this.done) return;
    this.response.add(data);
    this.reader?.data(data);
  }

  /**
   * The exchange is over: 'complete' at the response's framing, otherwise the
   * error kind or 'client_abort'. Only the first call counts.
   */
  end(how: Outcome): void {
    if (this.done) return;
    this.done = true;
    if (!this.requestWritten) this.writeRequest(true);
    const reader = this.reader;
    if (!reader) return; // No final response head came: no response file.
    // Codex closes its connection as soon as it has read response.completed,
    // often before the upstream's chunk terminator (issue 17): a client that
    // leaves after the terminal event went by has had the whole turn.
    // Counted from now, not from when it is posted: a compressed reply is
    // still being decoded, and GET /shutdown must wait for its file too.
    this.dump.expect();
    reader.finish(() => {
      this.writeResponse(how === 'client_abort' && reader.terminal ? 'complete' : how);
      this.dump.settle(1);
    });
  }

  private writeResponse(how: Outcome): void {
    const r = this.response;
    const rec: DumpRecord = {
      file: `${this.stem}-response.json`,
      kind: 'response',
      status: this.status,
      headers: this.resHeaders,
      body: [],
      bodyBytes: r.seen,
      truncated: r.kept < r.seen,
      // The parser has already taken the chunk framing off.
      chunked: false,
      encoding: encodingOf(this.resHeaders),
      ...(how === 'complete' ? {} : { ended: how }),
    };
    this.send(rec, r);
  }

  private writeRequest(incomplete: boolean): void {
    this.requestWritten = true;
    const r = this.request;
    const rec: DumpRecord = {
      file: `${this.stem}-request.json`,
      kind: 'request',
      method: this.reqMethod,
      url: this.reqUrl,
      headers: this.reqHeaders,
      body: [],
      bodyBytes: r.seen,
      truncated: r.kept < r.seen,
      chunked: this.reqChunked,
      encoding: this.reqEncoding,
      ...(incomplete ? { incomplete: true } : {}),
    };
    this.send(rec, r);
  }

  private send(rec: DumpRecord, sink: Sink): void {
    rec.body = sink.take();
    this.dump.write(rec, sink.reserved);
    sink.reserved = 0;
  }
}

/** One field line as a dump entry; a secret's value is never decoded. */
function header(buf: Buffer, start: number, colon: number, vStart: number, vEnd: number): Header {
  const name = buf.toString('latin1', start, colon);
  return { name, value: isSecret(name) ? REDACTED : buf.toString('utf8', vStart, vEnd) };
}

export function isSecret(name: string): boolean {
  const lower = name.toLowerCase();
  return SECRET_NAMES.has(lower) || SECRET_PARTS.some((p) => lower.includes(p));
}

/** The field lines of a response head llhttp has accepted, in wire order and case. */
function responseHeaders(buf: Buffer): Header[] {
  const out: Header[] = [];
  const end = buf.length - 4;
  let i = buf.indexOf('\r\n') + 2;
  while (i < end + 2) {
    const eol = buf.indexOf('\r\n', i);
    const colon = buf.indexOf(0x3a, i);
    if (colon > 0 && colon < eol) {
      let vs = colon + 1;
      let ve = eol;
      while (vs < ve && (buf[vs] === 0x20 || buf[vs] === 0x09)) vs++;
      while (ve > vs && (buf[ve - 1] === 0x20 || buf[ve - 1] === 0x09)) ve--;
      out.push(header(buf, i, colon, vs, ve));
    }
    i = eol + 2;
  }
  return out;
}

/** Every line of a field joined, as RFC 9110 §5.3 combines them. */
function joined(headers: Header[], name: string): string {
  let v = '';
  for (const h of headers) if (h.name.toLowerCase() === name) v = v ? `${v}, ${h.value}` : h.value;
  return v.trim();
}

function isChunked(headers: Header[]): boolean {
  return /(?:^|,)\s*chunked\s*$/i.test(joined(headers, 'transfer-encoding'));
}

function encodingOf(headers: Header[]): string {
  const v = joined(headers, 'content-encoding').toLowerCase();
  return v === 'identity' ? '' : v;
}

function noop(): void {}
