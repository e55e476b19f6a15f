// Issue 5, Node's own doors: SIGUSR1 starts Node's inspector (doc/api/process.md,
// "Signal events"), which any process of the same user can send. The proxy
// installs a SIGUSR1 listener first thing (src/harden.ts), so the signal is
// logged and no socket starts listening. A control run shows that the same
// check sees the inspector start in a plain Node process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';
import { rawExchange, request, responsesComplete, startProxy, startUpstream, waitFor } from '../support/harness.js';
import { listeningSockets, portsListenedBy } from '../support/memory.js';

const procNet = fs.existsSync('/proc/net/tcp') ? false : '/proc/net/tcp is not available';

test('control: SIGUSR1 opens a listening inspector socket in plain Node', { skip: procNet }, async () => {
  // --inspect-port=0: if the inspector starts, it takes a free port, not 9229.
  const child = spawn(process.execPath, ['--inspect-port=0', '-e', 'setInterval(() => {}, 1000)'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  try {
    await waitFor('plain node to start', () => fs.existsSync(`/proc/${child.pid}/fd`));
    assert.deepEqual(portsListenedBy(child.pid!), []);
    child.kill('SIGUSR1');
    await waitFor('the inspector to announce itself', () => /Debugger listening on ws:\/\/127\.0\.0\.1:\d+\//.test(err));
    const port = Number(/127\.0\.0\.1:(\d+)\//.exec(err)![1]);
    assert.deepEqual(portsListenedBy(child.pid!), [port], 'the /proc/net/tcp check sees the inspector');
  } finally {
    child.kill('SIGKILL');
  }
});

test('SIGUSR1 to the proxy: ignored, nothing new listens, it keeps serving', { skip: procNet }, async () => {
  const up = await startUpstream();
  const proxy = await startProxy(['--upstream-url', up.url]);
  try {
    const pid = proxy.proc.pid!;
    assert.deepEqual(portsListenedBy(pid), [proxy.port]);
    const before = new Set(listeningSockets().values());
    for (let i = 0; i < 3; i++) {
      proxy.proc.kill('SIGUSR1');
      await waitFor(`SIGUSR1 #${i + 1} to be logged`, () => proxy.stderr().split('ignored SIGUSR1').length - 1 > i);
    }
    // The log line is written in the same handler that replaced Node's: by
    // now Node's inspector would have had its chance to start.
    assert.doesNotMatch(proxy.stderr(), /Debugger listening/);
    assert.deepEqual(portsListenedBy(pid), [proxy.port], 'the proxy listens on its own port only');
    if (!before.has(9229)) assert.ok(![...listeningSockets().values()].includes(9229), 'nothing listens on 9229');
    const r = await rawExchange(proxy.port, [request()], { until: (d) => responsesComplete(d) });
    assert.equal(r.status, 200);
    assert.equal(up.received.length, 1);
  } finally {
    await proxy.stop();
    await up.close();
  }
});
