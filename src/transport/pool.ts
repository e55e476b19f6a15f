// Idle upstream keep-alive connections, handed out only once seen idle.
import type net from 'node:net';

interface IdleEntry {
  sock: net.Socket;
  drop: () => void;
  /** Seen idle: a full turn of the event loop, reads on, brought no byte. */
  idle: boolean;
  /** A request waiting for this connection to be seen idle. */
  waiter: ((sock: net.Socket | null) => void) | null;
}

/**
 * Idle upstream connections, newest first. Any event on an idle socket (data,
 * EOF, error, timeout) means it can no longer carry a request, so it is
 * dropped at once rather than found broken by the next request.
 *
 * A connection is handed out only once it has been seen idle. A response that
 * ends exactly at the end of a read says nothing about the next read: more
 * bytes (a second response glued to the first, or the rest of a TLS record
 * batch) may already be waiting. So put() resumes reading, and the socket
 * becomes usable only after an event-loop turn whose poll phase would have
 * delivered those bytes (two setImmediates: the first runs after the current
 * poll phase, the second after the next one). A request that arrives sooner
 * waits for that verdict instead of opening a new connection.
 */
export class Pool {
  private idle: IdleEntry[] = [];

  constructor(private readonly idleMs: number, private readonly max: number) {}

  /** Calls `use` with a connection seen idle, now or within two loop turns, or with null. */
  take(use: (sock: net.Socket | null) => void): void {
    for (let e = this.idle.pop(); e; e = this.idle.pop()) {
      if (e.sock.destroyed || !e.sock.writable || !e.sock.readable) {
        this.unwatch(e);
        e.sock.destroy();
        continue;
      }
      if (!e.idle) {
        // Still watched: a byte, EOF or error before the verdict drops it and retries.
        e.waiter = use;
        return;
      }
      this.unwatch(e);
      return use(e.sock);
    }
    use(null);
  }

  put(sock: net.Socket): void {
    if (this.idle.length >= this.max || sock.destroyed) {
      sock.destroy();
      return;
    }
    const entry: IdleEntry = {
      sock,
      idle: false,
      waiter: null,
      drop: () => {
        this.unwatch(entry);
        const i = this.idle.indexOf(entry);
        if (i >= 0) this.idle.splice(i, 1);
        sock.destroy();
        const waiter = entry.waiter;
        entry.waiter = null;
        if (waiter) this.take(waiter);
      },
    };
    sock.on('data', entry.drop).on('end', entry.drop).on('error', entry.drop).on('close', entry.drop);
    sock.setTimeout(this.idleMs, entry.drop);
    sock.resume();
    this.idle.push(entry);
    setImmediate(() =>
      setImmediate(() => {
        if (sock.destroyed) return;
        entry.idle = true;
        const waiter = entry.waiter;
        if (!waiter) return;
        entry.waiter = null;
        this.unwatch(entry);
        waiter(sock);
      }),
    );
  }

  closeAll(): void {
    for (const e of this.idle.splice(0)) {
      this.unwatch(e);
      e.sock.destroy();
    }
  }

  private unwatch(e: IdleEntry): void {
    e.sock.setTimeout(0);
    e.sock.removeListener('data', e.drop).removeListener('end', e.drop).removeListener('error', e.drop);
    e.sock.removeListener('close', e.drop).removeListener('timeout', e.drop);
  }
}
