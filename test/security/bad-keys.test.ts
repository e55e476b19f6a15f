// Issue 5 / issue 2: a key that cannot be used makes the proxy exit 1 before
// it listens, with one line that never echoes what was on stdin.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, startProxy, tmpDir } from '../support/harness.js';

const MAX = 16384;

async function refused(stdin: string | Buffer, secrets: string[], expect: RegExp): Promise<void> {
  const info = path.join(tmpDir(), 'info.json');
  const r = await runCli(['--server-info', info, '--upstream-url', 'http://127.0.0.1:9/v1/responses'], stdin);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, expect);
  for (const s of secrets) assert.equal(r.stderr.includes(s), false, `stderr echoes ${JSON.stringify(s.slice(0, 12))}…`);
  assert.equal(fs.existsSync(info), false, 'nothing was written');
}

test('empty key', async () => {
  // The hint shows the safe way: the key's variable kept out of the environment.
  await refused('', [], /no API key on stdin: pipe it in, e\.g\. printenv OPENAI_API_KEY \| env -u OPENAI_API_KEY codex-responses-api-proxy$/);
  await refused('\n', [], /no API key on stdin/);
  await refused('\r\n', [], /no API key on stdin/);
});

test('invalid character', async () => {
  await refused('sk-Invalid!Character-KEY-7f3a\n', ['Invalid!Character', 'sk-Invalid'], /may only contain/);
  await refused(Buffer.from('sk-NulByte\u0000Inside-KEY-9c1d\n', 'latin1'), ['NulByte', 'Inside-KEY'], /may only contain/);
  await refused(Buffer.from('sk-Latin\u00e9Char-KEY-0b2e\n', 'utf8'), ['Latin', 'Char-KEY'], /may only contain/);
  await refused('sk-Space Inside-KEY-44aa\n', ['Space', 'Inside-KEY'], /may only contain/);
});

test('16,385-byte key is too long; 16,384 bytes of token68 is accepted', async () => {
  const long = `sk-${'L'.repeat(MAX + 1 - 3)}`;
  assert.equal(long.length, MAX + 1);
  await refused(`${long}\n`, ['LLLLLLLL'], /too long/);
  await refused(long, ['LLLLLLLL'], /too long/);
  const key = `sk-${'K'.repeat(MAX - 10)}.-_~+/=`;
  assert.equal(key.length, MAX);
  const proxy = await startProxy(['--upstream-url', 'http://127.0.0.1:9/v1/responses'], { key: `${key}\n` });
  await proxy.stop();
  assert.equal(proxy.stderr().includes('KKKKKKKK'), false);
});

// Issue 8: the original uses the first line and ignores the rest; so does
// this proxy, with one warning (no content) when the rest is not blank.
test('lines after the key are ignored, never echoed; non-blank ones are warned about', async () => {
  const second = await startProxy(['--upstream-url', 'http://127.0.0.1:9/v1/responses'], { key: 'sk-FirstLine-KEY-5e6f\nsk-SecondLine-KEY-7a8b\n' });
  await second.stop();
  assert.match(second.stderr(), /^codex-responses-api-proxy: warning: stdin held more than one line; only the first is used as the API key, the rest is ignored\n/);
  for (const s of ['FirstLine', 'SecondLine']) assert.equal(second.stderr().includes(s), false);
  const blank = await startProxy(['--upstream-url', 'http://127.0.0.1:9/v1/responses'], { key: 'sk-FirstLine-KEY-5e6f\r\n\n \r\n' });
  await blank.stop();
  assert.doesNotMatch(blank.stderr(), /warning/);
});
