// One request/response exchange with the upstream: writes the rewritten head
// and the client's body bytes upstream, and copies the upstream's bytes back
// as they arrive. The response is parsed only to learn where it ends, so that
// both connections can be reused; its bytes are never altered or re-framed.
import type net from 'node:net';
import type { Credential, Lease } from '../credential/credential.js';
import type { ErrorKind } from './errors.js';
import { upstreamErrorKind } from './errors.js';
import { Ev, MessageParser } from '../http/parser.js';
import type { ExchangeObserver } from './observer.js';
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

const REPLAY_MAX = 1 << 20;

/**
 * Response limits, fixed and independent of --max-head-bytes (which is about
 * what clients send). A real API response head is about 1.3 KB; 256 KiB is
 * generous and still bounds what one exchange keeps (the head is held until
 * it is complete). Trailers are never kept, only counted as they pass: the
 * cap stops an upstream from streaming an endless trailer section.
 */
export const RESPONSE_HEAD_MAX = 256 * 1024;
export const RESPONSE_TRAILERS_MAX = 256 * 1024;

export class Exchange {
  private up: net.Socket | null = null;
  /** The upstream connection while it is being made (and verified): abort() must end it too. */
  private connecting: net.Socket | null = null;
  private readonly res: MessageParser;
  /** Request bytes that arrived while the upstream connection was being made. */
  private queued: Buffer[] = [];
  private requestDone = false;
  private responseDone = false;
  /** Some response byte was written to the client: errors can now only close it. */
  private started = false;
  private closed = false;
  private upPaused = false;
  private clientPaused = false;
  /**
   * What was sent so far on a pooled connection (references, not copies), so
   * that the request can go out once more on a fresh connection if the
   * upstream closed the idle one just as it was reused. A relay cannot tell
   * that race from an upstream that took the request and then died, so, as
   * Go's transport does, only a request carrying an Idempotency-Key (which
   * the upstream deduplicates) is replayed; any other gets a 502 and its
   * client decides. Dropped at the first response byte or past REPLAY_MAX.
   */
  private replay: Buffer[] | null = null;
  private replayBytes = 0;
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
    if (watch) this.res.onBody = (data) => watch.responseBody(data);
    // Body bytes wait in `queued` until a credential line (a renewal may be in
    // flight) and a connection are in hand; pausing the client bounds that queue.
    this.client.sock.pause();
    this.withdraw = ctx.credential.acquire((lease, cause) => this.start(lease, cause, fields, idempotent));
  }

  private start(lease: Lease | null, cause: string, fields: Buffer, idempotent: boolean): void {
    if (this.closed) return lease?.release();
    if (!lease) return this.fail('credential_unavailable', cause);
    this.lease = lease;
    this.queued.unshift(this.ctx.prefix, lease.line, fields);
    // A pooled connection may take up to two loop turns to be seen idle (upstream.ts).
    this.ctx.pool.take((pooled) => {
      if (this.closed) {
        if (pooled) this.ctx.pool.put(pooled);
        return;
      }
      if (!pooled) return this.connectFresh();
      if (idempotent) this.replay = [...this.queued];
      this.client.sock.resume();
      this.attach(pooled);
    });
  }

  private connectFresh(): void {
    // Body bytes wait in `queued`; pausing the client bounds that queue.
    this.client.sock.pause();
    this.connecting = this.ctx.connector.connect(this.ctx.upstream, this.ctx.connectTimeoutMs, (err, sock) => {
      this.connecting = null;
      if (this.closed) {
        sock.destroy();
        return;
      }
      if (err) return this.fail(upstreamErrorKind(err), err.code);
      this.client.sock.resume();
      this.attach(sock);
    });
  }

  /** Client body bytes, exactly as framed by the client. */
  sendBody(bytes: Buffer): void {
    if (bytes.length === 0 || this.closed) return;
    this.watch?.requestBody(bytes);
    if (this.replay) {
      this.replay.push(bytes);
      this.replayBytes += bytes.length;
      if (this.replayBytes > REPLAY_MAX) this.replay = null;
    }
    if (!this.up) {
      this.queued.push(bytes);
      return;
    }
    if (!this.up.write(bytes)) this.pauseClient();
  }

  /** The client's request ended at its framing. (A response that ends first closes the exchange: endEarly.) */
  endRequest(): void {
    this.requestDone = true;
    this.watch?.requestEnd();
  }

  /**
   * The request body broke its framing, or its trailers passed the cap, after
   * `valid` bytes of this read. Those go upstream, then the upstream
   * connection gets a FIN once they are flushed: it holds a request whose
   * body never ended (no last chunk, or no empty line after the trailers),
   * which it cannot take as complete. The client is answered by fail().
   */
  failRequest(kind: ErrorKind, valid: Buffer): void {
    if (this.closed) return;
    this.replay = null;
    const up = this.up;
    if (up) {
      if (valid.length > 0) {
        up.write(valid);
        this.watch?.requestBody(valid);
      }
      this.detach(up);
      this.up = null;
      // The credential line may still wait in this socket's write queue, so
      // the lease (whose release may zero a replaced OIDC line) outlives it.
      const lease = this.lease;
      this.lease = null;
      // A deadline, not inactivity: an upstream that keeps sending while it
      // never reads would otherwise hold the socket, and the line, for ever.
      const deadline = setTimeout(() => up.destroy(), this.ctx.connectTimeoutMs);
      up.once('close', () => {
        clearTimeout(deadline);
        lease?.release();
      });
      up.end(() => up.destroy());
      up.resume();
    }
    this.fail(kind);
  }

  /** The client went away or failed: release everything at once. */
  abort(): void {
    if (this.closed) return;
    this.watch?.end('client_abort');
    this.closed = true;
    // Still connecting (or in its TLS handshake): end that attempt too, now,
    // not at --connect-timeout.
    this.connecting?.destroy();
    this.connecting = null;
    this.up?.destroy();
    this.res.destroy();
    // Nothing queued may outlive the exchange: a connect still running holds
    // this object until its deadline.
    this.queued = [];
    this.replay = null;
    this.withdraw();
    this.release();
  }

  /** The line's last use: the connection is destroyed, or its response has ended. */
  private release(): void {
    this.lease?.release();
    this.lease = null;
  }

  private attach(up: net.Socket): void {
    this.up = up;
    up.on('data', this.onData).on('end', this.onEnd).on('error', this.onError).on('close', this.onClose);
    // Standing drain listeners: a bulk body fills the write buffer on almost
    // every chunk, and a once() per chunk cost more than the flags they set.
    up.on('drain', this.resumeClient);
    this.client.sock.on('drain', this.resumeUp);
    // Cork so the head and any queued body leave in one writev.
    up.cork();
    for (const b of this.queued) up.write(b);
    this.queued = [];
    up.uncork();
    if (up.writableNeedDrain) this.pauseClient();
  }

  private detach(up: net.Socket): void {
    up.removeListener('data', this.onData).removeListener('end', this.onEnd);
    up.removeListener('error', this.onError).removeListener('close', this.onClose);
    up.removeListener('drain', this.resumeClient);
    this.client.sock.removeListener('drain', this.resumeUp);
  }

  private readonly onData = (chunk: Buffer): void => {
    const client = this.client.sock;
    this.replay = null;
    try {
      this.relay(chunk);
    } catch {
      // A bug must cost this exchange, never the process.
      this.watch?.end('upstream_protocol');
      this.abort();
      this.client.exchangeFailed('upstream_protocol', true);
    } finally {
      if (client.writableCorked) client.uncork();
    }
    if (!this.closed && client.writableNeedDrain && this.up) {
      this.upPaused = true;
      this.up.pause();
    }
  };

  private relay(chunk: Buffer): void {
    const client = this.client.sock;
    let off = 0;
    while (!this.closed) {
      const inHead = !this.res.headDone;
      const step = this.res.execute(chunk, off);
      switch (step.ev) {
        case Ev.More:
          if (!inHead && off < chunk.length) this.write(client, chunk.subarray(off));
          return;
        case Ev.Head:
          // Corked until onData returns, so the head and the body bytes
          // after it leave in one writev; nothing waits past this read.
          if (!client.writableCorked) client.cork();
          if (this.res.status === 401) this.lease?.rejected();
          if (!this.res.interim) this.watch?.responseHead(this.res.status, this.res.head());
          this.write(client, this.res.head());
          break;
        case Ev.End:
          if (step.pos > off) this.write(client, chunk.subarray(off, step.pos));
          // An interim 1xx head is complete on its own; the final head follows.
          if (!this.res.interim) {
            this.responseDone = true;
            // Bytes after a complete response break the upstream's framing:
            // that connection must never carry another request.
            if (this.requestDone) this.finish(step.pos === chunk.length);
            else this.endEarly();
            return;
          }
          break;
        case Ev.Error:
          // The bytes of this read before the bad one are a valid part of
          // the response: the client gets them, then a reset (fail()). The
          // client socket may be corked (Head, above): flush it first.
          if (!inHead && step.pos > off) this.write(client, chunk.subarray(off, step.pos));
          if (client.writableCorked) client.uncork();
          if (!this.res.tooLarge) return this.fail('upstream_protocol');
          return this.fail(inHead ? 'upstream_head_too_large' : 'upstream_trailers_too_large');
      }
      off = step.pos;
      if (off >= chunk.length && step.ev !== Ev.Head) return;
    }
  }

  private write(client: net.Socket, bytes: Buffer): void {
    this.started = true;
    client.write(bytes);
  }

  private readonly onEnd = (): void => {
    if (this.retry()) return;
    // A body delimited by the connection's close ends here (RFC 9112 §6.3 rule 8).
    if (this.res.headDone && !this.responseDone && this.res.finish()) {
      this.responseDone = true;
      this.endEarly();
      return;
    }
    this.fail(this.started ? 'upstream_protocol' : 'upstream_closed');
  };

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    if (!this.retry()) this.fail(upstreamErrorKind(err), err.code);
  };

  private readonly onClose = (): void => {
    if (!this.responseDone && !this.retry()) this.fail(this.started ? 'upstream_protocol' : 'upstream_closed');
  };

  /** A pooled connection died before answering: send the same bytes once more on a new one. */
  private retry(): boolean {
    if (!this.replay || this.closed) return false;
    const up = this.up!;
    this.detach(up);
    up.destroy();
    this.up = null;
    this.upPaused = this.clientPaused = false;
    this.queued = this.replay;
    this.replay = null;
    this.connectFresh();
    return true;
  }

  /**
   * Both messages ended at their framing. The client may send another request
   * if the response said keep-alive; the upstream connection is pooled only if
   * it also sent nothing past the response (`clean`).
   */
  private finish(clean: boolean): void {
    const keepAlive = this.res.keepAlive;
    this.settle(keepAlive && clean, keepAlive);
  }

  /**
   * The response ended before the request did, or by the upstream closing:
   * the client has its answer, but neither connection can be trusted to
   * frame another message.
   */
  private endEarly(): void {
    this.settle(false, false);
  }

  private settle(pool: boolean, reusable: boolean): void {
    const up = this.up!;
    this.watch?.end('complete');
    this.closed = true;
    this.detach(up);
    this.res.destroy();
    // A response that ended while request bytes were still queued means the
    // upstream answered without reading them all: that connection cannot
    // frame another request, and the queue may hold the credential line.
    if (pool && up.writableLength === 0) this.ctx.pool.put(up);
    else up.destroy();
    this.release();
    this.client.exchangeDone(reusable);
  }

  /** Ends the exchange with an error; the client side decides what the client sees. */
  fail(kind: ErrorKind, cause?: string): void {
    if (this.closed) return;
    this.watch?.end(kind);
    this.abort();
    if (this.up) this.detach(this.up);
    this.client.exchangeFailed(kind, this.started, cause);
  }

  // Flow control: stop reading the fast side until the slow side drains.
  private pauseClient(): void {
    this.clientPaused = true;
    this.client.sock.pause();
  }

  private readonly resumeClient = (): void => {
    if (!this.clientPaused) return;
    this.clientPaused = false;
    if (!this.closed) this.client.sock.resume();
  };

  private readonly resumeUp = (): void => {
    if (!this.upPaused) return;
    this.upPaused = false;
    if (!this.closed) this.up?.resume();
  };
}

function noop(): void {}
