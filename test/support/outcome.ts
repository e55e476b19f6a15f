// How a client connection ended, seen from the client: the bytes it got and
// whether the proxy closed it with a FIN ('end') or a reset (ECONNRESET).
// Issue 10 defects 4 and 6: after response bytes, a failure must be a reset.
import fs from 'node:fs';
import net from 'node:net';

export interface Outcome {
  data: Buffer;
  /** 'reset': ECONNRESET; 'fin': a clean end; 'open': still open after `ms`. */
  end: 'reset' | 'fin' | 'open' | 'error';
}

/** Writes each part as its own write and collects until the proxy ends the connection or `ms` passes. */
export function clientOutcome(port: number, parts: Buffer[], ms = 10000): Promise<Outcome> {
  return new Promise((resolve) => {
    // Half-open allowed, so that at 'end' the socket is still ours to inspect.
    const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (end: Outcome['end']): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data: Buffer.concat(chunks), end });
    };
    const timer = setTimeout(() => finish('open'), ms);
    sock.on('data', (d: Buffer) => chunks.push(d));
    // libuv before 1.48 (Node 20) reports EOF, not ECONNRESET, when a RST
    // arrives in the same poll as data (its POLLHUP short-cut), so the kernel
    // decides: after a FIN the socket is in CLOSE_WAIT, after a RST in CLOSE.
    sock.on('end', () => finish(tcpState(sock.localPort!, port) === CLOSE_WAIT ? 'fin' : 'reset'));
    sock.on('error', (err: NodeJS.ErrnoException) => finish(err.code === 'ECONNRESET' ? 'reset' : 'error'));
    sock.on('close', () => finish('fin'));
    sock.on('connect', async () => {
      for (const p of parts) {
        if (done) return;
        await new Promise<void>((r) => sock.write(p, () => r()));
        await new Promise((r) => setImmediate(r));
      }
    });
  });
}

const CLOSE_WAIT = '08';

/**
 * The kernel's TCP state (proc(5) /proc/net/tcp `st`, hex) of the connection
 * 127.0.0.1:localPort → 127.0.0.1:remotePort, or '' if none. Both ends are
 * matched: the same local port may also sit in TIME_WAIT from an earlier
 * connection to another peer.
 */
export function tcpState(localPort: number, remotePort: number): string {
  const addr = (p: number): string => `0100007F:${p.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of fs.readFileSync('/proc/net/tcp', 'latin1').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === addr(localPort) && f[2] === addr(remotePort)) return f[3]!;
  }
  return '';
}

/** Resident set (VmRSS) and its peak (VmHWM) of a process, in MB (proc(5)). */
export function rss(pid: number): { now: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN);
  return { now: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** Open file descriptors of a process. */
export function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}
