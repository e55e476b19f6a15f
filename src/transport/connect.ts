// How a connection to the upstream is made and verified: over whatever byte
// stream egress.ts dials (direct, forward proxy or CONNECT tunnel), with TLS
// layered on it here.
import net from 'node:net';
import tls from 'node:tls';
import { dial, forwardProxy, proxyFor, type EgressConfig, type HttpProxy } from './egress.js';
import { adaptiveReads, recordReads } from './reads.js';
import type { Trust } from './trust.js';
import type { Upstream } from './upstream.js';

/**
 * Write buffer per socket. Node reads 64 KiB at a time; with the default
 * 16 KiB every bulk chunk would pause the other side and wait for a drain.
 * Memory stays bounded: at most this much queued per socket.
 */
export const SOCKET_BUFFER = 64 * 1024;

export type Connected = (err: NodeJS.ErrnoException | null, sock: net.Socket) => void;

/**
 * How a connection's reads are buffered. 'own': into buffers the connection
 * keeps and reuses (reads.ts), the fast way for the relay's response stream.
 * 'node': a fresh Buffer per read that nothing else holds, for a caller that
 * zeroes what it has read (the OIDC calls: tokens).
 */
export type Reads = 'own' | 'node';

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
  connect(u: Upstream, timeoutMs: number, done: Connected, reads: Reads = 'node'): net.Socket {
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
    let raw: net.Socket;
    if (u.secure && reads === 'own' && !proxyFor(u, this.egress)) {
      // Node honours `onread` on a TLS socket only when tls.connect opens the
      // connection itself, so a direct one is opened here; a tunnelled one
      // keeps Node's reads.
      raw = this.secure(u, { port: u.port, onread: recordReads(() => sock) }, settle);
    } else {
      // highWaterMark reaches the socket's stream options; @types/node does not list it.
      const netOptions: Partial<net.NetConnectOpts> & { highWaterMark: number } = { highWaterMark: SOCKET_BUFFER };
      if (!u.secure && reads === 'own') netOptions.onread = adaptiveReads(() => sock);
      raw = dial(u, this.egress, netOptions, (err) => {
        if (err || !u.secure) return settle(err);
        sock = this.secure(u, { socket: raw }, settle);
      });
    }
    sock = raw;
    raw.on('error', settle);
    // A caller that gave up destroys the socket, which emits no error: end the
    // attempt then, so the deadline and `done` (and what it holds) go at once.
    raw.once('close', () => settle(Object.assign(new Error('connection closed'), { code: 'ECONNRESET' })));
    return raw;
  }

  /**
   * TLS over `how`: the dialled stream, or a connection of its own. `settle`
   * hears the verified handshake or the first error.
   */
  private secure(u: Upstream, how: { socket: net.Socket } | { port: number; onread: net.OnReadOpts }, settle: (err: NodeJS.ErrnoException | null) => void): tls.TLSSocket {
    const sessionKey = `${u.host}:${u.port}`;
    const session = this.tlsSessions.get(sessionKey);
    const tlsOptions: tls.ConnectionOptions & { highWaterMark: number; onread?: net.OnReadOpts } = {
      ...how,
      // Without `socket`, also where to connect; checkServerIdentity verifies against it.
      host: u.host,
      // RFC 6066 §3: SNI carries DNS names only.
      ...(net.isIP(u.host) ? {} : { servername: u.host }),
      ALPNProtocols: ['http/1.1'],
      highWaterMark: SOCKET_BUFFER,
      ...this.trust.options(),
      // Resumption skips the full handshake and Node's host-name check, so a
      // session is only offered to the host and port whose certificate and
      // name verified when it was made.
      ...(session ? { session } : {}),
    };
    const secure = tls.connect(tlsOptions);
    secure.setNoDelay(true);
    secure.on('session', (s: Buffer) => this.tlsSessions.set(sessionKey, s));
    // Stays attached after settling, so a late error on a socket nobody holds
    // any more cannot become an uncaught exception.
    secure.on('error', settle);
    secure.once('secureConnect', () => settle(null));
    return secure;
  }
}
