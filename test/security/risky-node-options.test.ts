// Issue 5, Node's own doors: options that attach a debugger, load code before
// the proxy's, or dump the heap make it refuse to start with one line naming
// the option, before it reads the key or listens. Harmless options pass.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { runCli, startProxy, tmpDir } from '../support/harness.js';
import { riskyStartup, splitNodeOptions } from '../../src/secret/harden.js';

const KEY = 'sk-risky-options-key-0123456789\n';
const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ PATH: process.env.PATH ?? '', ...extra });

function refusal(r: { code: number | string; stderr: string }, option: string): void {
  assert.equal(r.code, 1, r.stderr);
  const ours = r.stderr.split('\n').filter((l) => l.startsWith('codex-responses-api-proxy:'));
  assert.equal(ours.length, 1, r.stderr);
  assert.match(ours[0]!, new RegExp(`refusing to start: .*${option.replace(/[-]/g, '\\-')} `));
  assert.doesNotMatch(r.stderr, /listening on 127\.0\.0\.1/);
}

test('NODE_OPTIONS=--inspect=0 refuses to start', async () => {
  const info = path.join(tmpDir(), 'info.json');
  const r = await runCli(['--server-info', info], KEY, env({ NODE_OPTIONS: '--inspect=0' }));
  refusal(r, '--inspect');
  assert.equal(fs.existsSync(info), false, 'no server-info written');
});

test('--require ./x.js refuses to start (command line and NODE_OPTIONS)', async () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'x.js'), '// a preload that does nothing\n');
  const x = path.join(dir, 'x.js');
  refusal(await runCli([], KEY, env(), ['--require', x]), '--require');
  refusal(await runCli([], KEY, env(), ['-r', x]), '-r');
  refusal(await runCli([], KEY, env({ NODE_OPTIONS: `--require "${x}"` })), '--require');
});

test('--import, --loader, --heapsnapshot-signal refuse to start', async () => {
  const dir = tmpDir();
  const m = path.join(dir, 'm.mjs');
  fs.writeFileSync(m, 'export {};\n');
  refusal(await runCli([], KEY, env(), [`--import=${m}`]), '--import');
  refusal(await runCli([], KEY, env({ NODE_OPTIONS: `--experimental-loader=${m}` })), '--experimental-loader');
  refusal(await runCli([], KEY, env(), ['--heapsnapshot-signal=SIGUSR2']), '--heapsnapshot-signal');
});

test('harmless options start normally', async () => {
  const proxy = await startProxy(['--upstream-url', 'http://127.0.0.1:9/v1/responses'], {
    env: env({ NODE_OPTIONS: '--max-old-space-size=256' }),
    execArgv: ['--no-warnings'],
  });
  await proxy.stop();
  assert.doesNotMatch(proxy.stderr(), /refusing/);
});

test('option names are read as Node reads them', () => {
  assert.deepEqual(splitNodeOptions('--max-old-space-size=4096  --no-warnings'), ['--max-old-space-size=4096', '--no-warnings']);
  assert.deepEqual(splitNodeOptions('--require "a b.js"'), ['--require', 'a b.js']);
  assert.deepEqual(splitNodeOptions('--im"port" x.mjs --require "" y.js'), ['--import', 'x.mjs', '--require', 'y.js']);
  assert.match(riskyStartup([], '--inspect_brk=0') ?? '', /--inspect-brk/);
  assert.match(riskyStartup([], '--im"port"=x.mjs') ?? '', /--import/);
  assert.match(riskyStartup(['--debug-port=1'], undefined) ?? '', /--debug-port/);
  assert.equal(riskyStartup(['--max-old-space-size=64', '--no-warnings'], '--enable-source-maps'), null);
  // A value that merely looks like an option is not one.
  assert.equal(riskyStartup([], '--title=--inspect'), null);
  assert.match(riskyStartup(['--experimental-config-file=node.config.json'], undefined) ?? '', /--experimental-config-file/);
  assert.match(riskyStartup(['--experimental_default_config_file'], undefined) ?? '', /--experimental-default-config-file/);
  assert.equal(riskyStartup(['--disable-sigusr1'], '--disable-sigusr1'), null);
});

// Issue 8: a config file's "nodeOptions" can carry --import preloads that
// show neither in execArgv nor in NODE_OPTIONS; only the flag shows.
// Gated on the flag itself (issue 17: 22.23 has it, and a version check
// skipped it there). Node rejects it in NODE_OPTIONS, so
// process.allowedNodeEnvironmentFlags cannot tell: this Node is asked once.
const configFile = ((): string | false => {
  const empty = path.join(tmpDir(), 'empty.json');
  fs.writeFileSync(empty, '{}\n');
  const r = spawnSync(process.execPath, [`--experimental-config-file=${empty}`, '--no-warnings', '-e', '0'], { stdio: 'ignore' });
  return r.status === 0 ? false : `Node ${process.version} has no --experimental-config-file`;
})();
test('--experimental-config-file refuses to start', { skip: configFile }, async () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'pre.mjs'), 'export {};\n');
  fs.writeFileSync(path.join(dir, 'node.config.json'), `${JSON.stringify({ nodeOptions: { import: [path.join(dir, 'pre.mjs')] } })}\n`);
  refusal(await runCli([], KEY, env(), [`--experimental-config-file=${path.join(dir, 'node.config.json')}`, '--no-warnings']), '--experimental-config-file');
});

test('--disable-sigusr1, where Node has it, starts normally', { skip: process.allowedNodeEnvironmentFlags.has('--disable-sigusr1') ? false : `Node ${process.version} has no --disable-sigusr1` }, async () => {
  const proxy = await startProxy(['--upstream-url', 'http://127.0.0.1:9/v1/responses'], { execArgv: ['--disable-sigusr1'] });
  await proxy.stop();
  assert.doesNotMatch(proxy.stderr(), /refusing/);
});
