// Decides, from the head alone, what happens to a request. Nothing here reads
// a body byte, decodes the target or resolves a URL: the raw target bytes are
// compared with the one allowed literal.
import type { ErrorKind } from './errors.js';
import { bytesAre, nameIs, value, type RequestHead } from '../http/head.js';

export type Verdict =
  | { kind: 'forward' }
  | { kind: 'shutdown' }
  | { kind: 'reject'; error: ErrorKind };

/** What admission knows about the server it guards. */
export interface Admission {
  /** Lower-case Host values that name this listener (listenerHosts()). */
  hosts: ReadonlySet<string>;
  /** GET /shutdown is honoured (--http-shutdown). */
  shutdown: boolean;
}

// A proxy that honoured these in Connection would drop the named header on
// the next hop (RFC 9110 §7.6.1), which lets a client strip the injected key
// or the framing the relay judged. No legitimate client names them.
const PROTECTED = new Set(['host', 'authorization', 'api-key', 'upgrade', 'content-length', 'transfer-encoding']);

// The names every client of a loopback listener puts in Host: Codex
// (reqwest), Node's fetch and the openai SDK, curl and http.request all send
// the URL's host and port, so `http://127.0.0.1:PORT/v1` gives
// `127.0.0.1:PORT`. The relay listens on 127.0.0.1 only; [::1] and localhost
// are the other spellings of loopback a client configuration may hold.
const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];

// --allow-host: a DNS name (underscores allowed, as container names have
// them), an IPv4 address or a bracketed IPv6 literal, with an optional port.
// No wildcard: each name is one more origin a page could rebind.
const LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
const ALLOW_HOST = new RegExp(`^(${LABEL}(?:\\.${LABEL})*|\\[[0-9A-Fa-f:.]+\\])(?::(\\d{1,5}))?$`);

/** Null when `raw` is a valid --allow-host value, else why not. */
export function allowHostError(raw: string): string | null {
  const m = ALLOW_HOST.exec(raw);
  if (!m) return 'must be NAME or NAME:PORT (a DNS name, an IPv4 address or an [IPv6] literal; no wildcard)';
  if (m[2] !== undefined && !(Number(m[2]) >= 1 && Number(m[2]) <= 65535 && !m[2].startsWith('0'))) return 'has a port outside 1-65535';
  return null;
}

/**
 * The Host values admitted for a listener on `port`: each loopback name bare
 * and with the port, and each --allow-host entry (validated by
 * allowHostError): NAME admits NAME and NAME:<port>, NAME:PORT only itself.
 * Lower case: RFC 3986 §3.2.2 makes the host case-insensitive.
 */
export function listenerHosts(port: number, allowed: readonly string[]): Set<string> {
  const hosts = new Set<string>();
  for (const raw of [...LOOPBACK_NAMES, ...allowed]) {
    const name = raw.toLowerCase();
    hosts.add(name);
    if (ALLOW_HOST.exec(name)?.[2] === undefined) hosts.add(`${name}:${port}`);
  }
  return hosts;
}

export function admit(h: RequestHead, a: Admission): Verdict {
  // Who is asking comes before what is asked: a request meant for another
  // authority, or made by a web page, gets that answer whatever its target,
  // so neither can reach GET /shutdown (a cross-site <img> carries
  // Sec-Fetch-Site but no Origin).
  const caller = checkCaller(h, a.hosts);
  if (caller) return { kind: 'reject', error: caller };
  // What is not POST /v1/responses is refused next, whatever else is wrong
  // with it: it is never forwarded and its body never read, so its framing
  // cannot matter, and the answer a client gets is the one that tells it why.
  const get = bytesAre(h.buf, h.method, 'GET');
  if (a.shutdown && get && bytesAre(h.buf, h.target, '/shutdown')) return { kind: 'shutdown' };
  const responses = bytesAre(h.buf, h.target, '/v1/responses');
  if (!responses || !bytesAre(h.buf, h.method, 'POST')) {
    // Codex tries the Responses WebSocket first. A 426 makes it fall back to
    // HTTP at once; on a 403 it retries with backoff, about 7 s per session.
    if (responses && get && upgradesTo(h, 'websocket')) return { kind: 'reject', error: 'websocket' };
    return { kind: 'reject', error: looksAzure(h) ? 'azure_client' : 'forbidden' };
  }
  const framing = checkFraming(h);
  if (framing === 'ok') return { kind: 'forward' };
  // RFC 9112 §6.3 rule 7 gives such a request an empty body; a Responses call
  // always has one, so the client has most likely lost its framing.
  return { kind: 'reject', error: framing === 'none' ? 'length_required' : framing };
}

// RFC 9112 §3.2 with RFC 3986 §3.2.2-3.2.3: uri-host [ ":" port ].
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::\d*)?$/;

/**
 * The request's Host, Origin and Sec-Fetch-Site, judged before anything else.
 * - Host must name this listener. A page that rebinds its own DNS name to
 *   127.0.0.1 sends its name here, and to the browser the relay's answer is
 *   then same-origin and readable. 421: RFC 9110 §15.5.20 has an origin
 *   server (or a gateway acting for one) send it for a target URI whose
 *   authority it is not configured for.
 * - A browser sends Origin on every POST and every cross-origin request, and
 *   Sec-Fetch-Site on every request to a potentially trustworthy URL, which
 *   loopback is (Fetch Metadata); a page can remove neither. `none` is a
 *   navigation the user typed. No client of this relay sends either, but
 *   Node's fetch sends Sec-Fetch-Mode: cors on every request, so that one
 *   alone says nothing.
 */
function checkCaller(h: RequestHead, hosts: ReadonlySet<string>): ErrorKind | null {
  let hostLines = 0;
  let foreign = false;
  let browser = false;
  for (const f of h.fields) {
    if (nameIs(h, f, 'host')) {
      hostLines++;
      const v = value(h, f);
      // RFC 9112 §3.2: an invalid Host value is a 400, whoever it names.
      if (!HOST_VALUE.test(v)) return 'bad_host';
      if (!hosts.has(v.toLowerCase())) foreign = true;
    } else if (nameIs(h, f, 'origin') || (nameIs(h, f, 'sec-fetch-site') && value(h, f) !== 'none')) {
      browser = true;
    }
  }
  // RFC 9112 §3.2: more than one Host line is a 400. A missing one is judged
  // with the target: a request that is refused anyway gets its 403.
  if (hostLines > 1) return 'bad_host';
  if (foreign) return 'misdirected';
  return browser ? 'from_browser' : null;
}

const AZURE_PATH = Buffer.from('/openai/', 'latin1');
const API_VERSION = Buffer.from('api-version=', 'latin1');

/** The target of an AzureOpenAI client: an /openai/... path or an api-version query, as raw bytes. */
function looksAzure(h: RequestHead): boolean {
  const target = h.buf.subarray(h.target[0], h.target[1]);
  if (target.subarray(0, AZURE_PATH.length).equals(AZURE_PATH)) return true;
  const q = target.indexOf(0x3f);
  return q >= 0 && target.indexOf(API_VERSION, q) >= 0;
}

/** Some Upgrade line lists `protocol` (RFC 9110 §7.8; tokens are case-insensitive). */
function upgradesTo(h: RequestHead, protocol: string): boolean {
  return h.fields.some((f) => nameIs(h, f, 'upgrade') && value(h, f).split(',').some((p) => p.trim().toLowerCase() === protocol));
}

/** 'ok' when exactly one of Content-Length / chunked frames the body, 'none' when neither does. */
function checkFraming(h: RequestHead): ErrorKind | 'ok' | 'none' {
  // HTTP/1.0 has no chunked coding and other keep-alive rules; every client
  // of this relay speaks HTTP/1.1.
  if (!bytesAre(h.buf, h.version, 'HTTP/1.1')) return 'version';
  let hosts = 0;
  let lengths = 0;
  let encodings = 0;
  for (const f of h.fields) {
    const name = h.buf.toString('latin1', f.start, f.colon).toLowerCase();
    // Framing values end the line: llhttp reads "chunked<HTAB>" as not
    // chunked while a trimming reader says chunked (test/corpus: te-te-*).
    const bare = f.vEnd === f.next - 2;
    switch (name) {
      case 'host':
        hosts++;
        break;
      case 'content-length':
        lengths++;
        if (!bare || !/^\d{1,15}$/.test(value(h, f))) return 'ambiguous_framing';
        break;
      case 'transfer-encoding':
        encodings++;
        // Only the exact token: "chunked, chunked", "Chunked" or "gzip, chunked"
        // are read differently by different servers (TE.TE smuggling).
        if (!bare || value(h, f) !== 'chunked') return 'ambiguous_framing';
        break;
      // Servers that map "_" to "-" (CGI-style) would read these as framing.
      case 'content_length':
      case 'transfer_encoding':
        return 'ambiguous_framing';
      case 'upgrade':
        return 'hop_by_hop';
      case 'connection':
        for (const token of value(h, f).split(',')) {
          if (PROTECTED.has(token.trim().toLowerCase())) return 'hop_by_hop';
        }
    }
  }
  // RFC 9112 §3.2: a request to be forwarded has exactly one Host (more
  // than one was refused in checkCaller).
  if (hosts !== 1) return 'bad_host';
  // RFC 9112 §6.1 and §6.3: never forward a message whose length two readers could disagree on.
  if (lengths + encodings > 1) return 'ambiguous_framing';
  return lengths + encodings === 1 ? 'ok' : 'none';
}
