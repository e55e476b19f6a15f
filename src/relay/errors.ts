// Every way a request can fail, with the status the client sees. The message
// is fixed text: nothing from the request, the key or an exception's stack is
// ever interpolated into what a client or the log receives. Each entry:
// status, reason, message, the header lines that replace `Connection: close`
// ({message} stands for the message), and the body's error.type.

export const ERRORS = {
  bad_request: [400, 'Bad Request', 'malformed HTTP/1.1 request'],
  ambiguous_framing: [400, 'Bad Request', 'ambiguous or unsupported message framing'],
  bad_host: [400, 'Bad Request', 'exactly one Host header is required'],
  hop_by_hop: [400, 'Bad Request', 'Upgrade, or Connection naming a protected header, is not allowed'],
  forbidden: [403, 'Forbidden', 'only POST /v1/responses is allowed'],
  // openai.AzureOpenAI always posts to /openai/... with ?api-version=: the
  // plain OpenAI client with this relay's /v1 base URL is what works.
  azure_client: [
    403,
    'Forbidden',
    'only POST /v1/responses is allowed; for Azure, point a plain OpenAI client (not AzureOpenAI) at base URL http://127.0.0.1:PORT/v1 and name the deployment in --upstream-url (README: Azure)',
  ],
  from_browser: [403, 'Forbidden', 'requests made by a web page (Origin, or Sec-Fetch-Site other than none) are refused'],
  head_timeout: [408, 'Request Timeout', 'request head not received in time'],
  length_required: [411, 'Length Required', 'request body needs Content-Length or chunked encoding'],
  misdirected: [421, 'Misdirected Request', 'Host must name this listener: 127.0.0.1, localhost or [::1], with its port'],
  // RFC 9110 §15.5.22: a 426 names the protocol to use in Upgrade, and
  // §7.8: whoever sends Upgrade lists it in Connection. That protocol is
  // plain HTTP/1.1, which the client already speaks.
  websocket: [426, 'Upgrade Required', 'WebSocket is not supported: send POST /v1/responses over HTTP/1.1', 'Upgrade: HTTP/1.1\r\nConnection: upgrade, close\r\n'],
  head_too_large: [431, 'Request Header Fields Too Large', 'request head too large'],
  trailers_too_large: [431, 'Request Header Fields Too Large', 'request trailers larger than --max-head-bytes'],
  // The spend guard (gate.ts). Codex 0.171 ends a turn at once, without
  // retrying, on a 429 whose error.type is usage_limit_reached, and shows the
  // text of X-Codex-Promo-Message (codex-rs/codex-api/src/api_bridge.rs,
  // rate_limits.rs); on other 429 bodies it prints only "exceeded retry
  // limit" or "Quota exceeded". X-Should-Retry: false stops the openai SDKs'
  // own retries.
  budget_exhausted: [
    429,
    'Too Many Requests',
    'codex-responses-api-proxy budget exhausted',
    'X-Should-Retry: false\r\nX-Codex-Promo-Message: {message}\r\nConnection: close\r\n',
    'usage_limit_reached',
  ],
  upstream_unreachable: [502, 'Bad Gateway', 'upstream connection failed'],
  upstream_tls: [502, 'Bad Gateway', 'upstream TLS verification failed'],
  upstream_protocol: [502, 'Bad Gateway', 'upstream sent an invalid HTTP response'],
  upstream_head_too_large: [502, 'Bad Gateway', 'upstream response head larger than 256 KiB'],
  upstream_trailers_too_large: [502, 'Bad Gateway', 'upstream response trailers larger than 256 KiB'],
  upstream_closed: [502, 'Bad Gateway', 'upstream closed the connection before responding'],
  proxy_unreachable: [502, 'Bad Gateway', 'egress proxy connection failed'],
  proxy_refused: [502, 'Bad Gateway', 'egress proxy refused the CONNECT tunnel'],
  proxy_protocol: [502, 'Bad Gateway', 'egress proxy sent an invalid CONNECT response'],
  credential_unavailable: [503, 'Service Unavailable', 'no valid upstream credential'],
  // Only when every --max-connections slot has an exchange in progress: an idle one would have given way (slots.ts).
  too_many_connections: [503, 'Service Unavailable', 'every connection slot has a request in progress'],
  upstream_timeout: [504, 'Gateway Timeout', 'upstream did not accept the connection in time'],
  version: [505, 'HTTP Version Not Supported', 'only HTTP/1.1 is supported'],
} as const satisfies Record<string, readonly [number, string, string, string?, string?]>;

export type ErrorKind = keyof typeof ERRORS;

const rendered = new Map<ErrorKind, Buffer>();

/**
 * The full response for an error kind; it always closes the connection.
 * `cause` is an errno-style code (ECONNREFUSED, CERT_HAS_EXPIRED): it names
 * what went wrong without carrying any byte of the request. `detail` is text
 * from the operator's own configuration ("--max-tokens 1000 reached"), never
 * from a request: printable ASCII, so it can stand in a header line too.
 */
export function errorResponse(kind: ErrorKind, cause = '', detail = ''): Buffer {
  const safeCause = /^[A-Z0-9_]{1,64}$/.test(cause) ? cause : '';
  const safeDetail = /^[\x20-\x7e]{1,200}$/.test(detail) ? detail : '';
  const fixed = !safeCause && !safeDetail;
  let buf = fixed ? rendered.get(kind) : undefined;
  if (!buf) {
    const [status, reason, text, lines = 'Connection: close\r\n', type = 'proxy_error'] = ERRORS[kind] as readonly [number, string, string, string?, string?];
    let message = safeCause ? `${text} (${safeCause})` : text;
    if (safeDetail) message += `: ${safeDetail}`;
    const body = JSON.stringify({ error: { type, code: kind, message } });
    buf = Buffer.from(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n${lines.replace('{message}', message)}\r\n${body}`,
      'latin1',
    );
    if (fixed) rendered.set(kind, buf);
  }
  return buf;
}

/** Maps a socket error to the kind a client is told, by errno code only. */
export function upstreamErrorKind(err: NodeJS.ErrnoException): ErrorKind {
  const code = err.code ?? '';
  if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || code.includes('CERT') || code === 'HOSTNAME_MISMATCH' || code.startsWith('UNABLE_TO') || code.startsWith('SELF_SIGNED')) {
    return 'upstream_tls';
  }
  if (code === 'ETIMEDOUT') return 'upstream_timeout';
  // egress.ts: PROXY_STATUS_407 names the refusal's status code, never its body.
  if (code.startsWith('PROXY_STATUS_')) return 'proxy_refused';
  if (code === 'PROXY_BAD_RESPONSE' || code === 'PROXY_CLOSED') return 'proxy_protocol';
  if (code.startsWith('PROXY_')) return 'proxy_unreachable';
  return 'upstream_unreachable';
}
