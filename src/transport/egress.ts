// Egress: how a byte stream to the upstream is obtained. Directly, or through
// the http proxy that the usual environment variables name: a CONNECT tunnel
// for an https upstream, the proxy itself (absolute-form target) for an http
// one. upstream.ts layers TLS on what this returns and never learns which.
//
// The variables are read once, at start-up (parseEgressEnv), with curl's
// conventions (libcurl-env(3), everything.curl.dev "Proxy environment
// variables"): the lowercase name first, then the uppercase one; a
// scheme-specific variable before ALL_PROXY; NO_PROXY before both. As reqwest
// and Go do (golang/go#16405, "httpoxy"), HTTP_PROXY is ignored when
// REQUEST_METHOD says the process runs under CGI, where a client's `Proxy:`
// header can set it.
import net from 'node:net';
import { MessageParser } from '../http/parser.js';
import { readMessage, type MessageEvents } from '../http/message.js';

export interface Dest {
  secure: boolean;
  /** Host without IPv6 brackets. */
  host: string;
  port: number;
}

export interface HttpProxy {
  host: string;
  port: number;
  /** `Proxy-Authorization: Basic …\r\n` when the URL carries credentials, else empty. */
  authLine: Buffer;
}

export interface EgressConfig {
  https: HttpProxy | null;
  http: HttpProxy | null;
  noProxy: NoProxyRule[];
}

type NoProxyRule =
  | { kind: 'all' }
  | { kind: 'name'; name: string; port: number }
  | { kind: 'cidr'; family: 4 | 6; bits: bigint; prefix: number; port: number };

export class EgressError extends Error {}

/** No proxy: every connection is direct. */
export const NO_EGRESS: EgressConfig = { https: null, http: null, noProxy: [] };

/** Reads the proxy variables; throws EgressError with a one-line message that never holds a credential. */
export function parseEgressEnv(env: NodeJS.ProcessEnv): EgressConfig {
  const pick = (lower: string): [string, string] | null => {
    for (const name of [lower, lower.toUpperCase()]) {
      if (name === 'HTTP_PROXY' && env.REQUEST_METHOD !== undefined) continue;
      const v = env[name]?.trim();
      if (v) return [name, v];
    }
    return null;
  };
  const all = pick('all_proxy');
  const https = pick('https_proxy') ?? all;
  const http = pick('http_proxy') ?? all;
  const no = pick('no_proxy');
  if (!https && !http) return NO_EGRESS;
  return {
    https: https ? parseProxyUrl(...https) : null,
    http: http ? parseProxyUrl(...http) : null,
    noProxy: no ? parseNoProxy(no[1]) : [],
  };
}

function parseProxyUrl(variable: string, raw: string): HttpProxy {
  // As curl and reqwest do, a value without a scheme is an http proxy.
  const text = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(raw) ? raw : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // The value may hold a password: name the variable only.
    throw new EgressError(`${variable} is not a valid proxy URL`);
  }
  if (url.protocol === 'https:') {
    throw new EgressError(`${variable}: https:// proxy URLs (TLS to the proxy itself) are not supported; use the proxy's http:// address (the upstream's own TLS still runs end to end inside the tunnel)`);
  }
  if (url.protocol !== 'http:') throw new EgressError(`${variable}: only http:// proxies are supported, not ${url.protocol.slice(0, -1)}`);
  if (!url.hostname) throw new EgressError(`${variable} must name the proxy's host`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) throw new EgressError(`${variable} must be http://[user:password@]host[:port] with no path`);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port ? Number(url.port) : 80;
  let authLine = Buffer.alloc(0);
  if (url.username || url.password) {
    let user: string;
    let pass: string;
    try {
      user = decodeURIComponent(url.username);
      pass = decodeURIComponent(url.password);
    } catch {
      throw new EgressError(`${variable}: the proxy credentials are not valid percent-encoding`);
    }
    // RFC 7617 §2: base64 of user-id ":" password, UTF-8.
    authLine = Buffer.from(`Proxy-Authorization: Basic ${Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')}\r\n`, 'latin1');
  }
  return { host, port, authLine };
}

/**
 * NO_PROXY: comma-separated; `*` bypasses everything; an IP literal or CIDR
 * range matches IP hosts in it; any other entry is a domain that matches
 * itself and its subdomains, with or without a leading dot (as curl >= 7.86
 * and reqwest do); any entry may end in `:port` to match that port only.
 */
function parseNoProxy(raw: string): NoProxyRule[] {
  const rules: NoProxyRule[] = [];
  for (const part of raw.split(',')) {
    let entry = part.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') {
      rules.push({ kind: 'all' });
      continue;
    }
    let port = 0;
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    if (bracketed) {
      entry = bracketed[1]!;
      port = bracketed[2] ? Number(bracketed[2]) : 0;
    } else {
      const hp = /^([^:]+):(\d+)$/.exec(entry);
      if (hp) {
        entry = hp[1]!;
        port = Number(hp[2]);
      }
    }
    const slash = entry.indexOf('/');
    const addr = slash < 0 ? entry : entry.slice(0, slash);
    const family = net.isIP(addr);
    if (family) {
      const width = family === 4 ? 32 : 128;
      const prefix = slash < 0 ? width : Number(entry.slice(slash + 1));
      // A malformed range is skipped rather than fatal, as reqwest does.
      if (!(Number.isInteger(prefix) && prefix >= 0 && prefix <= width)) continue;
      rules.push({ kind: 'cidr', family: family as 4 | 6, bits: ipBits(addr, family as 4 | 6), prefix, port });
      continue;
    }
    const name = entry.replace(/^\*?\./, '').replace(/\.$/, '');
    if (name) rules.push({ kind: 'name', name, port });
  }
  return rules;
}

function ipBits(ip: string, family: 4 | 6): bigint {
  if (family === 4) return ip.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
  // Expand "::" and a trailing dotted quad into eight 16-bit groups.
  let text = ip;
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const v = ipBits(quad[1]!, 4);
    text = `${text.slice(0, -quad[1]!.length)}${(v >> 16n).toString(16)}:${(v & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function bypass(rules: NoProxyRule[], d: Dest): boolean {
  const host = d.host.toLowerCase().replace(/\.$/, '');
  const family = net.isIP(host);
  for (const r of rules) {
    if (r.kind === 'all') return true;
    if (r.port && r.port !== d.port) continue;
    if (r.kind === 'name') {
      if (!family && (host === r.name || host.endsWith(`.${r.name}`))) return true;
    } else if (family === r.family) {
      const width = BigInt(r.family === 4 ? 32 : 128);
      const shift = width - BigInt(r.prefix);
      if (ipBits(host, r.family) >> shift === r.bits >> shift) return true;
    }
  }
  return false;
}

/** A loopback upstream is this machine: no proxy could reach it on our behalf. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The proxy a connection to `d` goes through, or null for a direct one. */
export function proxyFor(d: Dest, c: EgressConfig): HttpProxy | null {
  const proxy = d.secure ? c.https : c.http;
  if (!proxy || isLoopbackHost(d.host) || bypass(c.noProxy, d)) return null;
  return proxy;
}

/**
 * For an http upstream reached through a forward proxy, the request must name
 * the origin in absolute form (RFC 9112 §3.2.2) and carry the proxy's
 * credentials; `null` when the request goes straight to the origin or through
 * a tunnel, where the origin-form target is right.
 */
export function forwardProxy(d: Dest, c: EgressConfig): HttpProxy | null {
  return d.secure ? null : proxyFor(d, c);
}

export type Dialed = (err: NodeJS.ErrnoException | null) => void;

// A CONNECT response head has no business being large.
const MAX_CONNECT_HEAD = 16 * 1024;

/**
 * Opens the byte stream that reaches `d`: a TCP connection to it, to the
 * forward proxy (http), or a CONNECT tunnel through the proxy (https). Calls
 * `ready` once the stream may carry the caller's first byte. The socket is
 * returned at once so the caller's deadline can destroy it in any phase.
 */
export function dial(d: Dest, c: EgressConfig, options: Partial<net.NetConnectOpts>, ready: Dialed): net.Socket {
  const proxy = proxyFor(d, c);
  const to = proxy ?? d;
  const sock = net.connect({ ...options, host: to.host, port: to.port } as net.NetConnectOpts);
  sock.setNoDelay(true);
  if (!proxy) {
    sock.once('connect', () => ready(null));
    return sock;
  }
  // Until the stream is ready, a socket error is the proxy's: say so in the
  // code the client sees (PROXY_ECONNREFUSED), never with the proxy's URL.
  let settled = false;
  const settle = (err: NodeJS.ErrnoException | null): void => {
    if (settled) return;
    settled = true;
    sock.removeListener('error', onError);
    ready(err);
  };
  const onError = (err: NodeJS.ErrnoException): void => settle(Object.assign(new Error('proxy connection failed'), { code: `PROXY_${err.code ?? 'ERROR'}` }));
  sock.on('error', onError);
  if (!d.secure) {
    sock.once('connect', () => settle(null));
    return sock;
  }
  sock.once('connect', () => {
    const authority = d.host.includes(':') ? `[${d.host}]:${d.port}` : `${d.host}:${d.port}`;
    // RFC 9110 §9.3.6: the target is the authority; Host repeats it, as the
    // original (reqwest) sends it.
    sock.write(Buffer.concat([Buffer.from(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`, 'latin1'), proxy.authLine, Buffer.from('\r\n')]));
    const parser = new MessageParser('RESPONSE', MAX_CONNECT_HEAD);
    const fail = (code: string): void => {
      done();
      settle(Object.assign(new Error('proxy tunnel failed'), { code }));
    };
    // Also on close, for a deadline that destroyed the socket mid-CONNECT:
    // the wasm parser is held until destroy().
    const done = (): void => {
      sock.removeListener('data', onData);
      sock.removeListener('end', onEnd);
      sock.removeListener('close', done);
      parser.destroy();
    };
    const onEnd = (): void => fail('PROXY_CLOSED');
    sock.once('close', done);
    const reply: MessageEvents = {
      head: (rest) => {
        if (parser.interim) return false;
        if (parser.status < 200 || parser.status > 299) fail(`PROXY_STATUS_${parser.status}`);
        // TLS's client speaks first (RFC 8446 §2), so a byte here came from
        // the proxy, not the upstream: a tunnel that already lies.
        else if (rest !== 0) fail('PROXY_BAD_RESPONSE');
        else {
          done();
          sock.pause();
          settle(null);
        }
        return true;
      },
      error: () => fail('PROXY_BAD_RESPONSE'),
    };
    const onData = (chunk: Buffer): void => readMessage(parser, chunk, reply);
    sock.on('data', onData);
    sock.on('end', onEnd);
  });
  return sock;
}
