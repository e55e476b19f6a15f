// Pins what the design relies on in llhttp-wasm 1.0.3, and what it must not
// rely on (shared/STYLE.md §5), then checks MessageParser's offsets at every
// split point.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { Ev, MessageParser } from '../src/http/parser.js';

const llhttp = createRequire(import.meta.url)('llhttp-wasm') as typeof import('llhttp-wasm');
const REQ = Buffer.from('POST /v1/responses HTTP/1.1\r\nHost: h\r\nX-Long-Name: some value\r\nContent-Length: 3\r\n\r\nabc');
const HEAD_LEN = REQ.length - 3;

describe('llhttp-wasm facts', () => {
  test('createParser(TYPE.REQUEST) builds a parser that accepts a response; MessageParser does not', () => {
    const loose = llhttp.createParser(llhttp.TYPE.REQUEST!);
    assert.equal(loose.execute(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')), 0);
    loose.destroy();
    const strict = new MessageParser('REQUEST', 1024);
    assert.equal(strict.execute(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), 0).ev, Ev.Error);
    strict.destroy();
  });

  test('its url and header strings break when a token spans execute() calls', () => {
    const p = llhttp.createParser('REQUEST' as unknown as number);
    let url = '';
    let fields: string[] = [];
    p.onHeadersComplete = (m) => {
      url = m.url ?? '';
      fields = m.rawHeaders;
      return 0;
    };
    const cut1 = REQ.indexOf('responses');
    const cut2 = REQ.indexOf('Long-Name');
    p.execute(REQ.subarray(0, cut1));
    p.execute(REQ.subarray(cut1, cut2));
    p.execute(REQ.subarray(cut2));
    p.destroy();
    assert.notEqual(url, '/v1/responses');
    assert.ok(!fields.includes('X-Long-Name'));
  });
});

describe('MessageParser', () => {
  test('a response parser rejects a request line: each parser is request-only or response-only, never BOTH', () => {
    const p = new MessageParser('RESPONSE', 1024);
    assert.equal(p.execute(REQ, 0).ev, Ev.Error);
    p.destroy();
  });

  test('trailers are counted, not kept: the same verdict at every split point, and no head is reported for them', () => {
    const head = 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n';
    const cap = 1024;
    // Trailer bytes from the first field byte to the end of the last value.
    const trailers = (n: number): string => `X-T: ${'v'.repeat(n - 5)}\r\n\r\n`;
    for (const [size, ok] of [[cap, true], [cap + 1, false]] as const) {
      const msg = Buffer.from(head + trailers(size));
      for (let i = 0; i <= msg.length; i += i < 80 || i > msg.length - 80 ? 1 : 97) {
        const p = new MessageParser('REQUEST', cap);
        const evs: Ev[] = [];
        for (const part of [msg.subarray(0, i), msg.subarray(i)]) {
          for (let off = 0, guard = 0; guard < 4; guard++) {
            const st = p.execute(part, off);
            if (st.ev !== Ev.More) evs.push(st.ev);
            off = st.pos;
            if (st.ev === Ev.More || st.ev === Ev.Error || off >= part.length) break;
          }
          if (evs.includes(Ev.Error)) break;
        }
        assert.deepEqual(evs, ok ? [Ev.Head, Ev.End] : [Ev.Head, Ev.Error], `${size} bytes of trailers, split at ${i}`);
        assert.equal(p.tooLarge, !ok);
        p.destroy();
      }
    }
  });

  test('a close-delimited response ends at EOF, even when its head ended the last read', () => {
    const p = new MessageParser('RESPONSE', 1024);
    const res = Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n');
    assert.deepEqual(p.execute(res, 0), { ev: Ev.Head, pos: res.length });
    assert.equal(p.finish(), true);
    p.destroy();
    const cut = new MessageParser('RESPONSE', 1024);
    const part = Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab');
    const h = cut.execute(part, 0);
    assert.equal(h.ev, Ev.Head);
    assert.deepEqual(cut.execute(part, h.pos), { ev: Ev.More, pos: part.length });
    assert.equal(cut.finish(), false, 'a chunked body cut short is not complete');
    cut.destroy();
  });

  test('head and message ends are found at every split point', () => {
    for (let i = 0; i <= REQ.length; i++) {
      const p = new MessageParser('REQUEST', 1024);
      const events: [Ev, number][] = [];
      let base = 0;
      for (const part of [REQ.subarray(0, i), REQ.subarray(i)]) {
        let off = 0;
        for (let guard = 0; guard < 4; guard++) {
          const s = p.execute(part, off);
          events.push([s.ev, base + s.pos]);
          if (s.ev === Ev.Head) assert.deepEqual(p.head(), REQ.subarray(0, HEAD_LEN), `split ${i}`);
          off = s.pos;
          if (s.ev === Ev.More || s.ev === Ev.Error || (s.ev === Ev.End && off >= part.length)) break;
        }
        base += part.length;
      }
      p.destroy();
      const ends = events.filter(([ev]) => ev !== Ev.More);
      assert.deepEqual(ends, [[Ev.Head, HEAD_LEN], [Ev.End, REQ.length]], `split ${i}`);
    }
  });

  test('after a counted Content-Length body, llhttp picks up the next message at every split point', () => {
    const second = Buffer.from('POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n');
    const both = Buffer.concat([REQ, second]);
    for (let i = 0; i <= both.length; i++) {
      const p = new MessageParser('REQUEST', 1024);
      const ends: [Ev, number][] = [];
      let base = 0;
      for (const part of [both.subarray(0, i), both.subarray(i)]) {
        for (let off = 0, guard = 0; guard < 8; guard++) {
          const s = p.execute(part, off);
          if (s.ev !== Ev.More) ends.push([s.ev, base + s.pos]);
          off = s.pos;
          if (s.ev === Ev.More || s.ev === Ev.Error || off >= part.length) break;
        }
        base += part.length;
      }
      p.destroy();
      assert.deepEqual(ends, [[Ev.Head, HEAD_LEN], [Ev.End, REQ.length], [Ev.Head, REQ.length + second.indexOf('2\r\n')], [Ev.End, both.length]], `split ${i}`);
    }
  });

  test('a zero-length body ends right after its head, even with nothing left to parse', () => {
    const msg = Buffer.from('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n');
    const p = new MessageParser('REQUEST', 1024);
    assert.deepEqual(p.execute(msg, 0), { ev: Ev.Head, pos: msg.length });
    assert.deepEqual(p.execute(msg, msg.length), { ev: Ev.End, pos: msg.length });
    p.destroy();
  });

  test('the head budget gives the same verdict however the head is cut', () => {
    const big = Buffer.from(`POST / HTTP/1.1\r\nHost: h\r\nX: ${'a'.repeat(2000)}\r\nContent-Length: 0\r\n\r\n`);
    for (const cut of [1, 100, 1024, 1500, big.length - 1]) {
      const p = new MessageParser('REQUEST', 1024);
      const first = p.execute(big.subarray(0, cut), 0);
      const step = first.ev === Ev.More ? p.execute(big.subarray(cut), 0) : first;
      assert.equal(step.ev, Ev.Error, `cut ${cut}`);
      assert.ok(p.tooLarge, `cut ${cut}`);
      p.destroy();
    }
  });

  test('204 and 304 end at their head whatever Content-Length they declare (RFC 9112 §6.3)', () => {
    for (const status of ['204 No Content', '304 Not Modified']) {
      const res = Buffer.from(`HTTP/1.1 ${status}\r\nContent-Length: 5\r\n\r\n`);
      const p = new MessageParser('RESPONSE', 1024);
      assert.deepEqual(p.execute(res, 0), { ev: Ev.Head, pos: res.length });
      assert.deepEqual(p.execute(res, res.length), { ev: Ev.End, pos: res.length }, status);
      p.destroy();
    }
  });

  test('a 1xx response is a message of its own, followed by the final one', () => {
    const res = Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    const p = new MessageParser('RESPONSE', 1024);
    const seen: string[] = [];
    let off = 0;
    for (let guard = 0; guard < 8 && off < res.length; guard++) {
      const s = p.execute(res, off);
      seen.push(`${s.ev}@${s.pos}:${p.status}${s.ev === Ev.End && p.interim ? 'i' : ''}`);
      off = s.pos;
    }
    p.destroy();
    assert.deepEqual(seen, [`${Ev.Head}@25:100`, `${Ev.End}@25:100i`, `${Ev.Head}@63:200`, `${Ev.End}@65:200`]);
  });
});
