// The spend guard over real sockets (issue 16): --max-requests and
// --max-tokens refuse with 429 budget_exhausted before anything reaches the
// upstream; tokens are counted from streams at response.completed (also when
// the client leaves before the terminator, and when the upstream gzips) and
// from JSON replies; concurrent requests cannot race the budget; the openai
// SDK stops at the first 429.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startProxy, startUpstream, tmpDir, waitFor, type Proxy, type Upstream } from './support/harness.js';
import { ask, refusal, scripted, type Ask } from './support/replies.js';

interface Run {
  up: Upstream;
  proxy: Proxy;
  usageFile: string;
}

const runs: Run[] = [];
after(async () => {
  for (const r of runs) {
    await r.proxy.stop();
    await r.up.close();
  }
});

async function start(args: string[]): Promise<Run> {
  const up = await startUpstream(scripted);
  const usageFile = path.join(tmpDir(), 'usage.json');
  const proxy = await startProxy(['--upstream-url', up.url, '--usage-file', usageFile, ...args]);
  const run = { up, proxy, usageFile };
  runs.push(run);
  return run;
}

function assertRefused(r: Awaited<ReturnType<typeof ask>>, detail: string): void {
  const { status, head, body } = refusal(r);
  assert.equal(status, 429, r.data.toString());
  assert.match(head, /\r\nX-Should-Retry: false\r\n/i);
  assert.equal(body.error.code, 'budget_exhausted');
  assert.equal(body.error.type, 'usage_limit_reached');
  assert.equal(body.error.message, `codex-responses-api-proxy budget exhausted: ${detail}`);
  // Codex shows this header's text for a usage_limit_reached 429.
  assert.match(head, new RegExp(`\\r\\nX-Codex-Promo-Message: codex-responses-api-proxy budget exhausted: ${detail.replace(/[-.]/g, '\\$&')}(\\r\\n|$)`, 'i'));
  assert.match(head, /\r\nConnection: close(\r\n|$)/i);
}

describe('--max-requests', () => {
  test('--max-requests 2: the third request gets 429 budget_exhausted, x-should-retry: false; the upstream saw 2', async () => {
    const { up, proxy } = await start(['--max-requests', '2']);
    for (let i = 0; i < 2; i++) assert.equal((await ask(proxy.port, { mode: 'sse', tokens: 10 })).status, 200);
    assertRefused(await ask(proxy.port, { mode: 'sse', tokens: 10 }), '--max-requests 2 reached');
    assert.equal(up.received.length, 2);
  });

  test('40 concurrent requests against --max-requests 5: exactly 5 reach the upstream, the rest are refused', async () => {
    const { up, proxy } = await start(['--max-requests', '5']);
    const results = await Promise.all(Array.from({ length: 40 }, () => ask(proxy.port, { mode: 'json', tokens: 10 })));
    assert.equal(results.filter((r) => r.status === 200).length, 5);
    assert.equal(results.filter((r) => r.status === 429).length, 35);
    assert.equal(up.received.length, 5);
  });

  test('requests in flight when the budget runs out finish normally', async () => {
    const { up, proxy } = await start(['--max-requests', '2']);
    // Both admitted; their replies wait for the terminator until after the third is refused.
    const slow: Ask = { mode: 'sse', tokens: 10, lateMs: 300 };
    const first = ask(proxy.port, slow);
    const second = ask(proxy.port, slow);
    await waitFor('both requests upstream', () => up.received.length === 2);
    assertRefused(await ask(proxy.port, { mode: 'sse', tokens: 10 }), '--max-requests 2 reached');
    for (const r of await Promise.all([first, second])) {
      assert.equal(r.status, 200);
      assert.ok(r.data.subarray(-5).equals(Buffer.from('0\r\n\r\n')), 'the whole stream arrived');
    }
  });
});

describe('--max-tokens 1000, 600 tokens per reply: the third request is refused', () => {
  const cases: Array<[string, Ask, 'whole' | 'completed']> = [
    ['streamed', { mode: 'sse', tokens: 600 }, 'whole'],
    ['the client closes right after response.completed; the terminator comes 300 ms later', { mode: 'sse', tokens: 600, lateMs: 300 }, 'completed'],
    ['gzipped, the client closing right after response.completed', { mode: 'gzip', tokens: 600, lateMs: 300 }, 'completed'],
    ['gzipped, read whole', { mode: 'gzip', tokens: 600 }, 'whole'],
    ['plain JSON', { mode: 'json', tokens: 600 }, 'whole'],
  ];
  for (const [name, a, read] of cases) {
    test(name, async () => {
      const { up, proxy } = await start(['--max-tokens', '1000']);
      assert.equal((await ask(proxy.port, a, read)).status, 200);
      assert.equal((await ask(proxy.port, a, read)).status, 200);
      // At once: no wait for the second reply's terminator or for anything to be written.
      assertRefused(await ask(proxy.port, a, read), '--max-tokens 1000 reached');
      assert.equal(up.received.length, 2);
    });
  }

  test('a request sent in the same turn as the gzipped response.completed arrives is judged after it is counted', async () => {
    const { up, proxy } = await start(['--max-tokens', '600']);
    const a: Ask = { mode: 'gzip', tokens: 600, lateMs: 300 };
    // Ten times: the next request is written the moment the client has the bytes.
    assert.equal((await ask(proxy.port, a, 'completed')).status, 200);
    for (let i = 0; i < 10; i++) assertRefused(await ask(proxy.port, a, 'completed'), '--max-tokens 600 reached');
    assert.equal(up.received.length, 1);
  });
});

describe('the openai SDK', () => {
  test('gets the 429 at once: one attempt, not its retry back-off', async () => {
    const { up, proxy, usageFile } = await start(['--max-requests', '1']);
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${proxy.port}/v1`, apiKey: 'sk-sdk-own-key', maxRetries: 2 });
    await client.responses.create({ model: 'gpt-test', input: 'hi', mode: 'json', tokens: 10 } as never);
    const err = await client.responses.create({ model: 'gpt-test', input: 'hi', mode: 'json', tokens: 10 } as never).then(
      () => assert.fail('the second request was admitted'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof OpenAI.RateLimitError, String(err));
    assert.equal(err.status, 429);
    assert.equal(err.code, 'budget_exhausted');
    assert.match(err.message, /--max-requests 1 reached/);
    assert.equal(up.received.length, 1);
    // The SDK throws after its last attempt; the usage file written at exit
    // counts every refusal the proxy made: one, so no retry.
    await proxy.stop();
    assert.equal((JSON.parse(fs.readFileSync(usageFile, 'utf8')) as { refused: number }).refused, 1);
  });
});
