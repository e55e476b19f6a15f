// GitHub Actions workload identity: the job's OIDC request token (stdin) buys
// a GitHub-signed JWT, and the JWT buys a short-lived OpenAI access token.
// Both calls are written with the relay's own raw client (the transport's
// Connector, so the egress stage applies, and llhttp framing from parse.ts),
// never node:https, whose headers are JS strings. The three secrets (request
// token, JWT, access token) live only in Buffers: answers are scanned at byte
// level, and only a copy whose secret bytes are blanked is ever decoded.
import type net from 'node:net';
import { isToken68Byte, offHeap } from '../secret/key.js';
import { Ev, MessageParser } from '../http/parser.js';
import type { Connector } from '../transport/connect.js';
import { parseUpstream, type Upstream } from '../transport/upstream.js';

export const EXCHANGE_URL = 'https://auth.openai.com/oauth/token';
/** Test hook (documented in the README): where the exchange goes instead. */
export const EXCHANGE_URL_ENV = 'CODEX_RESPONSES_API_PROXY_TOKEN_EXCHANGE_URL';
/** Both calls, connection to last byte (as the original: 30 s). */
const CALL_TIMEOUT_MS = 30_000;
/** Largest answer body read, and largest exchange request body sent. */
const MAX_BODY = 64 * 1024;
const MAX_ANSWER_HEAD = 16 * 1024;
/** Longest token accepted at any step (the original's key limit is 1,017; JWTs are longer). */
const MAX_TOKEN = 16 * 1024;

const BEARER = Buffer.from('Authorization: Bearer ', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');
const ISSUED_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export interface OidcConfig {
  audience: string;
  identityProviderId: string;
  serviceAccountId: string;
  requestUrl: URL;
  exchangeUrl: URL;
}

/** An access token ready to inject, and how long it is good for. */
export interface Issued {
  /** `Authorization: Bearer <access token>\r\n`, the token's only copy. */
  line: Buffer;
  lifetimeMs: number;
}

/**
 * One line naming the step and, for an HTTP failure, the status, never a
 * body byte. `code` is errno-style (GITHUB_HTTP_500), for the 503 a client
 * gets when no valid token is left (errors.ts).
 */
export class OidcError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

// Secrets are token68 (key.ts's alphabet): no quote or backslash, so a
// token68 JSON string needs no unescaping.
function isToken68(b: Buffer, start = 0, end = b.length): boolean {
  if (end - start < 1 || end - start > MAX_TOKEN) return false;
  for (let i = start; i < end; i++) if (!isToken68Byte(b[i]!)) return false;
  return true;
}

/** The URL if a secret may be sent to it (absolute https, no user info, no fragment); otherwise why not. */
export function httpsUrl(raw: string): URL | 'invalid' | 'not-https' {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'invalid';
  }
  if (url.protocol !== 'https:' || url.username || url.password || url.hash || raw.includes('#') || !url.hostname) return 'not-https';
  return url;
}

/** Fetches the GitHub JWT, then exchanges it; the JWT is zeroed either way. */
export async function obtain(cfg: OidcConfig, requestToken: Buffer, connector: Connector): Promise<Issued> {
  const jwt = await githubToken(cfg, requestToken, connector);
  try {
    return await exchange(cfg, jwt, connector);
  } finally {
    jwt.fill(0);
  }
}

/**
 * `GET <request URL>` with every `audience` pair dropped from the query and
 * `audience=<form-urlencoded>` appended, as GitHub's toolkit does; redirects
 * are not followed (a 3xx is a failure), so the request token goes only
 * where the operator pointed it.
 */
async function githubToken(cfg: OidcConfig, requestToken: Buffer, connector: Connector): Promise<Buffer> {
  const step = 'GitHub OIDC token request';
  const u = cfg.requestUrl;
  const query = new URLSearchParams(u.search);
  query.delete('audience');
  query.append('audience', cfg.audience);
  const head = Buffer.from(`GET ${u.pathname}?${query.toString()} HTTP/1.1\r\nHost: ${u.host}\r\n`, 'latin1');
  const tail = Buffer.from('Accept: application/json\r\nConnection: close\r\n\r\n', 'latin1');
  const body = await call(connector, parseUpstream(u.href), [head, BEARER, requestToken, CRLF, tail], step, 'GitHub OIDC token request', 'GITHUB');
  try {
    const at = answer(body, ['value'], step, 'GITHUB');
    const [s, e] = secretString(body, at, 'value', `${step} failed: the answer's value is not a token68 string of 1 to ${MAX_TOKEN} bytes`, 'GITHUB');
    const jwt = offHeap(e - s);
    body.copy(jwt, 0, s, e);
    return jwt;
  } finally {
    body.fill(0);
  }
}

/** RFC 8693 token exchange at the OpenAI token endpoint. */
async function exchange(cfg: OidcConfig, jwt: Buffer, connector: Connector): Promise<Issued> {
  const step = 'OpenAI workload identity token exchange';
  const u = cfg.exchangeUrl;
  const before = Buffer.from(
    '{"grant_type":"urn:ietf:params:oauth:grant-type:token-exchange","subject_token_type":"urn:ietf:params:oauth:token-type:jwt","subject_token":"',
    'latin1',
  );
  const after = Buffer.from(`","identity_provider_id":${JSON.stringify(cfg.identityProviderId)},"service_account_id":${JSON.stringify(cfg.serviceAccountId)}}`, 'utf8');
  const length = before.length + jwt.length + after.length;
  if (length > MAX_BODY) throw new OidcError(`${step} failed: its request body would exceed ${MAX_BODY} bytes`, 'EXCHANGE_REQUEST_TOO_LARGE');
  const head = Buffer.from(
    `POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`,
    'latin1',
  );
  const body = await call(connector, parseUpstream(u.href), [head, before, jwt, after], step, 'OpenAI workload identity token request', 'EXCHANGE');
  try {
    const at = answer(body, ['access_token', 'issued_token_type', 'token_type', 'expires_in', 'expires_at'], step, 'EXCHANGE');
    const bad = (what: string): never => {
      throw new OidcError(`${step} failed: ${what}`, 'EXCHANGE_BAD_ANSWER');
    };
    const [s, e] = secretString(body, at, 'access_token', `${step} failed: access_token is not a token68 string of 1 to ${MAX_TOKEN} bytes`, 'EXCHANGE');
    const fields = at.decoded;
    if (fields['issued_token_type'] !== ISSUED_TYPE) bad(`issued_token_type is not ${ISSUED_TYPE}`);
    const type = fields['token_type'];
    if (typeof type !== 'string' || type.toLowerCase() !== 'bearer') bad('token_type is not Bearer');
    const expiresIn = fields['expires_in'];
    if (!Number.isSafeInteger(expiresIn) || (expiresIn as number) < 1 || (expiresIn as number) > 3600) bad('expires_in is not an integer from 1 to 3600');
    const expiresAt = fields['expires_at'];
    const left = (expiresAt as number) - Date.now() / 1000;
    if (!Number.isSafeInteger(expiresAt) || !(left > 0)) bad('expires_at is not an integer Unix time in the future');
    const line = offHeap(BEARER.length + (e - s) + 2);
    BEARER.copy(line, 0);
    body.copy(line, BEARER.length, s, e);
    CRLF.copy(line, line.length - 2);
    // The shorter of the two: a clock skewed against the server's cannot stretch it.
    return { line, lifetimeMs: Math.floor(Math.min(expiresIn as number, left) * 1000) };
  } finally {
    body.fill(0);
  }
}

/**
 * One request on a fresh connection; resolves with the de-chunked body of a
 * 2xx answer. The request parts are zeroed once the call is over, whatever
 * its outcome: the connection is then closed, so no write can still use them.
 */
function call(connector: Connector, ep: Upstream, parts: Buffer[], step: string, rejected: string, tag: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const res = new MessageParser('RESPONSE', MAX_ANSWER_HEAD);
    const raw: Buffer[] = [];
    let rawLen = 0;
    let sock: net.Socket | null = null;
    let done = false;
    const finish = (err: OidcError | null, body?: Buffer): void => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      sock?.destroy();
      res.destroy();
      // parts[0] and the constant pieces hold no secret; the caller owns the token Buffers.
      for (const r of raw) r.fill(0);
      if (err) reject(err);
      else resolve(body!);
    };
    const fail = (why: string, code: string): void => finish(new OidcError(`${step} failed: ${why}`, `${tag}_${code}`));
    const deadline = setTimeout(() => fail(`no answer within ${CALL_TIMEOUT_MS / 1000} s`, 'TIMEOUT'), CALL_TIMEOUT_MS);
    let chunked = false;
    const onData = (chunk: Buffer): void => {
      if (done) return;
      let off = 0;
      while (!done && off <= chunk.length) {
        const inHead = !res.headDone;
        const step = res.execute(chunk, off);
        if (step.ev === Ev.Error) return fail('invalid HTTP answer', 'BAD_HTTP');
        const bodyEnd = step.ev === Ev.More ? chunk.length : step.pos;
        if (!inHead && bodyEnd > off) {
          raw.push(chunk.subarray(off, bodyEnd));
          rawLen += bodyEnd - off;
          // Chunk framing is small beside the data; twice the cap bounds both.
          if (rawLen > 2 * MAX_BODY) return fail(`answer larger than ${MAX_BODY} bytes`, 'TOO_LARGE');
        }
        if (step.ev === Ev.More) return;
        if (step.ev === Ev.Head) {
          if (res.interim) {
            off = step.pos;
            continue;
          }
          // The status, never the body: a failing endpoint's body may echo what it was sent.
          // In the original's words: "<step> rejected (HTTP 500)".
          if (res.status < 200 || res.status > 299) return finish(new OidcError(`${rejected} rejected (HTTP ${res.status})`, `${tag}_HTTP_${res.status}`));
          chunked = /\r\ntransfer-encoding:[^\r]*chunked/i.test(res.head().toString('latin1'));
        } else if (step.ev === Ev.End && !res.interim) {
          return complete();
        }
        off = step.pos;
        if (off >= chunk.length && step.ev !== Ev.Head) return;
      }
    };
    const complete = (): void => {
      const joined = offHeap(rawLen);
      let at = 0;
      for (const r of raw) at += r.copy(joined, at);
      const body = chunked ? dechunk(joined) : joined;
      if (body !== joined) joined.fill(0);
      if (body.length > MAX_BODY) {
        body.fill(0);
        return fail(`answer larger than ${MAX_BODY} bytes`, 'TOO_LARGE');
      }
      finish(null, body);
    };
    const onEnd = (): void => {
      if (done) return;
      // A body delimited by the connection's close ends here (RFC 9112 §6.3).
      if (res.headDone && res.finish()) return complete();
      fail('connection closed before the answer ended', 'CLOSED');
    };
    sock = connector.connect(ep, CALL_TIMEOUT_MS, (err, s) => {
      if (done) return;
      if (err) return fail(`cannot connect (${err.code ?? 'error'})`, err.code && /^[A-Z0-9_]{1,40}$/.test(err.code) ? err.code : 'CONNECT');
      s.on('data', onData).on('end', onEnd).on('close', onEnd);
      s.on('error', (e: NodeJS.ErrnoException) => fail(`connection failed (${e.code ?? 'error'})`, 'CONNECTION'));
      s.cork();
      for (const p of parts) s.write(p);
      s.uncork();
    });
  });
}

/**
 * Joins the data of a chunked body that llhttp has already accepted, so its
 * framing is known good: size line, data, CRLF, until the 0 chunk.
 */
function dechunk(b: Buffer): Buffer {
  const out = offHeap(b.length);
  let n = 0;
  for (let i = 0; i < b.length; ) {
    const lf = b.indexOf(0x0a, i);
    if (lf < 0) break;
    const size = parseInt(b.toString('latin1', i, Math.min(lf, i + 16)).split(/[;\r \t]/)[0]!, 16);
    if (!(size > 0)) break;
    n += b.copy(out, n, lf + 1, lf + 1 + size);
    i = lf + 1 + size + 2;
  }
  return out.subarray(0, n);
}

interface Members {
  /** Byte range of each wanted member's value. */
  ranges: Map<string, [number, number]>;
  /** The object decoded from a copy whose secret values are blanked. */
  decoded: Record<string, unknown>;
}

/**
 * Reads the top-level members of a JSON object answer. The secret's value
 * is found by a byte scan; the whole answer is then validated by JSON.parse
 * on a copy in which every byte of each `secret` value has been replaced,
 * so no decoded string ever holds a secret byte.
 */
function answer(body: Buffer, wanted: string[], step: string, tag: string): Members {
  const bad = (): never => {
    throw new OidcError(`${step} failed: the answer is not a JSON object`, `${tag}_BAD_ANSWER`);
  };
  const ranges = new Map<string, [number, number]>();
  let i = skipWs(body, 0);
  if (body[i] !== 0x7b) bad();
  i = skipWs(body, i + 1);
  if (body[i] === 0x7d) i++;
  else {
    for (;;) {
      if (body[i] !== 0x22) bad();
      const nameEnd = endOfString(body, i);
      if (nameEnd < 0) bad();
      // Member names are not secret: decode them, escapes included.
      let name: unknown;
      try {
        name = JSON.parse(body.toString('utf8', i, nameEnd));
      } catch {
        bad();
      }
      i = skipWs(body, nameEnd);
      if (body[i] !== 0x3a) bad();
      const vs = skipWs(body, i + 1);
      const ve = endOfValue(body, vs);
      if (ve < 0) bad();
      if (wanted.includes(name as string)) {
        // JSON.parse keeps the last of two equal names; refuse the ambiguity.
        if (ranges.has(name as string)) throw new OidcError(`${step} failed: the answer repeats ${name as string}`, `${tag}_BAD_ANSWER`);
        ranges.set(name as string, [vs, ve]);
      }
      i = skipWs(body, ve);
      if (body[i] === 0x2c) {
        i = skipWs(body, i + 1);
        continue;
      }
      if (body[i] !== 0x7d) bad();
      i++;
      break;
    }
  }
  if (skipWs(body, i) !== body.length) bad();
  const copy = offHeap(body.length);
  body.copy(copy);
  const secret = ranges.get(wanted[0]!);
  // The quotes stay, the contents become 'x': still one valid JSON string.
  if (secret && body[secret[0]] === 0x22) copy.fill(0x78, secret[0] + 1, secret[1] - 1);
  let decoded: unknown;
  try {
    decoded = JSON.parse(copy.toString('utf8'));
  } catch {
    decoded = null;
  } finally {
    copy.fill(0);
  }
  if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) bad();
  return { ranges, decoded: decoded as Record<string, unknown> };
}

/** The contents' range of the secret member: a JSON string of token68 bytes (so without escapes). */
function secretString(body: Buffer, m: Members, name: string, message: string, tag: string): [number, number] {
  const r = m.ranges.get(name);
  if (!r || body[r[0]] !== 0x22 || body[r[1] - 1] !== 0x22 || r[1] - r[0] < 2 || !isToken68(body, r[0] + 1, r[1] - 1)) {
    throw new OidcError(message, `${tag}_BAD_ANSWER`);
  }
  return [r[0] + 1, r[1] - 1];
}

const isWs = (c: number | undefined): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

function skipWs(b: Buffer, i: number): number {
  while (i < b.length && isWs(b[i])) i++;
  return i;
}

/** b[i] is a quote: the offset past the closing quote, or -1. */
function endOfString(b: Buffer, i: number): number {
  for (let j = i + 1; j < b.length; j++) {
    if (b[j] === 0x5c) j++;
    else if (b[j] === 0x22) return j + 1;
  }
  return -1;
}

/** The offset past the JSON value starting at i, or -1; JSON.parse judges its grammar later. */
function endOfValue(b: Buffer, i: number): number {
  const c = b[i];
  if (c === 0x22) return endOfString(b, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (let j = i; j < b.length; j++) {
      const d = b[j];
      if (d === 0x22) {
        const e = endOfString(b, j);
        if (e < 0) return -1;
        j = e - 1;
      } else if (d === 0x7b || d === 0x5b) depth++;
      else if ((d === 0x7d || d === 0x5d) && --depth === 0) return j + 1;
    }
    return -1;
  }
  let j = i;
  while (j < b.length && !isWs(b[j]) && b[j] !== 0x2c && b[j] !== 0x7d && b[j] !== 0x5d) j++;
  return j > i ? j : -1;
}
