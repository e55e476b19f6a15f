// Which connection gives way when the slots run out (src/relay/slots.ts),
// with a clock the test turns by hand. The socket-level behaviour (FIN, 503,
// 2,000 idle sockets) is in connection-slots.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GRACE_MS, Slots, type Slot } from '../src/relay/slots.js';

function setup(cap: number): { slots: Slots; evicted: string[]; claim: (name: string) => Slot | null; tick: (ms: number) => void } {
  let clock = 1000;
  const slots = new Slots(cap, () => clock);
  const evicted: string[] = [];
  return {
    slots,
    evicted,
    claim: (name) => slots.claim(() => evicted.push(name)),
    tick: (ms) => void (clock += ms),
  };
}

test('the longest idle goes first; a busy slot never goes', () => {
  const { slots, evicted, claim, tick } = setup(3);
  const a = claim('a')!;
  tick(1);
  claim('b');
  tick(1);
  claim('c');
  a.busy();
  assert.ok(claim('d'));
  assert.deepEqual(evicted, ['b']);
  assert.equal(slots.used, 3);
  // a is busy; c is the oldest idle now. When it finishes, a queues behind d.
  tick(1);
  a.idle();
  assert.ok(claim('e'));
  assert.deepEqual(evicted, ['b', 'c']);
});

test('a head past its window goes before a younger idle one; inside it, after any idle one', () => {
  const { evicted, claim, tick } = setup(2);
  const slow = claim('slowloris')!;
  slow.reading();
  tick(10);
  claim('idle');
  // Both inside the window: the idle one gives way, the head keeps arriving.
  assert.ok(claim('new1'));
  assert.deepEqual(evicted, ['idle']);
  tick(GRACE_MS);
  // Past its window, the dribbling head is the oldest and goes first.
  assert.ok(claim('new2'));
  assert.deepEqual(evicted, ['idle', 'slowloris']);
});

test('with no idle slot, the oldest head in progress gives way before anyone is refused', () => {
  const { evicted, claim, tick } = setup(2);
  const a = claim('a')!;
  a.busy();
  const h = claim('h')!;
  h.reading();
  tick(1);
  assert.ok(claim('x'));
  assert.deepEqual(evicted, ['h']);
});

test('a released slot is free again and never evicted', () => {
  const { slots, evicted, claim } = setup(1);
  const a = claim('a')!;
  a.busy();
  assert.equal(claim('refused'), null);
  a.release();
  a.release();
  a.idle();
  assert.equal(slots.used, 0);
  assert.ok(claim('b'));
  assert.deepEqual(evicted, []);
});
