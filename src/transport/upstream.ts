// The upstream side: what --upstream-url names, how a connection to it is
// made and verified, and the pool of idle keep-alive connections.
import net from 'node:net';
import tls from 'node:tls';
import { dial, isLoopbackHost } from './egress.js';
import { trustedCa } from './trust.js';

export interface Upstream {
  secure: boolean;
  /** Host to connect to, without IPv6 brackets. */
  host: string;
  port: number;
  /** The Host header value: host, plus the port only when the URL names one. */
  hostHeader: string;
  /** Path and query of the URL: the upstream request target. */
  target: string;
}

export const DEFAULT_UPSTREAM = 'https://api.openai.com/v1/responses';

/** Throws an Error with a one-line message when the URL is unusable. */
export function parseUpstream(raw: string): Upstream {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`--upstream-url must be an absolute http(s) URL, got ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`--upstream-url must use http or https, not ${url.protocol.slice(0, -1)}`);
  }
  if (url.username || url.password) throw new Error('--upstream-url must not carry credentials; the key comes from stdin');
  if (url.hash || raw.includes('#')) throw new Error('--upstream-url must not carry a fragment');
  if (!url.hostname) throw new Error('--upstream-url must name a host');
  const secure = url.protocol === 'https:';
  return {
    secure,
    host: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
    port: url.port ? Number(url.port) : secure ? 443 : 80,
    hostHeader: url.host,
    target: url.pathname + url.search,
  };
}

export function isLoopback(u: Upstream): boolean {
  return isLoopbackHost(u.host);
}

/**
 * Write buffer per socket. Node reads 64 KiB at a time; with the default
 * 16 KiB every bulk chunk would pause the other side and wait for a drain.
 * Memory stays bounded: at most this much queued per socket.
 */
export const SOCKET_BUFFER = 64 * 1024;

/** Resumable sessions by host and port: one is only ever offered to the host it was verified for. */
const tlsSessions = new Map<string, Buffer>();

const READ_MIN = 16 * 1024;
const READ_MAX = 256 * 1024;
const COPY_MAX = 4 * 1024;

/**
 * Reads sized by the last read: 16 KiB while events are small, doubling to
 * 256 KiB while reads fill the buffer. Node's own reads are 64 KiB, so a bulk
 * body cost four read callbacks and writes where one will do (bench: relay
 * ~1,080 -> ~1,200 MB/s on bulk alone). A large read is handed on in the
 * Buffer it was read into, which is then never read into again, so nothing
 * a write queue or the parser still holds can change; a small one (an SSE
 * event) is copied out so its read buffer can be reused, which keeps 200
 * idle-ish streams from each pinning 16 KiB per event until the next GC.
 * Chunks still arrive as 'data' events. (http only: TLS sockets keep Node's
 * own reads, whose cost is small beside decryption.)
 */
function adaptiveReads(sock: () => net.Socket): net.OnReadOpts {
  let size = READ_MIN;
  let buf = Buffer.allocUnsafe(size);
  return {
    buffer: () => buf,
    callback: (n) => {
      let chunk: Buffer;
      if (n <= COPY_MAX) {
        chunk = Buffer.from(buf.subarray(0, n));
      } else {
        chunk = buf.subarray(0, n);
        if (n === size) size = Math.min(size * 2, READ_MAX);
        buf = Buffer.allocUnsafe(size);
      }
      if (n < size / 4 && size > READ_MIN) {
        size = Math.max(size / 2, READ_MIN);
        buf = Buffer.allocUnsafe(size);
      }
      sock().emit('data', chunk);
      return true;
    },
  };
}

export type Connected = (err: NodeJS.ErrnoException | null, sock: net.Socket) => void;

/**
 * Opens a connection and calls back once it is usable: for https, only after
 * the handshake has verified the certificate chain and the host name, so no
 * request byte (and so no key byte) is ever queued on an unverified socket.
 * egress.ts decides how the bytes travel (direct, or through a proxy); TLS is
 * layered here on whatever stream it gives, so a tunnelled connection is
 * verified exactly as a direct one.
 */
export function connect(u: Upstream, timeoutMs: number, done: Connected): net.Socket {
  const sessionKey = `${u.host}:${u.port}`;
  // highWaterMark reaches the socket's stream options in both connect()s;
  // @types/node does not list it.
  const netOptions: Partial<net.NetConnectOpts> & { highWaterMark: number } = u.secure
    ? { highWaterMark: SOCKET_BUFFER }
    : { highWaterMark: SOCKET_BUFFER, onread: adaptiveReads(() => sock) };
  let sock: net.Socket;
  let settled = false;
  const settle = (err: NodeJS.ErrnoException | null): void => {
    if (settled) return;
    settled = true;
    clearTimeout(deadline);
    if (err) {
      sock.destroy();
      raw.destroy();
    }
    done(err, sock);
  };
  // One deadline, not socket inactivity, over every phase (proxy connection,
  // CONNECT, TLS): an upstream or proxy that trickles bytes must not hold the
  // client past it.
  const deadline = setTimeout(() => settle(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), timeoutMs);
  const raw = dial(u, netOptions, (err) => {
    if (err || !u.secure) return settle(err);
    const tlsOptions: tls.ConnectionOptions & { highWaterMark: number } = {
      socket: raw,
      // Ignored for the connection; checkServerIdentity verifies against it.
      host: u.host,
      // RFC 6066 §3: SNI carries DNS names only.
      ...(net.isIP(u.host) ? {} : { servername: u.host }),
      ALPNProtocols: ['http/1.1'],
      highWaterMark: SOCKET_BUFFER,
      ...trustedCa(),
      // Resumption skips the full handshake and Node's host-name check, so a
      // session is only offered to the host and port whose certificate and
      // name verified when it was made.
      ...(tlsSessions.has(sessionKey) ? { session: tlsSessions.get(sessionKey)! } : {}),
    };
    const secure = tls.connect(tlsOptions);
    sock = secure;
    secure.setNoDelay(true);
    secure.on('session', (s: Buffer) => tlsSessions.set(sessionKey, s));
    // Stays attached after settling, so a late error on a socket nobody holds
    // any more cannot become an uncaught exception.
    secure.on('error', settle);
    secure.once('secureConnect', () => settle(null));
  });
  sock = raw;
  raw.on('error', settle);
  // A caller that gave up destroys the socket, which emits no error: end the
  // attempt then, so the deadline and `done` (and what it holds) go at once.
  raw.once('close', () => settle(Object.assign(new Error('connection closed'), { code: 'ECONNRESET' })));
  return raw;
}

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
