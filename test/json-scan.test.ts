// The OIDC answers' byte-level JSON scan (src/credential/json-scan.ts) as
// pure functions: what it reads, what it refuses, and that the secret's bytes
// never reach a decoded string. The spawned-CLI cases in oidc.test.ts pin
// the same rules end to end.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { answer, endOfValue, JsonScanError, secretString, skipWs, type Members } from '../src/credential/json-scan.js';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-_~+/=';
const OTHERS = ['token_type', 'expires_in'];

/** Every text JSON.parse is given while `f` runs. */
function parsedDuring<T>(f: () => T): { value: T; seen: string[] } {
  const parse = JSON.parse;
  const seen: string[] = [];
  JSON.parse = ((text: string, reviver?: Parameters<typeof parse>[1]) => {
    seen.push(text);
    return parse(text, reviver);
  }) as typeof JSON.parse;
  try {
    return { value: f(), seen };
  } finally {
    JSON.parse = parse;
  }
}

function secretOf(body: Buffer, m: Members, name = 'access_token', max = 16384): string | null {
  const r = secretString(body, m, name, max);
  return r && body.toString('latin1', r[0], r[1]);
}

const refused = (text: string, message = /^the answer is not a JSON object$/): void => {
  assert.throws(() => answer(b(text), 'access_token', OTHERS), (err: unknown) => err instanceof JsonScanError && message.test(err.message), text);
};

describe('json-scan: answer() and secretString()', () => {
  test('a well-formed object: the wanted members are found, the rest decoded', () => {
    const body = b(`{"access_token":"${TOKEN}","token_type":"Bearer","expires_in":60,"extra":[1,2]}`);
    const m = answer(body, 'access_token', OTHERS);
    assert.equal(secretOf(body, m), TOKEN);
    assert.deepEqual([...m.ranges.keys()], ['access_token', 'token_type', 'expires_in']);
    assert.equal(body.toString('latin1', ...m.ranges.get('expires_in')!), '60');
    assert.deepEqual(m.decoded, { access_token: 'x'.repeat(TOKEN.length), token_type: 'Bearer', expires_in: 60, extra: [1, 2] });
  });

  test('the secret is never decoded: JSON.parse sees only the blanked copy and member names', () => {
    const body = b(`{"note":"${TOKEN}?","access_token":"${TOKEN}"}`);
    const { value, seen } = parsedDuring(() => answer(body, 'access_token', []));
    assert.equal(secretOf(body, value), TOKEN);
    // The same bytes under another name are not the secret: they are decoded as any value is.
    assert.ok(seen.every((t) => !t.includes(`"${TOKEN}"`)), seen.join('\n'));
    assert.equal(seen.filter((t) => t.startsWith('{')).length, 1);
  });

  test('the answer itself is left as it was, for its owner to zero', () => {
    const body = b(`{"access_token":"${TOKEN}"}`);
    const before = Buffer.from(body);
    answer(body, 'access_token', []);
    assert.deepEqual(body, before);
  });

  test('a wanted name twice is refused; an unwanted one is left to JSON.parse', () => {
    refused(`{"access_token":"a","access_token":"b"}`, /^the answer repeats access_token$/);
    refused(`{"expires_in":1,"token_type":"Bearer","expires_in":2}`, /^the answer repeats expires_in$/);
    // An escaped spelling is the same name.
    refused(`{"access_token":"a","access\\u005ftoken":"b"}`, /^the answer repeats access_token$/);
    const m = answer(b('{"n":1,"n":2,"access_token":"t"}'), 'access_token', OTHERS);
    assert.equal(m.decoded['n'], 2);
  });

  test('escapes in names are decoded; escapes in other values are skipped over', () => {
    const body = b(`{"note":"a \\"quoted\\" \\u0076alue}","\\u0061ccess_token":"${TOKEN}","back\\\\":"\\\\"}`);
    const m = answer(body, 'access_token', []);
    assert.equal(secretOf(body, m), TOKEN);
    assert.equal(m.decoded['note'], 'a "quoted" value}');
    assert.equal(m.decoded['back\\'], '\\');
  });

  test('nested values are skipped whole: only top-level members count', () => {
    const body = b(`{"nested":{"access_token":"inner","a":[{"b":"]}"},[]]},"list":["{",{"access_token":1}],"access_token":"${TOKEN}"}`);
    const m = answer(body, 'access_token', []);
    assert.equal(secretOf(body, m), TOKEN);
    assert.deepEqual(m.decoded['nested'], { access_token: 'inner', a: [{ b: ']}' }, []] });
  });

  test('whitespace anywhere JSON allows it', () => {
    const body = b(` \r\n\t{ "access_token" :\n"${TOKEN}"\t,\r\n"expires_in" : 5 }\n `);
    const m = answer(body, 'access_token', OTHERS);
    assert.equal(secretOf(body, m), TOKEN);
    assert.equal(m.decoded['expires_in'], 5);
    assert.equal(skipWs(b(' \t\r\nx'), 0), 4);
  });

  test('an empty object has no secret', () => {
    const m = answer(b(' {} '), 'access_token', OTHERS);
    assert.equal(m.ranges.size, 0);
    assert.equal(secretOf(b(' {} '), m), null);
  });

  test('not an object: arrays, scalars, nothing, or text after the object', () => {
    for (const text of ['', ' ', '[]', '["access_token"]', '"access_token"', '42', 'null', 'true', '{}{}', '{} x', '{"a":1}]', '{"a":1,}', '{,}', '{"a"}', '{"a":}', '{a:1}', "{'a':1}", '{"a":1 "b":2}', '{"a":tru}', '{"a":01}']) {
      refused(text);
    }
  });

  test('every truncation of an answer is refused', () => {
    const text = `{"access_token":"${TOKEN}","nested":{"a":["x\\"y",{"b":null}]},"expires_in":60}`;
    for (let n = 0; n < text.length; n++) refused(text.slice(0, n));
  });

  test('the secret must be a plain token68 string of 1 to max bytes', () => {
    const secret = (value: string, max = 16384): string | null => {
      const body = b(`{"access_token":${value}}`);
      return secretOf(body, answer(body, 'access_token', []), 'access_token', max);
    };
    assert.equal(secret(`"${TOKEN}"`), TOKEN);
    assert.equal(secret('"abc"', 3), 'abc');
    assert.equal(secret('"abcd"', 3), null);
    for (const v of ['""', '"a b"', '"ab\\u0063"', '"a\\"b"', '"é"', '12', 'null', '["abc"]', '{"a":"abc"}', 'true']) assert.equal(secret(v), null, v);
  });

  test('endOfValue finds where a value ends, or -1 when it does not', () => {
    const ends = (text: string): number => endOfValue(b(text), 0);
    assert.equal(ends('"a\\"b",'), 6);
    assert.equal(ends('{"a":{"b":"}"}} '), 15);
    assert.equal(ends('[1,[2],"]"]}'), 11);
    assert.equal(ends('123,'), 3);
    assert.equal(ends('-1.5e3}'), 6);
    for (const text of ['"abc', '{"a":1', '[[]', '', ',', '}']) assert.equal(ends(text), -1, text);
  });
});

describe('json-scan properties', () => {
  const token68 = fc.stringMatching(/^[A-Za-z0-9\-._~+/]{1,64}=*$/);
  const name = fc.string({ maxLength: 8 }).filter((n) => n !== 'access_token');
  const members = fc.dictionary(name, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 });

  test('any object with a token68 secret: the secret is found, never parsed, and the rest decodes as JSON.parse would', () => {
    fc.assert(
      fc.property(members, token68, fc.nat(), fc.constantFrom(undefined, 0, 2, '\t'), (others, token, at, indent) => {
        const entries = Object.entries(others);
        entries.splice(at % (entries.length + 1), 0, ['access_token', token]);
        const text = JSON.stringify(Object.fromEntries(entries), null, indent);
        fc.pre(token !== 'access_token' && !JSON.stringify(others).includes(token));
        const body = b(text);
        const { value, seen } = parsedDuring(() => answer(body, 'access_token', []));
        assert.equal(secretOf(body, value), token);
        const blanked = { ...Object.fromEntries(entries), access_token: 'x'.repeat(Buffer.byteLength(token)) };
        assert.deepEqual(value.decoded, JSON.parse(JSON.stringify(blanked)));
        // As a JSON string: "_" alone is also a piece of the name "access_token".
        assert.ok(seen.every((t) => !t.includes(JSON.stringify(token))));
      }),
      { numRuns: 300 },
    );
  });

  test('any bytes: the scan returns or refuses with JsonScanError, nothing else', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.json().map((t) => b(t))), (bytes) => {
        try {
          answer(Buffer.from(bytes), 'access_token', OTHERS);
        } catch (err) {
          assert.ok(err instanceof JsonScanError, String(err));
        }
      }),
      { numRuns: 500 },
    );
  });
});
