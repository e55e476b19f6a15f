// The listening socket and one state machine per client connection. It wires
// the stages in the order the bytes travel: parse the head (parse.ts,
// head.ts), admit it (admit.ts), ask the optional gate (gate.ts: the spend
// guard), rewrite it (rewrite.ts), then hand the exchange to the relay
// (relay.ts), which talks to the upstream.
import net from 'node:net';
import { admit, listenerHosts, type Admission } from './admit.js';
import { errorResponse, ERRORS, type ErrorKind } from './errors.js';
import { nameIs, splitRequestHead, type RequestHead } from '../http/head.js';
import { Ev, MessageParser } from '../http/parser.js';
import { Exchange, type ClientSide, type RelayContext } from './exchange.js';
import type { Gate } from './gate.js';
import { observe, type Observer } from './observer.js';
import { forwardedFields } from './rewrite.js';
import { SOCKET_BUFFER } from '../transport/connect.js';
import { Slots, type Slot } from './slots.js';

export interface ServerOptions {
  relay: RelayContext;
  /** GET /shutdown is answered and onShutdown called (--http-shutdown). */
  shutdown: boolean;
  /** --allow-host values: Host names admitted besides the loopback names (none by default). */
  allowHosts?: readonly string[];
  onShutdown: () => void;
  /** From the first byte of a head (or a new connection) to its end: 408 after. */
  headTimeoutMs: number;
  /** A kept-alive connection with no request in flight is closed after this. */
  idleTimeoutMs: number;
  /** Connection slots (slots.ts): past them an idle connection gives way, or the new one gets 503. */
  maxConnections: number;
  /** The optional stages that watch each admitted exchange (--dump-dir's tap). */
  observers?: readonly Observer[];
  /** The optional admission check made before an exchange exists (the spend guard's budget). */
  gate?: Gate | undefined;
  /** One line per failure the operator should know about; never request bytes. */
  log: (line: string) => void;
}

const enum State {
  /** Reading a request head. */
  Head,
  /** Forwarding the request body. */
  Body,
  /** Waiting for the gate's verdict; the bytes after the head wait with it. */
  Gated,
  /** Request complete; later bytes wait until the response ends. */
  Await,
  /** An error response is on its way; input is drained and dropped. */
  Closing,
}

// After the last response byte is flushed, the client's remaining bytes are
// read and dropped until it has been quiet this long (closing with unread
// input makes the kernel send a RST, which can destroy the response before
// the client reads it), and for LINGER_MAX_MS at most.
const LINGER_MS = 2000;
const LINGER_MAX_MS = 30_000;

const SHUTDOWN_OK = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', 'latin1');

export function createRelayServer(opts: ServerOptions): net.Server {
  const admission: Admission = { hosts: new Set(), shutdown: opts.shutdown };
  const slots = new Slots(opts.maxConnections);
  const server = net.createServer({ noDelay: true, highWaterMark: SOCKET_BUFFER }, (sock) => new ClientConn(sock, opts, admission, slots));
  // Host must carry the port actually bound (--port 0 picks one), so the
  // names are known once listening, before any connection is accepted.
  server.on('listening', () => {
    admission.hosts = listenerHosts((server.address() as net.AddressInfo).port, opts.allowHosts ?? []);
  });
  // A refused client's 503 is flushed and its connection lingers like any
  // other closing one, outside the slots. Node closes connections at accept
  // past this ceiling, so file descriptors stay within twice the cap even
  // when a flood meets slots that are all busy.
  server.maxConnections = opts.maxConnections * 2;
  return server;
}

class ClientConn implements ClientSide {
  private readonly req: MessageParser;
  private state = State.Head;
  private headStarted = false;
  /** The request's own keep-alive verdict (HTTP/1.1 unless Connection: close). */
  private keepAlive = false;
  /** Pipelined bytes of the next request, held while a response is in flight. */
  private pending: Buffer | null = null;
  private exchange: Exchange | null = null;
  /** Withdraws a pending gate check. */
  private cancelGate: (() => void) | null = null;
  private timer: NodeJS.Timeout;
  /** Null for a client refused because every slot has an exchange in progress. */
  private readonly slot: Slot | null;

  constructor(readonly sock: net.Socket, private readonly opts: ServerOptions, private readonly admission: Admission, slots: Slots) {
    this.req = new MessageParser('REQUEST', opts.relay.maxHeadBytes);
    sock.setNoDelay(true);
    sock.on('data', this.onData).on('end', this.onEnd).on('error', noop).on('close', this.onClose);
    this.timer = setTimeout(this.onTimeout, opts.headTimeoutMs);
    // Evicted only while idle, reading a head, or lingering: everything
    // written is already out, so destroy() sends a FIN after it, never a RST
    // (flowing mode has read all input) and never a cut response.
    this.slot = slots.claim(() => this.teardown());
    if (!this.slot) this.reject('too_many_connections');
  }

  private readonly onData = (chunk: Buffer): void => this.consumeSafely(chunk);

  private consumeSafely(chunk: Buffer): void {
    try {
      this.consume(chunk);
    } catch (err) {
      // A bug must cost one connection, never the process.
      this.opts.log(`internal error on a client connection: ${(err as Error).name}`);
      // A reset: response bytes may have gone out, and a FIN could make them look complete.
      this.reset();
    }
  }

  private consume(chunk: Buffer): void {
    let off = 0;
    for (;;) {
      switch (this.state) {
        case State.Head: {
          if (!this.headStarted) {
            // The head deadline runs from its first byte, whatever timer ran before.
            this.headStarted = true;
            this.arm(this.opts.headTimeoutMs, this.onTimeout);
            if (this.sock.writableLength === 0) this.slot?.reading();
          }
          const step = this.req.execute(chunk, off);
          if (step.ev === Ev.More) return;
          if (step.ev !== Ev.Head) return this.reject(this.headError());
          clearTimeout(this.timer);
          const next = this.startExchange();
          if (next === 'wait') return this.hold(chunk.subarray(step.pos));
          if (next === 'done') return;
          off = step.pos;
          break;
        }
        case State.Body: {
          const exchange = this.exchange!;
          const step = this.req.execute(chunk, off);
          if (step.ev === Ev.More) return exchange.sendBody(off === 0 ? chunk : chunk.subarray(off));
          // A broken chunked body, or trailers past the cap: what came before
          // goes upstream, and the upstream never sees this request complete.
          if (step.ev !== Ev.End) return exchange.failRequest(this.req.tooLarge ? 'trailers_too_large' : 'bad_request', chunk.subarray(off, step.pos));
          exchange.sendBody(chunk.subarray(off, step.pos));
          exchange.endRequest();
          this.state = State.Await;
          if (step.pos < chunk.length) this.hold(chunk.subarray(step.pos));
          return;
        }
        case State.Gated:
        case State.Await:
          return this.hold(chunk.subarray(off));
        case State.Closing:
          return;
      }
    }
  }

  private headError(): ErrorKind {
    if (this.req.tooLarge) return 'head_too_large';
    // "PRI * HTTP/2.0" and other versions llhttp will not read.
    if (this.req.errorName === 'HPE_PAUSED_H2_UPGRADE' || this.req.versionRefused) return 'version';
    return 'bad_request';
  }

  /** Judges the head just parsed: the body follows, the gate's verdict is awaited, or the connection is done with. */
  private startExchange(): 'go' | 'wait' | 'done' {
    const head = splitRequestHead(this.req.head());
    if (!head) {
      this.reject('bad_request');
      return 'done';
    }
    const verdict = admit(head, this.admission);
    if (verdict.kind === 'reject') {
      this.reject(verdict.error);
      return 'done';
    }
    if (verdict.kind === 'shutdown') {
      this.state = State.Closing;
      this.sock.end(SHUTDOWN_OK, () => this.opts.onShutdown());
      return 'done';
    }
    this.keepAlive = this.req.keepAlive;
    const gate = this.opts.gate;
    if (!gate) {
      this.open(head);
      return 'go';
    }
    this.state = State.Gated;
    // Admitted and waiting only for the spend guard's verdict: work in
    // progress, not a slowloris head, so its slot is never taken.
    this.slot?.busy();
    let later = false;
    let next = 'wait' as 'go' | 'wait' | 'done';
    const cancel = gate.check((refusal) => {
      this.cancelGate = null;
      next = refusal ? 'done' : 'go';
      if (refusal) return this.reject(refusal.kind, '', refusal.detail);
      if (!later) return this.open(head);
      // Decided after this read: what was held since is the request's body.
      const held = this.pending;
      this.pending = null;
      this.sock.resume();
      this.open(head);
      if (held) this.consumeSafely(held);
    });
    later = true;
    if (next === 'wait') this.cancelGate = cancel;
    return next;
  }

  private open(head: RequestHead): void {
    this.state = State.Body;
    this.slot?.busy();
    const idempotent = head.fields.some((f) => nameIs(head, f, 'idempotency-key'));
    this.exchange = new Exchange(this, this.opts.relay, forwardedFields(head), idempotent, observe(this.opts.observers ?? [], head));
  }

  private hold(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.pending = this.pending ? Buffer.concat([this.pending, bytes]) : bytes;
    this.sock.pause();
  }

  exchangeDone(reusable: boolean): void {
    this.exchange = null;
    if (!reusable || !this.keepAlive || this.state !== State.Await) return this.close();
    this.state = State.Head;
    this.headStarted = false;
    this.arm(this.opts.idleTimeoutMs, this.onTimeout);
    this.queueWhenFlushed();
    const next = this.pending;
    this.pending = null;
    this.sock.resume();
    if (next) this.consumeSafely(next);
  }

  /**
   * Between requests the slot can be taken, but only once the response has
   * left for the kernel: closing then still delivers all of it. A zero-length
   * write completes after every earlier one.
   */
  private queueWhenFlushed(): void {
    const queue = (): void => {
      if (this.state !== State.Head || this.sock.writableLength > 0) return;
      if (this.headStarted) this.slot?.reading();
      else this.slot?.idle();
    };
    if (this.sock.writableLength === 0) queue();
    else this.sock.write(EMPTY, queue);
  }

  exchangeFailed(kind: ErrorKind, started: boolean, cause?: string): void {
    if (ERRORS[kind][0] >= 500) this.opts.log(`upstream request failed: ${kind}${cause ? ` (${cause})` : ''}`);
    // Once response bytes have gone out, no status can follow. A FIN would
    // make a truncated response look complete when its body is delimited by
    // the close, so the client gets a reset (RST) once what was relayed is
    // flushed; Go's ReverseProxy aborts the same way (http.ErrAbortHandler).
    if (started) this.reset();
    else this.reject(kind, cause);
  }

  /**
   * Ends the connection with a RST after the bytes already written reach the
   * kernel (a zero-length write completes after every earlier one). A client
   * that stopped reading cannot hold it: past the idle timeout, reset anyway.
   */
  private reset(): void {
    this.stop();
    const sock = this.sock;
    if (sock.destroyed) return;
    const rst = (): void => {
      if (!sock.destroyed) sock.resetAndDestroy();
    };
    sock.setTimeout(this.opts.idleTimeoutMs, rst);
    sock.write(EMPTY, rst);
  }

  /** One error response, then close; the only path by which errors reach a client. */
  private reject(kind: ErrorKind, cause?: string, detail?: string): void {
    if (this.state !== State.Closing) this.close(errorResponse(kind, cause, detail));
  }

  /**
   * Ends the connection once what was written is flushed. The rest of the
   * client's input is read and dropped: left unread, it would turn close()
   * into a RST that can destroy the response, and a paused socket never
   * sees the client's FIN. Both waits are bounded, so the connection slot
   * always comes back.
   */
  private close(last?: Buffer): void {
    const destroy = (): void => void this.sock.destroy();
    this.stop();
    // Socket inactivity, which reads and write progress both reset: a client
    // still reading the response slowly keeps it, one that stopped loses it.
    this.sock.setTimeout(this.opts.idleTimeoutMs, destroy);
    const linger = (): void => {
      this.sock.setTimeout(LINGER_MS);
      this.arm(LINGER_MAX_MS, destroy);
      // The response is out and the FIN sent: the slot can go to a new client.
      this.slot?.idle();
    };
    if (last) this.sock.end(last, linger);
    else this.sock.end(linger);
    this.sock.resume();
  }

  /** One timer per connection; its kind is whatever was armed last. */
  private arm(ms: number, fire: () => void): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(fire, ms);
  }

  private readonly onTimeout = (): void => {
    if (this.state !== State.Head) return;
    // A connection that never started a request is closed quietly; a head
    // still arriving at the deadline (slowloris) is told why.
    if (this.headStarted) this.reject('head_timeout');
    else this.teardown();
  };

  // A FIN while a request is in flight means the client is gone: HTTP/1.1
  // clients do not half-close, and Node's http server and nginx read it the
  // same way. The upstream stream is cut at once so it stops costing tokens.
  private readonly onEnd = (): void => {
    if (this.state === State.Closing) return;
    this.teardown();
  };

  private teardown(): void {
    this.stop();
    this.sock.destroy();
  }

  /** Every way out of a connection starts here: no request in flight, nothing held, no timer. */
  private stop(): void {
    this.state = State.Closing;
    this.cancelGate?.();
    this.cancelGate = null;
    this.slot?.busy();
    this.exchange?.abort();
    this.exchange = null;
    this.pending = null;
    clearTimeout(this.timer);
  }

  private readonly onClose = (): void => {
    this.stop();
    this.slot?.release();
    this.req.destroy();
  };
}

function noop(): void {}

const EMPTY = Buffer.alloc(0);
