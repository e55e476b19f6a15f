// Connection slots (--max-connections). Past the cap, a new connection takes
// the slot of an idle one, as nginx reclaims idle keep-alive connections when
// worker_connections runs out: a process that holds many idle sockets can
// then never lock other clients out. Only when every slot carries work is a
// new client refused (accept.ts answers it 503).
//
// Each connection tells its slot what it is doing, and the slot sits in one
// of two queues, each ordered by when it entered, so choosing whom to evict
// looks at the two queue fronts only:
// - idle: nothing in flight and every byte written out, and no byte of a
//   next head yet (a new connection, a kept-alive one between requests), or
//   lingering after its last response;
// - heads: a request head has started to arrive and is not complete.
// A slot in neither queue has an exchange (or its response) in progress and
// is never taken.

/**
 * The first-byte window: how long a slot that entered either queue is
 * preferred to keep it over one that has been there longer. A client sends
 * its head right after connecting (or after reading the last response), in
 * one write that takes milliseconds on loopback; 2 s leaves room for a
 * loaded machine and for the client's own scheduling. Measured from accept
 * or the last response, and for a head from its first byte, so a connection
 * dribbling its head (slowloris) is protected no longer than an idle one.
 */
export const GRACE_MS = 2000;

class Queue {
  first: Slot | null = null;
  last: Slot | null = null;

  push(s: Slot): void {
    s.prev = this.last;
    s.next = null;
    if (this.last) this.last.next = s;
    else this.first = s;
    this.last = s;
    s.queue = this;
  }

  remove(s: Slot): void {
    if (s.prev) s.prev.next = s.next;
    else this.first = s.next;
    if (s.next) s.next.prev = s.prev;
    else this.last = s.prev;
    s.prev = s.next = null;
    s.queue = null;
  }
}

export class Slot {
  prev: Slot | null = null;
  next: Slot | null = null;
  queue: Queue | null = null;
  /** When it entered its queue. */
  since = 0;
  private held = true;

  constructor(
    private readonly slots: Slots,
    /** Closes the connection at once; called only while the slot is idle or reading a head. */
    readonly evict: () => void,
  ) {}

  /** Nothing in flight and nothing left to write: the first to go when slots run out. */
  idle(): void {
    this.enter(this.slots.idle);
  }

  /** A head has started to arrive: taken after the idle ones while it is in its window. */
  reading(): void {
    this.enter(this.slots.heads);
  }

  /** An exchange or its response is in progress: never taken. */
  busy(): void {
    this.queue?.remove(this);
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    this.busy();
    this.slots.used--;
  }

  private enter(q: Queue): void {
    if (!this.held || this.queue === q) return;
    this.queue?.remove(this);
    this.since = this.slots.now();
    q.push(this);
  }
}

export class Slots {
  used = 0;
  readonly idle = new Queue();
  readonly heads = new Queue();

  constructor(
    private readonly cap: number,
    /** A monotonic clock in ms; a test passes its own. */
    readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * A slot for a new connection, evicting one if the cap is reached: the
   * longest waiting of either queue once past its window; inside the window,
   * an idle connection before a head in progress. Null when every slot has
   * an exchange in progress.
   */
  claim(evict: () => void): Slot | null {
    if (this.used >= this.cap) {
      const victim = this.victim();
      if (!victim) return null;
      victim.release();
      victim.evict();
    }
    this.used++;
    const slot = new Slot(this, evict);
    slot.idle();
    return slot;
  }

  private victim(): Slot | null {
    const idle = this.idle.first;
    const head = this.heads.first;
    if (!idle || !head) return idle ?? head;
    const oldest = head.since < idle.since ? head : idle;
    return this.now() - oldest.since >= GRACE_MS ? oldest : idle;
  }
}
