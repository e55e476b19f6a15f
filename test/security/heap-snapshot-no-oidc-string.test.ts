// Issue 11, OIDC custody: the GitHub request token, the GitHub JWT and the
// OpenAI access token live only in Buffers. After start-up, a background
// renewal and relayed requests, a V8 heap snapshot of the proxy must hold
// none of them as a string. A non-secret value of the same exchange (the
// identity provider id, a JS string by design) must be found, so the search
// can see strings at all; heap-snapshot-no-key-string.test.ts shows that a
// stringified secret is found too.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { b, rawExchange, responsesComplete, startUpstream, tmpDir, waitFor } from '../support/harness.js';
import { fakeRequestToken, startFakes } from '../support/oidc-fakes.js';
import { countIn, startProbe } from '../support/memory.js';

test('no string in the proxy heap holds the request token, a GitHub JWT or an access token', async () => {
  const f = await startFakes();
  f.lifetime = 2;
  const token = fakeRequestToken();
  const up = await startUpstream();
  const proxy = await startProbe('cli', token, f.args(['--upstream-url', up.url]), f.env());
  const ask = async (): Promise<void> => {
    const body = '{"model":"m","input":"hi"}';
    const req = b(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const r = await rawExchange(proxy.port, [req], { until: (d) => responsesComplete(d) });
    assert.equal(r.status, 200);
  };
  try {
    // Background renewal runs only while requests come in (issue 19).
    await ask();
    await waitFor('a background renewal', () => f.accessTokens.length >= 2, 15000);
    for (let i = 0; i < 5; i++) await ask();
    assert.ok(up.received.some((r) => f.accessTokens.some((t) => r.head.includes(b(t)))), 'the upstream got an access token');
    const file = path.join(tmpDir(), 'proxy.heapsnapshot');
    assert.equal((await proxy.ask({ cmd: 'snapshot', file }))['file'], file);
    const snap = fs.readFileSync(file);
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
    assert.ok(countIn(snap, b('idp_0123')) >= 1, 'the search does not see strings');
    assert.equal(countIn(snap, b(token)), 0, 'a heap string holds the request token');
    for (const jwt of f.jwts) assert.equal(countIn(snap, b(jwt)), 0, 'a heap string holds a GitHub JWT');
    // The JWT's signature part alone, in case a string held a slice of it.
    for (const jwt of f.jwts) assert.equal(countIn(snap, b(jwt.split('.')[2]!)), 0, 'a heap string holds part of a GitHub JWT');
    for (const t of f.accessTokens) assert.equal(countIn(snap, b(t)), 0, 'a heap string holds an access token');
  } finally {
    proxy.proc.kill('SIGKILL');
    await up.close();
    await f.close();
  }
});
