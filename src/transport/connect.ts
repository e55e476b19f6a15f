// How a connection to the upstream is made and verified: over whatever byte
// stream egress.ts dials (direct, forward proxy or CONNECT tunnel), with TLS
// layered on it here.
import net from 'node:net';
import tls from 'node:tls';
import { dial, forwardProxy, type EgressConfig, type HttpProxy } from './egress.js';
import type { Trust } from './trust.js';
import type { Upstream } from './upstream.js';

/**
 * Write buffer per socket. Node reads 64 KiB at a time; with the default
 * 16 KiB every bulk chunk would pause the other side and wait for a drain.
 * Memory stays bounded: at most this much queued per socket.
 */
export const SOCKET_BUFFER = 64 * 1024;

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
 * How connections to an upstream are made: through the egress route the
 * environment chose at start-up, verified against the trusted CAs. Built
 * once by the CLI and handed to each stage that connects (the relay, the
 * OIDC calls), so none of them reads another stage's settings.
 */
export class Connector {
  /** Resumable sessions by host and port: one is only ever offered to the host it was verified for. */
  private readonly tlsSessions = new Map<string, Buffer>();

  constructor(private readonly egress: EgressConfig, private readonly trust: Trust) {}

  /**
   * For an http upstream reached through a forward proxy, that proxy (the
   * request then names the origin in absolute form and carries the proxy's
   * credentials: relay/rewrite.ts); null when the request goes straight to
   * the origin or through a tunnel.
   */
  forwardProxy(u: Upstream): HttpProxy | null {
    return forwardProxy(u, this.egress);
  }

  /**
   * Opens a connection and calls back once it is usable: for https, only after
   * the handshake has verified the certificate chain and the host name, so no
   * request byte (and so no key byte) is ever queued on an unverified socket.
   * egress.ts decides how the bytes travel (direct, or through a proxy); TLS is
   * layered here on whatever stream it gives, so a tunnelled connection is
   * verified exactly as a direct one.
   */
  connect(u: Upstream, timeoutMs: number, done: Connected): net.Socket {
    const tlsSessions = this.tlsSessions;
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
    const raw = dial(u, this.egress, netOptions, (err) => {
      if (err || !u.secure) return settle(err);
      const tlsOptions: tls.ConnectionOptions & { highWaterMark: number } = {
        socket: raw,
        // Ignored for the connection; checkServerIdentity verifies against it.
        host: u.host,
        // RFC 6066 §3: SNI carries DNS names only.
        ...(net.isIP(u.host) ? {} : { servername: u.host }),
        ALPNProtocols: ['http/1.1'],
        highWaterMark: SOCKET_BUFFER,
        ...this.trust.options(),
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
}
