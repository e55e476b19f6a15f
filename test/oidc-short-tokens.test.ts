// Issue 19, item 3: an exchange that answers with an expires_at one second
// ahead made background renewal run back to back (25-28 GitHub calls per
// 10 s with no client) and turned 11 of 55 light-traffic requests into 503s.
// Renewal now runs in the background only while requests come in, never
// sooner than 5 s after the last one, and a request that finds no valid
// token waits for the next renewal (up to --connect-timeout).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fakeJwt, fakeRequestToken, reply, startFakes, type Fakes } from './support/oidc-fakes.js';
import { rawExchange, request, responsesComplete, startProxy, startUpstream, tmpDir, type Upstream } from './support/harness.js';

const TOKEN = fakeRequestToken();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('github oidc: 1-second tokens', () => {
  let f: Fakes;
  let up: Upstream;
  /** When each GitHub call arrived (performance.now()). */
  const calls: number[] = [];
  before(async () => {
    f = await startFakes();
    f.lifetime = 1;
    f.expiresAtIn = 1;
    f.onGithub = (_req, sock) => {
      calls.push(performance.now());
      const jwt = fakeJwt(`jwt${f.jwts.length + 1}`);
      f.jwts.push(jwt);
      reply(sock, 200, { value: jwt });
    };
    up = await startUpstream();
  });
  after(async () => {
    await up.close();
    await f.close();
  });

  const start = (flags: string[] = []) => startProxy(f.args(['--upstream-url', up.url, ...flags]), { serverInfo: path.join(tmpDir(), 'info.json'), key: `${TOKEN}\n`, env: f.env() });

  test('no client: no call after the first in 10 idle seconds; light traffic: 0 of 50 requests get 503', async () => {
    calls.length = 0;
    const proxy = await start();
    try {
      assert.equal(calls.length, 1, 'the start-up call');
      // The old relay made 25-28 calls in these 10 s.
      await sleep(10_000);
      assert.equal(calls.length, 1, 'no renewal while idle');
      assert.equal(f.accessTokens.length, 1);

      // 50 requests, one every 200 ms, each on its own connection.
      const replies: Promise<number>[] = [];
      for (let i = 0; i < 50; i++) {
        replies.push(rawExchange(proxy.port, [request()], { until: responsesComplete, ms: 30_000 }).then((r) => r.status));
        await sleep(200);
      }
      const statuses = await Promise.all(replies);
      assert.deepEqual(
        statuses.filter((s) => s !== 200),
        [],
        'every request was answered 200',
      );
      assert.ok(calls.length >= 2, 'the traffic needed renewals');
      // Renewals are at least the 5 s floor apart (a lower bound: timers never
      // fire early; 1 s of slack for when each call reached the fake).
      for (let i = 1; i < calls.length; i++) assert.ok(calls[i]! - calls[i - 1]! >= 4000, `calls ${i - 1} and ${i} too close`);
      assert.ok(!proxy.stderr().includes(TOKEN));
    } finally {
      await proxy.stop();
    }
  });

  test('a request waits for a renewal up to --connect-timeout, then gets 503', async () => {
    const proxy = await start(['--connect-timeout', '1']);
    const held: (() => void)[] = [];
    const answer = f.onGithub;
    try {
      // GitHub stops answering; the 1 s token runs out.
      f.onGithub = (req, sock) => held.push(() => answer!(req, sock));
      await sleep(1100);
      const r = await rawExchange(proxy.port, [request()], { until: responsesComplete, ms: 15_000 });
      assert.equal(r.status, 503);
      assert.match(r.data.toString('latin1'), /"code":"credential_unavailable","message":"no valid upstream credential \(RENEWAL_TIMEOUT\)"/);
    } finally {
      f.onGithub = answer;
      for (const h of held) h();
      await proxy.stop();
    }
  });
});
