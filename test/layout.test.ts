// The house rules of src/ (issue 15, shared/STYLE.md §8), checked on the
// source itself so that a change that breaks one fails here, not in review:
// the relay core imports no optional stage, http/ only itself, the
// credential interface no OIDC code, nobody but the entry imports cli/, no
// cycle between folders, and no module over 400 lines.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from './support/harness.js';

const SRC = path.join(ROOT, 'src');

/** Every module under src/, as a path relative to src/ ('relay/accept.ts'). */
function modules(dir = SRC): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return modules(full);
    return e.name.endsWith('.ts') ? [path.relative(SRC, full)] : [];
  });
}

/** The src/ modules a module imports, statically or dynamically, types included. */
function importsOf(mod: string): string[] {
  const text = fs.readFileSync(path.join(SRC, mod), 'utf8');
  const specs = [...text.matchAll(/(?:^import\s[^;]*?from\s+|^export\s[^;]*?from\s+|import\()'(\.[^']+)'/gm)].map((m) => m[1]!);
  return specs.map((s) => path.relative(SRC, path.resolve(path.dirname(path.join(SRC, mod)), s)).replace(/\.js$/, '.ts'));
}

const folder = (mod: string): string => (mod.includes('/') ? mod.split('/')[0]! : mod);
const all = modules();
const edges = all.flatMap((from) => importsOf(from).map((to) => ({ from, to })));

test('every import names a module that exists', () => {
  for (const { from, to } of edges) assert.ok(all.includes(to), `${from} imports ${to}, which is not in src/`);
});

test('relay/ imports only http/, transport/ (not egress or trust), credential/credential.ts and itself', () => {
  for (const { from, to } of edges.filter((e) => folder(e.from) === 'relay')) {
    const ok = ['relay', 'http'].includes(folder(to)) || (folder(to) === 'transport' && !['transport/egress.ts', 'transport/trust.ts'].includes(to)) || to === 'credential/credential.ts';
    assert.ok(ok, `${from} imports ${to}`);
  }
});

test('http/ imports nothing outside http/', () => {
  for (const { from, to } of edges.filter((e) => folder(e.from) === 'http')) assert.equal(folder(to), 'http', `${from} imports ${to}`);
});

test('credential/credential.ts imports no OIDC module', () => {
  for (const to of importsOf('credential/credential.ts')) assert.doesNotMatch(to, /oidc|https-call|json-scan/, to);
});

test('nothing outside cli/ and main.ts imports cli/', () => {
  for (const { from, to } of edges) if (folder(to) === 'cli') assert.ok(folder(from) === 'cli' || from === 'main.ts', `${from} imports ${to}`);
});

test('no cycle between folders', () => {
  const graph = new Map<string, Set<string>>();
  for (const { from, to } of edges) if (folder(from) !== folder(to)) (graph.get(folder(from)) ?? graph.set(folder(from), new Set()).get(folder(from))!).add(folder(to));
  const reaches = (a: string, b: string, seen = new Set<string>()): boolean =>
    [...(graph.get(a) ?? [])].some((n) => n === b || (!seen.has(n) && seen.add(n) && reaches(n, b, seen)));
  for (const [a, outs] of graph) for (const b of outs) assert.ok(!reaches(b, a), `folders ${a} and ${b} import each other`);
});

test('no module over 400 lines', () => {
  for (const mod of all) {
    const lines = fs.readFileSync(path.join(SRC, mod), 'utf8').split('\n').length - 1;
    assert.ok(lines <= 400, `${mod} has ${lines} lines`);
  }
});

test('at most one dechunk in src/: the dump writer, off-thread on a capped prefix', () => {
  const owners = all.filter((mod) => /function dechunk\b/.test(fs.readFileSync(path.join(SRC, mod), 'utf8')));
  assert.ok(owners.length <= 1 && owners.every((m) => m.startsWith('dump/')), owners.join(', '));
});
