// `npm run test:codex`: the Codex CLI, this proxy's main client, through the proxy.
//
// Opt-in and not part of `npm test`: it fetches `@openai/codex@0.171.0-linux-x64`
// (about 170 MB) from the npm registry once, into .cache/codex/. Then it starts the
// fake Responses upstream and the proxy, and runs `codex exec` through the proxy
// exactly as the original README shows:
//
//   codex exec -c "model_providers.openai-proxy={ name = 'OpenAI Proxy', base_url = 'http://127.0.0.1:PORT/v1', wire_api='responses' }" \
//              -c model_provider="openai-proxy" 'Your prompt here'
//
// CODEX_WEBSOCKETS=1 adds `supports_websockets = true` to that provider, as
// the built-in OpenAI provider has it: Codex then first tries
// `GET /v1/responses` with `Upgrade: websocket`, and the proxy's 426 must send
// it to HTTP at once (issue 9). The run's wall time is logged either way.
//
// with a throwaway CODEX_HOME whose config.toml turns off analytics, feedback,
// telemetry export, plugins and update checks (the keys are checked by codex's own
// --strict-config), so the run stays on 127.0.0.1. It passes when codex prints the
// streamed answer and the upstream saw only the key piped to the proxy.
//
// A second case spends a budget (issue 16): a proxy with --max-tokens 1 lets
// one `codex exec` through, and the next one must end at once, on the first
// 429, with the proxy's message shown to the user: the usage file counts one
// refusal, so Codex did not retry.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { startFakeResponses } from '../../demo/fake-responses.js';
import type { FakeResponsesServer } from '../../demo/fake-responses.js';
import { KEY, ROOT, startProxy } from '../support/harness.js';
import type { Proxy } from '../support/harness.js';

const CODEX_PACKAGE = '@openai/codex@0.171.0-linux-x64';
const CACHE_DIR = join(ROOT, '.cache', 'codex');
const INSTALL_DIR = join(CACHE_DIR, '0.171.0-linux-x64');
const CODEX_BIN = join(INSTALL_DIR, 'vendor', 'x86_64-unknown-linux-musl', 'bin', 'codex');

const FETCH_TIMEOUT_MS = 5 * 60_000;
const CODEX_TIMEOUT_MS = 120_000;
const ANSWER = 'Codex read this answer from the fake upstream, streamed through the TypeScript proxy.';
const PROMPT = 'Reply with one friendly sentence.';
const WEBSOCKETS = process.env['CODEX_WEBSOCKETS'] === '1';

/** Written to the temp CODEX_HOME; every key is validated by `--strict-config`. */
const CODEX_CONFIG = `# Written by test/codex/run.ts for one offline run.
check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"
metrics_exporter = "none"
trace_exporter = "none"
log_user_prompt = false

[history]
persistence = "none"

[features]
plugins = false
remote_plugin = false
apps = false
in_app_updates = false
shell_snapshot = false
`;

function log(line: string): void {
  console.log(`test:codex: ${line}`);
}

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Run a command to completion, killing it by pid after `timeoutMs`. */
function run(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    // Its own process group, so a timeout also stops any helper it started.
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }
    }, options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** Fetch and unpack the Codex package once; later runs reuse .cache/codex/. */
async function ensureCodex(): Promise<string> {
  if (existsSync(CODEX_BIN)) {
    log(`using cached ${CODEX_PACKAGE} in ${INSTALL_DIR}`);
    return CODEX_BIN;
  }
  await mkdir(CACHE_DIR, { recursive: true });
  const staging = await mkdtemp(join(CACHE_DIR, 'fetch-'));
  try {
    log(`fetching ${CODEX_PACKAGE} with npm pack (about 170 MB, once)...`);
    // npm checks the tarball against the registry's integrity hash.
    const packed = await run('npm', ['pack', CODEX_PACKAGE, '--json', '--pack-destination', staging], {
      cwd: staging,
      env: process.env,
      timeoutMs: FETCH_TIMEOUT_MS,
    });
    if (packed.code !== 0) throw new Error(`npm pack failed: ${lastLine(packed.stderr) || `exit ${packed.code}`}`);
    const tarballs = (await readdir(staging)).filter((name) => name.endsWith('.tgz'));
    if (tarballs.length !== 1) throw new Error(`npm pack left ${tarballs.length} tarballs in ${staging}`);
    const unpacked = await run('tar', ['-xzf', tarballs[0]!], { cwd: staging, env: process.env, timeoutMs: FETCH_TIMEOUT_MS });
    if (unpacked.code !== 0) throw new Error(`tar failed: ${lastLine(unpacked.stderr) || `exit ${unpacked.code}`}`);
    // Rename only a complete tree into place, so an interrupted fetch is never reused.
    await rename(join(staging, 'package'), INSTALL_DIR);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  if (!existsSync(CODEX_BIN)) throw new Error(`the package has no ${CODEX_BIN}`);
  log(`unpacked into ${INSTALL_DIR}`);
  return CODEX_BIN;
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop() ?? '';
}

function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./=:-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function shutdownProxy(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/shutdown', method: 'GET', signal: AbortSignal.timeout(5_000) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    log(`skipped: ${CODEX_PACKAGE} runs on linux x64 only, this is ${process.platform} ${process.arch}`);
    return;
  }
  const codex = await ensureCodex();

  let upstream: FakeResponsesServer | undefined;
  let proxy: Proxy | undefined;
  // Under .cache rather than /tmp: codex declines to set up its helper links under a temp dir and warns.
  const scratch = await mkdtemp(join(CACHE_DIR, 'run-'));
  try {
    upstream = await startFakeResponses({ text: ANSWER, delayMs: 10 });
    proxy = await startProxy(['--upstream-url', upstream.responsesUrl, '--http-shutdown']);
    log(`fake upstream ${upstream.responsesUrl}, proxy on 127.0.0.1:${proxy.port} (pid ${proxy.proc.pid})`);

    const codexHome = join(scratch, 'codex-home');
    const workdir = join(scratch, 'work');
    await mkdir(codexHome, { recursive: true });
    await mkdir(workdir, { recursive: true });
    await writeFile(join(codexHome, 'config.toml'), CODEX_CONFIG);
    const { ran, seconds } = await exec(codex, proxy.port, codexHome, workdir);

    const problems: string[] = [];
    if (ran.timedOut) problems.push(`codex did not finish within ${CODEX_TIMEOUT_MS / 1000} s`);
    else if (ran.code !== 0) problems.push(`codex exited with ${ran.code ?? ran.signal}`);
    if (!ran.stdout.includes(ANSWER)) problems.push('the streamed answer is not in codex output');
    const turns = upstream.requests.filter((r) => r.method === 'POST' && r.url === '/v1/responses');
    if (turns.length === 0) problems.push('the upstream received no POST /v1/responses');
    for (const r of upstream.requests) {
      const auth = r.rawHeaders.filter((_, i) => i % 2 === 0 && r.rawHeaders[i]!.toLowerCase() === 'authorization');
      if (r.headers.authorization !== `Bearer ${KEY}` || auth.length !== 1) {
        problems.push(`upstream request ${r.method} ${r.url} did not carry exactly the proxy's key`);
      }
    }
    const completed = upstream.streams.filter((s) => s[s.length - 1]?.type === 'response.completed').length;
    log(`upstream saw ${upstream.requests.length} request(s), all ${turns.length === upstream.requests.length ? 'POST /v1/responses' : 'listed above'}; ${completed} stream(s) sent to response.completed`);
    const first = turns[0];
    if (first) log(`upstream request headers: ${first.rawHeaders.filter((_, i) => i % 2 === 0).join(', ')}`);

    const status = await shutdownProxy(proxy.port);
    const exitCode = await proxy.exited;
    if (status !== 200 || exitCode !== 0) problems.push(`GET /shutdown answered ${status} and the proxy exited ${exitCode}`);

    if (problems.length > 0) throw new Error(problems.join('; '));
    log(`codex exec took ${seconds.toFixed(2)} s${WEBSOCKETS ? ' with supports_websockets = true' : ''}`);
    log('codex printed the streamed answer and the upstream saw only the piped key');

    await budgetCase(codex, upstream, codexHome, workdir, scratch);
    log('2 passed, 0 failed');
  } finally {
    await proxy?.stop();
    await upstream?.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

/** `codex exec` with the README's provider settings, pointed at the proxy on `port`; its output is printed. */
async function exec(codex: string, port: number, codexHome: string, workdir: string): Promise<{ ran: Ran; seconds: number }> {
  // The two -c values are the README's, as the shell hands them to codex
  // (with supports_websockets added under CODEX_WEBSOCKETS=1).
  const readmeArgs = [
    '-c',
    `model_providers.openai-proxy={ name = 'OpenAI Proxy', base_url = 'http://127.0.0.1:${port}/v1', wire_api='responses'${WEBSOCKETS ? ', supports_websockets = true' : ''} }`,
    '-c',
    'model_provider=openai-proxy',
  ];
  // Only what this run needs on top: reject unknown config keys, no git repo here, no session files, no colour.
  const args = ['exec', '--strict-config', '--skip-git-repo-check', '--ephemeral', '--color', 'never', ...readmeArgs, PROMPT];
  log(`running: codex ${args.map(shellQuote).join(' ')}`);
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: workdir, CODEX_HOME: codexHome };
  const started = process.hrtime.bigint();
  const ran = await run(codex, args, { cwd: workdir, env, timeoutMs: CODEX_TIMEOUT_MS });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log('----- codex stdout -----');
  process.stdout.write(ran.stdout.endsWith('\n') || ran.stdout === '' ? ran.stdout : `${ran.stdout}\n`);
  console.log('----- codex stderr -----');
  process.stdout.write(ran.stderr.endsWith('\n') || ran.stderr === '' ? ran.stderr : `${ran.stderr}\n`);
  console.log('------------------------');
  return { ran, seconds };
}

/** Once --max-tokens is spent, `codex exec` ends on the first 429 and shows the proxy's message. */
async function budgetCase(codex: string, upstream: FakeResponsesServer, codexHome: string, workdir: string, scratch: string): Promise<void> {
  const usageFile = join(scratch, 'usage.json');
  const proxy = await startProxy(['--upstream-url', upstream.responsesUrl, '--max-tokens', '1', '--usage-file', usageFile]);
  try {
    const before = upstream.requests.length;
    log(`budget: proxy on 127.0.0.1:${proxy.port} with --max-tokens 1`);
    const spend = await exec(codex, proxy.port, codexHome, workdir);
    const problems: string[] = [];
    if (spend.ran.code !== 0 || !spend.ran.stdout.includes(ANSWER)) problems.push('the first codex exec did not get its answer');
    const refused = await exec(codex, proxy.port, codexHome, workdir);
    const shown = `${refused.ran.stdout}${refused.ran.stderr}`;
    if (refused.ran.timedOut) problems.push(`the refused codex exec did not end within ${CODEX_TIMEOUT_MS / 1000} s`);
    else if (refused.ran.code === 0) problems.push('the refused codex exec exited 0');
    if (!shown.includes('codex-responses-api-proxy budget exhausted: --max-tokens 1 reached')) problems.push("the proxy's message is not in codex output");
    if (upstream.requests.length - before !== 1) problems.push(`the upstream saw ${upstream.requests.length - before} requests through this proxy, not 1`);
    await proxy.stop();
    const usage = JSON.parse(await readFile(usageFile, 'utf8')) as { requests: number; refused: number; total_tokens: number };
    if (usage.refused !== 1) problems.push(`the proxy refused ${usage.refused} requests: codex retried`);
    if (problems.length > 0) throw new Error(problems.join('; '));
    log(`budget: the first exec spent ${usage.total_tokens} tokens; the next ended in ${refused.seconds.toFixed(2)} s (exit ${refused.ran.code}) after one refused request, showing the proxy's message`);
  } finally {
    await proxy.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`test:codex: FAIL: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
