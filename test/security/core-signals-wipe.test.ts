// Issue 19 item 4: every signal whose default action dumps core and that can
// be sent with kill(2) finds the key already zeroed: the proxy wipes, then
// dies by the same signal. A core cannot be read here, so the test reads the
// proxy's whole memory (/proc/<pid>/mem) at the moment it dies, as
// one-copy-in-memory.test.ts does for SIGTERM.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { rawExchange, request, responsesComplete, startProxy, startUpstream } from '../support/harness.js';
import { distinctiveKey, keyNeedle } from '../support/keys.js';
import { countInProcessMemory, pausedAtExit, startProbe } from '../support/memory.js';

const readable = ((): string | false => {
  try {
    fs.accessSync(`/proc/${process.pid}/mem`, fs.constants.R_OK);
    return false;
  } catch {
    return '/proc/<pid>/mem is not readable here';
  }
})();

for (const signal of ['SIGABRT', 'SIGTRAP', 'SIGSYS', 'SIGXCPU'] as const) {
  test(`${signal}: the key is zeroed before the process dies by it`, { skip: readable }, async () => {
    const key = distinctiveKey(signal.toLowerCase());
    const up = await startUpstream();
    const p = await startProbe('cli', key, ['--upstream-url', up.url]);
    try {
      assert.equal(countInProcessMemory(p.proc.pid!, keyNeedle(key)).count, 1, 'the needle finds the live key');
      const paused = pausedAtExit(p);
      p.proc.kill(signal);
      const release = await paused;
      const atDeath = countInProcessMemory(p.proc.pid!, keyNeedle(key)).count;
      release();
      assert.equal(atDeath, 0, `the ${signal} handler zeroes the key`);
      assert.equal(await p.exited, signal);
    } finally {
      p.proc.kill('SIGKILL');
      await up.close();
    }
  });
}

// Node sets SIGXFSZ to SIG_IGN at start (src/node.cc): sent with kill, it
// neither ends the proxy nor dumps core, so there is nothing to wipe for.
test('SIGXFSZ is ignored: the proxy keeps serving', async () => {
  const up = await startUpstream();
  const proxy = await startProxy(['--upstream-url', up.url]);
  try {
    proxy.proc.kill('SIGXFSZ');
    const res = await rawExchange(proxy.port, [request()], { until: responsesComplete });
    assert.equal(res.status, 200);
    assert.equal(proxy.proc.exitCode, null);
    assert.equal(proxy.proc.signalCode, null);
  } finally {
    await proxy.stop();
    await up.close();
  }
});
