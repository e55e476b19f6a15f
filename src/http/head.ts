// Splits a request head that llhttp has accepted into byte ranges, and
// re-checks it against RFC 9112's grammar on its own. Admission and rewrite
// work from these offsets only, so the bytes that are judged are the bytes
// that are forwarded. llhttp in strict mode already rejects most of what is
// checked here; the second check costs one pass over a capped buffer and
// does not depend on a wrapper we cannot inspect.

export interface Field {
  /** Start of the line. */
  start: number;
  /** Offset of the colon: the name is [start, colon). */
  colon: number;
  /** Value without surrounding whitespace: [vStart, vEnd). */
  vStart: number;
  vEnd: number;
  /** Offset just past the line's CRLF. */
  next: number;
}

export interface RequestHead {
  buf: Buffer;
  method: [number, number];
  target: [number, number];
  version: [number, number];
  fields: Field[];
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;

// tchar (RFC 9110 §5.6.2): "!#$%&'*+-.^_`|~", DIGIT, ALPHA.
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;

// field-vchar / obs-text plus SP and HTAB inside a value (RFC 9110 §5.5).
// Everything else, CR, LF, NUL and DEL among them, is refused.
const isValueByte = (b: number): boolean => b === HTAB || (b >= SP && b !== 0x7f);

/** Returns null when the head is not exactly request-line *(field-line CRLF) CRLF. */
export function splitRequestHead(buf: Buffer): RequestHead | null {
  let i = 0;
  // RFC 9112 §2.2: a server SHOULD ignore empty lines received before the request-line.
  while (i + 1 < buf.length && buf[i] === CR && buf[i + 1] === LF) i += 2;

  const mStart = i;
  while (i < buf.length && TCHAR[buf[i]!]) i++;
  if (i === mStart || buf[i] !== SP) return null;
  const method: [number, number] = [mStart, i];
  const tStart = ++i;
  while (i < buf.length && buf[i]! > SP && buf[i]! < 0x7f) i++;
  if (i === tStart || buf[i] !== SP) return null;
  const target: [number, number] = [tStart, i];
  const vStart = ++i;
  i = vStart + 8;
  if (i + 1 >= buf.length || buf[i] !== CR || buf[i + 1] !== LF) return null;
  if (!/^HTTP\/\d\.\d$/.test(buf.toString('latin1', vStart, i))) return null;
  const version: [number, number] = [vStart, i];
  i += 2;

  const fields: Field[] = [];
  for (;;) {
    if (i + 1 >= buf.length) return null;
    if (buf[i] === CR) {
      // The empty line must end the buffer: llhttp stopped exactly there.
      return buf[i + 1] === LF && i + 2 === buf.length ? { buf, method, target, version, fields } : null;
    }
    const start = i;
    while (i < buf.length && TCHAR[buf[i]!]) i++;
    if (i === start || buf[i] !== COLON) return null;
    const colon = i++;
    while (buf[i] === SP || buf[i] === HTAB) i++;
    const vs = i;
    while (i < buf.length && isValueByte(buf[i]!)) i++;
    if (i + 1 >= buf.length || buf[i] !== CR || buf[i + 1] !== LF) return null;
    let ve = i;
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--;
    i += 2;
    fields.push({ start, colon, vStart: vs, vEnd: ve, next: i });
  }
}

/** ASCII case-insensitive match of a field name against a lower-case literal. */
export function nameIs(h: RequestHead, f: Field, lower: string): boolean {
  if (f.colon - f.start !== lower.length) return false;
  for (let k = 0; k < lower.length; k++) {
    if ((h.buf[f.start + k]! | 0x20) !== lower.charCodeAt(k)) return false;
  }
  return true;
}

export function bytesAre(buf: Buffer, [s, e]: [number, number], literal: string): boolean {
  return e - s === literal.length && buf.toString('latin1', s, e) === literal;
}

export function value(h: RequestHead, f: Field): string {
  return h.buf.toString('latin1', f.vStart, f.vEnd);
}
