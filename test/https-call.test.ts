// The OIDC calls' answer reading (src/credential/https-call.ts): the body is
// the parser's de-chunked data, capped at 64 KiB of data whatever the
// framing, and every received body byte is zeroed once copied. The answer
// comes from a scripted socket so that it can be cut anywhere and its chunks
// inspected afterwards; test/oidc.test.ts runs the same code over real TLS.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import { CallError, httpsCall, MAX_BODY } from '../src/credential/https-call.js';
import type { Connector } from '../src/transport/connect.js';
import { parseUpstream } from '../src/transport/upstream.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const EP = parseUpstream('https://127.0.0.1:1/t');

/** A connector whose one connection plays `chunks` (then EOF), and keeps them for inspection. */
function scripted(chunks: Buffer[]): { connector: Connector; destroyed: () => boolean } {
  let destroyed = false;
  const sock = Object.assign(new EventEmitter(), {
    cork: () => {},
    uncork: () => {},
    write: () => true,
    destroy: () => {
      destroyed = true;
    },
  });
  const connector = {
    connect: (_u: unknown, _ms: number, done: (err: null, s: typeof sock) => void) => {
      setImmediate(() => {
        done(null, sock);
        for (const c of chunks) if (!destroyed) sock.emit('data', c);
        if (!destroyed) sock.emit('end');
      });
      return sock;
    },
  } as unknown as Connector;
  return { connector, destroyed: () => destroyed };
}

const call = (chunks: Buffer[]): Promise<Buffer> => httpsCall(scripted(chunks).connector, EP, [b('GET /t HTTP/1.1\r\n\r\n')]);

/** `data` as chunked framing with `size`-byte chunks, each with a long extension. */
function chunked(data: string, size: number, ext = ''): Buffer {
  let out = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  for (let i = 0; i < data.length; i += size) {
    const part = data.slice(i, i + size);
    out += `${part.length.toString(16)}${ext}\r\n${part}\r\n`;
  }
  return b(`${out}0\r\n\r\n`);
}

/** Copies of `msg`'s bytes in `n`-byte pieces (the call zeroes what it reads). */
const cut = (msg: Buffer, n: number): Buffer[] => Array.from({ length: Math.ceil(msg.length / n) }, (_, i) => Buffer.from(msg.subarray(i * n, (i + 1) * n)));

describe('httpsCall: the answer body', () => {
  test('Content-Length, chunked and close-delimited answers give the same body, however they are cut', async () => {
    const body = '{"value":"abc","note":"' + 'n'.repeat(300) + '"}';
    const answers = [
      b(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`),
      chunked(body, 7, ';ext=1'),
      b(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\n${body}`),
    ];
    for (const msg of answers) {
      for (const n of [1, 5, 64, msg.length]) {
        assert.equal((await call(cut(msg, n))).toString('latin1'), body, `${msg.subarray(0, 40).toString('latin1')} cut every ${n}`);
      }
    }
  });

  test('the cap counts body data, not framing: exactly 64 KiB passes with any framing, one byte more fails', async () => {
    const full = 'x'.repeat(MAX_BODY);
    // 16-byte chunks with 40-byte extensions: the framing alone is over twice the cap.
    assert.equal((await call(cut(chunked(full, 16, `;e=${'e'.repeat(37)}`), 65536))).length, MAX_BODY);
    assert.equal((await call([b(`HTTP/1.1 200 OK\r\nContent-Length: ${MAX_BODY}\r\n\r\n${full}`)])).length, MAX_BODY);
    for (const msg of [chunked(`${full}y`, 4096), b(`HTTP/1.1 200 OK\r\nContent-Length: ${MAX_BODY + 1}\r\n\r\n${full}y`), b(`HTTP/1.1 200 OK\r\n\r\n${full}y`)]) {
      await assert.rejects(call(cut(msg, 1000)), (err: unknown) => err instanceof CallError && err.code === 'TOO_LARGE' && err.message === `answer larger than ${MAX_BODY} bytes`);
    }
  });

  test('every received body byte is zeroed once copied; the head and the framing are left', async () => {
    const secret = 'eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.c2ln';
    const body = `{"value":"${secret}"}`;
    for (const msg of [chunked(body, 5, ';x=1'), b(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`)]) {
      const chunks = cut(msg, 9);
      const got = await call(chunks);
      assert.equal(got.toString('latin1'), body);
      const after = Buffer.concat(chunks).toString('latin1');
      assert.ok(!after.includes('c2VjcmV0') && !after.includes('value'), after);
      assert.ok(after.startsWith('HTTP/1.1 200 OK\r\n'));
      got.fill(0);
    }
  });

  test('a refusal gives its status and no body byte; a bad or cut answer fails', async () => {
    await assert.rejects(call([b('HTTP/1.1 500 X\r\nContent-Length: 6\r\n\r\nSECRET')]), (err: unknown) => err instanceof CallError && err.status === 500 && err.code === 'HTTP_500' && !err.message.includes('SECRET'));
    await assert.rejects(call([b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX')]), (err: unknown) => err instanceof CallError && err.code === 'BAD_HTTP');
    await assert.rejects(call([b('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"value"')]), (err: unknown) => err instanceof CallError && err.code === 'CLOSED');
  });
});
