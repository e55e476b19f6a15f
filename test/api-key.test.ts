// --auth-header api-key (issue 12): Azure OpenAI's classic deployments take
// the key in an `api-key` line. The relay injects exactly one such line and
// removes every client api-key and Authorization line, byte for byte
// otherwise as in the default mode.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { b, KEY, okJson, rawExchange, relayFixture, responsesComplete, runCli, startProxy } from './support/harness.js';

describe('--auth-header api-key', () => {
  const azure = '/openai/deployments/gpt-5-codex/responses?api-version=2025-04-01-preview';
  const fx = relayFixture(['--auth-header', 'api-key'], okJson(), { target: azure });

  test('one api-key line with the key; every client api-key and Authorization line removed; all else byte for byte', async () => {
    const body = '{"model":"gpt-5-codex","input":"hi"}';
    const head =
      'POST /v1/responses HTTP/1.1\r\n' +
      `Host: 127.0.0.1:${fx.proxy.port}\r\n` +
      'api-key: client-azure-secret\r\n' +
      'X-Keep:  as is \r\n' +
      'Authorization: Bearer client-bearer-secret\r\n' +
      'API-KEY:other-client-secret\r\n' +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    const res = await rawExchange(fx.proxy.port, [b(head + body)], { until: responsesComplete });
    assert.equal(res.status, 200);
    const want =
      `POST ${azure} HTTP/1.1\r\n` +
      `Host: 127.0.0.1:${fx.up.port}\r\n` +
      `api-key: ${KEY}\r\n` +
      'X-Keep:  as is \r\n' +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    assert.equal(fx.up.received.at(-1)!.head.toString('latin1'), want);
    assert.equal(fx.up.received.at(-1)!.body.toString(), body);
    assert.ok(!fx.up.raw.some((r) => r.includes('client-') || r.includes('other-client') || r.includes('Bearer')));
  });

  test('Connection naming api-key is refused, as naming Authorization is', async () => {
    const before = fx.up.received.length;
    const res = await rawExchange(fx.proxy.port, [b(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${fx.proxy.port}\r\nConnection: api-key\r\nContent-Length: 2\r\n\r\n{}`)], { until: responsesComplete });
    assert.equal(res.status, 400);
    assert.equal(fx.up.received.length, before);
  });

  test('the default mode also drops a client api-key line', async () => {
    const p = await startProxy(['--upstream-url', fx.up.url]);
    try {
      await rawExchange(p.port, [b(`POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${p.port}\r\napi-key: client-azure-secret\r\nContent-Length: 2\r\n\r\n{}`)], { until: responsesComplete });
      assert.equal(fx.up.received.at(-1)!.head.toString('latin1'), `POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${fx.up.port}\r\nAuthorization: Bearer ${KEY}\r\nContent-Length: 2\r\n\r\n`);
    } finally {
      await p.stop();
    }
  });

  test('an unknown --auth-header is a usage error', async () => {
    const r = await runCli(['--auth-header', 'x-api-key'], `${KEY}\n`);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'codex-responses-api-proxy: --auth-header must be one of authorization, api-key, got "x-api-key"\n');
  });
});
