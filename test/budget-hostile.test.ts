// Hostile or broken usage never extends a budget (issue 16). Over real
// sockets: each kind of bad usage, after a real reply, exhausts --max-tokens
// and is never added in. Then a fast-check property drives the budget through
// the relay's own interfaces (gate.ts, observer.ts) with random replies, split
// at random points, plain, gzipped or JSON: a request is admitted exactly
// while the well-formed usage so far is under the budget and no bad usage
// came.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { Budget } from '../src/budget/budget.js';
import { startProxy, startUpstream, tmpDir } from './support/harness.js';
import { ask, refusal, scripted, usageOf } from './support/replies.js';

const HOSTILE: Array<[string, string]> = [
  ['negative counts', '{"input_tokens":-600,"output_tokens":0,"total_tokens":-600}'],
  ['a non-finite count (1e400)', '{"input_tokens":1,"output_tokens":1,"total_tokens":1e400}'],
  ['counts as strings', '{"input_tokens":"500","output_tokens":"100","total_tokens":"600"}'],
  ['a repeated key inside usage', '{"input_tokens":500,"output_tokens":100,"total_tokens":600,"total_tokens":0}'],
  ['a repeated usage key', `${usageOf(600)},"usage":${usageOf(0)}`],
  ['a fraction', '{"input_tokens":0.5,"output_tokens":0,"total_tokens":0.5}'],
  ['a count past 2^53', '{"input_tokens":9007199254740993,"output_tokens":0,"total_tokens":9007199254740993}'],
  ['an array', '[600]'],
  ['a string', '"600"'],
  ['a negative detail', '{"input_tokens":500,"input_tokens_details":{"cached_tokens":-400},"output_tokens":100,"total_tokens":600}'],
  ['an empty object', '{}'],
  ['usage past the 16 KiB cap', `{"input_tokens":500,"output_tokens":100,"total_tokens":600,"pad":"${'x'.repeat(20_000)}"}`],
];

describe('bad usage over real sockets', () => {
  for (const [name, usage] of HOSTILE) {
    test(`${name}: the next request is refused, and nothing of it is counted`, async () => {
      const up = await startUpstream(scripted);
      const file = path.join(tmpDir(), 'usage.json');
      const proxy = await startProxy(['--upstream-url', up.url, '--max-tokens', '1000', '--usage-file', file]);
      try {
        assert.equal((await ask(proxy.port, { mode: 'sse', tokens: 600 })).status, 200);
        assert.equal((await ask(proxy.port, { mode: 'sse', usage })).status, 200);
        const r = refusal(await ask(proxy.port, { mode: 'sse', tokens: 1 }));
        assert.equal(r.status, 429);
        assert.equal(r.body.error.message, 'codex-responses-api-proxy budget exhausted: --max-tokens 1000 reached (a reply reported usage that cannot be trusted)');
        assert.equal(up.received.length, 2);
      } finally {
        await proxy.stop();
        await up.close();
      }
      const u = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, number>;
      assert.equal(u['total_tokens'], 600);
      assert.equal(u['invalid_usage'], 1);
      assert.equal(u['unmetered'], 1);
    });
  }

  test('a total below its parts counts the parts', async () => {
    const up = await startUpstream(scripted);
    const proxy = await startProxy(['--upstream-url', up.url, '--max-tokens', '1000']);
    try {
      assert.equal((await ask(proxy.port, { mode: 'json', usage: '{"input_tokens":600,"output_tokens":600,"total_tokens":0}' })).status, 200);
      assert.equal((await ask(proxy.port, { mode: 'json', tokens: 1 })).status, 429);
      assert.equal(up.received.length, 1);
    } finally {
      await proxy.stop();
      await up.close();
    }
  });
});

type Reply =
  | { kind: 'valid'; input: number; output: number; total: number }
  | { kind: 'bad'; usage: string }
  | { kind: 'none' };

const count = fc.integer({ min: 0, max: 700 });
const reply: fc.Arbitrary<Reply> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(count, count, fc.integer({ min: 0, max: 1500 })).map(([input, output, total]): Reply => ({ kind: 'valid', input, output, total })) },
  { weight: 1, arbitrary: fc.constantFrom(...HOSTILE.map(([, usage]): Reply => ({ kind: 'bad', usage }))) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('-1', '1e400', '"7"', '1.25', 'null', 'true', '{}'), fc.constantFrom('input_tokens', 'output_tokens', 'total_tokens'))
      .map(([v, key]): Reply => ({ kind: 'bad', usage: JSON.stringify({ input_tokens: 1, output_tokens: 1, total_tokens: 2 }).replace(`"${key}":${key === 'total_tokens' ? 2 : 1}`, `"${key}":${v}`) })),
  },
  { weight: 1, arbitrary: fc.constant<Reply>({ kind: 'none' }) },
);

function usageText(r: Reply): string {
  if (r.kind === 'valid') return JSON.stringify({ input_tokens: r.input, output_tokens: r.output, total_tokens: r.total });
  return r.kind === 'bad' ? r.usage : 'null';
}

function body(r: Reply, format: 'sse' | 'json'): Buffer {
  const response = (u: string) => `{"id":"resp_1","object":"response","model":"m","output":[],"usage":${u}}`;
  if (format === 'json') return Buffer.from(response(usageText(r)));
  const events = [`event: response.created\ndata: {"type":"response.created","response":${response('null')}}\n\n`, 'data: {"type":"response.output_text.delta","delta":"x"}\n\n'];
  // 'none': a stream cut before its terminal event.
  if (r.kind !== 'none') events.push(`event: response.completed\ndata: {"type":"response.completed","response":${response(usageText(r))}}\n\n`);
  return Buffer.from(events.join(''));
}

function pieces(bytes: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const n = sizes.length ? sizes[i % sizes.length]! : bytes.length;
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

describe('the budget against random replies (fast-check)', () => {
  test('admitted exactly while well-formed usage is under --max-tokens and no bad usage came', async () => {
    const BUDGET = 2000;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(reply, fc.constantFrom('sse', 'gzip', 'json'), fc.array(fc.integer({ min: 1, max: 97 }), { maxLength: 8 })), { minLength: 1, maxLength: 8 }),
        async (replies) => {
          const budget = new Budget({ maxRequests: undefined, maxTokens: BUDGET }, null, () => {});
          let spent = 0;
          let bad = false;
          for (const [r, format, sizes] of replies) {
            const refused = await new Promise((resolve) => budget.check((x) => resolve(x !== null)));
            assert.equal(refused, spent >= BUDGET || bad);
            if (refused) continue;
            const meter = budget.open();
            const plain = body(r, format === 'json' ? 'json' : 'sse');
            const type = format === 'json' ? 'application/json' : 'text/event-stream';
            const coding = format === 'gzip' ? 'Content-Encoding: gzip\r\n' : '';
            meter.responseHead(200, Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: ${type}\r\n${coding}\r\n`));
            for (const p of pieces(format === 'gzip' ? zlib.gzipSync(plain) : plain, sizes)) meter.responseBody(p);
            meter.end();
            if (r.kind === 'valid') spent += Math.max(r.total, r.input + r.output);
            if (r.kind === 'bad') bad = true;
          }
          await new Promise<void>((resolve) => budget.check(() => resolve()));
          assert.equal((JSON.parse(budget.report()) as { total_tokens: number }).total_tokens, spent);
        },
      ),
      { numRuns: 300 },
    );
  });
});
