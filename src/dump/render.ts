// The bytes of one --dump-dir file, never more than FILE_CAP, whatever the
// body's shape (issue 19). JSON.stringify(value, null, 2) grew with the
// square of the nesting depth: a 32 KB array nested 16,300 deep became a
// 531 MB file and 1.6 GB of memory. Here a body is parsed only when a byte
// scan shows it shallow and small enough, and is written by a pretty-printer
// that stops at the file's cap; what does not fit is written as a string, cut
// to fit and marked "truncated".
import { DUMP_CAP, type DumpRecord, type Header } from './tap.js';

/**
 * Bytes a file may take beyond DUMP_CAP: the method, URL or status, the
 * headers, the notes after the body and the punctuation. A body gets what
 * the file has left, so with an ordinary head it has DUMP_CAP and more.
 */
export const ENVELOPE = 64 * 1024;
/** The most bytes one dump file takes on disk: 4,259,840. */
export const FILE_CAP = DUMP_CAP + ENVELOPE;
/**
 * Everything after the body: the notes and the closing brace, at most 457
 * bytes (a coding name of SHORT bytes, a 16-digit `"body_bytes"`, the
 * longest `"ended"` code, upstream_trailers_too_large).
 */
const NOTES_ROOM = 512;
/**
 * From the file's start through the headers. A header that does not fit is
 * left out, and `"head_truncated": true` says so. What the head and the
 * notes leave, the body gets: with the longest head, DUMP_CAP and its two
 * quotes, and 498 bytes more.
 */
const HEAD_ROOM = ENVELOPE - 2 * NOTES_ROOM;
/** The most a method, URL or coding name takes; admission makes the first two "POST" and "/v1/responses". */
const SHORT = 256;
/** Nesting levels JSON.parse is given; deeper is kept as a string, as the original keeps it (serde_json's limit, 128). */
export const MAX_DEPTH = 128;
/**
 * Values (counted as openings and commas) JSON.parse is given. A parsed value
 * takes up to about 100 bytes of heap: 4 MiB of `[{},{},…]` grew the heap by
 * 137 MB. One value per 32 bytes of the cap keeps a parse to about 13 MB; a
 * body with more is kept as a string.
 */
export const MAX_VALUES = DUMP_CAP / 32;
/** Characters escaped at once: a long string never has a whole escaped copy (up to 6 times its size). */
const SLICE = 16 * 1024;

/** Thrown when a write would pass the limit in force; past FILE_CAP itself the dump fails with this code. */
const FULL = Object.assign(new Error('a dump file would pass its cap'), { code: 'EFBIG' });

/** What the writer made of a body. */
export interface Body {
  /** Decoded bytes, or, when `coding` is set, the bytes as sent (written as base64). */
  data: Buffer;
  /** A Content-Encoding that could not be decoded here; '' when `data` is decoded. */
  coding: string;
  /** Already cut: by the wire cap, the shared budget, or decoding's cap. */
  truncated: boolean;
}

/** One file's bytes, written into one buffer that the next dump reuses (the writer writes one at a time). */
class Out {
  readonly buf = Buffer.allocUnsafeSlow(FILE_CAP);
  pos = 0;
  limit = FILE_CAP;

  put(s: string): void {
    const n = Buffer.byteLength(s);
    if (this.pos + n > this.limit) throw FULL;
    this.pos += this.buf.write(s, this.pos, n);
  }

  /** `s` as a JSON string: whole, or, if `mayCut`, its longest prefix that fits. Says whether it was whole. */
  str(s: string, mayCut: boolean): boolean {
    this.put('"');
    // The closing quote always has its byte.
    this.limit -= 1;
    let whole: boolean;
    try {
      whole = this.chars(s, mayCut);
    } finally {
      this.limit += 1;
    }
    this.put('"');
    return whole;
  }

  private chars(s: string, mayCut: boolean): boolean {
    for (let at = 0; at < s.length; ) {
      let end = Math.min(at + SLICE, s.length);
      // A surrogate pair is never split: JSON.stringify would escape each half alone.
      if (end < s.length && isHighSurrogate(s.charCodeAt(end - 1))) end--;
      const esc = JSON.stringify(s.slice(at, end)).slice(1, -1);
      if (this.pos + Buffer.byteLength(esc) <= this.limit) {
        this.put(esc);
        at = end;
        continue;
      }
      if (!mayCut) throw FULL;
      // The slice that does not fit, one code point at a time: an escape is never cut.
      for (const ch of s.slice(at, end)) {
        const e = JSON.stringify(ch).slice(1, -1);
        if (this.pos + Buffer.byteLength(e) > this.limit) break;
        this.put(e);
      }
      return false;
    }
    return true;
  }

  /** A value JSON.parse made, exactly as JSON.stringify(v, null, 2) writes it at this indent. */
  value(v: unknown, indent: string): void {
    if (typeof v === 'string') {
      this.str(v, false);
      return;
    }
    if (v === null || typeof v !== 'object') return this.put(JSON.stringify(v));
    const inner = `${indent}  `;
    if (Array.isArray(v)) {
      if (v.length === 0) return this.put('[]');
      for (let i = 0; i < v.length; i++) {
        this.put(i === 0 ? `[\n${inner}` : `,\n${inner}`);
        this.value(v[i], inner);
      }
      return this.put(`\n${indent}]`);
    }
    const keys = Object.keys(v);
    if (keys.length === 0) return this.put('{}');
    for (let i = 0; i < keys.length; i++) {
      this.put(i === 0 ? `{\n${inner}` : `,\n${inner}`);
      this.str(keys[i]!, false);
      this.put(': ');
      this.value((v as Record<string, unknown>)[keys[i]!], inner);
    }
    this.put(`\n${indent}}`);
  }

  /** Runs `write` with at most `room` more bytes; what it left unwritten on FULL is taken back. */
  within(room: number, write: () => void): boolean {
    const at = this.pos;
    const limit = this.limit;
    this.limit = Math.min(limit, at + room);
    try {
      write();
      return true;
    } catch (err) {
      if (err !== FULL) throw err;
      this.pos = at;
      return false;
    } finally {
      this.limit = limit;
    }
  }
}

const isHighSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;

let out: Out | null = null;

/**
 * The file for `rec`: pretty JSON with a 2-space indent, exactly what
 * JSON.stringify(…, null, 2) wrote before for an ordinary body, and never
 * more than FILE_CAP bytes. The result is a view that the next call reuses.
 */
export function renderFile(rec: DumpRecord, body: Body): Buffer {
  out ??= new Out();
  const o = out;
  o.pos = 0;
  o.limit = HEAD_ROOM;
  let headCut = false;
  const short = (s: string): void => {
    if (!o.within(SHORT, () => (headCut = !o.str(s, true) || headCut))) throw FULL;
  };
  o.put('{\n  ');
  if (rec.kind === 'request') {
    o.put('"method": ');
    short(rec.method ?? '');
    o.put(',\n  "url": ');
    short(rec.url ?? '');
  } else {
    o.put(`"status": ${rec.status ?? 0}`);
  }
  o.put(',\n  "headers": ');
  headCut = !headers(o, rec.headers) || headCut;

  o.limit = FILE_CAP - NOTES_ROOM;
  o.put(',\n  "body": ');
  let truncated = body.truncated;
  if (body.coding) {
    // Base64 needs no escapes: 3 bytes per 4 characters, cut at a whole group.
    const keep = Math.min(body.data.length, Math.floor((o.limit - o.pos - 2) / 4) * 3);
    o.put(`"${body.data.toString('base64', 0, keep)}"`);
    truncated ||= keep < body.data.length;
  } else {
    truncated = !text(o, body.data, truncated) || truncated;
  }

  o.limit = FILE_CAP;
  if (body.coding) {
    o.put(',\n  "body_encoding": "base64",\n  "content_encoding": ');
    short(body.coding);
  }
  if (truncated) o.put(`,\n  "truncated": true,\n  "body_bytes": ${rec.bodyBytes}`);
  if (rec.incomplete) o.put(',\n  "incomplete": true');
  if (rec.ended) {
    o.put(',\n  "ended": ');
    o.str(rec.ended, false);
  }
  if (headCut) o.put(',\n  "head_truncated": true');
  o.put('\n}\n');
  return o.buf.subarray(0, o.pos);
}

/** The headers array, each `{name, value}` whole or left out; false when some were left out. */
function headers(o: Out, list: Header[]): boolean {
  const start = o.pos;
  let written = 0;
  for (const h of list) {
    // The closing `\n  ]` always has its 4 bytes.
    const fits = o.within(o.limit - 4 - o.pos, () => {
      o.put(written === 0 ? '[\n    ' : ',\n    ');
      o.value({ name: h.name, value: h.value }, '    ');
    });
    if (!fits) break;
    written++;
  }
  if (written === 0) {
    o.pos = start;
    o.put('[]');
  } else {
    o.put('\n  ]');
  }
  return written === list.length;
}

/**
 * The body as its parsed JSON value when it is whole, JSON, shallow and small
 * enough, and its pretty form fits; otherwise as one string (lossy UTF-8),
 * cut to fit. False when the string was cut.
 */
function text(o: Out, data: Buffer, truncated: boolean): boolean {
  const s = data.toString('utf8');
  if (!truncated && parseable(data)) {
    let value: unknown;
    let json = true;
    try {
      value = JSON.parse(s);
    } catch {
      json = false;
    }
    if (json && o.within(o.limit - o.pos, () => o.value(value, '  '))) return true;
  }
  return o.str(s, true);
}

/**
 * Whether JSON.parse may be given these bytes: nested at most MAX_DEPTH deep,
 * with at most MAX_VALUES values. A byte scan that skips strings; whether the
 * bytes are JSON at all is JSON.parse's to say. Deep nesting never reaches
 * JSON.parse, whose own recursion would otherwise decide.
 */
export function parseable(b: Buffer): boolean {
  let depth = 0;
  let values = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c === 0x22) {
      // A string: to its closing quote, stepping over each escaped byte.
      for (i++; i < b.length && b[i] !== 0x22; i++) if (b[i] === 0x5c) i++;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_DEPTH || ++values > MAX_VALUES) return false;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    } else if (c === 0x2c && ++values > MAX_VALUES) {
      return false;
    }
  }
  return true;
}
