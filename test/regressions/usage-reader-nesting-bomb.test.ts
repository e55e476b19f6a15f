// Review finding (after issue 16): the usage reader kept one frame per `{`
// or `[`, so a reply whose response.usage opened 64 MiB of arrays (a 65 KB
// gzip body on the wire) took the proxy's heap past its limit and aborted
// it, with either --max-tokens or --dump-dir. Nesting past a fixed depth is
// now a count, and such a usage value is oversized: exhausting, never a
// reason to let the next request through.
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { JsonPick } from '../../src/relay/json-pick.js';
import { rawExchange, startProxy, startUpstream, tmpDir, type Proxy, type Upstream } from '../support/harness.js';
import { rss } from '../support/outcome.js';
import { ask, refusal, scripted } from '../support/replies.js';

const PREFIX = 'event: response.completed\ndata: {"type":"response.completed","response":{"usage":';
const BOMB = zlib.gzipSync(Buffer.concat([Buffer.from(PREFIX), Buffer.alloc(64 * 1024 * 1024, 0x5b)]), { level: 9 });
const BOUND_MB = 64;

test('the reader alone: 16 MiB of [ inside usage costs no frame per byte, and the pick is oversized', () => {
  global.gc?.();
  const before = process.memoryUsage().heapUsed;
  const pick = new JsonPick([['type'], ['response', 'usage']], 16 * 1024);
  pick.feed(Buffer.from('{"type":"response.completed","response":{"usage":'));
  const chunk = Buffer.alloc(1024 * 1024, 0x5b);
  for (let i = 0; i < 16; i++) pick.feed(chunk);
  pick.feed(Buffer.from(']'.repeat(4096)));
  const grewMb = (process.memoryUsage().heapUsed - before) / 1024 / 1024;
  assert.ok(grewMb < BOUND_MB, `heap grew ${grewMb.toFixed(1)} MB`);
  assert.equal(pick.picks[1]!.value, null);
  assert.equal(pick.picks[1]!.oversized, true);
});

describe(`a ${BOMB.length}-byte gzip reply nesting 64 MiB deep in usage`, () => {
  let up: Upstream;
  before(async () => {
    up = await startUpstream((req, sock) => {
      if (!req.body.includes('"bomb"')) return scripted(req, sock);
      sock.write(`HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\nContent-Length: ${BOMB.length}\r\n\r\n`);
      sock.write(BOMB);
    });
  });
  after(() => up.close());

  for (const args of [['--max-tokens', '1000000'], ['--dump-dir']]) {
    test(`with ${args[0]}: the proxy stays within +${BOUND_MB} MB and keeps serving${args[0] === '--max-tokens' ? ', and the budget counts it as spent' : ''}`, async (t) => {
      const dir = args[0] === '--dump-dir' ? [tmpDir()] : [];
      const proxy: Proxy = await startProxy(['--upstream-url', up.url, ...args, ...dir]);
      try {
        const base = rss(proxy.proc.pid!).now;
        const body = '{"mode":"bomb"}';
        const res = await rawExchange(proxy.port, [Buffer.from(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nContent-Length: ${body.length}\r\n\r\n${body}`)], {
          until: (d) => d.length >= BOMB.length,
          ms: 60_000,
        });
        assert.equal(res.status, 200);
        const next = await ask(proxy.port, { mode: 'sse', tokens: 10 });
        const grew = rss(proxy.proc.pid!).peak - base;
        t.diagnostic(`VmHWM - VmRSS before: ${grew.toFixed(1)} MB`);
        assert.ok(grew < BOUND_MB, `grew ${grew.toFixed(1)} MB`);
        if (args[0] === '--max-tokens') assert.equal(refusal(next).body.error.code, 'budget_exhausted');
        else assert.equal(next.status, 200);
      } finally {
        await proxy.stop();
      }
    });
  }
});
