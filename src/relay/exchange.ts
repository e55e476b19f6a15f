// One request/response exchange with the upstream: writes the rewritten head
// and the client's body bytes upstream, and copies the upstream's bytes back
// as they arrive. The response is parsed only to learn where it ends, so that
// both connections can be reused; its bytes are never altered or re-framed.
import type net from 'node:net';
import type { Credential, Lease } from '../credential/credential.js';
import { upstreamErrorKind, type ErrorKind } from './errors.js';
import { MessageParser } from '../http/parser.js';
import { readMessage, type MessageError, type MessageEvents } from '../http/message.js';
import type { ExchangeObserver, Outcome } from './observer.js';
import { Flow } from './flow.js';
import type { Connector } from '../transport/connect.js';
import type { Pool } from '../transport/pool.js';
import type { Upstream } from '../transport/upstream.js';

export interface RelayContext {
  upstream: Upstream;
  /** Makes verified upstream connections, through whatever egress route start-up chose. */
  connector: Connector;
  pool: Pool;
  /** Request line and Host line (rewrite.ts). */
  prefix: Buffer;
  /** Where each request's Authorization line comes from (credential.ts). */
  credential: Credential;
  connectTimeoutMs: number;
  maxHeadBytes: number;
}

/** What the exchange needs from the client connection (accept.ts). */
export interface ClientSide {
  readonly sock: net.Socket;
  /** The response ended; `reusable` says the upstream framed it for keep-alive. */
  exchangeDone(reusable: boolean): void;
  /** The exchange failed; `started` says response bytes already reached the client. */
  exchangeFailed(kind: ErrorKind, started: boolean, cause?: string): void;
}

/**
 * Response limits, fixed and independent of --max-head-bytes (which is about
 * what clients send). A real API response head is about 1.3 KB; 256 KiB is
 * generous and still bounds what one exchange keeps (the head is held until
 * it is complete). Trailers are never kept, only counted as they pass: the
 * cap stops an upstream from streaming an endless trailer section.
 */
export const RESPONSE_HEAD_MAX = 256 * 1024;
export const RESPONSE_TRAILERS_MAX = 256 * 1024;

const UPSTREAM_ERRORS: Record<MessageError, ErrorKind> = {
  malformed: 'upstream_protocol',
  head_too_large: 'upstream_head_too_large',
  trailers_too_large: 'upstream_trailers_too_large',
};

/** How end() leaves the connections: `reusable`, the client's may carry another request; `pool`, the upstream's too. */
interface Ending {
  reusable?: boolean;
  pool?: boolean;
  /** The upstream connection gets a FIN once its queued writes are flushed (failRequest). */
  flush?: boolean;
  /** An errno-style detail for the client's error response. */
  cause?: string | undefined;
}

const REPLAY_MAX = 1 << 20;

/**
 * What was sent so far on a pooled connection (references, not copies), so
 * that the request can go out once more on a fresh connection if the
 * upstream closed the idle one just as it was reused. A relay cannot tell
 * that race from an upstream that took the request and then died, so, as
 * Go's transport does, only a request carrying an Idempotency-Key (which the
 * upstream deduplicates) is replayed; any other gets a 502 and its client
 * decides. Dropped at the first response byte or past REPLAY_MAX.
 */
class Replay {
  private parts: Buffer[] | null = null;
  private bytes = 0;

  /** The request goes out on a pooled connection: keep what it sends from here. */
  start(sent: readonly Buffer[]): void {
    this.parts = [...sent];
  }

  add(b: Buffer): void {
    if (!this.parts) return;
    this.parts.push(b);
    this.bytes += b.length;
    if (this.bytes > REPLAY_MAX) this.parts = null;
  }

  drop(): void {
    this.parts = null;
  }

  /** What to send again, once; null when nothing may be. */
  take(): Buffer[] | null {
    const parts = this.parts;
    this.parts = null;
    return parts;
  }
}

export class Exchange {
  private up: net.Socket | null = null;
  /** The upstream connection while it is being made (and verified): end() must end it too. */
  private connecting: net.Socket | null = null;
  private readonly res: MessageParser;
  /** Request bytes that arrived while the upstream connection was being made. */
  private queued: Buffer[] = [];
  private readonly replay = new Replay();
  private requestDone = false;
  /** Some response byte was written to the client: errors can now only close it. */
  private started = false;
  private closed = false;
  private readonly flow: Flow;
  /** Held from the first write of the line until the exchange ends. */
  private lease: Lease | null = null;
  /** Withdraws a wait for a credential renewal (credential.ts). */
  private withdraw: () => void = noop;

  constructor(
    private readonly client: ClientSide,
    private readonly ctx: RelayContext,
    fields: Buffer,
    idempotent: boolean,
    /** The optional stages' view (observer.ts): bytes and the ending, never the rewritten head. */
    private readonly watch?: ExchangeObserver,
  ) {
    this.res = new MessageParser('RESPONSE', RESPONSE_HEAD_MAX, RESPONSE_TRAILERS_MAX);
    this.flow = new Flow(client.sock);
    if (watch) this.res.onBody = (data) => watch.responseBody(data);
    // Body bytes wait in `queued` until a credential line (a renewal may be in
    // flight) and a connection are in hand; pausing the client bounds that queue.
    this.client.sock.pause();
    this.withdraw = ctx.credential.acquire((lease, cause) => this.start(lease, cause, fields, idempotent));
  }

  private start(lease: Lease | null, cause: string, fields: Buffer, idempotent: boolean): void {
    if (this.closed) return lease?.release();
    if (!lease) return this.end('credential_unavailable', { cause });
    this.lease = lease;
    this.queued.unshift(this.ctx.prefix, lease.line, fields);
    // A pooled connection may take up to two loop turns to be seen idle (upstream.ts).
    this.ctx.pool.take((pooled) => {
      if (this.closed) {
        if (pooled) this.ctx.pool.put(pooled);
        return;
      }
      if (!pooled) return this.connectFresh();
      if (idempotent) this.replay.start(this.queued);
      this.client.sock.resume();
      this.attach(pooled);
    });
  }

  private connectFresh(): void {
    // Body bytes wait in `queued`; pausing the client bounds that queue.
    this.client.sock.pause();
    // 'own': read into buffers the connection reuses (transport/reads.ts);
    // a response is no secret, so nothing here needs to zero what it read.
    this.connecting = this.ctx.connector.connect(this.ctx.upstream, this.ctx.connectTimeoutMs, (err, sock) => {
      this.connecting = null;
      if (this.closed) {
        sock.destroy();
        return;
      }
      if (err) return this.end(upstreamErrorKind(err), { cause: err.code });
      this.client.sock.resume();
      this.attach(sock);
    }, 'own');
  }

  /** Client body bytes, exactly as framed by the client. */
  sendBody(bytes: Buffer): void {
    if (bytes.length === 0 || this.closed) return;
    this.watch?.requestBody(bytes);
    this.replay.add(bytes);
    if (!this.up) {
      this.queued.push(bytes);
      return;
    }
    this.flow.sentUp(this.up.write(bytes));
  }

  /** The client's request ended at its framing. (A response that ends first closes the exchange: complete().) */
  endRequest(): void {
    this.requestDone = true;
    this.watch?.requestEnd();
  }

  /**
   * The request body broke its framing, or its trailers passed the cap, after
   * `valid` bytes of this read. Those go upstream, then the upstream
   * connection gets a FIN once they are flushed: it holds a request whose
   * body never ended (no last chunk, or no empty line after the trailers),
   * which it cannot take as complete.
   */
  failRequest(kind: ErrorKind, valid: Buffer): void {
    if (this.up && valid.length > 0) {
      this.up.write(valid);
      this.watch?.requestBody(valid);
    }
    this.end(kind, { flush: true });
  }

  /** The client went away or failed: release everything at once. */
  abort(): void {
    this.end('client_abort');
  }

  /**
   * The one way an exchange ends, whatever ends it: the observer hears the
   * outcome once, nothing stays attached, the upstream connection is pooled,
   * flushed or destroyed, the parser and the lease are released, and the
   * client is answered (unless it is the one that left).
   */
  private end(outcome: Outcome, how: Ending = {}): void {
    if (this.closed) return;
    this.closed = true;
    // Held response bytes leave before the client is answered or reset.
    this.flow.release();
    this.watch?.end(outcome);
    this.withdraw();
    // Still connecting (or in its TLS handshake): end that attempt now, not at --connect-timeout.
    this.connecting?.destroy();
    this.connecting = null;
    // Nothing queued may outlive the exchange: a connect still running holds
    // this object until its deadline.
    this.queued = [];
    this.replay.drop();
    this.res.destroy();
    let lease = this.lease;
    this.lease = null;
    const up = this.up;
    this.up = null;
    if (up) {
      this.detach(up);
      if (how.flush) {
        flushThenClose(up, lease, this.ctx.connectTimeoutMs);
        lease = null;
      }
      // A response that ended while request bytes were still queued means the
      // upstream answered without reading them all: that connection cannot
      // frame another request, and the queue may hold the credential line.
      else if (how.pool && up.writableLength === 0) this.ctx.pool.put(up);
      else up.destroy();
    }
    // The line's last use: its connection is destroyed or idle.
    lease?.release();
    if (outcome === 'complete') this.client.exchangeDone(how.reusable === true);
    else if (outcome !== 'client_abort') this.client.exchangeFailed(outcome, this.started, how.cause);
  }

  private attach(up: net.Socket): void {
    this.up = up;
    up.on('data', this.onData).on('end', this.onEnd).on('error', this.onError).on('close', this.onClose);
    this.flow.attach(up);
    // Cork so the head and any queued body leave in one writev. Over plain
    // http it stays corked until the code now running returns, so the body
    // bytes that came in the same client read as the head (most requests)
    // join it: one segment, one wake-up of the upstream, no I/O waited for.
    // Not over TLS: Node copies a many-buffer write into one native buffer
    // that it frees unzeroed (SECURITY.md, "What Node cannot do here"); a head of
    // fixed size lands in the same freed block each time, while heads joined
    // to bodies of varying size left more copies of the credential line
    // (test/security/one-copy-in-memory.test.ts).
    up.cork();
    for (const b of this.queued) up.write(b);
    this.queued = [];
    if (this.ctx.upstream.secure) up.uncork();
    else process.nextTick(uncork, up);
    this.flow.sentUp(!up.writableNeedDrain);
  }

  private detach(up: net.Socket): void {
    up.removeListener('data', this.onData).removeListener('end', this.onEnd);
    up.removeListener('error', this.onError).removeListener('close', this.onClose);
    this.flow.detach(up);
  }

  private readonly onData = (chunk: Buffer): void => {
    this.replay.drop();
    this.flow.readStart(chunk);
    try {
      readMessage(this.res, chunk, this.response);
    } catch {
      // A bug must cost this exchange, never the process; the client gets a reset.
      this.started = true;
      this.end('upstream_protocol');
    } finally {
      this.flow.readDone(chunk, !this.closed);
    }
  };

  /** The response as http/message.ts reads it: every byte goes to the client as it arrives. */
  private readonly response: MessageEvents = {
    head: () => {
      // Held until this read is handled (flow.ts), so the head and the body
      // bytes after it leave in one writev.
      this.flow.hold();
      if (this.res.status === 401) this.lease?.rejected();
      if (!this.res.interim) this.watch?.responseHead(this.res.status, this.res.head());
      this.write(this.res.head());
      return false;
    },
    bytes: (b) => this.write(b),
    // Bytes after a complete response break the upstream's framing: that
    // connection must never carry another request.
    end: (rest) => this.complete(rest === 0),
    // The valid bytes before the bad one went out (bytes()); end() releases
    // them before the reset that follows.
    error: (why) => this.end(UPSTREAM_ERRORS[why]),
  };

  private write(bytes: Buffer): void {
    this.started = true;
    this.client.sock.write(bytes);
  }

  /**
   * The response ended at its framing. If the request had ended too, the
   * client may send another one when the response said keep-alive, and the
   * upstream connection is pooled only if it also sent nothing past the
   * response (`clean`). A response that ends before the request does answers
   * the client, but neither connection can be trusted to frame another message.
   */
  private complete(clean: boolean): void {
    if (!this.requestDone) return this.end('complete');
    const keepAlive = this.res.keepAlive;
    this.end('complete', { reusable: keepAlive, pool: keepAlive && clean });
  }

  private readonly onEnd = (): void => {
    if (this.retry()) return;
    // A body delimited by the connection's close ends here (RFC 9112 §6.3
    // rule 8); neither connection frames another message.
    if (this.res.headDone && this.res.finish()) return this.end('complete');
    this.end(this.started ? 'upstream_protocol' : 'upstream_closed');
  };

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    if (!this.retry()) this.end(upstreamErrorKind(err), { cause: err.code });
  };

  private readonly onClose = (): void => {
    if (!this.retry()) this.end(this.started ? 'upstream_protocol' : 'upstream_closed');
  };

  /** A pooled connection died before answering: send the same bytes once more on a new one. */
  private retry(): boolean {
    const again = this.replay.take();
    if (!again) return false;
    const up = this.up!;
    this.detach(up);
    up.destroy();
    this.up = null;
    this.queued = again;
    this.connectFresh();
    return true;
  }
}

/**
 * Closes an upstream connection that holds a request whose body never
 * ended, once what was written is flushed. The credential line may still
 * wait in its write queue, so the lease (whose release may zero a replaced
 * OIDC line) is released only when the socket closes.
 */
function flushThenClose(up: net.Socket, lease: Lease | null, ms: number): void {
  // A deadline, not inactivity: an upstream that keeps sending while it
  // never reads would otherwise hold the socket, and the line, for ever.
  const deadline = setTimeout(() => up.destroy(), ms);
  up.once('close', () => {
    clearTimeout(deadline);
    lease?.release();
  });
  up.end(() => up.destroy());
  up.resume();
}

function uncork(sock: net.Socket): void {
  if (sock.writableCorked) sock.uncork();
}

function noop(): void {}
