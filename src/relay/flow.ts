// How bytes move between an exchange's two sockets: back-pressure both ways
// (the fast side stops reading until the slow side drains), and when writes
// to the client are held back so that several leave in one writev.
import type net from 'node:net';

/**
 * A read at least this large means more bytes are queued behind it in the
 * same poll phase: it is a full TLS record (RFC 8446 §5.1: at most 2^14
 * bytes of plaintext, which Node hands over one record per read), or a plain
 * read that took 16 KiB or more (transport/connect.ts). SSE events are far
 * smaller and are never held.
 */
export const BURST_READ = 16 * 1024;

export class Flow {
  private up: net.Socket | null = null;
  private upPaused = false;
  private clientPaused = false;
  /** The end of the poll phase, where a held burst is written at the latest. */
  private flushAt: NodeJS.Immediate | null = null;

  constructor(private readonly client: net.Socket) {}

  /** Standing drain listeners: a bulk body fills the write buffer on almost every chunk, and a once() per chunk cost more than the flags they set. */
  attach(up: net.Socket): void {
    this.up = up;
    this.upPaused = this.clientPaused = false;
    up.on('drain', this.resumeClient);
    this.client.on('drain', this.resumeUp);
  }

  detach(up: net.Socket): void {
    up.removeListener('drain', this.resumeClient);
    this.client.removeListener('drain', this.resumeUp);
    this.up = null;
  }

  /** After a write upstream: `ok` is write()'s answer, false when its buffer is full. */
  sentUp(ok: boolean): void {
    if (ok) return;
    this.clientPaused = true;
    this.client.pause();
  }

  /** A response read begins; a burst read holds the client's writes (see readDone). */
  readStart(chunk: Buffer): void {
    if (chunk.length >= BURST_READ) this.hold();
  }

  /** Writes to the client wait until readDone() or release(): a head and the bytes after it leave in one writev. */
  hold(): void {
    if (!this.client.writableCorked) this.client.cork();
  }

  /**
   * A response read was handled. Node delivers a TLS read one record per
   * call, so a bulk body arrives as runs of 16 KiB reads in one poll phase,
   * each of which would otherwise cost a write and a wake-up of the client:
   * after a burst read the held writes leave with the next smaller read or
   * at the end of this poll phase, whichever is first. Any other read
   * releases them now, so an event is never held. `more`: the exchange
   * expects further reads.
   */
  readDone(chunk: Buffer, more: boolean): void {
    const client = this.client;
    if (more && chunk.length >= BURST_READ && client.writableCorked && client.writableLength < client.writableHighWaterMark) this.flushAt ??= setImmediate(this.release);
    else this.release();
    if (more && this.up && client.writableLength >= client.writableHighWaterMark) {
      this.upPaused = true;
      this.up.pause();
    }
  }

  /** Held writes leave now; before an error reset, so that it cannot overtake them. */
  readonly release = (): void => {
    if (this.flushAt) clearImmediate(this.flushAt);
    this.flushAt = null;
    if (this.client.writableCorked) this.client.uncork();
  };

  private readonly resumeClient = (): void => {
    if (!this.clientPaused) return;
    this.clientPaused = false;
    this.client.resume();
  };

  private readonly resumeUp = (): void => {
    if (!this.upPaused) return;
    this.upPaused = false;
    this.up?.resume();
  };
}
