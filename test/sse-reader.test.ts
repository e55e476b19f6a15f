// The shared reader (src/relay/sse.ts, json-pick.ts) on its own: every
// fixture at every split point and a byte at a time, since the relay hands
// it whatever one read held. Strings that look like usage, escaped quotes and
// backslashes, line endings of every kind, and large echoed events.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { ResponseReader, type Report } from '../src/relay/sse.js';

const SSE_HEAD = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\r\n');
const JSON_HEAD = Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n');

const TRICKY = JSON.stringify({ text: 'say "usage":{"total_tokens":0} and }{][ \\ "', nested: [{ usage: { total_tokens: 0 } }] });
const USAGE = '{"input_tokens":40,"input_tokens_details":{"cached_tokens":8},"output_tokens":2,"output_tokens_details":{"reasoning_tokens":1},"total_tokens":42}';

function completed(eol: string): string {
  return [
    `: keep-alive comment${eol}`,
    `event: response.output_text.delta${eol}data: {"type":"response.output_text.delta","delta":${JSON.stringify(TRICKY)}}${eol}${eol}`,
    // The type after a large field, the response split over two data lines, and "data:" with no space.
    `event: response.completed${eol}data:{"response":{"instructions":${JSON.stringify('x'.repeat(3000))},"output":${TRICKY},${eol}data: "model":"gpt-\\u0035","usage":${USAGE}},"type":"response.completed"}${eol}${eol}`,
  ].join('');
}

function read(head: Buffer, pieces: Buffer[]): Promise<{ reports: Report[]; terminal: boolean }> {
  const reports: Report[] = [];
  const r = new ResponseReader(head, (x) => reports.push({ usage: { ...x.usage }, model: { ...x.model } }), (line) => assert.fail(line));
  for (const p of pieces) r.data(p);
  return new Promise((resolve) => r.finish(() => resolve({ reports, terminal: r.terminal })));
}

function splits(bytes: Buffer): Buffer[][] {
  const out: Buffer[][] = [[bytes], [...bytes].map((b) => Buffer.from([b]))];
  for (let i = 1; i < bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return out;
}

function assertUsage(reports: Report[]): void {
  assert.equal(reports.length, 1);
  assert.equal(reports[0]!.usage.value?.toString(), USAGE);
  assert.equal(reports[0]!.usage.duplicate, false);
  assert.equal(reports[0]!.model.value?.toString(), '"gpt-\\u0035"');
}

for (const [name, eol] of [['LF', '\n'], ['CRLF', '\r\n'], ['CR', '\r']] as const) {
  test(`an SSE stream with ${name} line ends, at every split point: one terminal event, its usage only`, async () => {
    const bytes = Buffer.from(completed(eol));
    for (const pieces of splits(bytes)) {
      const { reports, terminal } = await read(SSE_HEAD, pieces);
      assert.ok(terminal);
      assertUsage(reports);
    }
  });
}

test('a JSON reply at every split point: its top-level usage, not one inside a string or an array', async () => {
  const bytes = Buffer.from(`{"output":${TRICKY},"model":"gpt-\\u0035","usage":${USAGE},"text":"}"}`);
  for (const pieces of splits(bytes)) {
    const { reports, terminal } = await read(JSON_HEAD, pieces);
    assert.ok(!terminal);
    assertUsage(reports);
  }
});

test('gzip, deflate and br are read whatever the pieces', async () => {
  const bytes = Buffer.from(completed('\n'));
  for (const [coding, packed] of [['gzip', zlib.gzipSync(bytes)], ['deflate', zlib.deflateSync(bytes)], ['br', zlib.brotliCompressSync(bytes)]] as const) {
    const head = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: ${coding}\r\n\r\n`);
    for (const pieces of [[packed], [...packed].map((b) => Buffer.from([b]))]) assertUsage((await read(head, pieces)).reports);
  }
});

test('a stream that ends without its terminal event reports nothing; an event cut before its blank line still counts', async () => {
  const bytes = Buffer.from(completed('\n'));
  const cut = bytes.subarray(0, bytes.indexOf('event: response.completed'));
  assert.deepEqual(await read(SSE_HEAD, [cut]), { reports: [], terminal: false });
  const { reports, terminal } = await read(SSE_HEAD, [bytes.subarray(0, bytes.length - 1)]);
  assert.ok(terminal);
  assertUsage(reports);
});

test('other content types are not read; a coding that cannot be decoded reports usage that cannot be trusted', async () => {
  const warned: string[] = [];
  const seen: Report[][] = [];
  for (const head of ['Content-Type: application/octet-stream', 'Content-Type: text/event-stream\r\nContent-Encoding: gzip, br']) {
    const reports: Report[] = [];
    const r = new ResponseReader(Buffer.from(`HTTP/1.1 200 OK\r\n${head}\r\n\r\n`), (x) => reports.push(x), (l) => warned.push(l));
    r.data(Buffer.from(completed('\n')));
    await new Promise<void>((resolve) => r.finish(resolve));
    seen.push(reports);
  }
  assert.equal(seen[0]!.length, 0);
  // Review finding: a client picks the Accept-Encoding the upstream sees, so
  // a reply the meter cannot decode must not pass as unmetered.
  assert.equal(seen[1]!.length, 1);
  assert.equal(seen[1]![0]!.usage.oversized, true);
  assert.deepEqual(warned, ['a response with Content-Encoding "gzip, br" cannot be read: its usage counts as untrusted']);
});
