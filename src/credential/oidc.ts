// GitHub Actions workload identity: the job's OIDC request token (stdin) buys
// a GitHub-signed JWT, and the JWT buys a short-lived OpenAI access token.
// Both calls go out on the relay's own raw client (https-call.ts). The three
// secrets (request token, JWT, access token) live only in Buffers: answers
// are scanned at byte level (json-scan.ts), and only a copy whose secret
// bytes are blanked is ever decoded.
import { offHeap } from '../secret/key.js';
import type { Connector } from '../transport/connect.js';
import { parseUpstream } from '../transport/upstream.js';
import { CallError, httpsCall, MAX_BODY } from './https-call.js';
import { answer, JsonScanError, secretString, type Members } from './json-scan.js';
import type { OidcConfig } from './oidc-config.js';

/** Longest token accepted at any step (the original's key limit is 1,017; JWTs are longer). */
const MAX_TOKEN = 16 * 1024;

const BEARER = Buffer.from('Authorization: Bearer ', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');
const ISSUED_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

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
  const u = cfg.requestUrl;
  const query = new URLSearchParams(u.search);
  query.delete('audience');
  query.append('audience', cfg.audience);
  const head = Buffer.from(`GET ${u.pathname}?${query.toString()} HTTP/1.1\r\nHost: ${u.host}\r\n`, 'latin1');
  const tail = Buffer.from('Accept: application/json\r\nConnection: close\r\n\r\n', 'latin1');
  const body = await call(connector, GITHUB, u, [head, BEARER, requestToken, CRLF, tail]);
  try {
    const [, s, e] = scan(body, GITHUB, 'value', [], "the answer's value");
    const jwt = offHeap(e - s);
    body.copy(jwt, 0, s, e);
    return jwt;
  } finally {
    body.fill(0);
  }
}

/** RFC 8693 token exchange at the OpenAI token endpoint. */
async function exchange(cfg: OidcConfig, jwt: Buffer, connector: Connector): Promise<Issued> {
  const u = cfg.exchangeUrl;
  const before = Buffer.from(
    '{"grant_type":"urn:ietf:params:oauth:grant-type:token-exchange","subject_token_type":"urn:ietf:params:oauth:token-type:jwt","subject_token":"',
    'latin1',
  );
  const after = Buffer.from(`","identity_provider_id":${JSON.stringify(cfg.identityProviderId)},"service_account_id":${JSON.stringify(cfg.serviceAccountId)}}`, 'utf8');
  const length = before.length + jwt.length + after.length;
  // The answers' cap bounds what is sent too.
  if (length > MAX_BODY) throw new OidcError(`${EXCHANGE.name} failed: its request body would exceed ${MAX_BODY} bytes`, 'EXCHANGE_REQUEST_TOO_LARGE');
  const head = Buffer.from(
    `POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: ${length}\r\nConnection: close\r\n\r\n`,
    'latin1',
  );
  const body = await call(connector, EXCHANGE, u, [head, before, jwt, after]);
  try {
    const [at, s, e] = scan(body, EXCHANGE, 'access_token', ['issued_token_type', 'token_type', 'expires_in', 'expires_at'], 'access_token');
    const bad = (what: string): never => {
      throw new OidcError(`${EXCHANGE.name} failed: ${what}`, 'EXCHANGE_BAD_ANSWER');
    };
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

/** How a step names itself in its failures. */
interface Step {
  /** "<name> failed: <why>". */
  name: string;
  /** A refusal, in the original's words: "<rejected> rejected (HTTP 500)". */
  rejected: string;
  /** The prefix of its errno-style codes (GITHUB_HTTP_500). */
  tag: string;
}

const GITHUB: Step = { name: 'GitHub OIDC token request', rejected: 'GitHub OIDC token request', tag: 'GITHUB' };
const EXCHANGE: Step = { name: 'OpenAI workload identity token exchange', rejected: 'OpenAI workload identity token request', tag: 'EXCHANGE' };

/** One step's call; its failures name the step and, for a refusal, the status, never a body byte. */
async function call(connector: Connector, step: Step, u: URL, parts: Buffer[]): Promise<Buffer> {
  const ep = parseUpstream(u.href);
  try {
    return await httpsCall(connector, ep, parts);
  } catch (err) {
    if (!(err instanceof CallError)) throw err;
    if (err.status) throw new OidcError(`${step.rejected} rejected (HTTP ${err.status})`, `${step.tag}_${err.code}`);
    throw new OidcError(`${step.name} failed: ${err.message}`, `${step.tag}_${err.code}`);
  }
}

/** The answer's members and the range of its secret's bytes; `what` names the secret when it is not a token. */
function scan(body: Buffer, step: Step, secret: string, others: readonly string[], what: string): [Members, number, number] {
  const bad = (why: string): OidcError => new OidcError(`${step.name} failed: ${why}`, `${step.tag}_BAD_ANSWER`);
  let at: Members;
  try {
    at = answer(body, secret, others);
  } catch (err) {
    throw err instanceof JsonScanError ? bad(err.message) : err;
  }
  const r = secretString(body, at, secret, MAX_TOKEN);
  if (!r) throw bad(`${what} is not a token68 string of 1 to ${MAX_TOKEN} bytes`);
  return [at, r[0], r[1]];
}
