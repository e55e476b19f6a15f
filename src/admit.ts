// Decides, from the head alone, what happens to a request. Nothing here reads
// a body byte, decodes the target or resolves a URL: the raw target bytes are
// compared with the one allowed literal.
import type { ErrorKind } from './errors.js';
import { bytesAre, nameIs, value, type RequestHead } from './head.js';

export type Verdict =
  | { kind: 'forward' }
  | { kind: 'shutdown' }
  | { kind: 'reject'; error: ErrorKind };

// A proxy that honoured these in Connection would drop the named header on
// the next hop (RFC 9110 §7.6.1), which lets a client strip the injected key
// or the framing the relay judged. No legitimate client names them.
const PROTECTED = new Set(['host', 'authorization', 'upgrade', 'content-length', 'transfer-encoding']);

export function admit(h: RequestHead, shutdownEnabled: boolean): Verdict {
  const framing = checkFraming(h);
  if (framing !== 'ok' && framing !== 'none') return { kind: 'reject', error: framing };

  const isGet = bytesAre(h.buf, h.method, 'GET');
  if (shutdownEnabled && isGet && bytesAre(h.buf, h.target, '/shutdown')) return { kind: 'shutdown' };
  if (!bytesAre(h.buf, h.method, 'POST') || !bytesAre(h.buf, h.target, '/v1/responses')) {
    return { kind: 'reject', error: 'forbidden' };
  }
  // RFC 9112 §6.3 rule 7 gives such a request an empty body; a Responses call
  // always has one, so the client has most likely lost its framing.
  if (framing === 'none') return { kind: 'reject', error: 'length_required' };
  return { kind: 'forward' };
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
    if (nameIs(h, f, 'host')) hosts++;
    else if (nameIs(h, f, 'content-length')) {
      lengths++;
      if (!/^\d{1,15}$/.test(value(h, f))) return 'ambiguous_framing';
    } else if (nameIs(h, f, 'transfer-encoding')) {
      encodings++;
      // Only the exact token: "chunked, chunked", "Chunked" or "gzip, chunked"
      // are read differently by different servers (TE.TE smuggling).
      if (value(h, f) !== 'chunked') return 'ambiguous_framing';
    } else if (nameIs(h, f, 'upgrade')) return 'hop_by_hop';
    else if (nameIs(h, f, 'connection')) {
      for (const token of value(h, f).split(',')) {
        if (PROTECTED.has(token.trim().toLowerCase())) return 'hop_by_hop';
      }
    }
  }
  // RFC 9112 §3.2: exactly one Host, or 400.
  if (hosts !== 1) return 'bad_host';
  // RFC 9112 §6.1 and §6.3: never forward a message whose length two readers could disagree on.
  if (lengths + encodings > 1) return 'ambiguous_framing';
  return lengths + encodings === 1 ? 'ok' : 'none';
}
