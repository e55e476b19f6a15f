// Real clients through the proxy: the official `openai` SDK and curl, each
// streaming from the fake Responses upstream (demo/fake-responses.ts) through
// the proxy started as users start it (a child process, key piped on stdin).
//
// "Streams at once" is proved without clocks: the upstream holds event N+1
// until the client under test has read event N. A proxy that held events back
// would never let the client see event N, and the gate's generous bound turns
// that deadlock into a failure naming the event.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { DEFAULT_ANSWER, SseReader, startFakeResponses } from '../demo/fake-responses.js';
import type { FakeResponsesOptions, FakeResponsesServer } from '../demo/fake-responses.js';
import { KEY, startProxy } from './support/harness.js';
import type { Proxy } from './support/harness.js';

/** The key the SDK is given: it must be replaced by the proxy, never forwarded. */
const SDK_OWN_KEY = 'sk-sdk-own-key-must-not-reach-upstream';
/** How long the gate waits for the client to read an event before failing the exchange (a deadlock bound, not a latency budget). */
const GATE_BOUND_MS = 15_000;

interface Relay {
  upstream: FakeResponsesServer;
  proxy: Proxy;
  baseUrl: string;
}

async function startRelay(options: FakeResponsesOptions = {}): Promise<Relay> {
  const upstream = await startFakeResponses(options);
  try {
    const proxy = await startProxy(['--upstream-url', upstream.responsesUrl]);
    return { upstream, proxy, baseUrl: `http://127.0.0.1:${proxy.port}/v1` };
  } catch (err) {
    await upstream.close();
    throw err;
  }
}

async function stopRelay(relay: Relay | undefined): Promise<void> {
  if (relay === undefined) return;
  await relay.proxy.stop();
  await relay.upstream.close();
}

/**
 * Holds upstream event i (i > 0) until `seen(i - 1)` was called by the client side.
 * Pass `beforeEvent` to the fake upstream.
 */
function eventGate() {
  const waiters: Array<{ promise: Promise<void>; resolve: () => void }> = [];
  const slot = (i: number) => {
    while (waiters.length <= i) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      waiters.push({ promise, resolve });
    }
    return waiters[i]!;
  };
  let failure: string | undefined;
  return {
    seen(index: number): void {
      slot(index).resolve();
    },
    get failure(): string | undefined {
      return failure;
    },
    async beforeEvent(index: number, type: string): Promise<void> {
      if (index === 0) return;
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<'bound'>((r) => (timer = setTimeout(() => r('bound'), GATE_BOUND_MS)));
      const outcome = await Promise.race([slot(index - 1).promise, bound]);
      clearTimeout(timer);
      if (outcome === 'bound') {
        failure = `event ${index - 1} had not reached the client when event ${index} (${type}) was due`;
        throw new Error(failure);
      }
    },
  };
}

function assertUpstreamSawOnlyTheProxyKey(upstream: FakeResponsesServer, clientKey: string): void {
  assert.ok(upstream.requests.length > 0, 'the upstream received no request');
  for (const req of upstream.requests) {
    assert.equal(req.headers.authorization, `Bearer ${KEY}`);
    const authLines = req.rawHeaders.filter((_, i) => i % 2 === 0 && req.rawHeaders[i]!.toLowerCase() === 'authorization');
    assert.equal(authLines.length, 1, 'exactly one Authorization header upstream');
    assert.ok(!req.rawHeaders.join('\n').includes(clientKey), "the client's own key reached the upstream headers");
    assert.ok(!req.body.includes(clientKey), "the client's own key reached the upstream body");
  }
}

function sdkClient(baseURL: string): OpenAI {
  return new OpenAI({ apiKey: SDK_OWN_KEY, baseURL, maxRetries: 0, timeout: 20_000 });
}

describe('openai SDK through the proxy', () => {
  let relay: Relay | undefined;
  before(async () => {
    relay = await startRelay({ timestampComments: true });
  });
  after(() => stopRelay(relay));

  test('streams every event intact, each read before the upstream sends the next', async (t) => {
    const gate = eventGate();
    const gated = await startRelay({ beforeEvent: (i, type) => gate.beforeEvent(i, type) });
    t.after(() => stopRelay(gated));
    const { upstream, baseUrl } = gated;
    const got: unknown[] = [];
    let text = '';
    try {
      const stream = await sdkClient(baseUrl).responses.create({ model: 'gpt-test', input: 'Say hello.', stream: true });
      // Bounded by the upstream's finite event list (and the SDK timeout).
      for await (const event of stream) {
        got.push(event);
        gate.seen(got.length - 1);
        if (event.type === 'response.output_text.delta') text += event.delta;
      }
    } catch (err) {
      // A held-back event shows up here as a timeout or a cut stream; say which event it was.
      throw new Error(`${gate.failure ?? 'the stream failed'}: ${(err as Error).message}`);
    }
    assert.equal(gate.failure, undefined);
    const sent = upstream.streams[0]?.map((e) => e.data);
    assert.deepEqual(got, sent);
    assert.equal(text, DEFAULT_ANSWER);
    const last = got[got.length - 1] as { type: string; response: { status: string; usage: unknown } };
    assert.equal(last.type, 'response.completed');
    assert.equal(last.response.status, 'completed');
    assert.ok(last.response.usage, 'response.completed carries usage');
    assert.deepEqual(upstream.requests[0]?.json, { model: 'gpt-test', input: 'Say hello.', stream: true });
    assertUpstreamSawOnlyTheProxyKey(upstream, SDK_OWN_KEY);
  });

  test('SSE comments between events pass through and the SDK ignores them', async () => {
    // timestampComments puts ": sent_at_ms=..." before every event, as the demo reads it.
    const { upstream, baseUrl } = relay!;
    const already = upstream.streams.length;
    const stream = await sdkClient(baseUrl).responses.create({ model: 'gpt-test', input: 'Say hello.', stream: true });
    const got: unknown[] = [];
    for await (const event of stream) got.push(event);
    assert.deepEqual(got, upstream.streams[already]?.map((e) => e.data));
    assertUpstreamSawOnlyTheProxyKey(upstream, SDK_OWN_KEY);
  });

  test('a non-streaming call returns the whole response object', async () => {
    const { upstream, baseUrl } = relay!;
    const already = upstream.requests.length;
    const response = await sdkClient(baseUrl).responses.create({ model: 'gpt-test', input: 'Say hello.' });
    assert.equal(response.status, 'completed');
    assert.equal(response.output_text, DEFAULT_ANSWER);
    assert.ok(response.usage && response.usage.total_tokens > 0);
    assert.equal(upstream.requests.length, already + 1);
    assertUpstreamSawOnlyTheProxyKey(upstream, SDK_OWN_KEY);
  });

  test("the SDK's stream helper accepts the event sequence", async () => {
    // responses.stream() rebuilds the response from the events and rejects
    // out-of-order or malformed ones: a stricter reader than the plain iterator.
    const { upstream, baseUrl } = relay!;
    const already = upstream.streams.length;
    const final = await sdkClient(baseUrl).responses.stream({ model: 'gpt-test', input: 'Say hello.' }).finalResponse();
    assert.equal(final.output_text, DEFAULT_ANSWER);
    assert.equal(upstream.streams.length, already + 1);
  });
});

function onPath(command: string): boolean {
  // Bounded by the PATH entries.
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not in this folder
    }
  }
  return false;
}

describe('curl through the proxy', () => {
  const haveCurl = onPath('curl');
  let relay: Relay | undefined;
  const gate = eventGate();

  before(async () => {
    if (haveCurl) relay = await startRelay({ beforeEvent: (i, type) => gate.beforeEvent(i, type) });
  });
  after(() => stopRelay(relay));

  test('curl -sN streams every event, each read before the upstream sends the next', async (t) => {
    if (!haveCurl) {
      t.skip('curl is not on PATH');
      return;
    }
    const { upstream, proxy } = relay!;
    const clientKey = 'curl-own-key-must-not-reach-upstream';
    const body = JSON.stringify({ model: 'gpt-test', input: 'Say hello.', stream: true });
    const curl = spawn(
      'curl',
      [
        '-sN',
        '--noproxy', '*',
        '--max-time', '30',
        '-X', 'POST',
        `http://127.0.0.1:${proxy.port}/v1/responses`,
        '-H', 'Content-Type: application/json',
        '-H', `Authorization: Bearer ${clientKey}`,
        '--data-binary', body,
      ],
      // Only PATH: no http_proxy or curlrc settings from the caller's environment.
      { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '' } },
    );
    t.after(() => {
      if (curl.exitCode === null && curl.signalCode === null) curl.kill('SIGKILL');
    });
    const reader = new SseReader();
    const got: Array<{ event: string | undefined; data: unknown }> = [];
    curl.stdout.setEncoding('utf8');
    curl.stdout.on('data', (chunk: string) => {
      for (const e of reader.push(chunk)) {
        got.push({ event: e.event, data: JSON.parse(e.data) as unknown });
        gate.seen(got.length - 1);
      }
    });
    let stderr = '';
    curl.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => curl.on('close', (c) => resolve(c)));
    assert.equal(code, 0, `curl failed: ${stderr}`);
    assert.equal(gate.failure, undefined);
    const sent = upstream.streams[0]?.map((e) => ({ event: e.type, data: e.data }));
    assert.deepEqual(got, sent);
    assertUpstreamSawOnlyTheProxyKey(upstream, clientKey);
  });
});
