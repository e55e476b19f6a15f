// What --upstream-url names. How a connection to it is made is connect.ts;
// the idle keep-alive connections are pool.ts.
import { isLoopbackHost } from './egress.js';

export interface Upstream {
  secure: boolean;
  /** Host to connect to, without IPv6 brackets. */
  host: string;
  port: number;
  /** The Host header value: host, plus the port only when the URL names one. */
  hostHeader: string;
  /** Path and query of the URL: the upstream request target. */
  target: string;
}

export const DEFAULT_UPSTREAM = 'https://api.openai.com/v1/responses';

/** Throws an Error with a one-line message when the URL is unusable. */
export function parseUpstream(raw: string): Upstream {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`--upstream-url must be an absolute http(s) URL, got ${JSON.stringify(raw)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`--upstream-url must use http or https, not ${url.protocol.slice(0, -1)}`);
  }
  if (url.username || url.password) throw new Error('--upstream-url must not carry credentials; the key comes from stdin');
  if (url.hash || raw.includes('#')) throw new Error('--upstream-url must not carry a fragment');
  if (!url.hostname) throw new Error('--upstream-url must name a host');
  const secure = url.protocol === 'https:';
  return {
    secure,
    host: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
    port: url.port ? Number(url.port) : secure ? 443 : 80,
    hostHeader: url.host,
    target: url.pathname + url.search,
  };
}

export function isLoopback(u: Upstream): boolean {
  return isLoopbackHost(u.host);
}
