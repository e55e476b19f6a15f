// The relay server wired from the options: the one place that turns Options
// into createRelayServer's arguments, so that a test can build the same
// server in its own process.
import type net from 'node:net';
import type { Credential } from '../credential/credential.js';
import { createRelayServer } from '../relay/accept.js';
import type { Gate } from '../relay/gate.js';
import type { Observer } from '../relay/observer.js';
import { requestPrefix } from '../relay/rewrite.js';
import type { Connector } from '../transport/connect.js';
import { Pool } from '../transport/pool.js';
import type { Options } from './options.js';

export interface Wiring {
  credential: Credential;
  /** Makes verified upstream connections through the egress route start-up chose. */
  connector: Connector;
  /** The optional stages that watch each exchange (--dump-dir's tap, the spend guard's meter). */
  observers: readonly Observer[];
  /** The optional admission check (the spend guard). */
  gate: Gate | undefined;
  /** One line per failure the operator should know about. */
  log: (line: string) => void;
  /** What GET /shutdown does (with --http-shutdown) once answered. */
  onShutdown: () => void;
}

/** The relay server for `opts`, not yet listening. */
export function relayServer(opts: Options, { credential, connector, observers, gate, log, onShutdown }: Wiring): net.Server {
  // Idle upstream connections live 30 s, so Codex turns a few seconds apart
  // reuse one instead of paying a new TLS handshake; one that the upstream
  // closes first is dropped on its FIN (or, rarely, met by the next request:
  // the exchange replays it only with an Idempotency-Key).
  const pool = new Pool(30_000, 256);
  return createRelayServer({
    relay: {
      upstream: opts.upstream,
      pool,
      connector,
      prefix: requestPrefix(opts.upstream, connector.forwardProxy(opts.upstream)),
      credential,
      connectTimeoutMs: opts.connectTimeoutMs,
      maxHeadBytes: opts.maxHeadBytes,
    },
    shutdown: opts.httpShutdown,
    allowHosts: opts.allowHosts,
    onShutdown,
    headTimeoutMs: opts.headTimeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs,
    maxConnections: opts.maxConnections,
    observers,
    gate,
    log,
  });
}
