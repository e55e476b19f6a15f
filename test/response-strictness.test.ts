// The response side: the relay reads the upstream with a strict llhttp
// response parser. A malformed or ambiguous response gets the client a 502 if
// no byte of it was relayed yet, else a close; bytes past a response's end
// never reach the next request; a connection that misbehaved is never reused.
import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { request, startUpstream, waitFor, type Upstream } from './support/harness.js';
import { play, startRelay, type Relay } from './support/wire.js';

type Reply = { bytes: string; close?: boolean };
const OK: Reply = { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' };
/** The upstream answers each request with the next scripted reply, then with `otherwise`. */
const script: Reply[] = [];
let otherwise = OK;
let up: Upstream;
let relay: Relay;
const upstreamSockets = new Set<net.Socket>();
before(async () => {
  up = await startUpstream((_req, sock) => {
    upstreamSockets.add(sock);
    const next = script.shift() ?? otherwise;
    sock.write(Buffer.from(next.bytes, 'latin1'));
    if (next.close) sock.end();
  });
  relay = await startRelay(up.url);
});
after(async () => {
  await relay.close();
  await up.close();
});

// Malformed before the first byte could be relayed: the head never completes.
const BEFORE_FIRST_BYTE: [string, string][] = [
  ['content-length-with-transfer-encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['duplicate-content-length-differing', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
  ['status-code-four-digits', 'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n'],
  ['status-line-without-code', 'HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n'],
  ['status-line-http2', 'HTTP/2 200\r\nContent-Length: 0\r\n\r\n'],
  ['request-line-as-response', 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
  ['bare-lf-in-head', 'HTTP/1.1 200 OK\nContent-Length: 0\n\n'],
  ['obs-fold-in-head', 'HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n'],
  ['nul-in-header-value', 'HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 0\r\n\r\n'],
  ['space-before-colon', 'HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n'],
  ['not-http-at-all', '\x16\x03\x03\x00\x02hello'],
];

describe('response strictness', () => {
  beforeEach(() => {
    script.length = 0;
    otherwise = OK;
  });
  for (const [name, bytes] of BEFORE_FIRST_BYTE) {
    test(`${name}: 502 before any byte reached the client; that upstream connection is closed`, async () => {
      script.push({ bytes });
      const conns = up.connections;
      const r = await play(relay.port, [request()]);
      assert.deepEqual(r.statuses, [502]);
      assert.match(r.data.toString('latin1'), /"code":"upstream_protocol"/);
      assert.ok(r.closed);
      // The next request is served on a fresh upstream connection.
      const next = await play(relay.port, [request()], { responses: 1 });
      assert.deepEqual(next.statuses, [200]);
      assert.ok(up.connections > conns, 'a new upstream connection');
    });
  }

  test('premature close before any response byte: 502', async () => {
    // Every connection closes: a pooled one is retried once on a fresh one (relay.ts).
    otherwise = { bytes: '', close: true };
    const r = await play(relay.port, [request()]);
    assert.deepEqual(r.statuses, [502]);
  });

  test('premature close mid-head: 502', async () => {
    otherwise = { bytes: 'HTTP/1.1 200 OK\r\nContent-Len', close: true };
    const r = await play(relay.port, [request()]);
    assert.deepEqual(r.statuses, [502]);
  });

  const AFTER_FIRST_BYTE: [string, string, string][] = [
    // Found here: head and broken chunk in one read left the head corked when the client socket was destroyed.
    ['bad-chunk-size-in-the-read-that-carries-the-head', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n', 'HTTP/1.1 200 OK'],
    ['chunk-data-overruns-its-size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n', 'HTTP/1.1 200 OK'],
    ['premature-close-mid-body', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial', 'partial'],
    ['premature-close-mid-chunk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc', 'abc'],
  ];
  for (const [name, bytes, seen] of AFTER_FIRST_BYTE) {
    test(`${name}: after the head was relayed, the client connection is closed, never given a second status`, async () => {
      script.push({ bytes, close: true });
      const r = await play(relay.port, [request()]);
      const text = r.data.toString('latin1');
      assert.ok(r.closed);
      assert.ok(text.startsWith('HTTP/1.1 200 OK'));
      assert.ok(text.includes(seen));
      assert.doesNotMatch(text, /502/);
    });
  }

  test('bytes after a response never reach the next request on the connection, and that upstream socket is not reused', async () => {
    const smuggled = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!';
    script.push({ bytes: `HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nA1${smuggled}` }, { bytes: 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nB2' });
    upstreamSockets.clear();
    // Two requests pipelined on one client connection.
    const r = await play(relay.port, [Buffer.concat([request(), request()])], { responses: 2 });
    const text = r.data.toString('latin1');
    assert.deepEqual(r.statuses, [200, 200]);
    assert.ok(text.includes('A1') && text.includes('B2'));
    assert.ok(!text.includes('EVIL!'));
    assert.equal(upstreamSockets.size, 2, 'the second request went over another upstream connection');
    const [first] = upstreamSockets;
    // Waited for, not slept on: a loaded machine may take longer than any fixed pause.
    await waitFor('the connection that sent extra bytes to close', () => first!.destroyed || first!.readableEnded);
  });

  test('an interim 100 and then the final response pass through; the connection is then reused', async () => {
    script.push({ bytes: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok' });
    const conns = up.connections;
    const r = await play(relay.port, [request(), request()], { responses: 3 });
    assert.deepEqual(r.statuses, [100, 200, 200]);
    assert.equal(up.connections, conns, 'a clean response leaves the upstream connection pooled');
  });
});
