// `npm run bench`: every path measured in one run, interleaved round by round
// so that drift on a shared machine falls on all paths alike. Numbers are
// reported, never asserted.
//
// Flags (for short runs while developing; the committed results use none, and
// a run with any of the first five writes to bench/.cache/results/ instead):
//   --quick            one round, concurrency 1 unless --concurrency says, a 50 MB download
//   --paths=a,b        only these paths (direct is always kept); relay-https-connect and relay-dump only this way
//   --concurrency=1,50 only these concurrency levels
//   --profile          run the relays under --cpu-prof (profiles land in bench/.cache/prof)
//   --only=sse,json,bulk  only these measurement sections
//   --report-only      rewrite results.md and timeline.svg from results.json, measuring nothing
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { request, type Response } from './client.js';
import { fetchOriginal, findNginx, makeTls, naive, nginx, nodePipe, original, relay, relayBudget, relayConnect, type Env, type Path, type Running } from './paths.js';
import { cpuSeconds, launch, peakRssMB, resetPeak, rssMB, run, stop, stopAll, waitFor } from './procs.js';
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
  // One 200 MB download varies by ±10% run to run; five interleaved rounds
  // (about 10 s in all) make the bulk comparison hold from run to run.
  bulkRounds: quick ? 1 : 5,
  // The whole run stays under 7 minutes: past this, remaining runs are skipped and said so.
  // Ten paths take about 5 minutes on 2 cores; 270 s, enough for the seven
  // before the TLS peers, would now cut the 200-stream and bulk rounds.
  budgetMs: 420_000,
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

// The benchmark's own throw-away key: the relays must inject it, direct sends it.
const KEY = `bench_${randomBytes(12).toString('hex')}`;

/** One request on a path; `bench` is the scenario the upstream plays. */
function send(l: Live, bench: object, sse: boolean, timeoutMs: number): Promise<Response> {
  return request({
    port: l.run.port,
    body: JSON.stringify({ model: 'bench', stream: true, bench }),
    sse,
    timeoutMs,
    ...(l.path.name === 'direct' ? { authorization: `Bearer ${KEY}` } : {}),
  });
}

async function main() {
  mkdirSync(cache, { recursive: true });
  // Scratch from earlier runs (server-info files, nginx prefixes) is ours to clear.
  for (const d of readdirSync(cache)) if (d === 'run' || d.startsWith('nginx-') || d.startsWith('dump-')) rmSync(join(cache, d), { recursive: true, force: true });
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
  const skip = (path: string, why: string) => (log(`SKIP ${path}: ${why}`), results.skipped.push({ path, why }));

  const orig = fetchOriginal(cache);
  const ngx = findNginx();
  const wanted = arg('paths')?.split(',');
  const direct: Path = { name: 'direct', start: async (env) => ({ port: env.upstream.http, proc: null, startupMs: 0 }) };
  const all = [
    direct, relay('http'), relay('https'), relayConnect(), relay('http', true), relayBudget(), original(orig.bin, orig.why), nginx(ngx.bin, ngx.why), naive(), nodePipe(),
    // Peers over TLS, to compare relay-https with in the same rounds.
    original(orig.bin, orig.why, 'https'), nginx(ngx.bin, ngx.why, 'https'), nodePipe('https'),
  ];
  const paths = all.filter((p) => p.name === 'direct' || (wanted ? wanted.includes(p.name) : !p.optIn));
  for (const p of paths) if (p.skip) skip(p.name, p.skip);
  const usable = paths.filter((p) => !p.skip);

  const tls = makeTls(cache);
  const up = launch(process.execPath, [join(root, 'dist/bench/upstream.js'), tls.cert, tls.key], { env: { ...process.env, BENCH_KEY: KEY } });
  const [line] = (await Promise.race([once(createInterface({ input: up.child.stdout! }), 'line'), sleep(10_000, [''])])) as string[];
  if (!line) throw new Error(`the fake upstream did not start: ${up.stderr()}`);
  const env: Env = { root, cache, key: KEY, upstream: JSON.parse(line) as Env['upstream'], tls };

  results.startup = await measureStartup(env, usable.filter((p) => p.name !== 'direct'));

  // Start every path once for the measurements, and check that it relays.
  if (profile) env.profileDir = join(cache, 'prof');
  const live: Live[] = [];
  for (const path of usable) {
    try {
      const l = { path, run: await path.start(env) };
      const check = await send(l, { kind: 'json' }, false, 5000);
      if (check.status !== 200) throw new Error(`a small POST got status ${check.status} ${check.error ?? ''}`);
      live.push(l);
    } catch (err) {
      skip(path.name, (err as Error).message);
    }
  }
  if (!live.some((l) => l.path.name === 'direct')) throw new Error('the direct path does not work; nothing to compare with');
  log(`paths: ${live.map((l) => `${l.path.name}:${l.run.port}`).join(' ')}`);

  // Warm-up: JIT, pools and TLS sessions, so the first measured round is not the cold one.
  for (const l of live) {
    for (let i = 0; i < 20; i++) await send(l, { kind: 'json' }, false, 5000);
    await send(l, { ...SCENARIOS.sse10, events: 50, intervalMs: 1 }, true, 10_000);
    await send(l, { kind: 'bulk', bytes: 20e6 }, false, 30_000);
  }

  if (section('sse')) await measureSse(live, results);
  if (section('json')) await measureJson(live, results);
  if (section('bulk')) await measureBulk(live, results);

  for (const l of live) if (l.run.proc) await stopPath(l);
  await stop(up);
  results.durationS = (Date.now() - t0) / 1000;
  log(`wrote ${writeReport(resultsDir, results).join(', ')}`);
}

/** Spawn until the server-info file exists (and RSS then), a few times each, interleaved, next to a bare `node -e 0`. */
async function measureStartup(env: Env, paths: Path[]): Promise<Results['startup']> {
  const runs: Record<string, number[]> = { 'node -e 0': [] };
  const rss: Record<string, number[]> = {};
  for (let i = 0; i < PLAN.startupRuns; i++) {
    runs['node -e 0']!.push(await bareNode());
    for (const p of paths) {
      try {
        const r = await p.start(env);
        (runs[p.name] ??= []).push(r.startupMs);
        (rss[p.name] ??= []).push(rssMB(r.proc!.pid));
        await stop(r.proc!);
      } catch (err) {
        if (i === 0) log(`start-up of ${p.name} failed: ${(err as Error).message}`);
      }
    }
  }
  return Object.fromEntries(
    Object.entries(runs).map(([name, ms]) => [name, { medianMs: median(ms), minMs: Math.min(...ms), runs: ms, ...(rss[name] ? { rssAtStartMB: median(rss[name]) } : {}) }]),
  );
}

/** Per-event delay for each SSE scenario at each concurrency; peak RSS per block. */
async function measureSse(live: Live[], results: Results) {
  const levels = (arg('concurrency')?.split(',').map(Number) ?? (quick ? [1] : [1, 50, 200])).filter((c) => PLAN.rounds[c]);
  for (const c of levels) {
    for (const name of Object.keys(SCENARIOS) as ScenarioName[]) {
      const s = SCENARIOS[name];
      const block = `${name} c=${c}`;
      for (const l of live) if (l.run.proc) resetPeak(l.run.proc.pid);
      const got = new Map<string, { delays: number[]; ttfb: number[]; errors: string[] }>();
      for (let round = 0; round < PLAN.rounds[c]! && !overBudget(); round++) {
        for (const l of rotate(live, round)) {
          const res = await Promise.all(Array.from({ length: c }, () => send(l, s, true, s.events * s.intervalMs + 15_000)));
          const g = got.get(l.path.name) ?? { delays: [], ttfb: [], errors: [] };
          for (const r of res) {
            const problem = r.error ?? (r.status !== 200 ? `status ${r.status}` : r.events.length !== s.events ? `${r.events.length}/${s.events} events` : null);
            if (problem) g.errors.push(problem);
            g.ttfb.push(r.ttfbMs);
            for (const ev of r.events) g.delays.push(Number(ev.arrived - ev.sent) / 1e6);
          }
          got.set(l.path.name, g);
          if (name === 'sse10' && c === 1 && !results.timeline[l.path.name] && !res[0]!.error) results.timeline[l.path.name] = timeline(res[0]!);
          await sleep(50);
        }
      }
      for (const l of live) {
        const g = got.get(l.path.name);
        if (!g) continue;
        results.sse.push({ scenario: name, c, path: l.path.name, delayMs: dist(g.delays), ttfbMs: dist(g.ttfb), streams: g.ttfb.length, errors: g.errors.length, firstError: g.errors[0] ?? null });
        if (l.run.proc) results.rss.push({ path: l.path.name, block, peakMB: peakRssMB(l.run.proc.pid) });
      }
      log(`${block}: ${[...got].map(([p, g]) => `${p} p50=${fmt(dist(g.delays).p50)}ms`).join(', ')}`);
      if (overBudget()) note(results, `time budget reached during ${block}: later rounds were skipped`);
    }
  }
}

/** Time to first byte of a small POST, on a fresh connection each time, as Codex's retries open them. */
async function measureJson(live: Live[], results: Results) {
  const ttfb = new Map<string, number[]>();
  for (let round = 0; round < PLAN.jsonRounds && !overBudget(); round++) {
    for (const l of rotate(live, round)) {
      const t = ttfb.get(l.path.name) ?? [];
      for (let i = 0; i < PLAN.jsonPerRound; i++) {
        const r = await send(l, { kind: 'json' }, false, 5000);
        if (r.status === 200) t.push(r.ttfbMs);
      }
      ttfb.set(l.path.name, t);
    }
  }
  for (const [path, t] of ttfb) results.json.push({ path, ttfbMs: dist(t) });
  log(`json: ${[...ttfb].map(([p, t]) => `${p} ${fmt(dist(t).p50)}ms`).join(', ')}`);
}

/** One long download per path per round; the proxy's CPU is read from /proc around it. */
async function measureBulk(live: Live[], results: Results) {
  for (const l of live) if (l.run.proc) resetPeak(l.run.proc.pid);
  const none = { user: 0, sys: 0 };
  const bulk = new Map<string, { bytes: number; seconds: number; user: number; sys: number; errors: number }>();
  for (let round = 0; round < PLAN.bulkRounds && !overBudget(); round++) {
    for (const l of rotate(live, round)) {
      const cpu0 = l.run.proc ? cpuSeconds(l.run.proc.pid) : none;
      const r = await send(l, { kind: 'bulk', bytes: PLAN.bulkBytes }, false, 90_000);
      const cpu1 = l.run.proc ? cpuSeconds(l.run.proc.pid) : none;
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
  const mbps = (b: { bytes: number; seconds: number }) => b.bytes / 1e6 / b.seconds;
  const direct = bulk.get('direct');
  for (const [path, b] of bulk) {
    const proc = live.find((x) => x.path.name === path)!.run.proc;
    const gb = b.bytes / 1e9;
    results.bulk.push({
      path,
      MBps: mbps(b),
      ratioToDirect: direct ? mbps(b) / mbps(direct) : NaN,
      cpuSecondsPerGB: proc ? (b.user + b.sys) / gb : null,
      userSecondsPerGB: proc ? b.user / gb : null,
      peakMB: proc ? peakRssMB(proc.pid) : null,
      errors: b.errors,
    });
  }
  log(`bulk: ${results.bulk.map((b) => `${b.path} ${b.MBps.toFixed(0)}MB/s`).join(', ')}`);
}

function note(results: Results, line: string) {
  log(line);
  results.notes.push(line);
}

/** The relays exit cleanly through GET /shutdown when profiling, so --cpu-prof can write its file. */
async function stopPath(l: Live) {
  if (profile && l.path.name.startsWith('relay') && l.run.proc) {
    const s = net.connect({ host: '127.0.0.1', port: l.run.port }, () => s.end('GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
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
