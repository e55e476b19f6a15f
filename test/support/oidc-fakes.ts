// Local https fakes for GitHub's OIDC token endpoint and OpenAI's token
// exchange, over real sockets, with a CA made at test time (certs.ts). Each
// records every raw request (harness.ts's startUpstream) and answers with a
// replaceable responder, so a test can fail, hold or vary any step.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type net from 'node:net';
import { makeTestPki, type TestPki } from './certs.js';
import { startUpstream, type Received, type Responder, type Upstream } from './harness.js';

/** A JWT-shaped token (three base64url parts), distinctive enough to search memory for. */
export function fakeJwt(tag: string): string {
  const part = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT', kid: tag })}.${part({ sub: `repo:o/r:ref:refs/heads/main`, aud: 'api://openai', jti: crypto.randomUUID() })}.${crypto.randomBytes(256).toString('base64url')}`;
}

/** An access-token-shaped value (token68 with '.', '-', '_' and '='). */
export function fakeAccessToken(tag: string): string {
  return `oat.${tag}.${crypto.randomBytes(48).toString('base64url')}==`;
}

/** The GitHub runner's request token is an opaque JWT-ish string too. */
export function fakeRequestToken(): string {
  return `ghr.${crypto.randomBytes(600).toString('base64url')}`;
}

export function reply(sock: net.Socket, status: number, body: string | object, headers = ''): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  sock.end(`HTTP/1.1 ${status} X\r\nContent-Type: application/json\r\n${headers}Content-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
}

export interface Fakes {
  pki: TestPki;
  github: Upstream;
  exchange: Upstream;
  githubUrl: string;
  exchangeUrl: string;
  /** Every JWT the GitHub fake handed out, and every access token the exchange issued, in order. */
  jwts: string[];
  accessTokens: string[];
  /** Replace to change what the next requests get; `null` restores the default. */
  onGithub: Responder | null;
  onExchange: Responder | null;
  /** expires_in the default exchange answer gives. */
  lifetime: number;
  /** How far ahead its expires_at is, in seconds (1: "one second ahead", as issue 19 saw). */
  expiresAtIn: number;
  /** Environment for the proxy: trusts the test CA, points the exchange here. */
  env: () => NodeJS.ProcessEnv;
  args: (extra?: string[]) => string[];
  close: () => Promise<void>;
}

/** The two fakes, serving a certificate that also names `extraNames` (hosts a test reaches through its own CONNECT proxy). */
export async function startFakes(extraNames: string[] = []): Promise<Fakes> {
  const pki = makeTestPki(extraNames);
  const tlsOpts = { key: pki.key, cert: pki.cert };
  const fakes = { pki } as Fakes;
  fakes.jwts = [];
  fakes.accessTokens = [];
  fakes.onGithub = null;
  fakes.onExchange = null;
  fakes.lifetime = 3600;
  fakes.expiresAtIn = 3600;
  const githubDefault: Responder = (_req, sock) => {
    const jwt = fakeJwt(`jwt${fakes.jwts.length + 1}`);
    fakes.jwts.push(jwt);
    reply(sock, 200, { count: 1, value: jwt });
  };
  const exchangeDefault: Responder = (_req, sock) => {
    const token = fakeAccessToken(`t${fakes.accessTokens.length + 1}`);
    fakes.accessTokens.push(token);
    reply(sock, 200, {
      access_token: token,
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      expires_in: fakes.lifetime,
      expires_at: Math.floor(Date.now() / 1000) + fakes.expiresAtIn,
    });
  };
  fakes.github = await startUpstream((req: Received, sock) => (fakes.onGithub ?? githubDefault)(req, sock), tlsOpts);
  fakes.exchange = await startUpstream((req: Received, sock) => (fakes.onExchange ?? exchangeDefault)(req, sock), tlsOpts);
  fakes.githubUrl = `https://127.0.0.1:${fakes.github.port}/_apis/oidctoken?api-version=2.0&audience=stale`;
  fakes.exchangeUrl = `https://localhost:${fakes.exchange.port}/oauth/token`;
  fakes.env = () => ({
    PATH: process.env.PATH ?? '',
    NODE_EXTRA_CA_CERTS: pki.caFile,
    CODEX_RESPONSES_API_PROXY_TOKEN_EXCHANGE_URL: fakes.exchangeUrl,
  });
  fakes.args = (extra = []) => [
    '--github-oidc',
    '--oidc-audience',
    'api://openai workload',
    '--identity-provider-id',
    'idp_0123',
    '--service-account-id',
    'sa_4567',
    '--github-oidc-request-url',
    fakes.githubUrl,
    ...extra,
  ];
  fakes.close = async () => {
    await fakes.github.close();
    await fakes.exchange.close();
    fs.rmSync(pki.dir, { recursive: true, force: true });
  };
  return fakes;
}

/** An exchange answer with one field replaced (undefined deletes it). */
export function exchangeAnswer(patch: Record<string, unknown>): Responder {
  return (_req, sock) => {
    const base: Record<string, unknown> = {
      access_token: fakeAccessToken('patched'),
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      expires_in: 3600,
      expires_at: Math.floor(Date.now() / 1000) + 3600,
    };
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) delete base[k];
      else base[k] = v;
    }
    reply(sock, 200, base);
  };
}
