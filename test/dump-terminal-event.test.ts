// Issue 17 item 4: Codex closes its connection as soon as it has read
// response.completed, often before the upstream's chunk terminator. Such a
// turn is dumped as complete; a client that leaves mid-stream is still
// dumped with "ended": "client_abort".
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { relayFixture, tmpDir, waitFor } from './support/harness.js';
import { ask, scripted, type Ask } from './support/replies.js';

describe('dump endings around the terminal event', () => {
  const dir = path.join(tmpDir(), 'dumps');
  const fx = relayFixture(['--dump-dir', dir], scripted);
  let n = 0;

  async function dumped(a: Ask, read: 'whole' | 'completed'): Promise<Record<string, unknown>> {
    assert.equal((await ask(fx.proxy.port, a, read)).status, 200);
    const prefix = String(++n).padStart(6, '0');
    return waitFor(`${prefix} response file`, () => {
      const f = fs.readdirSync(dir).find((x) => x.startsWith(`${prefix}-`) && x.endsWith('-response.json'));
      try {
        return f ? (JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Record<string, unknown>) : undefined;
      } catch {
        return undefined;
      }
    });
  }

  test('closed right after response.completed, the terminator 300 ms later: complete, not an abort', async () => {
    const d = await dumped({ mode: 'sse', tokens: 10, lateMs: 300 }, 'completed');
    assert.equal(d['ended'], undefined);
    assert.match(d['body'] as string, /response\.completed/);
  });

  test('the same when the upstream gzips the stream', async () => {
    const d = await dumped({ mode: 'gzip', tokens: 10, lateMs: 300 }, 'completed');
    assert.equal(d['ended'], undefined);
  });

  test('a client that leaves mid-stream is still a client_abort', async () => {
    const d = await dumped({ mode: 'hang' }, 'completed');
    assert.equal(d['ended'], 'client_abort');
  });
});
