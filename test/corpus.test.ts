// Plays every case of test/corpus/cases.ts against the proxy (the built CLI,
// as users run it) and a recording upstream. For each case: the client's
// statuses, what reached the upstream (a reference rewrite of the forwarded
// requests, or not one byte), and that a valid request is served afterwards.
//
// Cases run one after another on one proxy: that is what lets the upstream's
// bytes be attributed to a case exactly, and the whole corpus still takes
// about two seconds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cases, PORT } from './corpus/cases.js';
import { relayFixture, request } from './support/harness.js';
import { expectedUpstream, play } from './support/wire.js';

const fx = relayFixture();

const upstreamBytes = (): number => fx.up.raw.reduce((n, r) => n + r.length, 0);
/** A case's latin1 text with the proxy's real port in place of PORT. */
const withPort = (text: string): Buffer => Buffer.from(text.replaceAll(PORT, String(fx.proxy.port)), 'latin1');

test('the corpus has at least 150 cases with unique names', () => {
  assert.ok(cases.length >= 150, `${cases.length} cases`);
  assert.equal(new Set(cases.map((c) => c.name)).size, cases.length);
});

for (const c of cases) {
  test(`${c.category}: ${c.name}`, async () => {
    const bytesBefore = upstreamBytes();
    const seenBefore = fx.up.received.length;
    const closedBefore = fx.up.connections - fx.up.sockets.size;
    const expected = c.expect === 'close' ? [] : [c.expect, ...(c.then ?? [])];

    const got = await play(fx.proxy.port, [withPort(c.bytes.toString('latin1'))], { end: c.end ?? false, ...(c.expect === 'close' ? {} : { responses: expected.length }) });
    assert.deepEqual(got.statuses, expected, `statuses for ${c.name}: ${JSON.stringify(got.data.toString('latin1').slice(0, 200))}`);
    if (c.expect === 'close') assert.ok(got.closed, 'the relay closes the connection');

    // A valid request after the case: the proxy still serves, and its
    // arrival upstream marks the end of anything the case could have sent.
    const canary = request(`{"canary":"${c.name}"}`);
    const served = await play(fx.proxy.port, [canary], { responses: 1 });
    assert.deepEqual(served.statuses, [200], 'the proxy still serves a valid request');
    assert.equal(fx.proxy.proc.exitCode, null, 'the proxy is still running');

    const fresh = fx.up.received.slice(seenBefore);
    const last = fresh.pop();
    assert.ok(last && last.body.toString('latin1') === `{"canary":"${c.name}"}`, 'the canary is the last request upstream');
    const caseBytes = upstreamBytes() - bytesBefore - last.head.length - last.body.length;
    const hostHeader = `127.0.0.1:${fx.up.port}`;

    if (c.reachesUpstream) {
      const forwards = (c.forwards ?? [c.bytes.toString('latin1')]).map(withPort);
      assert.equal(fresh.length, forwards.length, 'each forwarded request reached the upstream once');
      forwards.forEach((f, i) => {
        const r = fresh[i]!;
        assert.equal(Buffer.concat([r.head, r.body]).toString('latin1'), expectedUpstream(f, hostHeader).toString('latin1'));
      });
      assert.equal(caseBytes, fresh.reduce((n, r) => n + r.head.length + r.body.length, 0), 'nothing but the forwarded requests reached the upstream');
    } else {
      assert.equal(fresh.length, 0, 'no complete request reached the upstream');
      if (c.headMayReach) {
        // The head may have gone before the body was judged: then that
        // upstream connection must have been closed, never reused.
        if (caseBytes > 0) assert.ok(fx.up.connections - fx.up.sockets.size > closedBefore, 'the upstream connection that saw a partial request was closed');
      } else {
        assert.equal(caseBytes, 0, 'not one byte reached the upstream');
      }
    }
  });
}

test('the proxy logged no internal error over the whole corpus', () => {
  assert.doesNotMatch(fx.proxy.stderr(), /internal error/);
});
