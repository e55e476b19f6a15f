// GET /shutdown right after the last response must not lose that exchange's
// dump: codex-action shuts the proxy down as soon as Codex exits, and the
// writer thread may still be rendering the last turn's files.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { b, rawExchange, responsesComplete, startProxy, startUpstream, tmpDir } from './support/harness.js';

test('GET /shutdown waits for the dumps already handed to the writer', async () => {
  const up = await startUpstream();
  const root = tmpDir();
  const dir = path.join(root, 'dumps');
  const proxy = await startProxy(['--upstream-url', up.url, '--dump-dir', dir, '--http-shutdown']);
  try {
    // About 1.3 MiB of small objects (under the renderer's value limit, so it is parsed and pretty-printed): enough rendering to be still under way when /shutdown comes.
    const body = Buffer.from(JSON.stringify({ input: Array.from({ length: 30_000 }, (_, i) => ({ role: 'user', content: `message ${i}` })) }));
    const head = `POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    const res = await rawExchange(proxy.port, [b(head), body], { until: responsesComplete });
    assert.equal(res.status, 200);
    const bye = await rawExchange(proxy.port, [b(`GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\n\r\n`)]);
    assert.equal(bye.status, 200);
    assert.equal(await proxy.exited, 0);
    const names = fs.readdirSync(dir).sort();
    assert.deepEqual(names.map((n) => n.replace(/^\d{6}-\d{13}-/, '')), ['request.json', 'response.json'], names.join(', '));
    const req = JSON.parse(fs.readFileSync(path.join(dir, names[0]!), 'utf8')) as { body: { input: unknown[] } };
    assert.equal(req.body.input.length, 30_000);
  } finally {
    await proxy.stop();
    await up.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
