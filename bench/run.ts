// `npm run bench`: every path measured in one run, interleaved round by round
// so that drift on a shared machine falls on all paths alike. Numbers are
// reported, never asserted.
//
// Flags (for short runs while developing; the committed results use none, and
// a run with any of the first five writes to bench/.cache/results/ instead):
//   --quick            one round, concurrency 1 unless --concurrency says, a 50 MB download
//   --paths=a,b        only these paths (direct is always kept)
//   --concurrency=1,50 only these concurrency levels
//   --profile          run the relays under --cpu-prof (profiles land in bench/.cache/prof)
//   --only=sse,json,bulk  only these measurement sections
//   --report-only      rewrite results.md and timeline.svg from results.json, measuring nothing
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { request, type Response } from './client.js';
import { fetchOriginal, findNginx, makeTls, naive, nginx, nodePipe, original, relay, type Env, type Path, type Running } from './paths.js';
import { cpuSeconds, launch, peakRssMB, resetPeak, run, stop, stopAll, waitFor } from './procs.js';
import { writeReport, type Results } from './report.js';
import { dist, median } from './stats.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cache = join(root, 'bench', '.cache');
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}`))?.split('=')[1];
const has = (name: string) => process.argv.includes(`--${name}`);
const quick = has('quick');
const profile = has('profile');
const only = arg('only')?.split(',');
const section = (name: string) => !only || only.includes(name);

const PLAN = {
  startupRuns: quick ? 2 : 5,
  rounds: (quick ? { 1: 1, 50: 1, 200: 1 } : { 1: 3, 50: 1, 200: 1 }) as Record<number, number>,
  jsonRounds: quick ? 1 : 3,
  jsonPerRound: quick ? 20 : 50,
  bulkBytes: quick ? 50e6 : 200e6,
  bulkRounds: quick ? 1 : 2,
  // The whole run stays under 5 minutes: past this, remaining runs are skipped and said so.
  budgetMs: 270_000,
};
const SCENARIOS = {
  sse10: { kind: 'sse', events: 200, intervalMs: 10, size: 120 },
  sse100: { kind: 'sse', events: 20, intervalMs: 100, size: 120 },
} as const;
type ScenarioName = keyof typeof SCENARIOS;

const t0 = Date.now();
const log = (line: string) => process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}\n`);
const overBudget = () => Date.now() - t0 > PLAN.budgetMs;

interface Live {
  path: Path;
  run: Running;
}

async function main() {
  mkdirSync(cache, { recursive: true });
  const key = `bench_${randomBytes(12).toString('hex')}`;
  const results: Results = {
    date: new Date().toISOString(),
    command: `npm run bench${process.argv.slice(2).length ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
    machine: machine(),
    relayCommit: relayCommit(),
    plan: { ...PLAN, scenarios: SCENARIOS },
    notes: [],
    skipped: [],
    startup: {},
    sse: [],
    json: [],
    bulk: [],
    rss: [],
    timeline: {},
  };
  const note = (line: string) => (log(line), results.notes.push(line));

  // The peers.
  const orig = fetchOriginal(cache);
  const ngx = findNginx();
  const wanted = arg('paths')?.split(',');
  const direct: Path = { name: 'direct', start: async (env) => ({ port: env.upstream.http, proc: null, startupMs: 0 }) };
  const all = [direct, relay('http'), relay('https'), original(orig.bin, orig.why), nginx(ngx.bin, ngx.why), naive(), nodePipe()];
  const paths = all.filter((p) => p.name === 'direct' || !wanted || wanted.includes(p.name));
  for (const p of paths.filter((p) => p.skip)) {
    results.skipped.push({ path: p.name, why: p.skip! });
    log(`SKIP ${p.name}: ${p.skip}`);
  }

  // The upstream.
  const tls = makeTls(cache);
  const up = launch(process.execPath, [join(root, 'dist/bench/upstream.js'), tls.cert, tls.key], { env: { ...process.env, BENCH_KEY: key } });
  const [line] = (await Promise.race([once(createInterface({ input: up.child.stdout! }), 'line'), sleep(10_000, [''])])) as string[];
  if (!line) throw new Error(`the fake upstream did not start: ${up.stderr()}`);
  const env: Env = { root, cache, key, upstream: JSON.parse(line) as Env['upstream'], tls };

  // Start-up, next to a bare `node -e 0`, each measured a few times, interleaved.
  const startable = paths.filter((p) => !p.skip && p.name !== 'direct');
  const startup: Record<string, number[]> = { 'node -e 0': [] };
  for (let i = 0; i < PLAN.startupRuns; i++) {
    startup['node -e 0']!.push(await bareNode());
    for (const p of startable) {
      try {
        const r = await p.start(env);
        (startup[p.name] ??= []).push(r.startupMs);
        await stop(r.proc!);
      } catch (err) {
        if (i === 0) log(`start-up of ${p.name} failed: ${(err as Error).message}`);
      }
    }
  }
  for (const [name, runs] of Object.entries(startup)) results.startup[name] = { medianMs: median(runs), minMs: Math.min(...runs), runs };

  // Start every path once for the measurements, and check it relays.
  if (profile) env.profileDir = join(cache, 'prof');
  const live: Live[] = [];
  for (const p of paths.filter((p) => !p.skip)) {
    try {
      const run = await p.start(env);
      const check = await request({ port: run.port, body: body({ kind: 'json' }), sse: false, timeoutMs: 5000, ...auth(p, key) });
      if (check.status !== 200) throw new Error(`a small POST got status ${check.status} ${check.error ?? ''}`);
      live.push({ path: p, run });
    } catch (err) {
      results.skipped.push({ path: p.name, why: (err as Error).message });
      log(`SKIP ${p.name}: ${(err as Error).message}`);
    }
  }
  if (!live.some((l) => l.path.name === 'direct')) throw new Error('the direct path does not work; nothing to compare with');
  log(`paths: ${live.map((l) => `${l.path.name}:${l.run.port}`).join(' ')}`);

  // Warm-up: JIT, pools and TLS sessions, so the first measured round is not the cold one.
  for (const l of live) {
    for (let i = 0; i < 20; i++) await request({ port: l.run.port, body: body({ kind: 'json' }), sse: false, timeoutMs: 5000, ...auth(l.path, key) });
    await request({ port: l.run.port, body: body({ ...SCENARIOS.sse10, events: 50, intervalMs: 1 }), sse: true, timeoutMs: 10_000, ...auth(l.path, key) });
    await request({ port: l.run.port, body: body({ kind: 'bulk', bytes: 20e6 }), sse: false, timeoutMs: 30_000, ...auth(l.path, key) });
  }

  // SSE: per-event delay at each concurrency.
  const levels = (arg('concurrency')?.split(',').map(Number) ?? (quick ? [1] : [1, 50, 200])).filter((c) => PLAN.rounds[c] && section('sse'));
  for (const c of levels) {
    for (const name of Object.keys(SCENARIOS) as ScenarioName[]) {
      const block = `${name} c=${c}`;
      for (const l of live) if (l.run.proc) resetPeak(l.run.proc.pid);
      const delays = new Map<string, number[]>();
      const errors = new Map<string, string[]>();
      const ttfb = new Map<string, number[]>();
      for (let round = 0; round < PLAN.rounds[c]!; round++) {
        for (const l of rotate(live, round)) {
          if (overBudget()) break;
          const s = SCENARIOS[name];
          const res = await Promise.all(
            Array.from({ length: c }, () =>
              request({ port: l.run.port, body: body(s), sse: true, timeoutMs: s.events * s.intervalMs + 15_000, ...auth(l.path, key) }),
            ),
          );
          const d = delays.get(l.path.name) ?? [];
          const e = errors.get(l.path.name) ?? [];
          const f = ttfb.get(l.path.name) ?? [];
          for (const r of res) {
            const problem = r.error ?? (r.status !== 200 ? `status ${r.status}` : r.events.length !== s.events ? `${r.events.length}/${s.events} events` : null);
            if (problem) e.push(problem);
            f.push(r.ttfbMs);
            for (const ev of r.events) d.push(Number(ev.arrived - ev.sent) / 1e6);
          }
          if (name === 'sse10' && c === 1 && !results.timeline[l.path.name] && !res[0]!.error) {
            results.timeline[l.path.name] = timeline(res[0]!);
          }
          delays.set(l.path.name, d);
          errors.set(l.path.name, e);
          ttfb.set(l.path.name, f);
          await sleep(50);
        }
      }
      for (const l of live) {
        const d = delays.get(l.path.name);
        if (!d) continue;
        const e = errors.get(l.path.name)!;
        results.sse.push({ scenario: name, c, path: l.path.name, delayMs: dist(d), ttfbMs: dist(ttfb.get(l.path.name)!), streams: ttfb.get(l.path.name)!.length, errors: e.length, firstError: e[0] ?? null });
        if (l.run.proc) results.rss.push({ path: l.path.name, block, peakMB: peakRssMB(l.run.proc.pid) });
      }
      log(`${block}: ${live.map((l) => `${l.path.name} p50=${fmt(dist(delays.get(l.path.name) ?? []).p50)}ms`).join(', ')}`);
      if (overBudget()) note(`time budget reached during ${block}: later rounds were skipped`);
    }
  }

  // Small JSON: time to first byte, a fresh connection each time, as Codex's retries open them.
  const jsonTtfb = new Map<string, number[]>();
  for (let round = 0; round < PLAN.jsonRounds && section('json') && !overBudget(); round++) {
    for (const l of rotate(live, round)) {
      const t = jsonTtfb.get(l.path.name) ?? [];
      for (let i = 0; i < PLAN.jsonPerRound; i++) {
        const r = await request({ port: l.run.port, body: body({ kind: 'json' }), sse: false, timeoutMs: 5000, ...auth(l.path, key) });
        if (r.status === 200) t.push(r.ttfbMs);
      }
      jsonTtfb.set(l.path.name, t);
    }
  }
  for (const [path, t] of jsonTtfb) results.json.push({ path, ttfbMs: dist(t) });
  log(`json: ${[...jsonTtfb].map(([p, t]) => `${p} ${fmt(dist(t).p50)}ms`).join(', ')}`);

  // Bulk: one long download per path per round; the relay's CPU is read from /proc around it.
  for (const l of live) if (l.run.proc) resetPeak(l.run.proc.pid);
  const bulk = new Map<string, { bytes: number; seconds: number; user: number; sys: number; errors: number }>();
  for (let round = 0; round < PLAN.bulkRounds && section('bulk') && !overBudget(); round++) {
    for (const l of rotate(live, round)) {
      const cpu0 = l.run.proc ? cpuSeconds(l.run.proc.pid) : { user: 0, sys: 0 };
      const r = await request({ port: l.run.port, body: body({ kind: 'bulk', bytes: PLAN.bulkBytes }), sse: false, timeoutMs: 90_000, ...auth(l.path, key) });
      const cpu1 = l.run.proc ? cpuSeconds(l.run.proc.pid) : { user: 0, sys: 0 };
      const b = bulk.get(l.path.name) ?? { bytes: 0, seconds: 0, user: 0, sys: 0, errors: 0 };
      b.bytes += r.bodyBytes;
      b.seconds += (r.totalMs - r.ttfbMs) / 1000;
      b.user += cpu1.user - cpu0.user;
      b.sys += cpu1.sys - cpu0.sys;
      if (r.error || r.bodyBytes !== PLAN.bulkBytes) b.errors++;
      bulk.set(l.path.name, b);
      await sleep(100);
    }
  }
  const directMBps = bulk.get('direct') ? bulk.get('direct')!.bytes / 1e6 / bulk.get('direct')!.seconds : NaN;
  for (const [path, b] of bulk) {
    const mbps = b.bytes / 1e6 / b.seconds;
    const l = live.find((x) => x.path.name === path)!;
    results.bulk.push({
      path,
      MBps: mbps,
      ratioToDirect: mbps / directMBps,
      cpuSecondsPerGB: l.run.proc ? (b.user + b.sys) / (b.bytes / 1e9) : null,
      userSecondsPerGB: l.run.proc ? b.user / (b.bytes / 1e9) : null,
      peakMB: l.run.proc ? peakRssMB(l.run.proc.pid) : null,
      errors: b.errors,
    });
  }
  log(`bulk: ${results.bulk.map((b) => `${b.path} ${b.MBps.toFixed(0)}MB/s`).join(', ')}`);

  for (const l of live) if (l.run.proc) await stopPath(l);
  await stop(up);
  results.durationS = (Date.now() - t0) / 1000;
  const out = writeReport(resultsDir, results);
  log(`wrote ${out.join(', ')}`);
}

/** The relays exit cleanly through GET /shutdown when profiling, so --cpu-prof can write its file. */
async function stopPath(l: Live) {
  if (profile && l.path.name.startsWith('relay') && l.run.proc) {
    const s = net.connect({ host: '127.0.0.1', port: l.run.port }, () => s.end('GET /shutdown HTTP/1.1\r\nHost: x\r\n\r\n'));
    s.on('error', () => {});
    await Promise.race([once(l.run.proc.child, 'exit'), sleep(5000)]);
  }
  await stop(l.run.proc!);
}

async function bareNode(): Promise<number> {
  const t = process.hrtime.bigint();
  const p = launch(process.execPath, ['-e', '0']);
  return waitFor(p, () => p.child.exitCode !== null, 10_000, t);
}

function body(s: object) {
  return JSON.stringify({ model: 'bench', stream: true, bench: s });
}

function auth(p: Path, key: string) {
  return p.name === 'direct' ? { authorization: `Bearer ${key}` } : {};
}

function rotate<T>(xs: T[], n: number): T[] {
  const k = n % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

/** Each event's arrival in ms after the first event was sent, and its own delay. */
function timeline(r: Response) {
  const first = r.events[0]!.sent;
  return {
    arrivalMs: r.events.map((e) => Number(e.arrived - first) / 1e6),
    delayMs: r.events.map((e) => Number(e.arrived - e.sent) / 1e6),
  };
}

function fmt(n: number) {
  return Number.isFinite(n) ? n.toFixed(3) : '-';
}

/** The commit the relay was built from, marked when src/ has uncommitted changes. */
function relayCommit() {
  const head = run('git', ['rev-parse', '--short', 'HEAD'], 5000, root);
  const dirty = run('git', ['status', '--porcelain', '--', 'src'], 5000, root);
  return head.ok ? head.out + (dirty.out ? '+uncommitted src/' : '') : 'unknown';
}

function machine() {
  let kernel = os.release();
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {}
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memGB: Math.round(os.totalmem() / 2 ** 30),
    kernel,
    node: process.version,
    loadavg: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
}

// Only a plain run may replace the committed results; a partial one writes to the cache.
const partial = ['quick', 'paths', 'only', 'concurrency', 'profile'].some((n) => process.argv.some((a) => a.startsWith(`--${n}`)));
const resultsDir = partial ? join(cache, 'results') : join(root, 'bench', 'results');
if (has('report-only')) {
  const dir = join(root, 'bench', 'results');
  writeReport(dir, JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as Results);
  process.exit(0);
}
const onSignal = () => void stopAll().finally(() => process.exit(130));
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
main()
  .catch(async (err) => {
    log(`failed: ${(err as Error).stack ?? err}`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
