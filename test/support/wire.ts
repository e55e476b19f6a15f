// Helpers for the hostile-input tests (corpus, fuzz, limits, response side):
// a raw client that can half-close and count responses, an independent
// reference of the rewrite, and the relay started in this process (built by
// the CLI's own options.ts and wire.ts) so that fuzzing pays no spawn per
// case and a thrown exception fails the test.
import type net from 'node:net';
import { parseOptions } from '../../src/cli/options.js';
import { relayServer } from '../../src/cli/wire.js';
import { StaticCredential } from '../../src/credential/credential.js';
import { Connector, type Connected } from '../../src/transport/connect.js';
import { NO_EGRESS } from '../../src/transport/egress.js';
import { Trust } from '../../src/transport/trust.js';
import type { Upstream } from '../../src/transport/upstream.js';
import { KEY, rawExchange } from './harness.js';

export interface Played {
  data: Buffer;
  /** Status of each complete response in `data`, in order. */
  statuses: number[];
  /** The relay closed the connection (FIN or reset). */
  closed: boolean;
}

/**
 * Sends each part as its own write (flushed, then one turn of the event loop),
 * optionally half-closes, and collects until the relay closes, `responses`
 * complete responses arrived, or `ms` passed (never throws on timeout: the
 * caller asserts on what arrived).
 */
export async function play(port: number, parts: Buffer[], opts: { end?: boolean; responses?: number; ms?: number } = {}): Promise<Played> {
  const want = opts.responses;
  const r = await rawExchange(port, parts, {
    ms: opts.ms ?? 5000,
    quiet: true,
    ...(opts.end ? { end: true } : {}),
    ...(want !== undefined ? { until: (d: Buffer) => responses(d).length >= want } : {}),
  });
  return { data: r.data, statuses: responses(r.data).map((x) => x.status), closed: r.closed };
}

/** Complete Content-Length-framed responses at the start of `data` (1xx and no-length count as empty). */
export function responses(data: Buffer): { status: number; end: number }[] {
  const out: { status: number; end: number }[] = [];
  for (let i = 0; ; ) {
    const headEnd = data.indexOf('\r\n\r\n', i);
    if (headEnd < 0) return out;
    const head = data.toString('latin1', i, headEnd + 2);
    const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
    if (!m) return out;
    const cl = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
    const end = headEnd + 4 + (cl ? Number(cl[1]) : 0);
    if (data.length < end) return out;
    out.push({ status: Number(m[1]), end });
    i = end;
  }
}

/**
 * What the upstream must receive for a client request, computed without the
 * code under test: the request line and Host replaced, every Authorization,
 * api-key and Proxy-Authorization line dropped and the proxy's Authorization
 * inserted, every other line and the body as sent.
 */
export function expectedUpstream(clientRequest: Buffer, hostHeader: string, key = KEY): Buffer {
  let i = 0;
  while (clientRequest[i] === 0x0d && clientRequest[i + 1] === 0x0a) i += 2;
  const end = clientRequest.indexOf('\r\n\r\n', i);
  const lines = clientRequest.toString('latin1', i, end).split('\r\n').slice(1);
  const kept = lines.filter((l) => !/^(host|authorization|api-key|proxy-authorization):/i.test(l));
  const head = `POST /v1/responses HTTP/1.1\r\nHost: ${hostHeader}\r\nAuthorization: Bearer ${key}\r\n${kept.map((l) => `${l}\r\n`).join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), clientRequest.subarray(end + 4)]);
}

export interface Relay {
  port: number;
  /** Lines the relay logged; an "internal error" line means a caught exception. */
  logs: string[];
  /** The relay's side of each open client connection. */
  clients: Set<net.Socket>;
  close: () => Promise<void>;
}

export interface RelayLimits {
  maxHeadBytes?: number;
  headTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxConnections?: number;
}

/**
 * Every upstream connection made, so that closing the relay also closes the
 * ones its pool keeps idle (src/cli/wire.ts owns that pool).
 */
class TrackingConnector extends Connector {
  readonly made = new Set<net.Socket>();

  override connect(u: Upstream, timeoutMs: number, done: Connected): net.Socket {
    const sock = super.connect(u, timeoutMs, done);
    this.made.add(sock);
    sock.once('close', () => this.made.delete(sock));
    return sock;
  }
}

/** Whole seconds, as the CLI's --head-timeout and --idle-timeout take them. */
function seconds(ms: number): string {
  if (ms % 1000 !== 0) throw new Error(`${ms} ms is not a whole number of seconds: the relay's timeout flags take seconds`);
  return String(ms / 1000);
}

/**
 * The relay in this process, on an ephemeral port: the options parsed from
 * the flags `limits` map to, the server built by the CLI's relayServer, with
 * the test key as a static credential and no egress proxy.
 */
export async function startRelay(upstreamUrl: string, limits: RelayLimits = {}): Promise<Relay> {
  const opts = await parseOptions(
    [
      '--upstream-url',
      upstreamUrl,
      '--max-head-bytes',
      String(limits.maxHeadBytes ?? 65536),
      '--head-timeout',
      seconds(limits.headTimeoutMs ?? 10000),
      '--idle-timeout',
      seconds(limits.idleTimeoutMs ?? 10000),
      '--max-connections',
      String(limits.maxConnections ?? 512),
      '--connect-timeout',
      '5',
    ],
    {},
  );
  const logs: string[] = [];
  const connector = new TrackingConnector(NO_EGRESS, new Trust());
  const server = relayServer(opts, {
    credential: new StaticCredential(Buffer.from(`Authorization: Bearer ${KEY}\r\n`, 'latin1')),
    connector,
    observers: [],
    gate: undefined,
    log: (l) => logs.push(l),
    onShutdown: () => {},
  });
  const open = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    logs,
    clients: open,
    close: () =>
      new Promise((r) => {
        for (const s of open) s.destroy();
        for (const s of connector.made) s.destroy();
        server.close(() => r());
      }),
  };
}
