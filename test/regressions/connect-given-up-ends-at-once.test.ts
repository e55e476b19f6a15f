// Hostile review of the merged relay (issues 8-12): a connection attempt
// the relay gives up on must end at once, not at --connect-timeout, so the
// exchange it holds (its queued request bytes) is freed. Here the attempt is
// a TLS handshake to a server that never answers, given up on by destroying
// its socket.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Connector } from '../../src/transport/connect.js';
import { NO_EGRESS } from '../../src/transport/egress.js';
import { Trust } from '../../src/transport/trust.js';
import { parseUpstream } from '../../src/transport/upstream.js';

describe('a connection attempt given up on', () => {
  let silent: net.Server;
  let port = 0;
  const held: net.Socket[] = [];
  before(async () => {
    // Accepts and never answers: a TLS handshake to it stalls.
    silent = net.createServer((s) => {
      held.push(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    port = (silent.address() as net.AddressInfo).port;
  });
  after(async () => {
    for (const s of held) s.destroy();
    await new Promise((r) => silent.close(r));
  });

  test('https: destroying the socket mid-handshake ends the attempt at once, not at its 600 s deadline', async () => {
    const u = parseUpstream(`https://127.0.0.1:${port}/v1/responses`);
    let sock: net.Socket | null = null;
    const ended = new Promise<NodeJS.ErrnoException | null>((resolve) => {
      sock = new Connector(NO_EGRESS, new Trust()).connect(u, 600_000, (err) => resolve(err));
    });
    // Connected to the silent server: the TLS handshake now waits forever.
    await new Promise<void>((r) => sock!.once('connect', () => r()));
    sock!.destroy();
    const bounded = new Promise<'deadline'>((r) => setTimeout(() => r('deadline'), 20_000).unref());
    const err = await Promise.race([ended, bounded]);
    assert.notEqual(err, 'deadline', 'the attempt did not end when its socket was destroyed');
    assert.ok(err, 'a handshake cut short is an error');
  });
});
