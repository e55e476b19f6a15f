// Issue 5, key custody: the key is never a JS string. After the proxy has
// relayed allowed, denied, malformed and upstream-down requests, a V8 heap
// snapshot of it must hold no string containing the key, nor (issue 10) the
// client's own Authorization value, checked while a kept-alive connection
// that carried it is still open. A control run in the same test stringifies
// a key on purpose and must be caught, so this check is able to fail.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { REFUSED_PORT, request, responsesComplete, startUpstream, tmpDir } from '../support/harness.js';
import { AUTH_MODES, distinctiveKey, driveClientCases, keyOfLength } from '../support/keys.js';
import { countIn, startProbe, type Probe } from '../support/memory.js';

async function snapshotOf(p: Probe): Promise<Buffer> {
  const file = path.join(tmpDir(), 'proxy.heapsnapshot');
  const answer = await p.ask({ cmd: 'snapshot', file });
  assert.equal(answer['file'], file);
  const bytes = fs.readFileSync(file);
  fs.rmSync(file);
  return bytes;
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

// Issue 11's key lengths, each with `.` and `=` (keyOfLength), and issue 12's
// api-key line with an Azure-length key.
const CASES = [...[32, 164, 1017, 16384].map((length) => ({ length, mode: AUTH_MODES[0]! })), { length: 32, mode: AUTH_MODES[1]! }];
for (const { length, mode } of CASES) test(`${length}-byte key, ${mode.name}: no string in the proxy heap holds it or the client's Authorization; a stringified key is found`, async () => {
  const key = keyOfLength(length);
  const needle = Buffer.from(key, 'latin1');
  // V8 writes at most the first 1,024 characters of a string into a snapshot
  // (StringsStorage::GetName, kMaxNameSize): look for the key's first and
  // last 64 bytes, either of which a string holding the key shows.
  const parts = [needle.subarray(0, 64), needle.subarray(-64)];
  const found = (snap: Buffer): number => parts.reduce((n, p) => n + countIn(snap, p), 0);
  // Every length relays; the upstream-down path and the control (short and
  // truncated long strings) run where they add something, to keep CI short.
  const withDown = length === 32;
  const withControl = mode === AUTH_MODES[0] && (length === 32 || length === 16384);
  const clientSecret = distinctiveKey('client');
  const clientNeedle = Buffer.from(clientSecret, 'latin1');
  const up = await startUpstream();
  const proxy = await startProbe('cli', key, ['--upstream-url', up.url, ...mode.args]);
  const down = withDown ? await startProbe('cli', key, ['--upstream-url', `http://127.0.0.1:${REFUSED_PORT}/v1/responses`, ...mode.args]) : null;
  const control = withControl ? await startProbe('control', key, []) : null;
  try {
    await driveClientCases(proxy.port, clientSecret);
    const held = await heldConnection(proxy.port, clientSecret);
    if (down) {
      const replies = await driveClientCases(down.port, clientSecret);
      assert.match(replies[0]!.toString('latin1'), /^HTTP\/1\.1 502 /, 'the upstream-down case was exercised');
    }
    assert.ok(up.received.some((r) => r.head.includes(needle)), 'the upstream got the key');

    for (const [name, p] of [['relaying proxy', proxy], ['upstream-down proxy', down]] as const) {
      if (!p) continue;
      const snap = await snapshotOf(p);
      assert.ok(snap.length > 1 << 20, `${name}: snapshot is ${snap.length} bytes`);
      assert.equal(found(snap), 0, `${name}: a heap string holds the key`);
      assert.equal(countIn(snap, clientNeedle), 0, `${name}: a heap string holds the client's Authorization value`);
    }
    held.destroy();
    // The control read the key with the same key.ts and then called
    // toString() on it: that must show up, or the search above proves nothing.
    if (control) {
      assert.equal((await control.ask({ cmd: 'ready' }))['leaked'], true);
      assert.ok(found(await snapshotOf(control)) >= 1, 'the control leak was not found: the search is blind');
    }
  } finally {
    for (const p of [proxy, down, control]) p?.proc.kill('SIGKILL');
    await up.close();
  }
});
