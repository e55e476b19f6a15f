// Turns one run's results into bench/results/{results.json,results.md,timeline.svg}.
// Each file is written to a .tmp name and renamed, so a reader never sees half.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { added, type Dist } from './stats.js';

export interface Results {
  date: string;
  command: string;
  machine: { cpu: string; cores: number; memGB: number; kernel: string; node: string; loadavg: number[] };
  relayCommit?: string;
  plan: object;
  notes: string[];
  skipped: { path: string; why: string }[];
  startup: Record<string, { medianMs: number; minMs: number; runs: number[]; rssAtStartMB?: number }>;
  sse: { scenario: string; c: number; path: string; delayMs: Dist; ttfbMs: Dist; streams: number; errors: number; firstError: string | null }[];
  json: { path: string; ttfbMs: Dist }[];
  bulk: { path: string; MBps: number; ratioToDirect: number; cpuSecondsPerGB: number | null; userSecondsPerGB: number | null; peakMB: number | null; errors: number }[];
  rss: { path: string; block: string; peakMB: number }[];
  /** One c=1 stream of the 200 × 10 ms scenario per path. */
  timeline: Record<string, { arrivalMs: number[]; delayMs: number[] }>;
  durationS?: number;
}

const ORDER = ['direct', 'relay-http', 'relay-https', 'relay-dump', 'original', 'nginx', 'naive-node', 'node-pipe', 'original-https', 'nginx-https', 'node-pipe-tls'];
/** The peers relay-https is held against; they have their own block in the summary, not rows in the plain one. */
const TLS_PEERS = ['original-https', 'nginx-https', 'node-pipe-tls'];
const byOrder = (a: string, b: string) => ORDER.indexOf(a) - ORDER.indexOf(b);

export function writeReport(dir: string, r: Results): string[] {
  mkdirSync(dir, { recursive: true });
  const files: [string, string][] = [
    ['results.json', JSON.stringify(r, null, 1) + '\n'],
    ['results.md', markdown(r)],
    ['timeline.svg', svg(r)],
  ];
  for (const [name, text] of files) {
    writeFileSync(join(dir, name + '.tmp'), text);
    renameSync(join(dir, name + '.tmp'), join(dir, name));
  }
  return files.map(([n]) => join(dir, n));
}

const f = (n: number | null | undefined, digits = 2) => (n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits));

function sseRow(r: Results, scenario: string, c: number, path: string) {
  return r.sse.find((s) => s.scenario === scenario && s.c === c && s.path === path);
}

function addedDelay(r: Results, scenario: string, c: number, path: string): Dist | null {
  const p = sseRow(r, scenario, c, path);
  const d = sseRow(r, scenario, c, 'direct');
  return p && d ? added(p.delayMs, d.delayMs) : null;
}

function addedTtfb(r: Results, path: string) {
  const p = r.json.find((j) => j.path === path);
  const d = r.json.find((j) => j.path === 'direct');
  return p && d ? p.ttfbMs.p50 - d.ttfbMs.p50 : null;
}

function rss200(r: Results, path: string) {
  const peaks = r.rss.filter((x) => x.path === path && x.block.endsWith('c=200')).map((x) => x.peakMB);
  return peaks.length ? Math.max(...peaks) : null;
}

function markdown(r: Results): string {
  const paths = [...new Set([...r.sse, ...r.bulk, ...r.json].map((x) => x.path))].sort(byOrder);
  const m = r.machine;
  const out: string[] = [];
  out.push('# Streaming benchmark', '');
  out.push(
    `Measured ${r.date.slice(0, 16).replace('T', ' ')} UTC at commit ${r.relayCommit ?? 'unknown'} with \`${r.command}\` (${f(r.durationS ?? NaN, 0)} s) on ${m.cpu}, ` +
      `${m.cores} cores, ${m.memGB} GB, Linux ${m.kernel}, Node ${m.node}, load average ${m.loadavg.join(' ')} at start; loopback only. ` +
      'Delays are arrival minus send time on one monotonic clock; "added" is the path\'s percentile minus direct\'s in the same run. ' +
      'Bulk is 200 MB downloads, one at a time, 5 rounds interleaved across paths (bytes over time summed); CPU and peak RSS are read from /proc for the proxy process.',
    '',
  );
  for (const s of r.skipped) out.push(`- **skipped ${s.path}:** ${s.why}`);
  for (const n of r.notes) out.push(`- ${n}`);
  if (r.skipped.length || r.notes.length) out.push('');

  out.push('## Summary', '');
  out.push('| path | added delay p50 / p99, 1 stream (ms) | added p99, 50 streams | added p99, 200 streams | added TTFB p50 (ms) | bulk MB/s (× direct) | CPU s per GB | peak RSS, 200 streams (MB) | start-up (ms) |');
  out.push('|---|---|---|---|---|---|---|---|---|');
  for (const p of paths.filter((x) => !TLS_PEERS.includes(x))) {
    const a1 = addedDelay(r, 'sse10', 1, p);
    const b = r.bulk.find((x) => x.path === p);
    const st = r.startup[p];
    const base = p === 'direct';
    out.push(
      `| ${p} | ${base ? 'baseline' : a1 ? `${f(a1.p50, 3)} / ${f(a1.p99, 3)}` : '–'} | ${base ? 'baseline' : f(addedDelay(r, 'sse10', 50, p)?.p99, 3)} ` +
        `| ${base ? 'baseline' : f(addedDelay(r, 'sse10', 200, p)?.p99, 3)} | ${base ? 'baseline' : f(addedTtfb(r, p), 3)} | ${b ? `${f(b.MBps, 0)} (${f(b.ratioToDirect)}×)` : '–'} | ${f(b?.cpuSecondsPerGB)} | ${f(rss200(r, p), 1)} | ${f(st?.medianMs, 1)} |`,
    );
  }
  out.push(...tlsBlock(r, paths));
  const bare = r.startup['node -e 0'];
  if (bare) out.push('', `A bare \`node -e 0\` takes ${f(bare.medianMs, 1)} ms (median of ${bare.runs.length}) from spawn to exit; start-up above is spawn until the server-info file exists (nginx: until its port accepts).`);
  const atStart = paths.filter((p) => r.startup[p]?.rssAtStartMB !== undefined);
  if (atStart.length) out.push('', `RSS just after start-up (MB): ${atStart.map((p) => `${p} ${f(r.startup[p]!.rssAtStartMB, 1)}`).join(', ')}.`);
  out.push('');

  out.push('## Targets (issue 4), this relay', '');
  out.push('| measure | target | relay-http | relay-https |', '|---|---|---|---|');
  for (const t of targets(r)) out.push(`| ${t.measure} | ${t.target} | ${t.http} | ${t.https} |`);
  out.push('');

  out.push('## Per-event delay, every scenario (ms)', '');
  out.push('| scenario | streams | path | p50 | p99 | max | added p50 | added p99 | added max | TTFB p50 | failed streams |');
  out.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const s of [...r.sse].sort((a, b) => a.scenario.localeCompare(b.scenario) || a.c - b.c || byOrder(a.path, b.path))) {
    const a = addedDelay(r, s.scenario, s.c, s.path)!;
    const label = s.scenario === 'sse10' ? '200 × 120 B / 10 ms' : '20 × 120 B / 100 ms';
    const fail = s.errors ? `${s.errors} of ${s.streams} (${s.firstError})` : `0 of ${s.streams}`;
    out.push(
      `| ${label} | ${s.c} | ${s.path} | ${f(s.delayMs.p50, 3)} | ${f(s.delayMs.p99, 3)} | ${f(s.delayMs.max, 3)} | ${s.path === 'direct' ? '–' : f(a.p50, 3)} ` +
        `| ${s.path === 'direct' ? '–' : f(a.p99, 3)} | ${s.path === 'direct' ? '–' : f(a.max, 3)} | ${f(s.ttfbMs.p50, 3)} | ${fail} |`,
    );
  }
  out.push('');

  out.push('## Small JSON POST, bulk download, memory', '');
  out.push('| path | TTFB p50 / p99 (ms) | bulk MB/s | × direct | CPU s per GB (of it user) | peak RSS in bulk (MB) | failed downloads |', '|---|---|---|---|---|---|---|');
  for (const p of paths) {
    const j = r.json.find((x) => x.path === p);
    const b = r.bulk.find((x) => x.path === p);
    out.push(`| ${p} | ${j ? `${f(j.ttfbMs.p50, 3)} / ${f(j.ttfbMs.p99, 3)}` : '–'} | ${f(b?.MBps, 0)} | ${f(b?.ratioToDirect)} | ${f(b?.cpuSecondsPerGB)} (${f(b?.userSecondsPerGB)}) | ${f(b?.peakMB, 1)} | ${b?.errors ?? '–'} |`);
  }
  out.push('', '![Event arrival timeline](timeline.svg)', '');
  return out.join('\n');
}

/**
 * relay-https next to the peers over TLS, each figure also as a ratio to the
 * best peer's (lowest delay, CPU and RSS; highest MB/s), so that "below 1"
 * reads as "beats every peer" for delays, CPU and RSS, and "above 1" for MB/s.
 * A ratio to an added delay at or below zero would mean nothing, so it is not given.
 */
function tlsBlock(r: Results, paths: string[]): string[] {
  const rows = paths.filter((p) => p === 'relay-https' || TLS_PEERS.includes(p));
  const peers = rows.filter((p) => TLS_PEERS.includes(p));
  if (!peers.length) return [];
  type Figure = { get: (p: string) => number | null | undefined; higherIsBetter?: boolean; digits: number };
  const figures: Figure[] = [
    { get: (p) => addedDelay(r, 'sse10', 1, p)?.p50, digits: 3 },
    { get: (p) => addedDelay(r, 'sse10', 50, p)?.p99, digits: 3 },
    { get: (p) => addedDelay(r, 'sse10', 200, p)?.p99, digits: 3 },
    { get: (p) => r.bulk.find((x) => x.path === p)?.MBps, higherIsBetter: true, digits: 0 },
    { get: (p) => r.bulk.find((x) => x.path === p)?.cpuSecondsPerGB, digits: 2 },
    { get: (p) => rss200(r, p), digits: 1 },
  ];
  const best = figures.map((fig) => {
    const got = peers.map((p) => ({ p, v: fig.get(p) })).filter((x): x is { p: string; v: number } => typeof x.v === 'number' && Number.isFinite(x.v));
    if (!got.length) return null;
    return got.reduce((a, b) => (fig.higherIsBetter ? (b.v > a.v ? b : a) : b.v < a.v ? b : a));
  });
  const cell = (p: string, i: number) => {
    const fig = figures[i]!;
    const v = fig.get(p);
    const b = best[i];
    if (v === null || v === undefined || !Number.isFinite(v)) return '–';
    return b && b.v > 0 ? `${f(v, fig.digits)} (${f(v / b.v)}×)` : f(v, fig.digits);
  };
  const out = ['', '### Over TLS', ''];
  out.push(
    'relay-https against peers relaying to the same TLS upstream, in the same rounds. In brackets: the figure divided by the best TLS peer\'s ' +
      '(lowest added delay, CPU and RSS; highest MB/s), named in the last row; "added" is still over direct, which is plain http.',
    '',
  );
  out.push('| path | added delay p50, 1 stream (ms) | added p99, 50 streams | added p99, 200 streams | bulk MB/s | CPU s per GB | peak RSS, 200 streams (MB) | added TTFB p50 (ms) | start-up (ms) |');
  out.push('|---|---|---|---|---|---|---|---|---|');
  for (const p of rows) out.push(`| ${p} | ${figures.map((_, i) => cell(p, i)).join(' | ')} | ${f(addedTtfb(r, p), 3)} | ${f(r.startup[p]?.medianMs, 1)} |`);
  out.push(`| best TLS peer | ${best.map((b) => b?.p ?? '–').join(' | ')} | | |`);
  return out;
}

export function targets(r: Results) {
  type Check = { value: number | null; limit: number; show?: string };
  const row = (measure: string, target: string, check: (p: string) => Check, digits: number) => {
    const cell = (p: string) => {
      const { value, limit, show } = check(p);
      if (value === null || !Number.isFinite(value)) return '–';
      const verdict = Number.isFinite(limit) ? (value <= limit ? ' ✅' : ' ❌') : '';
      return (show ?? f(value, digits)) + verdict;
    };
    return { measure, target, http: cell('relay-http'), https: cell('relay-https') };
  };
  const orig = r.bulk.find((b) => b.path === 'original')?.MBps ?? NaN;
  const ngx = r.bulk.find((b) => b.path === 'nginx')?.MBps ?? NaN;
  const peer = Math.max(...[orig, ngx].filter(Number.isFinite));
  const bare = r.startup['node -e 0']?.medianMs ?? NaN;
  const delay = (scenario: string, c: number, k: 'p50' | 'p99', limit: number) => (p: string) => ({
    value: addedDelay(r, scenario, c, p)?.[k] ?? null,
    limit,
  });
  return [
    row('added per-event delay p50, 1 stream (ms)', '≤ 0.1', delay('sse10', 1, 'p50', 0.1), 3),
    row('added per-event delay p99, 1 stream (ms)', '≤ 1', delay('sse10', 1, 'p99', 1), 3),
    row('added per-event delay p99, 200 streams (ms)', '≤ 5', delay('sse10', 200, 'p99', 5), 3),
    // Compared as the shortfall below the better peer, so that ≤ 0 is met.
    row(`bulk MB/s (original ${f(orig, 0)}, nginx ${f(ngx, 0)})`, '≥ both', (p) => {
      const mbps = r.bulk.find((x) => x.path === p)?.MBps ?? null;
      return { value: mbps === null ? null : peer - mbps, limit: 0, show: f(mbps, 0) };
    }, 0),
    row('added TTFB p50 (ms)', '≤ 0.3', (p) => ({ value: addedTtfb(r, p), limit: 0.3 }), 3),
    row(`start-up (ms), bare node ${f(bare, 1)}`, '≤ bare node + 60', (p) => ({ value: r.startup[p]?.medianMs ?? null, limit: bare + 60 }), 1),
    row('peak RSS, 200 streams (MB)', '≤ 80', (p) => ({ value: rss200(r, p), limit: 80 }), 1),
  ];
}

// ---- the SVG, by hand ----------------------------------------------------

const COLORS: Record<string, string> = {
  direct: '#222222',
  'relay-http': '#1f77b4',
  'relay-https': '#17becf',
  'relay-dump': '#8c564b',
  original: '#d62728',
  nginx: '#2ca02c',
  'naive-node': '#9467bd',
  'node-pipe': '#ff7f0e',
  'original-https': '#ff9896',
  'nginx-https': '#98df8a',
  'node-pipe-tls': '#ffbb78',
};

function svg(r: Results): string {
  const lanes = Object.keys(r.timeline).sort(byOrder);
  const W = 960;
  const left = 110;
  const right = 20;
  const laneH = 34;
  const top = 50;
  const plotW = W - left - right;
  const maxMs = Math.max(1, ...lanes.flatMap((p) => r.timeline[p]!.arrivalMs));
  const span = Math.ceil(maxMs / 250) * 250;
  const x = (ms: number) => left + (ms / span) * plotW;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts: string[] = [];
  const text = (tx: number, ty: number, s: string, extra = '') =>
    parts.push(`<text x="${tx.toFixed(1)}" y="${ty.toFixed(1)}" ${extra}>${esc(s)}</text>`);

  // Panel 1: one lane per path, a tick at each event's arrival.
  const lanesBottom = top + lanes.length * laneH;
  text(left, 22, 'Arrival of 200 SSE events of 120 B sent every 10 ms (1 stream), ms after the first send', 'font-weight="bold"');
  for (let ms = 0; ms <= span; ms += 250) {
    parts.push(`<line x1="${x(ms)}" y1="${top - 6}" x2="${x(ms)}" y2="${lanesBottom}" stroke="#ddd"/>`);
    text(x(ms), lanesBottom + 14, String(ms), 'text-anchor="middle" font-size="10"');
  }
  lanes.forEach((p, i) => {
    const y = top + i * laneH;
    text(left - 8, y + laneH / 2 + 4, p, 'text-anchor="end"');
    const ticks = r.timeline[p]!.arrivalMs.map((ms) => `M${x(ms).toFixed(1)} ${y + 4}v${laneH - 10}`).join('');
    parts.push(`<path d="${ticks}" stroke="${COLORS[p] ?? '#555'}" stroke-width="1"/>`);
  });

  // Panel 2: each event's delay (log scale) by event index.
  const top2 = lanesBottom + 60;
  const h2 = 260;
  const lo = -2;
  const hi = 3; // 0.01 ms … 1000 ms
  const y2 = (ms: number) => top2 + h2 - ((Math.log10(Math.min(Math.max(ms, 10 ** lo), 10 ** hi)) - lo) / (hi - lo)) * h2;
  const xi = (i: number) => left + (i / 199) * plotW;
  // Each legend entry is 118 px apart; the last in a row needs about 100 px for its label.
  const legendPerRow = Math.max(1, Math.floor((plotW - 10 - 100) / 118) + 1);
  text(left, top2 - 14, 'Delay of each event, arrival minus send (ms, log scale), by event index', 'font-weight="bold"');
  for (let e = lo; e <= hi; e++) {
    parts.push(`<line x1="${left}" y1="${y2(10 ** e)}" x2="${W - right}" y2="${y2(10 ** e)}" stroke="#ddd"/>`);
    text(left - 8, y2(10 ** e) + 4, String(10 ** e), 'text-anchor="end" font-size="10"');
  }
  for (let i = 0; i < 200; i += 50) text(xi(i), top2 + h2 + 14, String(i), 'text-anchor="middle" font-size="10"');
  text(xi(199), top2 + h2 + 14, '199', 'text-anchor="middle" font-size="10"');
  lanes.forEach((p, li) => {
    const pts = r.timeline[p]!.delayMs.map((ms, i) => `${xi(i).toFixed(1)},${y2(ms).toFixed(1)}`).join(' ');
    parts.push(`<polyline points="${pts}" fill="none" stroke="${COLORS[p] ?? '#555'}" stroke-width="1.2"/>`);
    // The legend wraps rather than run off the right edge once there are more paths than fit.
    const lx = left + 10 + (li % legendPerRow) * 118;
    const ly = top2 + h2 + 26 + Math.floor(li / legendPerRow) * 16;
    parts.push(`<rect x="${lx}" y="${ly}" width="12" height="4" fill="${COLORS[p] ?? '#555'}"/>`);
    text(lx + 16, ly + 6, p, 'font-size="11"');
  });
  const H = top2 + h2 + 44 + (Math.ceil(lanes.length / legendPerRow) - 1) * 16;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">\n` +
    `<rect width="${W}" height="${H}" fill="white"/>\n${parts.join('\n')}\n</svg>\n`
  );
}
