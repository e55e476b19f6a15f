// Where the key-custody tests look for a key: another process's memory
// (/proc/<pid>/mem), the files under a folder, and who listens
// (/proc/net/tcp); and the probe (probe.ts), the proxy in a child process
// that can write a heap snapshot and pause at exit for a memory scan.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { CLI, tmpDir, waitFor } from './harness.js';

/** Every path under `dir`, files only (bounded: at most 1000 entries). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (out.length >= 1000) return;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** Occurrences of `needle` in `hay`, overlapping ones included. */
export function countIn(hay: Buffer, needle: Buffer): number {
  let n = 0;
  for (let i = hay.indexOf(needle); i >= 0 && n < 1_000_000; i = hay.indexOf(needle, i + 1)) n++;
  return n;
}

/**
 * Counts `needle` in every readable mapping of process `pid`, by reading
 * /proc/<pid>/mem (proc(5)); the caller must be allowed to ptrace it, which a
 * parent is under the default Yama policy. Bounded: at most 4 GiB scanned.
 */
export function countInProcessMemory(pid: number, needle: Buffer): { count: number; scanned: number } {
  const maps = fs.readFileSync(`/proc/${pid}/maps`, 'latin1').split('\n');
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  const chunk = Buffer.alloc(4 << 20);
  const overlap = needle.length - 1;
  let count = 0;
  let scanned = 0;
  try {
    for (const line of maps) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) (r)\S* \S+ \S+ \S+\s*(.*)$/.exec(line);
      if (!m || m[4] === '[vsyscall]' || m[4] === '[vvar]') continue;
      const end = BigInt(`0x${m[2]}`);
      let at = BigInt(`0x${m[1]}`);
      let carry = 0;
      while (at < end && scanned < 4 * 2 ** 30) {
        const want = Number(end - at < BigInt(chunk.length - overlap) ? end - at : BigInt(chunk.length - overlap));
        let got: number;
        try {
          got = fs.readSync(fd, chunk, carry, want, at);
        } catch {
          break; // EIO: a guard page or an unbacked mapping
        }
        if (got <= 0) break;
        const view = chunk.subarray(0, carry + got);
        count += countIn(view, needle);
        // Keep the last needle-1 bytes so a copy split across two reads is
        // found; they are too short to hold a whole match counted already.
        carry = Math.min(overlap, view.length);
        chunk.copy(chunk, 0, view.length - carry, view.length);
        at += BigInt(got);
        scanned += got;
      }
    }
  } finally {
    fs.closeSync(fd);
    chunk.fill(0);
  }
  return { count, scanned };
}

/** Inodes of the TCP sockets in LISTEN state (st 0A) with their local port. */
export function listeningSockets(): Map<string, number> {
  const out = new Map<string, number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A') continue;
      out.set(f[9]!, parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return out;
}

/** Ports that process `pid` listens on, matched by socket inode (proc(5)). */
export function portsListenedBy(pid: number): number[] {
  const listening = listeningSockets();
  const ports: number[] = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target = '';
    try {
      target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    const port = m ? listening.get(m[1]!) : undefined;
    if (port !== undefined) ports.push(port);
  }
  return ports.sort((a, b) => a - b);
}

/** probe.ts as built, beside this module: run as a child by its path. */
export const PROBE = fileURLToPath(new URL('./probe.js', import.meta.url));

export interface Probe {
  proc: ChildProcess;
  stderr: () => string;
  port: number;
  /** Sends one command and resolves with the probe's answer. */
  ask: (msg: Record<string, unknown>) => Promise<Record<string, unknown>>;
  exited: Promise<number | string>;
}

/**
 * Starts probe.ts: the real CLI running in a child
 * process (mode 'cli'), or the key module alone (mode 'control'), with an
 * IPC channel for heap snapshots and a pause at exit for memory scans.
 */
export async function startProbe(mode: 'cli' | 'control', key: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Probe> {
  const info = path.join(tmpDir(), 'server-info.json');
  const cliArgs = mode === 'cli' ? ['--server-info', info, ...args] : [];
  const proc = spawn(process.execPath, [PROBE, mode, CLI, ...cliArgs], {
    stdio: ['pipe', 'pipe', 'pipe', 'ipc', 'pipe'],
    env: { PATH: process.env.PATH ?? '', ...env },
    // A core dumped by a signal (where `ulimit -c` allows one) lands in a temp folder.
    cwd: path.dirname(info),
  });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  proc.stdout!.resume();
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  let dead: number | string | undefined;
  void exited.then((c) => (dead = c));
  proc.stdin!.end(`${key}\n`);
  const pending: ((m: Record<string, unknown>) => void)[] = [];
  proc.on('message', (m: Record<string, unknown>) => pending.shift()?.(m));
  const ask = (msg: Record<string, unknown>): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`probe did not answer ${JSON.stringify(msg)}: ${err}`)), 30000);
      pending.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
      proc.send(msg);
    });
  let port = 0;
  try {
    if (mode === 'cli') {
      const text = await waitFor('server-info from the probe', () => {
        if (dead !== undefined) throw new Error(`probe exited (${dead}): ${err}`);
        try {
          return fs.readFileSync(info, 'utf8');
        } catch {
          return undefined;
        }
      });
      port = (JSON.parse(text) as { port: number }).port;
      // The line is written before the file, but maybe not read here yet.
      await waitFor('the listening line', () => dead !== undefined || err.includes(' listening on '));
    } else {
      await ask({ cmd: 'ready' });
    }
  } catch (e) {
    // A probe left running would keep this test file from ever ending.
    proc.kill('SIGKILL');
    throw e;
  }
  return { proc, stderr: () => err, port, ask, exited };
}

/**
 * Waits until the probe, inside its last 'exit' listener (after the
 * proxy's own wipe), reports on fd 4 that it is paused; the caller then
 * inspects its memory and calls the returned `release`.
 */
export async function pausedAtExit(p: Probe): Promise<() => void> {
  const pipe = p.proc.stdio[4] as unknown as Duplex;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`probe never paused at exit: ${p.stderr()}`)), 20000);
    pipe.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return () => {
    pipe.write('g');
  };
}

