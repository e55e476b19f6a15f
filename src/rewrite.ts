// Builds the head the upstream receives. Admission only lets through
// `POST /v1/responses HTTP/1.1`, so the request line, the Host line and the
// Authorization line are the same for every request and are built once; the
// client's other field lines follow them byte for byte, in their order.
import type { RequestHead } from './head.js';
import { nameIs } from './head.js';
import type { Upstream } from './upstream.js';

/**
 * The request line and Host line; the key's line is kept apart (key.ts).
 * Host comes first, as RFC 9112 §3.2 asks of user agents.
 */
export function requestPrefix(u: Upstream): Buffer {
  return Buffer.from(`POST ${u.target} HTTP/1.1\r\nHost: ${u.hostHeader}\r\n`, 'latin1');
}

/** The client's field lines minus every Host and Authorization line, then the empty line. */
export function forwardedFields(h: RequestHead): Buffer {
  const keep = h.fields.filter((f) => !nameIs(h, f, 'host') && !nameIs(h, f, 'authorization'));
  let size = 2;
  for (const f of keep) size += f.next - f.start;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const f of keep) at += h.buf.copy(out, at, f.start, f.next);
  out[at] = 0x0d;
  out[at + 1] = 0x0a;
  return out;
}
