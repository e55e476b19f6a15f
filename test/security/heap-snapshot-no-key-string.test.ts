// Issue 5, key custody: the key is never a JS string. After the proxy has
// relayed allowed, denied, malformed and upstream-down requests, a V8 heap
// snapshot of it must hold no string containing the key. A control run in
// the same test stringifies a key on purpose and must be caught, so this
// check is able to fail. Nor may any string hold the value of the client's
// own Authorization header (issue 10): llhttp-wasm's JS wrapper kept every
// header value as a string for as long as the connection's parser lived, so
// a kept-alive connection whose request carried one is open at the snapshot.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { request, responsesComplete, startUpstream, tmpDir } from '../support/harness.js';
import { AUTH_MODES, countIn, distinctiveKey, driveClientCases, startProbe, type Probe } from './support/tools.js';

async function snapshotOf(p: Probe): Promise<Buffer> {
  const file = path.join(tmpDir(), 'proxy.heapsnapshot');
  const answer = await p.ask({ cmd: 'snapshot', file });
  assert.equal(answer['file'], file);
  const bytes = fs.readFileSync(file);
  fs.rmSync(file);
  return bytes;
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** A kept-alive connection that sent one request with the client's own Authorization and got its answer. */
async function heldConnection(port: number, clientSecret: string): Promise<net.Socket> {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => {});
  let data = Buffer.alloc(0);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer on the held connection')), 10000);
    sock.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      if (responsesComplete(data)) {
        clearTimeout(timer);
        resolve();
      }
    });
    sock.write(request('{"model":"m"}', `Authorization: Bearer ${clientSecret}\r\n`));
  });
  assert.match(data.toString('latin1'), /^HTTP\/1\.1 200 /);
  return sock;
}

for (const mode of AUTH_MODES) test(`no string in the proxy heap holds the key or the client's Authorization value; a stringified key is found (${mode.name})`, async () => {
  const key = distinctiveKey('heap');
  const needle = Buffer.from(key, 'latin1');
  const clientSecret = distinctiveKey('client');
  const clientNeedle = Buffer.from(clientSecret, 'latin1');
  const up = await startUpstream();
  const proxy = await startProbe('cli', key, ['--upstream-url', up.url, ...mode.args]);
  const down = await startProbe('cli', key, ['--upstream-url', `http://127.0.0.1:${await closedPort()}/v1/responses`, ...mode.args]);
  const control = await startProbe('control', key, []);
  try {
    await driveClientCases(proxy.port, clientSecret);
    const replies = await driveClientCases(down.port, clientSecret);
    const held = await heldConnection(proxy.port, clientSecret);
    assert.match(replies[0]!.toString('latin1'), /^HTTP\/1\.1 502 /, 'the upstream-down case was exercised');
    assert.ok(up.received.some((r) => r.head.includes(needle)), 'the upstream got the key');

    for (const [name, p] of [['relaying proxy', proxy], ['upstream-down proxy', down]] as const) {
      const snap = await snapshotOf(p);
      assert.ok(snap.length > 1 << 20, `${name}: snapshot is ${snap.length} bytes`);
      assert.equal(countIn(snap, needle), 0, `${name}: a heap string holds the key`);
      assert.equal(countIn(snap, clientNeedle), 0, `${name}: a heap string holds the client's Authorization value`);
    }
    held.destroy();
    // The control read the key with the same key.ts and then called
    // toString() on it: that must show up, or the search above proves nothing.
    assert.equal((await control.ask({ cmd: 'ready' }))['leaked'], true);
    assert.ok(countIn(await snapshotOf(control), needle) >= 1, 'the control leak was not found: the search is blind');
  } finally {
    for (const p of [proxy, down, control]) p.proc.kill('SIGKILL');
    await up.close();
  }
});
