// Decides, from the head alone, what happens to a request. Nothing here reads
// a body byte, decodes the target or resolves a URL: the raw target bytes are
// compared with the one allowed literal.
import type { ErrorKind } from './errors.js';
import { bytesAre, value, type RequestHead } from './head.js';

export type Verdict =
  | { kind: 'forward' }
  | { kind: 'shutdown' }
  | { kind: 'reject'; error: ErrorKind };

// A proxy that honoured these in Connection would drop the named header on
// the next hop (RFC 9110 §7.6.1), which lets a client strip the injected key
// or the framing the relay judged. No legitimate client names them.
const PROTECTED = new Set(['host', 'authorization', 'api-key', 'upgrade', 'content-length', 'transfer-encoding']);

export function admit(h: RequestHead, shutdownEnabled: boolean): Verdict {
  // What is not POST /v1/responses is refused first, whatever else is wrong
  // with it: it is never forwarded and its body never read, so its framing
  // cannot matter, and the answer a client gets is the one that tells it why.
  if (shutdownEnabled && bytesAre(h.buf, h.method, 'GET') && bytesAre(h.buf, h.target, '/shutdown')) return { kind: 'shutdown' };
  if (!bytesAre(h.buf, h.method, 'POST') || !bytesAre(h.buf, h.target, '/v1/responses')) {
    return { kind: 'reject', error: 'forbidden' };
  }
  const framing = checkFraming(h);
  if (framing === 'ok') return { kind: 'forward' };
  // RFC 9112 §6.3 rule 7 gives such a request an empty body; a Responses call
  // always has one, so the client has most likely lost its framing.
  return { kind: 'reject', error: framing === 'none' ? 'length_required' : framing };
}

// RFC 9112 §3.2 with RFC 3986 §3.2.2-3.2.3: uri-host [ ":" port ]. The
// relay replaces Host, but a value no server could read means the client is
// not speaking HTTP as the relay understands it.
const HOST_VALUE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::\d*)?$/;

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
        if (!HOST_VALUE.test(value(h, f))) return 'bad_host';
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
  // RFC 9112 §3.2: exactly one Host, or 400.
  if (hosts !== 1) return 'bad_host';
  // RFC 9112 §6.1 and §6.3: never forward a message whose length two readers could disagree on.
  if (lengths + encodings > 1) return 'ambiguous_framing';
  return lengths + encodings === 1 ? 'ok' : 'none';
}
