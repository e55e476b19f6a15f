// Issue 5, stray secrets: a key left in the proxy's own environment is
// removed from process.env with a warning that /proc/<pid>/environ still
// shows it, and that the starter should use `env -u`. The warning never
// prints the value, and the key used is still the one from stdin.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KEY, rawExchange, request, responsesComplete, startProxy, startUpstream } from '../support/harness.js';

test('OPENAI_API_KEY and AZURE_OPENAI_API_KEY in the environment: warned and removed', async () => {
  const envOpenai = 'sk-FromTheEnvironment-OPENAI-1a2b3c';
  const envAzure = 'AzureFromTheEnvironment-4d5e6f';
  const up = await startUpstream();
  const proxy = await startProxy(['--upstream-url', up.url], {
    env: { PATH: process.env.PATH ?? '', OPENAI_API_KEY: envOpenai, AZURE_OPENAI_API_KEY: envAzure, LD_BIND_NOW: '1' },
  });
  try {
    const r = await rawExchange(proxy.port, [request()], { until: (d) => responsesComplete(d) });
    assert.equal(r.status, 200);
    const err = proxy.stderr();
    for (const name of ['OPENAI_API_KEY', 'AZURE_OPENAI_API_KEY']) {
      const line = err.split('\n').find((l) => l.includes(`warning: ${name} `));
      assert.ok(line, `no warning for ${name}: ${err}`);
      assert.match(line, new RegExp(`/proc/${proxy.proc.pid}/environ`));
      assert.match(line, new RegExp(`env -u ${name}`));
    }
    assert.match(err, /removed LD_BIND_NOW/);
    assert.equal(err.includes(envOpenai) || err.includes(envAzure), false, 'a warning printed the value');
    const head = up.received[0]!.head.toString('latin1');
    assert.match(head, new RegExp(`\r\nAuthorization: Bearer ${KEY}\r\n`), 'the stdin key is the one used');
  } finally {
    await proxy.stop();
    await up.close();
  }
});
