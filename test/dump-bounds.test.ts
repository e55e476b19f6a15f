// Issue 19, item 1: a dump file is bounded by what is written, not only by
// the body it was made from. The renderer on its own (the same bytes as
// JSON.stringify(…, null, 2) for ordinary bodies; the depth and value limits;
// cuts that never split an escape or a surrogate pair; a head too long), then
// over real sockets: a gzip body of zeros, and a full dump disk.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { FILE_CAP, MAX_DEPTH, MAX_VALUES, renderFile, type Body } from '../src/dump/render.js';
import { DUMP_CAP, type DumpRecord, type Header } from '../src/dump/tap.js';
import { rawExchange, relayFixture, responsesComplete, startProxy, startUpstream, tmpDir, waitFor, type Proxy, type Upstream } from './support/harness.js';

const HEADERS: Header[] = [
  { name: 'Host', value: '127.0.0.1:1' },
  { name: 'Content-Type', value: 'application/json' },
];

function record(over: Partial<DumpRecord> = {}): DumpRecord {
  return { file: 'x', kind: 'request', method: 'POST', url: '/v1/responses', headers: HEADERS, body: [], bodyBytes: 0, truncated: false, chunked: false, encoding: '', ...over };
}

function render(data: Buffer | string, over: Partial<DumpRecord> = {}, body: Partial<Body> = {}): { text: string; json: Record<string, unknown> } {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  const bytes = renderFile(record({ bodyBytes: buf.length, ...over }), { data: buf, coding: '', truncated: false, ...body });
  assert.ok(bytes.length <= FILE_CAP, `${bytes.length} bytes, past ${FILE_CAP}`);
  const text = bytes.toString('utf8');
  return { text, json: JSON.parse(text) as Record<string, unknown> };
}

/** What the writer wrote before issue 19, for a body that is not cut. */
function former(rec: DumpRecord, body: unknown): string {
  const head = rec.kind === 'request' ? { method: rec.method, url: rec.url, headers: rec.headers } : { status: rec.status, headers: rec.headers };
  return `${JSON.stringify({ ...head, body, ...(rec.incomplete ? { incomplete: true } : {}), ...(rec.ended ? { ended: rec.ended } : {}) }, null, 2)}\n`;
}

const wellFormed = (s: string): boolean => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);

describe('the renderer', () => {
  test('ordinary bodies: byte for byte what JSON.stringify(…, null, 2) wrote, JSON or not, either direction', () => {
    const header = fc.record({ name: fc.string({ minLength: 1, maxLength: 12 }), value: fc.string({ unit: 'binary', maxLength: 40 }) });
    const rec = fc.record({
      kind: fc.constantFrom('request' as const, 'response' as const),
      status: fc.integer({ min: 200, max: 599 }),
      headers: fc.array(header, { maxLength: 6 }),
      incomplete: fc.boolean(),
      ended: fc.constantFrom('', 'client_abort', 'upstream_protocol'),
    });
    const body = fc.oneof(
      fc.jsonValue({ stringUnit: 'binary', maxDepth: 6 }).map((v) => ({ bytes: Buffer.from(JSON.stringify(v)), value: JSON.parse(JSON.stringify(v)) as unknown })),
      fc.string({ unit: 'binary', maxLength: 200 }).map((s) => {
        const bytes = Buffer.from(s);
        let value: unknown = bytes.toString('utf8');
        try {
          value = JSON.parse(value as string);
        } catch {
          // Not JSON: the text itself.
        }
        return { bytes, value };
      }),
    );
    fc.assert(
      fc.property(rec, body, (r, b) => {
        const full = record({ kind: r.kind, status: r.status, headers: r.headers, ...(r.incomplete ? { incomplete: true } : {}), ...(r.ended ? { ended: r.ended } : {}) });
        const got = renderFile(full, { data: b.bytes, coding: '', truncated: false }).toString('utf8');
        assert.equal(got, former(full, b.value));
      }),
      { numRuns: 300 },
    );
  });

  test('an encoding kept as sent: base64 and the coding, as before', () => {
    const data = Buffer.from([0x1f, 0x9d, 0x90, 0x7b, 0x00]);
    const { text } = render(data, { encoding: 'compress' }, { coding: 'compress' });
    const base = JSON.parse(former(record(), data.toString('base64'))) as Record<string, unknown>;
    assert.equal(text, `${JSON.stringify({ ...base, body_encoding: 'base64', content_encoding: 'compress' }, null, 2)}\n`);
  });

  test(`JSON nested ${MAX_DEPTH} deep is parsed; one level more is a string, and brackets inside strings do not count`, () => {
    const nest = (n: number): string => `${'['.repeat(n)}${']'.repeat(n)}`;
    assert.equal(typeof render(nest(MAX_DEPTH)).json['body'], 'object');
    assert.equal(render(nest(MAX_DEPTH + 1)).json['body'], nest(MAX_DEPTH + 1));
    const quoted = `{"a":"${'['.repeat(1000)}\\"[","b":${nest(MAX_DEPTH - 1)}}`;
    assert.equal(typeof render(quoted).json['body'], 'object');
  });

  test(`at most ${MAX_VALUES} values (openings and commas) are parsed; more are a string`, () => {
    // n elements: one opening and n - 1 commas.
    const list = (n: number): string => `[${'0,'.repeat(n - 1)}0]`;
    assert.equal((render(list(MAX_VALUES)).json['body'] as unknown[]).length, MAX_VALUES);
    assert.ok(render(list(MAX_VALUES + 1)).json['body'] === list(MAX_VALUES + 1));
  });

  test('JSON whose pretty form would pass the cap is written whole as a string, not cut', () => {
    // 260 KB of compact JSON: every zero on its own line, 240 spaces in.
    const deep = `${'['.repeat(120)}${'0,'.repeat(130000)}0${']'.repeat(120)}`;
    const { json } = render(deep);
    assert.ok(json['body'] === deep);
    assert.equal(json['truncated'], undefined);
  });

  test('4 MiB of NUL bytes: a string cut to fit the file, marked, each escape whole', () => {
    const { json, text } = render(Buffer.alloc(DUMP_CAP));
    const body = json['body'] as string;
    assert.equal(json['truncated'], true);
    assert.equal(json['body_bytes'], DUMP_CAP);
    assert.match(body, /^\0+$/);
    // Each NUL is 6 bytes (\u0000); the file is within one escape of its cap.
    assert.ok(Buffer.byteLength(text) > FILE_CAP - 6 - 512 - 100, `${Buffer.byteLength(text)} bytes`);
  });

  test('a cut never splits a surrogate pair', () => {
    // Pairs throughout, so both the escaping slices and the final cut land on pairs, at either parity.
    for (let shift = 0; shift < 2; shift++) {
      const s = `${'a'.repeat(shift)}${'\u{1f600}'.repeat(FILE_CAP / 2)}`;
      const body = render(s, {}, { truncated: true }).json['body'] as string;
      assert.ok(wellFormed(body));
      assert.ok(body.length > DUMP_CAP / 2 && s.startsWith(body));
    }
  });

  test('lone surrogates in parsed strings are escaped as JSON.stringify escapes them', () => {
    const v = { a: '\ud800x\udc00', b: ['\udbff'] };
    assert.equal(render(JSON.stringify(v)).text, former(record(), v));
    // Longer than one escaping slice, pairs across its ends at either parity.
    for (const w of [{ s: '\u{1f600}'.repeat(20000) }, { s: `a${'\u{1f600}'.repeat(20000)}` }]) assert.ok(render(JSON.stringify(w)).text === former(record(), w));
  });

  test('a body of DUMP_CAP plain bytes fits whole beside the longest head; headers past the head room are left out and marked', () => {
    const headers = Array.from({ length: 5000 }, (_, i) => ({ name: `X-Header-${i}`, value: 'v'.repeat(30) }));
    const { json } = render(Buffer.alloc(DUMP_CAP, 0x61), { headers });
    assert.equal((json['body'] as string).length, DUMP_CAP);
    assert.equal(json['truncated'], undefined);
    assert.equal(json['head_truncated'], true);
    const kept = json['headers'] as Header[];
    assert.ok(kept.length > 100 && kept.length < headers.length);
    assert.deepEqual(kept, headers.slice(0, kept.length));
  });

  test('a long method, URL or coding name is cut and marked; base64 of a body past the cap is cut at a whole group; every note at its longest still fits', () => {
    const data = Buffer.alloc(DUMP_CAP, 0xfe);
    const headers = Array.from({ length: 5000 }, (_, i) => ({ name: `X-Header-${i}`, value: '\u0001'.repeat(30) }));
    const longest = { headers, incomplete: true, ended: 'upstream_trailers_too_large', bodyBytes: Number.MAX_SAFE_INTEGER };
    const { json } = render(data, { ...longest, method: 'M'.repeat(1000), url: `/${'u'.repeat(1000)}`, encoding: 'x'.repeat(1000) }, { coding: 'x'.repeat(1000) });
    assert.equal(json['body_bytes'], Number.MAX_SAFE_INTEGER);
    assert.equal(json['ended'], 'upstream_trailers_too_large');
    assert.equal(json['head_truncated'], true);
    assert.ok((json['method'] as string).length < 300 && (json['url'] as string).length < 300 && (json['content_encoding'] as string).length < 300);
    const b64 = json['body'] as string;
    assert.equal(b64.length % 4, 0);
    assert.ok(data.subarray(0, (b64.length / 4) * 3).equals(Buffer.from(b64, 'base64')));
    assert.equal(json['truncated'], true);
  });
});

function post(port: number, body: Buffer, extra = ''): Buffer {
  return Buffer.concat([Buffer.from(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${extra}Content-Length: ${body.length}\r\n\r\n`, 'latin1'), body]);
}

/** Every file of exchange `n`, once its response file has been written (request files land first). */
async function exchangeFiles(dir: string, n: number): Promise<string[]> {
  const prefix = `${String(n).padStart(6, '0')}-`;
  await waitFor(`exchange ${n}'s response file`, () => fs.readdirSync(dir).some((f) => f.startsWith(prefix) && f.endsWith('-response.json')), 30000);
  return fs.readdirSync(dir).filter((f) => f.startsWith(prefix));
}

describe('over real sockets', () => {
  const dir = path.join(tmpDir(), 'dumps');
  const fx = relayFixture(['--dump-dir', dir], (_req, sock) => void sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}'));

  test('a 4 MiB-of-zeros gzip body: the file stays within the cap, the body a marked string of NULs', async () => {
    const gz = zlib.gzipSync(Buffer.alloc(DUMP_CAP));
    const res = await rawExchange(fx.proxy.port, [post(fx.proxy.port, gz, 'Content-Encoding: gzip\r\n')], { until: responsesComplete });
    assert.equal(res.status, 200);
    const file = (await exchangeFiles(dir, 1)).find((f) => f.endsWith('-request.json'))!;
    const size = fs.statSync(path.join(dir, file)).size;
    assert.ok(size <= FILE_CAP, `${size} bytes`);
    const json = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Record<string, unknown>;
    assert.equal(json['truncated'], true);
    assert.equal(json['body_bytes'], gz.length);
    assert.match(json['body'] as string, /^\0+$/);
  });
});

describe('a full dump disk', () => {
  let root: string;
  let mnt = '';
  let skip: string | false = false;
  let up: Upstream;
  let proxy: Proxy;
  before(async () => {
    root = tmpDir();
    const m = path.join(root, 'mnt');
    fs.mkdirSync(m);
    try {
      // A filesystem of its own, 256 KiB, so filling it harms nothing else.
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', m], { stdio: 'pipe' });
      mnt = m;
    } catch (err) {
      skip = `cannot mount a small tmpfs here (${String((err as { stderr?: Buffer }).stderr ?? err).trim()})`;
      return;
    }
    up = await startUpstream((_req, sock) => void sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}'));
    proxy = await startProxy(['--upstream-url', up.url, '--dump-dir', path.join(mnt, 'dumps')]);
  });
  after(async () => {
    if (mnt) {
      await proxy?.stop();
      await up?.close();
      execFileSync('umount', [mnt]);
    }
  });

  test('a dump that does not fit leaves no file, partial or temporary; the relay keeps serving; one warning line', async (t) => {
    if (skip) return t.skip(skip);
    const dumps = path.join(mnt, 'dumps');
    // Fill the disk but for 32 KiB: a 100 KB request file fails part-way through its write.
    const filler = path.join(mnt, 'filler');
    fs.writeFileSync(filler, Buffer.alloc(256 * 1024 - 32 * 1024 - 8192));
    const big = Buffer.from(JSON.stringify({ input: 'p'.repeat(100_000) }));
    for (let n = 1; n <= 5; n++) {
      const res = await rawExchange(proxy.port, [post(proxy.port, big)], { until: responsesComplete });
      assert.equal(res.status, 200);
      assert.ok(up.received.at(-1)!.body.equals(big));
      // The small response file still fits; the request file never appears.
      assert.deepEqual((await exchangeFiles(dumps, n)).map((f) => f.replace(/-\d{13}-/, '-')), [`${String(n).padStart(6, '0')}-response.json`]);
    }
    assert.deepEqual(
      fs.readdirSync(dumps).filter((f) => !f.endsWith('-response.json')),
      [],
      'a request file or a temporary name was left behind',
    );
    const lines = proxy.stderr().split('\n').filter((l) => l.includes('cannot write dump'));
    assert.equal(lines.length, 1, proxy.stderr());
    assert.match(lines[0]!, /cannot write dump 000001-\d{13}-request\.json \(ENOSPC\)$/);
    // Room again: the next request file is written.
    fs.rmSync(filler);
    await rawExchange(proxy.port, [post(proxy.port, big)], { until: responsesComplete });
    assert.equal((await exchangeFiles(dumps, 6)).length, 2);
  });
});
