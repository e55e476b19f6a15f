// The only module that touches llhttp. It answers one question per call:
// where, in the caller's own bytes, does the current head or message end?
//
// llhttp's wasm module (pinned and hash-checked: llhttp-wasm.ts) is
// instantiated here with this module's own imports, as undici does
// (lib/dispatcher/client-h1.js), and not through llhttp-wasm's JS wrapper:
// that wrapper decodes every URL and header span into a JS string, keeps
// header strings (trailers included) in per-parser arrays until the next
// message, copies every body span out again, and mallocs and frees a buffer
// per execute() (shared/STYLE.md §5, §6). Here no callback builds a string
// or an array: spans are positions in the caller's Buffer, used to count
// trailer bytes and, for a caller that asks (onBody), to hand it de-chunked
// body data as views of its own bytes. The parser is paused at headers-complete and
// message-complete, and the pause offset is mapped back onto the caller's
// Buffer. The head bytes are kept here, capped, for head.ts to split.
import v8 from 'node:v8';
import { readPinnedWasm } from './wasm.js';

// llhttp only ever sees heads and chunk lines here (Content-Length bodies are
// counted, below), so V8's baseline wasm code is fast enough; skipping the
// optimising tier-up saved ~8 MB of resident memory in a measurement
// (bench/README.md). Read when the module is compiled, at loadParser().
v8.setFlagsFromString('--liftoff-only');

// llhttp's errno values (llhttp.h): HPE_OK, HPE_PAUSED, HPE_USER.
const OK = 0;
const PAUSED = 21;
/** Returned from a span callback, it stops execute() with HPE_USER at that span. */
const USER = 24;
// llhttp_type_t: HTTP_REQUEST = 1, HTTP_RESPONSE = 2 (0, BOTH, is never used).
const TYPE = { REQUEST: 1, RESPONSE: 2 } as const;

// The project's lib (ES2022, no DOM) declares no WebAssembly types; these
// are the few this module uses.
interface Wasm {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, (...args: number[]) => number>>) => { exports: unknown };
}
const { WebAssembly } = globalThis as unknown as { WebAssembly: Wasm };

interface LlhttpExports {
  memory: { buffer: ArrayBuffer };
  _initialize(): void;
  malloc(n: number): number;
  free(ptr: number): void;
  llhttp_alloc(type: number): number;
  llhttp_free(p: number): void;
  llhttp_execute(p: number, ptr: number, len: number): number;
  llhttp_finish(p: number): number;
  llhttp_reset(p: number): void;
  llhttp_resume(p: number): void;
  llhttp_get_error_pos(p: number): number;
  llhttp_errno_name(code: number): number;
  llhttp_should_keep_alive(p: number): number;
  llhttp_get_status_code(p: number): number;
}

// One instance for every parser. execute() and finish() are synchronous and
// never re-entered, so the parser they run is module state, and so is the
// one input buffer in wasm memory: grown when a larger chunk comes, never
// freed per call.
let wasm: LlhttpExports | null = null;
let current: MessageParser | null = null;
let inPtr = 0;
let inCap = 0;
let heap = new Uint8Array(0);

/**
 * Compiles the pinned llhttp module once. Throws an Error with a one-line
 * message when its bytes are missing or not the pinned ones; the CLI calls
 * this at start so that it fails before taking the key, and the first parser
 * calls it otherwise.
 */
export function loadParser(): void {
  if (wasm) return;
  // Each import gets (parser, at, length) or (parser); `at` is a pointer
  // into wasm memory, made an offset into the caller's bytes by the parser.
  const instance = new WebAssembly.Instance(new WebAssembly.Module(readPinnedWasm()), {
    env: {
      wasm_on_message_begin: () => OK,
      wasm_on_url: () => OK,
      wasm_on_status: () => OK,
      wasm_on_header_field: (_p: number, at: number, len: number) => current!.onFieldSpan(at, len),
      wasm_on_header_value: (_p: number, at: number, len: number) => current!.onFieldSpan(at, len),
      wasm_on_headers_complete: (p: number) => current!.onHeadersComplete(p),
      wasm_on_body: (_p: number, at: number, len: number) => current!.onBodySpan(at, len),
      wasm_on_message_complete: () => PAUSED,
    },
  });
  const x = instance.exports as unknown as LlhttpExports;
  x._initialize();
  wasm = x;
}

/** Copies bytes into the shared input buffer, growing it if needed; returns its address. */
function input(data: Buffer): number {
  const x = wasm!;
  if (data.length > inCap) {
    if (inPtr) x.free(inPtr);
    inCap = Math.max(16 * 1024, 2 ** Math.ceil(Math.log2(data.length)));
    inPtr = x.malloc(inCap);
  }
  // malloc may grow memory, which detaches the old view.
  if (heap.buffer !== x.memory.buffer) heap = new Uint8Array(x.memory.buffer);
  heap.set(data, inPtr);
  return inPtr;
}

export const enum Ev {
  /** Every byte was consumed; feed more. */
  More,
  /** The head ended at `pos`; `head()` holds it. */
  Head,
  /** The message ended at `pos`. */
  End,
  /** The bytes are not HTTP/1.x; `tooLarge` says if the head or trailer budget ran out first. */
  Error,
}

export interface Step {
  ev: Ev;
  /** Offset in the chunk just after the event; for Error, of the offending byte. */
  pos: number;
}

type Kind = 'REQUEST' | 'RESPONSE';

export class MessageParser {
  private p: number;
  /** The head so far (see keep()); `owned` once it is a buffer of our own. */
  private headPart: Buffer | null = null;
  private headLen = 0;
  private owned = false;
  private inHead = true;
  private headBuf: Buffer | null = null;
  /** Set at each head: the response status code (0 for requests). */
  status = 0;
  /** llhttp's verdict on the finished head: may the connection persist? */
  keepAlive = false;
  errorName = '';
  /** After an Error: the head (or, after the head, the trailer section) passed its budget. */
  tooLarge = false;
  /**
   * After an Error: llhttp refused a well-formed `HTTP/d.d` followed by CR,
   * a version it does not speak (505), as opposed to a malformed line (400).
   */
  versionRefused = false;
  /** Bytes of a Content-Length body still to come, counted here instead of by llhttp. */
  private bodyLeft = 0;
  /** Bytes given to llhttp before the current execute(), this message: spans become stream offsets. */
  private fed = 0;
  /** Stream offset of the first trailer byte llhttp reported, or -1 before any. */
  private trailerStart = -1;
  /**
   * Opt-in: hears each piece of body data, de-chunked, as it is parsed, in
   * the caller's own bytes (valid during the call only). Unset, body spans
   * cost one check each.
   */
  onBody: ((data: Buffer) => void) | null = null;
  /** The bytes and wasm address of the execute() in progress, to map body spans back onto. */
  private data: Buffer | null = null;
  private ptr = 0;

  /**
   * `maxHead` caps the head, `maxTrailers` the trailer section (RFC 9112
   * §7.1.2), which is never stored, only counted as it passes.
   */
  constructor(kind: Kind, private readonly maxHead: number, private readonly maxTrailers = maxHead) {
    loadParser();
    this.p = wasm!.llhttp_alloc(TYPE[kind]);
  }

  /** Parse chunk[from..]; stop at the first head end, message end or error. */
  execute(chunk: Buffer, from: number): Step {
    if (this.bodyLeft > 0) return this.skipBody(chunk, from);
    if (!this.p) return this.fail(from, 0);
    const x = wasm!;
    const data = from === 0 ? chunk : chunk.subarray(from);
    const ptr = input(data);
    current = this;
    this.data = data;
    this.ptr = ptr;
    const rc = x.llhttp_execute(this.p, ptr, data.length);
    current = null;
    this.data = null;
    if (rc === OK) {
      this.fed += data.length;
      if (this.inHead) return this.keep(data, data.length) ? { ev: Ev.More, pos: chunk.length } : this.fail(from, data.length);
      return { ev: Ev.More, pos: chunk.length };
    }
    const at = x.llhttp_get_error_pos(this.p) - ptr;
    if (rc !== PAUSED) {
      this.errorName = errnoName(rc);
      if (this.inHead && this.keep(data, at) && this.errorName === 'HPE_INVALID_VERSION' && (data[at] === 0x0d || at === data.length)) {
        // llhttp flags the byte after the minor digit; the bytes before it may span reads.
        const seen = this.headPart ? this.headPart.subarray(0, this.headLen) : Buffer.alloc(0);
        this.versionRefused = /HTTP\/\d\.\d$/.test(seen.toString('latin1', Math.max(0, seen.length - 8)));
      }
      return this.fail(from, at);
    }
    x.llhttp_resume(this.p);
    this.fed += at;
    if (this.inHead) {
      if (!this.keep(data, at)) return this.fail(from, at);
      this.headBuf = this.headPart ? this.headPart.subarray(0, this.headLen) : Buffer.alloc(0);
      this.headPart = null;
      this.headLen = 0;
      this.owned = false;
      this.inHead = false;
      // 1xx, 204 and 304 have no body whatever they declare (RFC 9112 §6.3).
      const bodiless = this.status === 204 || this.status === 304 || this.interim;
      this.bodyLeft = bodiless ? 0 : declaredLength(this.headBuf);
      return { ev: Ev.Head, pos: from + at };
    }
    this.endMessage();
    return { ev: Ev.End, pos: from + at };
  }

  /** wasm_on_headers_complete: note what the head said, and stop there. */
  onHeadersComplete(p: number): number {
    const x = wasm!;
    this.status = x.llhttp_get_status_code(p);
    this.keepAlive = x.llhttp_should_keep_alive(p) === 1;
    return PAUSED;
  }

  /**
   * wasm_on_header_field/value. In the head, the bytes are kept and capped by
   * keep(); after it these are trailers, which only count, from the first
   * trailer byte to the end of the latest span, against `maxTrailers`.
   */
  onFieldSpan(at: number, len: number): number {
    if (this.inHead) return OK;
    const offset = this.fed + (at - inPtr);
    if (this.trailerStart < 0) this.trailerStart = offset;
    if (offset + len - this.trailerStart <= this.maxTrailers) return OK;
    this.tooLarge = true;
    return USER;
  }

  /** wasm_on_body: a span of body data inside the execute() in progress. */
  onBodySpan(at: number, len: number): number {
    if (this.onBody && len > 0) this.onBody(this.data!.subarray(at - this.ptr, at - this.ptr + len));
    return OK;
  }

  /**
   * A Content-Length body needs no parsing, only counting: it bypasses llhttp
   * and the copy into wasm memory, which is most of the relay's cost on a
   * bulk download. At its end llhttp is reset, which is where it would stand
   * after the message.
   */
  private skipBody(chunk: Buffer, from: number): Step {
    const n = Math.min(this.bodyLeft, chunk.length - from);
    this.bodyLeft -= n;
    if (this.onBody && n > 0) this.onBody(chunk.subarray(from, from + n));
    if (this.bodyLeft > 0) return { ev: Ev.More, pos: chunk.length };
    wasm!.llhttp_reset(this.p);
    this.endMessage();
    return { ev: Ev.End, pos: from + n };
  }

  private endMessage(): void {
    this.inHead = true;
    this.fed = 0;
    this.trailerStart = -1;
  }

  /** The head that the last Head event ended; valid until the next head starts. */
  head(): Buffer {
    return this.headBuf!;
  }

  /** A close-delimited body ends at EOF; true if the message is then complete. */
  finish(): boolean {
    if (!this.p || this.bodyLeft > 0) return false;
    const x = wasm!;
    current = this;
    // A head that ended a read leaves llhttp paused before its body state;
    // an empty execute() moves it there, so that EOF can end the body.
    let rc = x.llhttp_execute(this.p, inPtr, 0);
    // message-complete pauses (PAUSED): at EOF that is the clean ending.
    if (rc === OK) rc = x.llhttp_finish(this.p);
    current = null;
    return rc === OK || rc === PAUSED;
  }

  /** The current message's head has been seen. */
  get headDone(): boolean {
    return !this.inHead;
  }

  /** After an End event, a 1xx head means another head follows (RFC 9110 §15.2). */
  get interim(): boolean {
    return this.status >= 100 && this.status < 200;
  }

  /** Frees the llhttp state; safe to call more than once. */
  destroy(): void {
    this.bodyLeft = 0;
    this.onBody = null;
    if (this.p) wasm!.llhttp_free(this.p);
    this.p = 0;
    this.headPart = null;
    this.headBuf = null;
  }

  // Socket reads are fresh Buffers that Node never reuses, so a head that
  // arrives in one read (most do) is kept by reference. From a second read
  // on, the bytes are copied into one buffer grown by doubling: a head sent a
  // byte per segment costs about its own size, not a Buffer object per read
  // (a review measured ~127 bytes of memory per head byte that way). The
  // budget counts head bytes seen, so the verdict does not depend on the cuts.
  private keep(data: Buffer, n: number): boolean {
    if (this.headLen + n > this.maxHead) {
      this.tooLarge = true;
      return false;
    }
    if (n === 0) return true;
    if (this.headLen === 0) {
      this.headPart = n === data.length ? data : data.subarray(0, n);
    } else {
      let acc = this.headPart!;
      if (!this.owned || this.headLen + n > acc.length) {
        const grown = Buffer.allocUnsafe(Math.min(this.maxHead, Math.max(1024, 2 * (this.headLen + n))));
        acc.copy(grown, 0, 0, this.headLen);
        acc = grown;
        this.owned = true;
      }
      data.copy(acc, this.headLen, 0, n);
      this.headPart = acc;
    }
    this.headLen += n;
    return true;
  }

  private fail(from: number, at: number): Step {
    return { ev: Ev.Error, pos: from + at };
  }
}

/** llhttp's name for an errno (a C string in wasm memory): fixed text, never input bytes. */
function errnoName(code: number): string {
  const x = wasm!;
  const mem = new Uint8Array(x.memory.buffer);
  const at = x.llhttp_errno_name(code);
  const end = mem.indexOf(0, at);
  return Buffer.from(mem.buffer, at, Math.min(end, at + 64) - at).toString('latin1');
}

const lower = (c: number): number => (c >= 0x41 && c <= 0x5a ? c | 0x20 : c);
const CONTENT_LENGTH = Buffer.from('\r\ncontent-length:', 'latin1');

/**
 * The Content-Length of a head llhttp has accepted (so at most one such line,
 * plain digits, no Transfer-Encoding beside it), or 0 when there is none.
 * Read byte by byte: the head holds the client's own credentials, and a
 * decoded copy of it would put them in a JS string.
 */
function declaredLength(head: Buffer): number {
  const n = CONTENT_LENGTH.length;
  for (let i = head.indexOf(0x0d); i >= 0 && i + n <= head.length; i = head.indexOf(0x0d, i + 1)) {
    let k = 0;
    while (k < n && lower(head[i + k]!) === CONTENT_LENGTH[k]) k++;
    if (k < n) continue;
    let j = i + n;
    while (head[j] === 0x20 || head[j] === 0x09) j++;
    let len = 0;
    for (let digits = 0; head[j]! >= 0x30 && head[j]! <= 0x39 && digits < 15; j++, digits++) len = len * 10 + head[j]! - 0x30;
    return len;
  }
  return 0;
}
