// Builds the head the upstream receives. Admission only lets through
// `POST /v1/responses HTTP/1.1`, so the request line, the Host line and the
// Authorization line are the same for every request and are built once; the
// client's other field lines follow them byte for byte, in their order.
import type { RequestHead } from '../http/head.js';
import { nameIs } from '../http/head.js';
import type { Upstream } from '../transport/upstream.js';

/**
 * The request line and Host line; the credential's line is kept apart
 * (credential/). Host comes first, as RFC 9112 §3.2 asks of user agents.
 * Through a forward proxy (http upstream, HTTP_PROXY: the transport's
 * forwardProxy()), the target is in absolute form (RFC 9112 §3.2.2) and the
 * proxy's own credentials (`authLine`, maybe empty) follow Host.
 */
export function requestPrefix(u: Upstream, proxy: { authLine: Buffer } | null): Buffer {
  const target = proxy ? `http://${u.hostHeader}${u.target}` : u.target;
  const line = Buffer.from(`POST ${target} HTTP/1.1\r\nHost: ${u.hostHeader}\r\n`, 'latin1');
  return proxy ? Buffer.concat([line, proxy.authLine]) : line;
}

/**
 * Lines that never pass: Host and the credential's lines are the relay's own
 * (both credential headers, whichever --auth-header injects, so a client can
 * neither add a second credential nor pick one); Proxy-Authorization is for
 * the next hop only (RFC 9110 §11.7.2), which for a client is this relay.
 */
const DROPPED = ['host', 'authorization', 'api-key', 'proxy-authorization'];

/** The client's field lines minus the DROPPED ones, then the empty line. */
export function forwardedFields(h: RequestHead): Buffer {
  const keep = h.fields.filter((f) => !DROPPED.some((name) => nameIs(h, f, name)));
  let size = 2;
  for (const f of keep) size += f.next - f.start;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const f of keep) at += h.buf.copy(out, at, f.start, f.next);
  out[at] = 0x0d;
  out[at + 1] = 0x0a;
  return out;
}
