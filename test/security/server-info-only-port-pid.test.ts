// Issue 5, files: the server-info file holds the port and the pid and
// nothing else: no key, no flag, no path.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, tmpDir } from '../support/harness.js';
import { distinctiveKey } from '../support/keys.js';

test('server-info is exactly {"port":<u16>,"pid":<u32>}', async () => {
  const key = distinctiveKey('info');
  const dir = tmpDir();
  const info = path.join(dir, 'server-info.json');
  const r = runCli(['--http-shutdown', '--server-info', info, '--upstream-url', 'http://127.0.0.1:9/v1/responses'], `${key}\n`);
  let text = '';
  for (let i = 0; i < 1000 && !text; i++) {
    try {
      text = fs.readFileSync(info, 'utf8');
    } catch {
      await new Promise((res) => setTimeout(res, 10));
    }
  }
  assert.match(text, /^\{"port":\d{1,5},"pid":\d{1,10}\}\n$/);
  const { port, pid } = JSON.parse(text) as { port: number; pid: number };
  assert.deepEqual(Object.keys(JSON.parse(text) as object), ['port', 'pid']);
  assert.ok(port > 0 && port < 65536 && pid > 0);
  assert.deepEqual(fs.readdirSync(dir), ['server-info.json'], 'no temp file left beside it');
  const res = await fetch(`http://127.0.0.1:${port}/shutdown`);
  assert.equal(res.status, 200);
  assert.equal((await r).code, 0);
});
