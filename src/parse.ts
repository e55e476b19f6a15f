// The only module that touches llhttp. It answers one question per call:
// where, in the caller's own bytes, does the current head or message end?
//
// llhttp-wasm 1.0.3 reports url/header strings that break when a token spans
// two execute() calls, decodes them as UTF-8, and has no size limit
// (shared/STYLE.md §5), so none of its strings are used. Instead the parser is
// paused at headers-complete and message-complete, and the pause offset
// (getErrorPosition) is mapped back onto the caller's Buffer. The head bytes
// are kept here, capped, for head.ts to split.
import { createRequire } from 'node:module';
import v8 from 'node:v8';
import type { Parser } from 'llhttp-wasm';

// llhttp only ever sees heads and chunk lines here (Content-Length bodies are
// counted, below), so V8's baseline wasm code is fast enough; skipping the
// optimising tier-up saved ~8 MB of resident memory in a measurement
// (bench/README.md). Read when the module is compiled, at the first parser.
v8.setFlagsFromString('--liftoff-only');

const llhttp = createRequire(import.meta.url)('llhttp-wasm') as typeof import('llhttp-wasm');

// llhttp's HPE_PAUSED. Returned from a callback, it stops execute() at that byte.
const PAUSED = 21;

export const enum Ev {
  /** Every byte was consumed; feed more. */
  More,
  /** The head ended at `pos`; `head()` holds it. */
  Head,
  /** The message ended at `pos`. */
  End,
  /** The bytes are not HTTP/1.x; `tooLarge` says if the head budget ran out first. */
  Error,
}

export interface Step {
  ev: Ev;
  /** Offset in the chunk just after the event; for Error, of the offending byte. */
  pos: number;
}

// createParser(TYPE.REQUEST) looks the number up in TYPE by value, finds
// nothing and builds a parser that also accepts responses (STYLE.md §5).
// Passing the name makes it look up the right constant; test/parse.test.ts
// pins that a request parser rejects a status line.
type Kind = 'REQUEST' | 'RESPONSE';

export class MessageParser {
  private readonly p: Parser;
  private parts: Buffer[] = [];
  private partsLen = 0;
  private inHead = true;
  private headBuf: Buffer | null = null;
  /** Set at each head: the response status code (0 for requests). */
  status = 0;
  /** llhttp's verdict on the finished head: may the connection persist? */
  keepAlive = false;
  errorName = '';
  tooLarge = false;
  /**
   * After an Error: llhttp refused a well-formed `HTTP/d.d` followed by CR,
   * a version it does not speak (505), as opposed to a malformed line (400).
   */
  versionRefused = false;
  /** Bytes of a Content-Length body still to come, counted here instead of by llhttp. */
  private bodyLeft = 0;

  constructor(kind: Kind, private readonly maxHead: number) {
    this.p = llhttp.createParser(kind as unknown as number);
    this.p.onHeadersComplete = (m) => {
      this.status = m.statusCode ?? 0;
      this.keepAlive = m.shouldKeepAlive;
      return PAUSED;
    };
    this.p.onMessageComplete = () => PAUSED;
  }

  /** Parse chunk[from..]; stop at the first head end, message end or error. */
  execute(chunk: Buffer, from: number): Step {
    if (this.bodyLeft > 0) return this.skipBody(chunk, from);
    const data = from === 0 ? chunk : chunk.subarray(from);
    const rc = this.p.execute(data);
    if (rc === 0) {
      if (this.inHead) return this.keep(data, data.length) ? { ev: Ev.More, pos: chunk.length } : this.fail(from, data.length);
      return { ev: Ev.More, pos: chunk.length };
    }
    const at = this.p.getErrorPosition();
    if (rc !== PAUSED) {
      this.errorName = this.p.getErrorName(rc) ?? 'HPE_UNKNOWN';
      if (this.inHead && this.keep(data, at) && this.errorName === 'HPE_INVALID_VERSION' && data[at] === 0x0d) {
        // llhttp flags the byte after the minor digit; the bytes before it may span reads.
        const seen = Buffer.concat(this.parts, this.partsLen);
        this.versionRefused = /HTTP\/\d\.\d$/.test(seen.toString('latin1', Math.max(0, seen.length - 8)));
      }
      return this.fail(from, at);
    }
    this.p.resume();
    if (this.inHead) {
      if (!this.keep(data, at)) return this.fail(from, at);
      this.headBuf = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsLen);
      this.parts = [];
      this.partsLen = 0;
      this.inHead = false;
      // 1xx, 204 and 304 have no body whatever they declare (RFC 9112 §6.3).
      const bodiless = this.status === 204 || this.status === 304 || this.interim;
      this.bodyLeft = bodiless ? 0 : declaredLength(this.headBuf);
      return { ev: Ev.Head, pos: from + at };
    }
    this.inHead = true;
    return { ev: Ev.End, pos: from + at };
  }

  /**
   * A Content-Length body needs no parsing, only counting: it bypasses llhttp
   * and the copy into wasm memory that every execute() makes, which is most of
   * the relay's cost on a bulk download. At its end llhttp is reset, which is
   * where it would stand after the message.
   */
  private skipBody(chunk: Buffer, from: number): Step {
    const n = Math.min(this.bodyLeft, chunk.length - from);
    this.bodyLeft -= n;
    if (this.bodyLeft > 0) return { ev: Ev.More, pos: chunk.length };
    this.p.reset();
    this.inHead = true;
    return { ev: Ev.End, pos: from + n };
  }

  /** The head that the last Head event ended; valid until the next head starts. */
  head(): Buffer {
    return this.headBuf!;
  }

  /** A close-delimited body ends at EOF; true if the message is then complete. */
  finish(): boolean {
    return this.p.finish() === 0;
  }

  /** The current message's head has been seen. */
  get headDone(): boolean {
    return !this.inHead;
  }

  /** After an End event, a 1xx head means another head follows (RFC 9110 §15.2). */
  get interim(): boolean {
    return this.status >= 100 && this.status < 200;
  }

  destroy(): void {
    this.bodyLeft = 0;
    this.p.destroy();
    this.parts = [];
    this.headBuf = null;
  }

  // Socket reads are fresh Buffers that Node never reuses, so head parts are
  // kept by reference and joined only when a head spans reads. The budget
  // counts head bytes seen, so the verdict does not depend on how they were cut.
  private keep(data: Buffer, n: number): boolean {
    if (this.partsLen + n > this.maxHead) {
      this.tooLarge = true;
      return false;
    }
    if (n > 0) {
      this.parts.push(n === data.length ? data : data.subarray(0, n));
      this.partsLen += n;
    }
    return true;
  }

  private fail(from: number, at: number): Step {
    return { ev: Ev.Error, pos: from + at };
  }
}

/**
 * The Content-Length of a head llhttp has accepted (so at most one such line,
 * plain digits, no Transfer-Encoding beside it), or 0 when there is none.
 */
function declaredLength(head: Buffer): number {
  const m = /\r\ncontent-length:[ \t]*(\d{1,15})[ \t]*\r\n/i.exec(head.toString('latin1'));
  return m ? Number(m[1]) : 0;
}
