// "Execute until the message ends", written once for every reader of a
// response: the relay's exchange, the CONNECT reply, the OIDC calls. It turns
// MessageParser's steps into events in the order the bytes come, so that no
// caller works framing out again: a head as soon as it is complete (interim
// 1xx heads too), the bytes after it as they arrive, the end of the final
// message, or an error at the bad byte.
import { Ev, type MessageParser } from './parser.js';

/** Why a message could not be read: its bytes are not HTTP/1.x, or a size cap ran out first. */
export type MessageError = 'malformed' | 'head_too_large' | 'trailers_too_large';

export interface MessageEvents {
  /**
   * A head is complete: the parser's head(), status and interim describe it.
   * `rest` is how many bytes of this chunk follow it. Returning true stops
   * reading there (a CONNECT reply: the tunnel starts after its head).
   */
  head(rest: number): boolean;
  /** Bytes after a head, framing included, as they arrive; a view valid during the call. */
  bytes?(b: Buffer): void;
  /** The final (non-1xx) message ended; `rest` bytes of this chunk follow it. */
  end?(rest: number): void;
  /**
   * The chunk is not HTTP/1.x at `pos`, or a cap ran out there; the bytes
   * before it that follow a head have gone to bytes() first.
   */
  error(why: MessageError, pos: number): void;
}

/**
 * Feeds one chunk to `p` and reports what it holds. It returns after the
 * final message's end, an error, a head that stops it, or the chunk's last
 * byte; the caller feeds the next chunk the same way.
 */
export function readMessage(p: MessageParser, chunk: Buffer, on: MessageEvents): void {
  let off = 0;
  for (;;) {
    const inHead = !p.headDone;
    const step = p.execute(chunk, off);
    switch (step.ev) {
      case Ev.More:
        if (!inHead && off < chunk.length) on.bytes?.(off === 0 ? chunk : chunk.subarray(off));
        return;
      case Ev.Head:
        if (on.head(chunk.length - step.pos)) return;
        break;
      case Ev.End:
        if (step.pos > off) on.bytes?.(chunk.subarray(off, step.pos));
        // An interim 1xx message is complete at its head; the final head follows.
        if (!p.interim) return on.end?.(chunk.length - step.pos);
        break;
      case Ev.Error:
        if (!inHead && step.pos > off) on.bytes?.(chunk.subarray(off, step.pos));
        return on.error(!p.tooLarge ? 'malformed' : inHead ? 'head_too_large' : 'trailers_too_large', step.pos);
    }
    off = step.pos;
    // After a head that ends the chunk, one more (empty) execute: a message
    // with no body (1xx, 204, Content-Length: 0) ends there.
    if (off >= chunk.length && step.ev !== Ev.Head) return;
  }
}
