// Starting, measuring and stopping the processes the bench owns. Every child
// is spawned here, remembered by PID, and stopped by that PID only.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const started = new Set<ChildProcess>();

export interface Started {
  child: ChildProcess;
  pid: number;
  /** The last few KB of the child's stderr, for a failure message. */
  stderr: () => string;
}

export function launch(cmd: string, args: string[], opts: { stdin?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Started {
  const child = spawn(cmd, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  started.add(child);
  child.on('exit', () => started.delete(child));
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  child.stdin!.on('error', () => {});
  if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
  return { child, pid: child.pid ?? -1, stderr: () => err };
}

/** SIGTERM by PID, then SIGKILL if it has not gone within `graceMs`. */
export async function stop(p: Started, graceMs = 3000): Promise<void> {
  const { child } = p;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  if ((await Promise.race([gone, sleep(graceMs, 'late')])) === 'late') {
    child.kill('SIGKILL');
    await gone;
  }
}

export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((child) => stop({ child, pid: child.pid ?? -1, stderr: () => '' })));
}

/** Polls every ms until `ready()` holds; returns the ms waited, or -1 past `limitMs` or on exit. */
export async function waitFor(p: Started, ready: () => boolean | Promise<boolean>, limitMs: number, t0: bigint): Promise<number> {
  const deadline = t0 + BigInt(limitMs) * 1_000_000n;
  while (process.hrtime.bigint() < deadline) {
    if (await ready()) return Number(process.hrtime.bigint() - t0) / 1e6;
    if (p.child.exitCode !== null || p.child.signalCode !== null) return -1;
    await sleep(1);
  }
  return -1;
}

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('connect', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

export function readServerInfo(file: string): { port: number; pid?: number } | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as { port: number; pid?: number };
  } catch {
    return null;
  }
}

// /proc readers. utime+stime are fields 14 and 15 of /proc/PID/stat, counted
// after the parenthesised command name, which may itself contain spaces.
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100;

/** User and system CPU seconds used so far. */
export function cpuSeconds(pid: number): { user: number; sys: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / CLK_TCK, sys: Number(f[12]) / CLK_TCK };
  } catch {
    return { user: NaN, sys: NaN };
  }
}

/** Peak resident set (VmHWM) in MB since start or the last resetPeak(). */
export function peakRssMB(pid: number): number {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Current resident set (VmRSS) in MB. */
export function rssMB(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Linux ≥ 4.0: writing 5 to clear_refs resets VmHWM to the current RSS, so each block gets its own peak. */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Runs a command to completion, bounded in time; returns its status and output. */
export function run(cmd: string, args: string[], timeoutMs: number, cwd?: string) {
  const r = spawnSync(cmd, args, { timeout: timeoutMs, encoding: 'utf8', ...(cwd ? { cwd } : {}) });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}`.trim() };
}
