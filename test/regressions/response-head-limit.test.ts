// Issue 10, defect 2: --max-head-bytes limits request heads only. Response
// heads have their own fixed limit (256 KiB, relay.ts RESPONSE_HEAD_MAX),
// and a response past it gets a 502 whose error names that limit.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { relayFixture, request } from '../support/harness.js';
import { play } from '../support/wire.js';

// An ordinary API response head: 1,268 bytes, as api.openai.com sends them.
function apiHead(bodyLength: number, pad = 0): string {
  const lines = [
    'HTTP/1.1 200 OK',
    'Date: Tue, 01 Dec 2026 12:00:00 GMT',
    'Content-Type: application/json',
    `Content-Length: ${bodyLength}`,
    'Connection: keep-alive',
    'openai-version: 2020-10-01',
    'openai-organization: user-abcdefghijklmnopqrstuvwx',
    'openai-project: proj_ABCDEFGHIJKLMNOPQRSTUVWX',
    'x-request-id: req_0123456789abcdef0123456789abcdef',
    'openai-processing-ms: 1234',
    'x-ratelimit-limit-requests: 10000',
    'x-ratelimit-limit-tokens: 30000000',
    'x-ratelimit-remaining-requests: 9999',
    'x-ratelimit-remaining-tokens: 29999000',
    'x-ratelimit-reset-requests: 6ms',
    'x-ratelimit-reset-tokens: 2ms',
    'strict-transport-security: max-age=31536000; includeSubDomains; preload',
    'cf-cache-status: DYNAMIC',
    'set-cookie: __cf_bm=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-1733054400-1.0.1.1-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGh; path=/; expires=Tue, 01-Dec-26 12:30:00 GMT; domain=.api.openai.com; HttpOnly; Secure; SameSite=None',
    'set-cookie: _cfuvid=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789.AbCdEf-1733054400000-0.0.1.1-604800000; path=/; domain=.api.openai.com; HttpOnly; Secure; SameSite=None',
    'X-Content-Type-Options: nosniff',
    'Server: cloudflare',
    'CF-RAY: 8e0123456789abcd-AMS',
    'alt-svc: h3=":443"; ma=86400',
  ];
  let head = `${lines.join('\r\n')}\r\n`;
  if (pad > 0) head += `x-pad: ${'p'.repeat(pad)}\r\n`;
  const filler = 1268 - head.length - 2;
  if (pad === 0 && filler > 10) head += `x-envoy-upstream-service-time: ${'1'.repeat(filler - 33)}\r\n`;
  return `${head}\r\n`;
}

describe('response head limit', () => {
  let pad = 0;
  const fx = relayFixture(['--max-head-bytes', '1024'], (_req, sock) => sock.write(`${apiHead(2, pad)}{}`));

  test('a 1,268-byte response head passes with --max-head-bytes 1024', async () => {
    assert.equal(Buffer.byteLength(apiHead(2)), 1268);
    const r = await play(fx.proxy.port, [request()], { responses: 1 });
    assert.deepEqual(r.statuses, [200]);
    assert.ok(r.data.includes('x-request-id: req_0123456789abcdef'));
  });

  test('a response head of 200 KiB passes; past 256 KiB gets a 502 that names the response head limit', async () => {
    pad = 200 * 1024;
    const ok = await play(fx.proxy.port, [request()], { responses: 1, ms: 10000 });
    assert.deepEqual(ok.statuses, [200]);
    pad = 300 * 1024;
    const big = await play(fx.proxy.port, [request()], { responses: 1, ms: 10000 });
    assert.deepEqual(big.statuses, [502]);
    assert.match(big.data.toString('latin1'), /"code":"upstream_head_too_large".*256 KiB/);
    assert.match(fx.proxy.stderr(), /upstream_head_too_large/);
  });
});
