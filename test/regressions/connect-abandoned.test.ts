// Issue 10, defect 5: a client that leaves while the upstream connection is
// still being made (here: a TLS handshake the upstream never answers) ends
// that connection at once. abort() used to destroy only an attached
// upstream, so each left its socket open until --connect-timeout.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request, startProxy, waitFor, type Proxy } from '../support/harness.js';
import { openFds } from '../support/outcome.js';

const CLIENTS = 100;

describe('clients that leave during the upstream connect', () => {
  let stall: net.Server;
  const open = new Set<net.Socket>();
  let accepted = 0;
  let proxy: Proxy;
  before(async () => {
    // Accepts TCP and never says a word: the TLS handshake stalls. It reads
    // (and drops) what it gets, so that it sees the proxy's FIN.
    stall = net.createServer((sock) => {
      accepted++;
      open.add(sock);
      sock.on('error', () => {});
      sock.resume();
      sock.on('close', () => open.delete(sock));
    });
    await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r));
    const port = (stall.address() as net.AddressInfo).port;
    proxy = await startProxy(['--upstream-url', `https://127.0.0.1:${port}/v1/responses`, '--connect-timeout', '600']);
  });
  after(async () => {
    await proxy.stop();
    for (const s of open) s.destroy();
    await new Promise((r) => stall.close(r));
  });

  test(`${CLIENTS} clients send and leave mid-handshake: every upstream socket closes long before --connect-timeout`, async () => {
    const fdsBefore = openFds(proxy.proc.pid!);
    const clients: net.Socket[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      const c = net.connect(proxy.port, '127.0.0.1');
      c.on('error', () => {});
      c.write(request());
      clients.push(c);
    }
    await waitFor('every handshake to start', () => accepted >= CLIENTS, 20000);
    for (const c of clients) c.destroy();
    // --connect-timeout is 600 s: only abort() can close these in 20 s.
    await waitFor('the upstream sockets to close', () => open.size === 0, 20000).catch(() => {});
    assert.equal(open.size, 0, `${open.size} of ${CLIENTS} upstream connections still open`);
    const fdsAfter = await waitFor('the proxy fds to come back', () => {
      const n = openFds(proxy.proc.pid!);
      return n <= fdsBefore ? n : undefined;
    }, 20000).catch(() => openFds(proxy.proc.pid!));
    assert.ok(fdsAfter <= fdsBefore, `open fds: ${fdsBefore} before, ${fdsAfter} after`);
  });
});
