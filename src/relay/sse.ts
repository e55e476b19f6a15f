// Reads what a response says about itself from the body data an observer is
// given (observer.ts): whether a Responses stream's terminal event
// (response.completed, response.incomplete, response.failed) has gone by,
// and the `usage` it carries, or a JSON reply's `usage`. One reader, used by
// the spend guard's meter and the dump tap. It keeps only what it picks
// (json-pick.ts), never an event or a body, and decodes gzip, deflate, br
// and zstd (where Node has it) with a bounded output.
//
// zlib decodes on the thread pool, so decoded text arrives after the bytes
// were relayed: `settled()` tells when everything given so far has been
// read, which the spend guard waits for before it judges the next request.
import zlib from 'node:zlib';
import { JsonPick, type Pick } from './json-pick.js';

const TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);
/** The same as JSON strings without escapes, as they are sent: compared without parsing. */
const TERMINAL_JSON = new Set([...TERMINAL].map((t) => JSON.stringify(t)));
/** Each picked value (an event's type, its usage, the model) is kept up to this; a real usage object is about 300 bytes. */
export const PICK_CAP = 16 * 1024;
/** Decoded bytes read per response at most: a small compressed body may expand without end. */
export const DECODED_MAX = 64 * 1024 * 1024;

/** What a terminal event, or a JSON reply, reports. */
export interface Report {
  usage: Pick;
  model: Pick;
}

type Decoder = zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress;

/**
 * What a reply that cannot be read reports: usage too large to trust. A
 * budget must not let such a reply through as unmetered, since a client
 * chooses the Accept-Encoding that reaches the upstream (budget/usage.ts:
 * untrusted usage exhausts --max-tokens).
 */
const UNREADABLE: Report = {
  usage: { value: null, duplicate: false, oversized: true },
  model: { value: null, duplicate: false, oversized: false },
};

// zstd only where this Node has it (22.15+, 23.8+). The cast is for @types/node 20.
const createZstd = (zlib as unknown as { createZstdDecompress?: () => Decoder }).createZstdDecompress;

function decoderFor(coding: string): Decoder | null | undefined {
  switch (coding) {
    case '':
    case 'identity':
      return null;
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip();
    case 'deflate':
      return zlib.createInflate();
    case 'br':
      return zlib.createBrotliDecompress();
    case 'zstd':
      return createZstd?.();
    default:
      // Unknown and stacked codings ("gzip, br") are not read.
      return undefined;
  }
}

const LF = 0x0a;
const CR = 0x0d;
const DATA = Buffer.from('data:');
const DATA_WORD = DATA.subarray(0, 4);
const NEWLINE = Buffer.from('\n');

const enum Field {
  /** The line's first bytes are still coming. */
  Unknown,
  /** A data line: the optional space after the colon is next. */
  DataStart,
  Data,
  Other,
}

export class ResponseReader {
  /** A terminal event has been read. */
  terminal = false;
  private readonly sse: boolean;
  private readonly pick: JsonPick | null = null;
  private z: Decoder | null = null;
  private decoded = 0;
  private failed = false;
  private finishing = false;
  /** Pieces handed to the decoder, and pieces it is done with. */
  private given = 0;
  private taken = 0;
  private waiters: { at: number; cb: () => void }[] = [];
  // SSE line state.
  private field = Field.Unknown;
  private head = Buffer.alloc(DATA.length);
  private headLen = 0;
  private lineLen = 0;
  private dataLines = 0;
  private skipLF = false;

  constructor(
    responseHead: Buffer,
    private readonly onReport: (r: Report) => void,
    private readonly warn: (line: string) => void,
  ) {
    const type = fieldValue(responseHead, 'content-type').split(';')[0]!.trim().toLowerCase();
    this.sse = type === 'text/event-stream';
    const json = type === 'application/json' || type.endsWith('+json');
    if (!this.sse && !json) return;
    const coding = fieldValue(responseHead, 'content-encoding').toLowerCase();
    const z = decoderFor(coding);
    if (z === undefined) {
      this.warn(`a response with Content-Encoding ${JSON.stringify(coding.slice(0, 40))} cannot be read: its usage counts as untrusted`);
      this.onReport(UNREADABLE);
      return;
    }
    this.pick = this.sse
      ? new JsonPick([['type'], ['response', 'usage'], ['response', 'model']], PICK_CAP, (i) => i !== 0 || isTerminal(this.pick!.picks[0]!))
      : new JsonPick([['usage'], ['model']], PICK_CAP);
    if (z) this.attach(z);
  }

  /** Everything given so far has been read. */
  get busy(): boolean {
    return this.taken < this.given;
  }

  /** Body data as relayed (de-chunked, still encoded). */
  data(bytes: Buffer): void {
    if (!this.pick || this.finishing || this.failed) return;
    if (!this.z) return this.read(bytes);
    this.given++;
    // A copy: the relay's buffer is valid during the call only, zlib keeps it until it is decoded.
    this.z.write(Buffer.from(bytes), this.took);
  }

  /** The response is over: reads what the decoder still holds, reports a JSON reply, then calls `done`. */
  finish(done: () => void): void {
    if (this.finishing) return;
    this.finishing = true;
    const z = this.z;
    if (!z || this.failed) return this.close(done);
    this.given++;
    let once = false;
    const end = (): void => {
      if (once) return;
      once = true;
      this.close(done);
    };
    z.once('end', end).once('error', end).once('close', end);
    z.end();
  }

  /** Calls `cb` once everything given so far has been read (at once if it has); returns a cancel. */
  settled(cb: () => void): () => void {
    if (!this.busy) {
      cb();
      return noop;
    }
    const w = { at: this.given, cb };
    this.waiters.push(w);
    return () => void (this.waiters = this.waiters.filter((x) => x !== w));
  }

  private attach(z: Decoder): void {
    this.z = z;
    z.on('data', (d: Buffer) => {
      this.decoded += d.length;
      if (this.decoded > DECODED_MAX) {
        this.warn(`a response decoded to more than ${DECODED_MAX} bytes was read no further: its usage counts as untrusted`);
        this.onReport(UNREADABLE);
        return this.fail();
      }
      this.read(d);
    });
    // A body cut short (client abort, upstream failure) or not really in its coding: what was read stands.
    z.on('error', () => this.fail());
  }

  private readonly took = (): void => {
    if (this.failed) return;
    this.taken++;
    this.wake();
  };

  private fail(): void {
    if (this.failed) return;
    this.failed = true;
    this.z?.destroy();
    if (!this.finishing) this.settleAll();
  }

  private close(done: () => void): void {
    if (this.pick && !this.failed) {
      // An event cut short of its blank line is read as if it had one: a client may still act on it.
      if (this.sse) this.dispatch();
      else this.onReport({ usage: this.pick.picks[0]!, model: this.pick.picks[1]! });
    }
    done();
    this.settleAll();
  }

  private settleAll(): void {
    this.taken = this.given;
    this.wake();
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.at <= this.taken);
    this.waiters = this.waiters.filter((w) => w.at > this.taken);
    for (const w of ready) w.cb();
  }

  private read(text: Buffer): void {
    if (!this.sse) return this.pick!.feed(text);
    // SSE lines end with CRLF, LF or CR (WHATWG HTML §9.2.5).
    let i = 0;
    let cr = -2;
    const n = text.length;
    while (i < n) {
      if (this.skipLF) {
        this.skipLF = false;
        if (text[i] === LF) {
          i++;
          continue;
        }
      }
      let eol = text.indexOf(LF, i);
      if (cr !== -1 && cr < i) cr = text.indexOf(CR, i);
      if (cr !== -1 && (eol === -1 || cr < eol)) eol = cr;
      this.lineBytes(text, i, eol === -1 ? n : eol);
      if (eol === -1) return;
      this.lineEnd();
      this.skipLF = text[eol] === CR;
      i = eol + 1;
    }
  }

  private lineBytes(text: Buffer, from: number, to: number): void {
    this.lineLen += to - from;
    let i = from;
    while (this.field === Field.Unknown && i < to) {
      this.head[this.headLen++] = text[i++]!;
      if (this.headLen === DATA.length) this.field = this.head.equals(DATA) ? Field.DataStart : Field.Other;
    }
    if (this.field === Field.DataStart && i < to) {
      if (text[i] === 0x20) i++;
      this.dataLine();
    }
    if (this.field === Field.Data && i < to && !this.pick!.stopped) this.pick!.feed(text.subarray(i, to));
  }

  /** A data line starts: lines of one event are joined with LF. */
  private dataLine(): void {
    this.field = Field.Data;
    if (this.dataLines++ > 0 && !this.pick!.stopped) this.pick!.feed(NEWLINE);
  }

  private lineEnd(): void {
    if (this.lineLen === 0) this.dispatch();
    // "data" alone is a data line with an empty value.
    else if (this.field === Field.DataStart || (this.headLen === DATA_WORD.length && this.head.subarray(0, this.headLen).equals(DATA_WORD))) this.dataLine();
    this.field = Field.Unknown;
    this.headLen = this.lineLen = 0;
  }

  /** A blank line ends an event. */
  private dispatch(): void {
    const pick = this.pick!;
    if (this.dataLines > 0) {
      const [type, usage, model] = pick.picks as [Pick, Pick, Pick];
      if (isTerminal(type)) {
        this.terminal = true;
        if (usage.oversized) this.warn(`a terminal event's usage larger than ${PICK_CAP} bytes was skipped`);
        // Two types in one event: whichever a client believes, the usage is not to be trusted.
        this.onReport({ usage: type.duplicate ? { ...usage, duplicate: true } : usage, model });
      }
    }
    this.dataLines = 0;
    pick.reset();
  }
}

function isTerminal(type: Pick): boolean {
  if (!type.value) return false;
  if (!type.value.includes(0x5c)) return TERMINAL_JSON.has(type.value.toString('latin1'));
  try {
    return TERMINAL.has(JSON.parse(type.value.toString('utf8')) as string);
  } catch {
    return false;
  }
}

/** A response field's lines joined (RFC 9110 §5.3), from a head llhttp has accepted; '' when absent. */
export function fieldValue(head: Buffer, name: string): string {
  const values: string[] = [];
  let i = head.indexOf('\r\n') + 2;
  while (i > 1 && i < head.length) {
    const eol = head.indexOf('\r\n', i);
    if (eol <= i) break;
    const colon = head.indexOf(0x3a, i);
    if (colon > i && colon < eol && colon - i === name.length && head.toString('latin1', i, colon).toLowerCase() === name) {
      values.push(head.toString('latin1', colon + 1, eol).trim());
    }
    i = eol + 2;
  }
  return values.join(', ');
}

function noop(): void {}
