// Picks a few values out of a JSON text that arrives in pieces (sse.ts: an
// SSE event's `type` and `response.usage`; a JSON reply's `usage`), keeping
// only those values, each up to a cap, never the text around them: a
// response.completed event echoes the request's instructions and the whole
// output, so keeping the event would cost as much as the request did, and
// capping it would let a large request go uncounted. The scan is tolerant:
// it follows structure (strings, objects, arrays) without validating the
// text, which the client's own parser does.
//
// A value is reported with what makes it untrustworthy: its key repeated on
// the path to it (`{"usage":…,"usage":…}`: JSON.parse would keep the last,
// another parser the first), a key repeated inside it, or a size past the cap.

/** One picked value. */
export interface Pick {
  /** The value's bytes as sent, once it is complete; null while absent. */
  value: Buffer | null;
  /** A key on its path came twice, or an object inside it repeats a key. */
  duplicate: boolean;
  /** It passed the cap, so it was not kept (value stays null). */
  oversized: boolean;
}

interface Frame {
  obj: boolean;
  /** Bit p: paths[p] has matched every key down to this object. */
  live: number;
  /** Keys seen here that a live path names, or every key inside a picked value (made at the first). */
  keys: Set<string> | null;
  /** A key comes next (after '{' or ','). */
  expectKey: boolean;
}

/** Longest key compared outside a picked value; the keys looked for are short. */
const KEY_MAX = 256;
/**
 * Nesting kept as frames. The paths looked for are a few levels deep; past
 * this only a count is kept, so a hostile reply of `[[[[…` costs a number,
 * not a frame per byte (a 65 KB gzip of 64 MiB of `[` took the heap past
 * 1 GiB before). A picked value nested deeper counts as oversized.
 */
const DEPTH_MAX = 64;
const enum C {
  Quote = 0x22,
  Backslash = 0x5c,
  Colon = 0x3a,
  Comma = 0x2c,
  OpenObj = 0x7b,
  CloseObj = 0x7d,
  OpenArr = 0x5b,
  CloseArr = 0x5d,
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

export class JsonPick {
  /** One per path, reused for each text: valid until the next reset(). */
  readonly picks: Pick[];
  /** onValue asked to stop: the rest of the text is not scanned. */
  stopped = false;
  private stack: Frame[] = [];
  /** Levels open beyond DEPTH_MAX, tracked by count only. */
  private deep = 0;
  private inString = false;
  private inScalar = false;
  private escaped = false;
  /** The string being read is a key; its bytes are collected up to a limit. */
  private keyParts: Buffer[] | null = null;
  private keySize = 0;
  /** What the value after the last key is: bits of paths it ends (`target`) or continues (`live`). */
  private target = 0;
  private live = 0;
  // The value being kept: which paths it answers, the depth it starts at and how it began.
  private capBits = 0;
  private capDepth = -1;
  private capKind: 'string' | 'scalar' | 'container' = 'string';
  private capParts: Buffer[] = [];
  private capSize = 0;
  private capOver = false;
  private capDup = false;
  /** Paths oversize() marked for the value being kept (so its end is not taken for a second value). */
  private capMarked = 0;

  /** `paths` (at most 31, none inside another); `onValue(i)` runs when paths[i]'s value is complete and returns false to stop. */
  constructor(
    private readonly paths: readonly (readonly string[])[],
    private readonly cap: number,
    private readonly onValue: (i: number) => boolean = () => true,
  ) {
    this.picks = paths.map(() => ({ value: null, duplicate: false, oversized: false }));
    this.reset();
  }

  /** Ready for a new text. */
  reset(): void {
    for (const p of this.picks) {
      p.value = null;
      p.duplicate = p.oversized = false;
    }
    this.stopped = this.inString = this.inScalar = this.escaped = false;
    this.stack = [];
    this.deep = 0;
    this.keyParts = null;
    this.target = 0;
    this.live = (1 << this.paths.length) - 1;
    this.capBits = 0;
    this.capDepth = -1;
    this.capMarked = 0;
  }

  feed(buf: Buffer): void {
    let capFrom = 0;
    let keyFrom = 0;
    let backslash = -2;
    let i = 0;
    const n = buf.length;
    while (i < n && !this.stopped) {
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          i++;
          continue;
        }
        // Straight to the next quote; a backslash before it escapes one byte.
        const q = buf.indexOf(C.Quote, i);
        if (backslash !== -1 && backslash < i) backslash = buf.indexOf(C.Backslash, i);
        if (backslash !== -1 && (q === -1 || backslash < q)) {
          this.escaped = true;
          i = backslash + 1;
          continue;
        }
        if (q === -1) break;
        this.inString = false;
        if (this.keyParts) {
          this.onKey(this.keyParts.length === 0 && keyFrom > 0 ? this.keyIn(buf, keyFrom, q) : (this.keyAdd(buf, keyFrom, q), this.keyText()));
        } else if (this.capBits && this.capKind === 'string' && this.stack.length === this.capDepth) {
          this.capEnd(buf, capFrom, q + 1);
        }
        i = q + 1;
        continue;
      }
      const c = buf[i]!;
      if (this.inScalar) {
        if (!(isSpace(c) || c === C.Comma || c === C.CloseObj || c === C.CloseArr || c === C.Colon)) {
          i++;
          continue;
        }
        this.inScalar = false;
        if (this.capBits && this.capKind === 'scalar' && this.stack.length === this.capDepth) this.capEnd(buf, capFrom, i);
        if (this.stopped) break;
      }
      // Beyond DEPTH_MAX no key is read: no path goes that deep.
      const top = this.deep ? undefined : this.stack[this.stack.length - 1];
      switch (c) {
        case C.Quote:
          this.inString = true;
          if (top?.obj && top.expectKey) {
            top.expectKey = false;
            this.keyParts = [];
            this.keySize = 0;
            keyFrom = i + 1;
          } else if (this.valueStarts('string')) {
            capFrom = i;
          }
          break;
        case C.OpenObj:
        case C.OpenArr: {
          const obj = c === C.OpenObj;
          if (this.valueStarts('container')) capFrom = i;
          if (this.deep || this.stack.length >= DEPTH_MAX) {
            this.deep++;
            // Its keys can no longer be checked for repeats: not a value to trust.
            if (this.capBits) this.oversize();
          } else {
            this.stack.push({ obj, live: obj ? this.live : 0, keys: null, expectKey: obj });
          }
          this.live = 0;
          break;
        }
        case C.CloseObj:
        case C.CloseArr:
          if (this.deep) this.deep--;
          else this.stack.pop();
          if (this.capBits && this.capKind === 'container' && this.stack.length === this.capDepth) this.capEnd(buf, capFrom, i + 1);
          break;
        case C.Comma:
          if (top?.obj) top.expectKey = true;
          this.target = this.live = 0;
          break;
        case C.Colon:
          break;
        default:
          if (!isSpace(c)) {
            this.inScalar = true;
            if (this.valueStarts('scalar')) capFrom = i;
          }
      }
      i++;
    }
    if (this.stopped) return;
    if (this.capBits) this.capAdd(buf, capFrom, n);
    if (this.inString && this.keyParts) this.keyAdd(buf, keyFrom, n);
  }

  /** A value begins: it is kept when the key before it ends a path. */
  private valueStarts(kind: 'string' | 'scalar' | 'container'): boolean {
    const target = this.target;
    this.target = 0;
    if (kind !== 'container') this.live = 0;
    if (!target || this.capBits) return false;
    this.capBits = target;
    this.capDepth = this.stack.length;
    this.capKind = kind;
    this.capParts = [];
    this.capSize = 0;
    this.capOver = this.capDup = false;
    this.capMarked = 0;
    return true;
  }

  private capAdd(buf: Buffer, from: number, to: number): void {
    if (this.capOver || to <= from) return;
    this.capSize += to - from;
    if (this.capSize > this.cap) return this.oversize();
    // A copy: the relay's buffer is valid during the call only.
    this.capParts.push(Buffer.from(buf.subarray(from, to)));
  }

  /**
   * The value being kept is past the cap: what it held so far goes, nothing
   * more is kept for it, and its picks say so at once, so that a text that
   * ends before the value does still reports it oversized.
   */
  private oversize(): void {
    if (this.capOver) return;
    this.capOver = true;
    this.capParts = [];
    for (let p = 0; p < this.paths.length; p++) {
      const pick = this.picks[p]!;
      if (this.capBits & (1 << p) && !pick.value && !pick.oversized) {
        pick.oversized = true;
        this.capMarked |= 1 << p;
      }
    }
  }

  private capEnd(buf: Buffer, from: number, to: number): void {
    this.capAdd(buf, from, to);
    const value = this.capOver ? null : this.capParts.length === 1 ? this.capParts[0]! : Buffer.concat(this.capParts);
    const bits = this.capBits;
    this.capBits = 0;
    this.capParts = [];
    const marked = this.capMarked;
    this.capMarked = 0;
    for (let p = 0; p < this.paths.length; p++) {
      if (!(bits & (1 << p))) continue;
      const pick = this.picks[p]!;
      // The first value stands; a second one only marks the pick.
      if ((pick.value || pick.oversized) && !(marked & (1 << p))) {
        pick.duplicate = true;
        continue;
      }
      pick.value = value;
      pick.oversized = this.capOver;
      pick.duplicate ||= this.capDup;
      if (!this.onValue(p)) this.stopped = true;
    }
  }

  private keyAdd(buf: Buffer, from: number, to: number): void {
    const parts = this.keyParts!;
    const limit = this.capBits ? this.cap : KEY_MAX;
    if (to <= from || this.keySize > limit) return;
    this.keySize += to - from;
    if (this.keySize <= limit) parts.push(Buffer.from(buf.subarray(from, to)));
  }

  /** The key as JSON means it (escapes decoded); null when too long to compare. */
  private keyText(): string | null {
    const raw = Buffer.concat(this.keyParts!);
    this.keyParts = null;
    if (this.keySize > (this.capBits ? this.cap : KEY_MAX)) return null;
    return decodeKey(raw, 0, raw.length);
  }

  /** A key read whole within this piece: no copy. */
  private keyIn(buf: Buffer, from: number, to: number): string | null {
    this.keyParts = null;
    return to - from > (this.capBits ? this.cap : KEY_MAX) ? null : decodeKey(buf, from, to);
  }

  private onKey(key: string | null): void {
    const frame = this.stack[this.stack.length - 1]!;
    const depth = this.stack.length - 1;
    this.target = this.live = 0;
    if (key === null) return;
    let named = 0;
    for (let p = 0; p < this.paths.length; p++) {
      const path = this.paths[p]!;
      if (!(frame.live & (1 << p)) || path[depth] !== key) continue;
      named |= 1 << p;
      if (path.length === depth + 1) this.target |= 1 << p;
      else this.live |= 1 << p;
    }
    // Inside a value past its cap nothing is kept, its keys neither: they
    // would grow with the value, which the cap exists to bound.
    if (!named && (!this.capBits || this.capOver)) return;
    frame.keys ??= new Set();
    if (frame.keys.has(key)) {
      if (this.capBits) this.capDup = true;
      for (let p = 0; p < this.paths.length; p++) if (named & (1 << p)) this.picks[p]!.duplicate = true;
    }
    frame.keys.add(key);
  }
}

function decodeKey(buf: Buffer, from: number, to: number): string {
  const at = buf.indexOf(C.Backslash, from);
  if (at === -1 || at >= to) return buf.toString('utf8', from, to);
  try {
    return JSON.parse(`"${buf.toString('utf8', from, to)}"`) as string;
  } catch {
    return buf.toString('latin1', from, to);
  }
}
