// --dump-dir: a credential header's value is redacted by its name before it
// is decoded, so the tap never holds it as a JS string. The tap is driven in
// this process with heads whose secret bytes are made byte by byte (never a
// string here either); while it is alive, holding both sides' headers, a heap
// snapshot must hold no secret, and must hold the plain values: the control
// that shows the search can find what the tap keeps.
// (In the whole relay, parse.ts's llhttp-wasm wrapper still decodes every
// header value into a string; that is parse.ts's to fix, not the tap's.)
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import v8 from 'node:v8';
import { splitRequestHead } from '../../src/http/head.js';
import { Dump } from '../../src/dump/tap.js';
import { tmpDir } from '../support/harness.js';
import { countIn } from '../support/memory.js';

const ALPHABET = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', 'latin1');

/** 40 random token bytes, made without a string. */
function secretBytes(): Buffer {
  const out = Buffer.alloc(40);
  for (const [i, r] of crypto.randomBytes(40).entries()) out[i] = ALPHABET[r & 63]!;
  return out;
}

/** `Name: <prefix><secret>\r\n` as bytes. */
function line(name: string, prefix: string, secret: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${name}: ${prefix}`, 'latin1'), secret, Buffer.from('\r\n', 'latin1')]);
}

test('the tap holds no credential header value as a string; it holds the plain ones', async () => {
  const requestSecrets: [string, string][] = [
    ['Authorization', 'Bearer '],
    ['proxy-authorization', 'Basic '],
    ['API-Key', ''],
    ['x-api-key', ''],
    ['X-Goog-Api-Key', ''],
    ['X-Auth-Token', ''],
    ['X-Amz-Security-Token', ''],
    ['Cookie', 'sid='],
    ['X-Refresh-Token', ''],
    ['Client-Secret', ''],
  ];
  const responseSecrets: [string, string][] = [
    ['Set-Cookie', 's='],
    ['X-Upstream-Secret', ''],
    ['openai-session-TOKEN', ''],
  ];
  const secrets = [...requestSecrets, ...responseSecrets].map(() => secretBytes());
  const reqHead = Buffer.concat([
    Buffer.from('POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:1\r\nX-Plain: plain-request-value-7f3a\r\n', 'latin1'),
    ...requestSecrets.map(([n, p], i) => line(n, p, secrets[i]!)),
    Buffer.from('Content-Length: 2\r\n\r\n', 'latin1'),
  ]);
  const resHead = Buffer.concat([
    Buffer.from('HTTP/1.1 200 OK\r\nX-Plain: plain-response-value-9c1e\r\n', 'latin1'),
    ...responseSecrets.map(([n, p], i) => line(n, p, secrets[requestSecrets.length + i]!)),
    Buffer.from('Transfer-Encoding: chunked\r\n\r\n', 'latin1'),
  ]);

  const root = tmpDir();
  const logs: string[] = [];
  try {
    const dump = new Dump(root, (l) => logs.push(l));
    const head = splitRequestHead(reqHead);
    assert.ok(head);
    const tap = dump.open(head);
    tap.requestBody(Buffer.from('{}', 'latin1'));
    tap.requestEnd();
    // As the relay reports them: the head, then the body data without its chunk framing.
    tap.responseHead(200, resHead);
    tap.responseBody(Buffer.from('hello', 'latin1'));

    // The tap is alive and holds both sides' decoded headers.
    const file = path.join(root, 'heap.heapsnapshot');
    v8.writeHeapSnapshot(file);
    const snap = fs.readFileSync(file);
    fs.rmSync(file);
    for (const [i, s] of secrets.entries()) assert.equal(countIn(snap, s), 0, `secret ${i} is a heap string`);
    assert.ok(countIn(snap, Buffer.from('plain-request-value-7f3a', 'latin1')) >= 1, 'request control not found: the search is blind');
    assert.ok(countIn(snap, Buffer.from('plain-response-value-9c1e', 'latin1')) >= 1, 'response control not found: the search is blind');

    tap.end('complete');
    // Both files written, neither with a secret byte.
    const names = await new Promise<string[]>((resolve, reject) => {
      const until = Date.now() + 10_000;
      const poll = (): void => {
        const done = fs.readdirSync(root).filter((f) => f.endsWith('.json'));
        if (done.length === 2 && logs.length === 0) {
          try {
            for (const f of done) JSON.parse(fs.readFileSync(path.join(root, f), 'utf8'));
            return resolve(done);
          } catch {
            // Still being written.
          }
        }
        if (Date.now() > until) return reject(new Error(`dump files not written: ${logs.join('; ')}`));
        setTimeout(poll, 10);
      };
      poll();
    });
    for (const f of names) {
      const bytes = fs.readFileSync(path.join(root, f));
      for (const s of secrets) assert.equal(countIn(bytes, s), 0, `${f} holds a secret`);
      assert.ok(bytes.includes('[REDACTED]'));
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
