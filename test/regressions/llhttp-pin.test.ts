// Issue 10: the parser's wasm bytes are pinned. The build writes
// dist/src/http/llhttp.wasm from llhttp-wasm 1.0.3 after checking its SHA-256;
// the CLI checks it again at start and, if the file is missing or differs,
// exits 1 with one line on stderr before it reads the key.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LLHTTP_WASM_SHA256 } from '../../src/http/wasm.js';
import { KEY, ROOT } from '../support/harness.js';

/** Runs a copy of the CLI from `dir` (inside dist/, so node_modules still resolves). */
function runCopy(dir: string): Promise<{ code: number | string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [path.join(dir, 'main.js'), '--upstream-url', 'http://127.0.0.1:9/v1/responses'], { stdio: ['pipe', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15000);
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, stderr });
    });
    proc.stdin.on('error', () => {});
    proc.stdin.end(`${KEY}\n`);
  });
}

describe('the pinned llhttp wasm', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(ROOT, 'dist', 'pin-test-'));
    fs.cpSync(path.join(ROOT, 'dist/src'), dir, { recursive: true });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('the build wrote the pinned bytes', () => {
    const bytes = fs.readFileSync(path.join(ROOT, 'dist/src/http/llhttp.wasm'));
    assert.equal(bytes.length, 60347);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), LLHTTP_WASM_SHA256);
  });

  test('one byte changed: exit 1, one line on stderr, the key never read', async () => {
    const wasm = fs.readFileSync(path.join(dir, 'http', 'llhttp.wasm'));
    wasm[wasm.length - 100]! ^= 1;
    fs.writeFileSync(path.join(dir, 'http', 'llhttp.wasm'), wasm);
    const r = await runCopy(dir);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^codex-responses-api-proxy: the HTTP parser .*llhttp\.wasm is not the pinned llhttp 1\.0\.3 build/);
    assert.ok(!r.stderr.includes(KEY));
  });

  test('missing: exit 1, one line on stderr', async () => {
    fs.rmSync(path.join(dir, 'http', 'llhttp.wasm'));
    const r = await runCopy(dir);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^codex-responses-api-proxy: cannot read the HTTP parser .*llhttp\.wasm \(ENOENT\)/);
  });
});
