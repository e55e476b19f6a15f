// Azure through the proxy, with the real `openai` SDK. AzureOpenAI posts to
// /openai/... with ?api-version=, so the proxy refuses it, and its 403 names
// what works: the plain OpenAI client at the proxy's /v1, with the Azure
// deployment in --upstream-url (the README's Azure section, run here).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import OpenAI, { AzureOpenAI } from 'openai';
import { KEY, okJson, relayFixture } from './support/harness.js';

const TARGET = '/openai/deployments/my-deployment/responses?api-version=2025-04-01-preview';
const RESPONSE = '{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-test","output":[]}';

describe('Azure clients', () => {
  const fx = relayFixture(['--auth-header', 'api-key'], okJson(RESPONSE), { target: TARGET });

  test('the plain OpenAI client at the proxy /v1 reaches the deployment with the api-key header', async () => {
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${fx.proxy.port}/v1`, apiKey: 'unused-by-the-proxy', maxRetries: 0 });
    const res = await client.responses.create({ model: 'my-deployment', input: 'hi' });
    assert.equal(res.id, 'resp_1');
    const head = fx.up.received.at(-1)!.head.toString('latin1');
    assert.ok(head.startsWith(`POST ${TARGET} HTTP/1.1\r\n`), head);
    assert.match(head, new RegExp(`\\r\\napi-key: ${KEY}\\r\\n`));
    assert.doesNotMatch(head, /\r\nauthorization:/i);
  });

  test('AzureOpenAI is refused with a 403 that points to the plain client', async () => {
    const before = fx.up.received.length;
    const client = new AzureOpenAI({
      baseURL: `http://127.0.0.1:${fx.proxy.port}/openai`,
      apiKey: 'unused-by-the-proxy',
      apiVersion: '2025-04-01-preview',
      deployment: 'my-deployment',
      maxRetries: 0,
    });
    const err = await client.responses.create({ model: 'my-deployment', input: 'hi' }).then(
      () => assert.fail('AzureOpenAI was relayed'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof OpenAI.PermissionDeniedError, String(err));
    const body = err.error as { code?: string; message?: string };
    assert.equal(body.code, 'azure_client');
    assert.match(body.message ?? '', /plain OpenAI client \(not AzureOpenAI\).*\/v1.*README: Azure/);
    assert.equal(fx.up.received.length, before);
  });

  test('an api-version query on /v1/responses gets the same pointer; other refusals keep theirs', async () => {
    const ask = async (target: string): Promise<string> => {
      const res = await fetch(`http://127.0.0.1:${fx.proxy.port}${target}`, { method: 'POST', body: '{}' });
      assert.equal(res.status, 403);
      return ((await res.json()) as { error: { code: string } }).error.code;
    };
    assert.equal(await ask('/v1/responses?api-version=2025-04-01-preview'), 'azure_client');
    assert.equal(await ask('/v1/chat/completions'), 'forbidden');
    assert.equal(await ask('/v1/responses?stream=true'), 'forbidden');
  });
});
