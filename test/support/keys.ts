// Keys for the key-custody tests (distinctive, or of an exact length with the
// whole token68 alphabet), both ways the proxy sends one upstream, and the
// client requests that drive every path short of an upstream failure.
import { b, rawExchange, request, responsesComplete } from './harness.js';

/** A key no other byte sequence in the process is likely to match by chance. */
export function distinctiveKey(tag: string): string {
  const rand = Buffer.from(Array.from({ length: 24 }, () => Math.floor(Math.random() * 256))).toString('base64url');
  return `sk-proj-${tag}-${rand}`;
}

const TOKEN68 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/';

/**
 * A random token68 key of exactly `length` bytes (1 to 16,384): `sk-proj-`
 * style from 12 bytes up, with `.` inside and `=` padding at the end from
 * 20 bytes up, so the widened alphabet (issue 11) goes the whole way.
 */
export function keyOfLength(length: number): string {
  const pick = (): string => TOKEN68[Math.floor(Math.random() * TOKEN68.length)]!;
  const tail = length >= 20 ? '.x==' : '';
  const head = length >= 12 ? 'sk-proj-' : '';
  let body = '';
  while (head.length + body.length + tail.length < length) body += pick();
  return `${head}${body}${tail}`;
}

/**
 * What to search process memory for to find a key: the key itself once it
 * is long enough to be distinctive, else its whole Authorization line (one
 * byte alone matches everywhere).
 */
export function keyNeedle(key: string): Buffer {
  return Buffer.from(key.length >= 16 ? key : `Bearer ${key}\r\n`, 'latin1');
}

/** The key lengths issue 8 asks the custody tests to cover, and issue 11's. */
export const KEY_LENGTHS = [1, 20, 32, 40, 41, 164, 1017, 16384] as const;

/**
 * Requests that take every path through the proxy short of the upstream
 * failing: allowed, denied (403), malformed (400), refused callers (421,
 * 403), and ones carrying a client Authorization of their own. Returns every byte the proxy answered.
 */
export async function driveClientCases(port: number, clientSecret: string): Promise<Buffer[]> {
  const replies: Buffer[] = [];
  const cases: Buffer[] = [
    request(),
    request('{"model":"m"}', `Authorization: Bearer ${clientSecret}\r\n`),
    request('{"model":"m"}', `api-key: ${clientSecret}\r\n`),
    b('GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'),
    request('{}', '', '/v1/responses?x=1'),
    b('POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n'),
    b('this is not http\r\n\r\n'),
    b('POST /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n'),
    // Refused callers (421, 403) with the client's key: never echoed either.
    request('{}', `Authorization: Bearer ${clientSecret}\r\nOrigin: null\r\n`),
    b(`POST /v1/responses HTTP/1.1\r\nHost: attacker.example\r\nAuthorization: Bearer ${clientSecret}\r\nContent-Length: 2\r\n\r\n{}`),
  ];
  for (const c of cases) replies.push((await rawExchange(port, [c], { until: (d) => responsesComplete(d), ms: 10000 })).data);
  return replies;
}

/** Both ways the key can be sent upstream (--auth-header); every key-hygiene test runs in each. */
export const AUTH_MODES: { name: string; args: string[]; line: string }[] = [
  { name: 'Authorization', args: [], line: 'Authorization: Bearer ' },
  { name: 'api-key', args: ['--auth-header', 'api-key'], line: 'api-key: ' },
];
