// readMessage (src/http/message.ts), the one "execute until the message ends"
// loop behind the relay's response, the CONNECT reply and the OIDC calls:
// the same events, and the same bytes, at every split point.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MessageParser } from '../src/http/parser.js';
import { readMessage, type MessageError } from '../src/http/message.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

interface Seen {
  /** One entry per event; bytes() runs are joined, since splits cut them anywhere. */
  events: string[];
  /** Heads and bytes, in order: what a relay would have written. */
  out: Buffer;
  /** Error position in the whole input. */
  errorAt: number;
}

/** Feeds `msg` in pieces cut at `cuts`; stops at the first end, error or stopping head, as a caller does. */
function read(msg: Buffer, cuts: number[], opts: { maxHead?: number; maxTrailers?: number; stopAtHead?: boolean } = {}): Seen {
  const p = new MessageParser('RESPONSE', opts.maxHead ?? 1024, opts.maxTrailers ?? 1024);
  const events: string[] = [];
  const out: Buffer[] = [];
  let errorAt = -1;
  let over = false;
  let base = 0;
  const note = (e: string): void => {
    if (e === 'bytes' && events.at(-1) === 'bytes') return;
    events.push(e);
  };
  const on = {
    head: (rest: number) => {
      note(`head ${p.status}${rest === 0 ? ' at end of chunk' : ''}`);
      out.push(Buffer.from(p.head()));
      if (opts.stopAtHead && !p.interim) over = true;
      return over;
    },
    bytes: (bytes: Buffer) => {
      note('bytes');
      out.push(Buffer.from(bytes));
    },
    end: (rest: number) => {
      note(`end, ${rest} more`);
      over = true;
    },
    error: (why: MessageError, pos: number) => {
      note(`error ${why}`);
      errorAt = base + pos;
      over = true;
    },
  };
  const points = [0, ...cuts, msg.length];
  for (let i = 0; i + 1 < points.length && !over; i++) {
    base = points[i]!;
    const chunk = msg.subarray(points[i], points[i + 1]);
    if (chunk.length > 0) readMessage(p, chunk, on);
  }
  p.destroy();
  // Where a chunk ended says nothing about the message: compare without it.
  return { events: events.map((e) => e.replace(' at end of chunk', '')), out: Buffer.concat(out), errorAt };
}

function everySplit(msg: Buffer, expect: (s: Seen) => void, opts?: Parameters<typeof read>[2]): void {
  for (let i = 0; i <= msg.length; i++) expect(read(msg, [i], opts));
  for (let i = 0; i + 2 <= msg.length; i += 3) expect(read(msg, [i, i + 1, i + 2], opts));
}

describe('readMessage', () => {
  test('a 1xx, then a chunked response with trailers: the same events and the same bytes at every split', () => {
    const msg = b('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n');
    everySplit(msg, (s) => {
      assert.deepEqual(s.events, ['head 100', 'head 200', 'bytes', 'end, 0 more']);
      assert.deepEqual(s.out, msg);
    });
  });

  test('bodiless and Content-Length responses end where their framing says; bytes after are counted, not read', () => {
    for (const [text, events] of [
      ['HTTP/1.1 204 No Content\r\n\r\n', ['head 204', 'end, 0 more']],
      ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', ['head 200', 'end, 0 more']],
      ['HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc', ['head 200', 'bytes', 'end, 0 more']],
    ] as const) {
      everySplit(b(text), (s) => assert.deepEqual(s.events, events, text));
    }
    const glued = b('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\n');
    assert.deepEqual(read(glued, []).events, ['head 200', 'bytes', 'end, 17 more']);
  });

  test('a bad byte: the bytes before it go out, and the error names its position', () => {
    const msg = b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX');
    const bad = msg.length - 1;
    everySplit(msg, (s) => {
      assert.equal(s.events.at(-1), 'error malformed');
      assert.equal(s.errorAt, bad);
      assert.deepEqual(s.out, msg.subarray(0, bad));
    });
  });

  test('a head past its cap and trailers past theirs are told apart', () => {
    const longHead = b(`HTTP/1.1 200 OK\r\nX-Pad: ${'p'.repeat(200)}\r\nContent-Length: 0\r\n\r\n`);
    everySplit(longHead, (s) => assert.deepEqual(s.events, ['error head_too_large']), { maxHead: 100 });
    const longTrailers = b(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ${'t'.repeat(200)}\r\n\r\n`);
    everySplit(longTrailers, (s) => assert.deepEqual(s.events, ['head 200', 'bytes', 'error trailers_too_large']), { maxTrailers: 100 });
  });

  test('a head that stops the read: nothing after it is parsed (a CONNECT reply)', () => {
    const msg = b('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01');
    everySplit(msg, (s) => assert.deepEqual(s.events, ['head 100', 'head 200']), { stopAtHead: true });
  });
});
