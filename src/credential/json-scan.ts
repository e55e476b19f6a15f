// The byte-level JSON scan of an answer that holds a secret (the OIDC calls).
// The secret's value is found by scanning bytes, and JSON.parse only ever
// sees a copy in which that value's bytes are blanked, so no decoded string
// holds a secret byte. The secret must be a plain token68 string (key.ts's
// alphabet: no quote, no backslash), so it never needs unescaping.
import { isToken68Byte, offHeap } from '../secret/key.js';

/** The answer cannot be read; the message names the reason, never a byte of a value. */
export class JsonScanError extends Error {}

export interface Members {
  /** Byte range of each wanted member's value. */
  ranges: Map<string, [number, number]>;
  /** The object decoded from a copy whose secret value is blanked. */
  decoded: Record<string, unknown>;
}

/**
 * Reads the top-level members of a JSON object answer. The ranges of the
 * `secret` member and of the `others` are recorded, and each may appear only
 * once: JSON.parse keeps the last of two equal names, the scan would not.
 */
export function answer(body: Buffer, secret: string, others: readonly string[]): Members {
  const bad = (): never => {
    throw new JsonScanError('the answer is not a JSON object');
  };
  const ranges = new Map<string, [number, number]>();
  let i = skipWs(body, 0);
  if (body[i] !== 0x7b) bad();
  i = skipWs(body, i + 1);
  if (body[i] === 0x7d) i++;
  else {
    for (;;) {
      if (body[i] !== 0x22) bad();
      const nameEnd = endOfString(body, i);
      if (nameEnd < 0) bad();
      // Member names are not secret: decode them, escapes included.
      let name: unknown;
      try {
        name = JSON.parse(body.toString('utf8', i, nameEnd));
      } catch {
        bad();
      }
      i = skipWs(body, nameEnd);
      if (body[i] !== 0x3a) bad();
      const vs = skipWs(body, i + 1);
      const ve = endOfValue(body, vs);
      if (ve < 0) bad();
      if (name === secret || others.includes(name as string)) {
        if (ranges.has(name as string)) throw new JsonScanError(`the answer repeats ${name as string}`);
        ranges.set(name as string, [vs, ve]);
      }
      i = skipWs(body, ve);
      if (body[i] === 0x2c) {
        i = skipWs(body, i + 1);
        continue;
      }
      if (body[i] !== 0x7d) bad();
      i++;
      break;
    }
  }
  if (skipWs(body, i) !== body.length) bad();
  const copy = offHeap(body.length);
  body.copy(copy);
  const r = ranges.get(secret);
  // The quotes stay, the contents become 'x': still one valid JSON string.
  if (r && body[r[0]] === 0x22) copy.fill(0x78, r[0] + 1, r[1] - 1);
  let decoded: unknown;
  try {
    decoded = JSON.parse(copy.toString('utf8'));
  } catch {
    decoded = null;
  } finally {
    copy.fill(0);
  }
  if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) bad();
  return { ranges, decoded: decoded as Record<string, unknown> };
}

/**
 * The contents' range of member `name` if it is a JSON string of 1 to `max`
 * token68 bytes (so without escapes), else null.
 */
export function secretString(body: Buffer, m: Members, name: string, max: number): [number, number] | null {
  const r = m.ranges.get(name);
  if (!r || body[r[0]] !== 0x22 || body[r[1] - 1] !== 0x22 || r[1] - r[0] < 2) return null;
  const [s, e] = [r[0] + 1, r[1] - 1];
  if (e - s < 1 || e - s > max) return null;
  for (let i = s; i < e; i++) if (!isToken68Byte(body[i]!)) return null;
  return [s, e];
}

const isWs = (c: number | undefined): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

export function skipWs(b: Buffer, i: number): number {
  while (i < b.length && isWs(b[i])) i++;
  return i;
}

/** b[i] is a quote: the offset past the closing quote, or -1. */
export function endOfString(b: Buffer, i: number): number {
  for (let j = i + 1; j < b.length; j++) {
    if (b[j] === 0x5c) j++;
    else if (b[j] === 0x22) return j + 1;
  }
  return -1;
}

/** The offset past the JSON value starting at i, or -1; JSON.parse judges its grammar later. */
export function endOfValue(b: Buffer, i: number): number {
  const c = b[i];
  if (c === 0x22) return endOfString(b, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (let j = i; j < b.length; j++) {
      const d = b[j];
      if (d === 0x22) {
        const e = endOfString(b, j);
        if (e < 0) return -1;
        j = e - 1;
      } else if (d === 0x7b || d === 0x5b) depth++;
      else if ((d === 0x7d || d === 0x5d) && --depth === 0) return j + 1;
    }
    return -1;
  }
  let j = i;
  while (j < b.length && !isWs(b[j]) && b[j] !== 0x2c && b[j] !== 0x7d && b[j] !== 0x5d) j++;
  return j > i ? j : -1;
}
