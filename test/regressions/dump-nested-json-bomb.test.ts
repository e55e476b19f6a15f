// Issue 19, finding 1: --dump-dir pretty-printed a parsed body with
// JSON.stringify(…, null, 2), whose output grows with the square of the
// nesting depth. A 32,709-byte request body, an array nested 16,300 deep,
// wrote a 531 MB file, and so did the same body as 69 bytes of gzip or 24 of
// zstd; the proxy's RSS peaked at 1.6-1.7 GB for each. Now a body nested
// deeper than 128 is never parsed and every file stays within FILE_CAP.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { FILE_CAP } from '../../src/dump/render.js';
import { rawExchange, relayFixture, responsesComplete, tmpDir, waitFor } from '../support/harness.js';
import { rss } from '../support/outcome.js';

const BOUND_MB = 64;
const DEPTH = 16300;
/** The finding's body: 32,709 bytes (the nesting, then blanks JSON allows). */
const NESTED = Buffer.from(`${'['.repeat(DEPTH)}${']'.repeat(DEPTH)}${' '.repeat(109)}`);
const zstd = (zlib as unknown as { zstdCompressSync?: (b: Buffer) => Buffer }).zstdCompressSync;

describe('a deeply nested JSON body in --dump-dir', () => {
  const dir = path.join(tmpDir(), 'dumps');
  const fx = relayFixture(['--dump-dir', dir], (req, sock) => {
    const coding = /X-Answer: (\w+)/.exec(req.head.toString('latin1'))?.[1];
    if (coding !== 'gzip') return void sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}');
    const gz = zlib.gzipSync(NESTED);
    sock.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: ${gz.length}\r\n\r\n`), gz]));
  });
  let base = 0;
  let n = 0;
  before(async () => {
    // One ordinary dump first, so the baseline includes the writer's compiled path.
    await send(Buffer.from('{"model":"m","input":"hi"}'));
    base = rss(fx.proxy.proc.pid!).now;
  });

  /** One exchange; resolves with its request and response files' sizes and bodies. */
  async function send(body: Buffer, extra = ''): Promise<{ name: string; size: number; json: Record<string, unknown> }[]> {
    const head = `POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${fx.proxy.port}\r\n${extra}Content-Length: ${body.length}\r\n\r\n`;
    const res = await rawExchange(fx.proxy.port, [Buffer.concat([Buffer.from(head), body])], { until: responsesComplete, ms: 30000 });
    assert.equal(res.status, 200);
    const prefix = `${String(++n).padStart(6, '0')}-`;
    const names = await waitFor(`exchange ${n}'s files`, () => {
      const f = fs.readdirSync(dir).filter((x) => x.startsWith(prefix));
      return f.length === 2 && f;
    }, 30000);
    return names.sort().map((name) => {
      const text = fs.readFileSync(path.join(dir, name), 'utf8');
      return { name, size: Buffer.byteLength(text), json: JSON.parse(text) as Record<string, unknown> };
    });
  }

  const cases: [string, () => Buffer | undefined, string][] = [
    ['plain, 32,709 bytes', () => NESTED, ''],
    ['gzip', () => zlib.gzipSync(NESTED), 'Content-Encoding: gzip\r\n'],
    ['zstd', () => zstd?.(NESTED), 'Content-Encoding: zstd\r\n'],
  ];
  for (const [name, make, extra] of cases) {
    test(`request body ${name}: a file the size of the body, kept as a string; peak RSS within +${BOUND_MB} MB`, async (t) => {
      const body = make();
      if (!body) return t.skip('this Node has no zlib.zstdCompressSync (22.15+, 23.8+)');
      const [req] = await send(body, extra);
      const grew = rss(fx.proxy.proc.pid!).peak - base;
      t.diagnostic(`${body.length} bytes sent; ${req!.name}: ${req!.size} bytes; VmHWM - VmRSS before: ${grew.toFixed(1)} MB`);
      assert.ok(req!.name.endsWith('-request.json'));
      assert.ok(req!.size <= FILE_CAP && req!.size < 2 * NESTED.length, `${req!.size} bytes`);
      assert.ok(req!.json['body'] === NESTED.toString());
      assert.ok(grew <= BOUND_MB, `resident memory grew by ${grew.toFixed(1)} MB`);
    });
  }

  test(`a gzip request body of 4 KB that decodes to 4 MiB of nesting: a file within the cap; the same memory bound`, async (t) => {
    const half = 2 * 1024 * 1024;
    const gz = zlib.gzipSync(Buffer.from(`${'['.repeat(half)}${']'.repeat(half)}`));
    const [req] = await send(gz, 'Content-Encoding: gzip\r\n');
    const grew = rss(fx.proxy.proc.pid!).peak - base;
    t.diagnostic(`${gz.length} bytes sent; ${req!.name}: ${req!.size} bytes; VmHWM - VmRSS before: ${grew.toFixed(1)} MB`);
    assert.ok(req!.size <= FILE_CAP, `${req!.size} bytes`);
    assert.ok(/^\[+\]+$/.test(req!.json['body'] as string));
    assert.ok(grew <= BOUND_MB, `resident memory grew by ${grew.toFixed(1)} MB`);
  });

  test(`a gzip response body nested ${DEPTH} deep: the same bounds`, async (t) => {
    const [, res] = await send(Buffer.from('{}'), 'X-Answer: gzip\r\n');
    const grew = rss(fx.proxy.proc.pid!).peak - base;
    t.diagnostic(`${res!.name}: ${res!.size} bytes; VmHWM - VmRSS before: ${grew.toFixed(1)} MB`);
    assert.ok(res!.size <= FILE_CAP && res!.size < 2 * NESTED.length, `${res!.size} bytes`);
    assert.ok(res!.json['body'] === NESTED.toString());
    assert.ok(grew <= BOUND_MB, `resident memory grew by ${grew.toFixed(1)} MB`);
  });
});
