#!/usr/bin/env node
// Entry point: flags, key, listen, server-info. Every start-up failure is one
// line on stderr and a non-zero exit, before anything listens or is written.
import tty from 'node:tty';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { createRelayServer } from './accept.js';
import { assertInspectorOff, harden, HardenError, wipeOnExit } from './harden.js';
import { KeyError, readKeyLine, wipeKey } from './key.js';
import { requestPrefix } from './rewrite.js';
import { removeServerInfo, writeServerInfo } from './server-info.js';
import { DEFAULT_UPSTREAM, isLoopback, parseUpstream, Pool, type Upstream } from './upstream.js';

const NAME = 'codex-responses-api-proxy';
// Exit codes: 0 shutdown, 1 runtime failure (key, bind, server-info), 2 usage.
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

interface Options {
  port: number;
  serverInfo: string | undefined;
  httpShutdown: boolean;
  upstream: Upstream;
  maxHeadBytes: number;
  headTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
  connectTimeoutMs: number;
}

// process.exit() runs the 'exit' listener that wipes the key (harden.ts).
function die(message: string, code: number): never {
  process.stderr.write(`${NAME}: ${message}\n`);
  process.exit(code);
}

function integer(name: string, raw: unknown, min: number, max: number): number {
  const text = String(raw);
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) die(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`, EXIT_USAGE);
  return n;
}

// One table for both parsers below. Values stay strings so that one check
// (integer(), parseUpstream()) judges them whichever parser read them.
const FLAGS = {
  port: { type: 'string', describe: 'Port to bind on 127.0.0.1 (default: an ephemeral port)' },
  'server-info': { type: 'string', describe: 'Write {"port":<u16>,"pid":<u32>} to FILE once listening' },
  'http-shutdown': { type: 'boolean', default: false, describe: 'Enable GET /shutdown to exit with code 0' },
  'upstream-url': { type: 'string', default: DEFAULT_UPSTREAM, describe: 'Absolute http(s) URL to forward requests to' },
  'max-head-bytes': { type: 'string', default: '65536', describe: 'Largest request head accepted (431 past it)' },
  'head-timeout': { type: 'string', default: '30', describe: 'Seconds a request head may take to arrive (408 past it)' },
  'idle-timeout': { type: 'string', default: '120', describe: 'Seconds an idle keep-alive connection stays open' },
  'max-connections': { type: 'string', default: '512', describe: 'Concurrent client connections; more are closed at once' },
  'connect-timeout': { type: 'string', default: '15', describe: 'Seconds to connect to the upstream, TLS included (504 past it)' },
} as const;

type Raw = { [K in keyof typeof FLAGS]: (typeof FLAGS)[K]['type'] extends 'boolean' ? boolean : string | undefined };

/**
 * yargs defines the command line, but importing it costs ~55 ms (its help
 * renderer pulls in string-width, whose Intl.Segmenter loads ICU data), more
 * than the whole start-up budget. A plainly well-formed command line — known
 * flags, each at most once, no --help/--version — is read with util.parseArgs
 * instead; anything else goes to yargs, which prints help, the version, or
 * the error.
 */
function quickParse(argv: string[]): Raw | null {
  const seen = new Set<string>();
  for (const arg of argv) {
    if (!arg.startsWith('-')) continue;
    const name = arg.replace(/^--?/, '').split('=')[0]!;
    if (!(name in FLAGS) || seen.has(name)) return null;
    seen.add(name);
  }
  try {
    const { values } = parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false });
    return values as Raw;
  } catch {
    return null;
  }
}

// Integers that integer() judges as the text given. yargs sees them as
// numbers, so --help says [number] and shows plain defaults, but its
// Number() of the text ("0x10" is 16) is never used: see yargsParse.
const NUMERIC = ['port', 'max-head-bytes', 'head-timeout', 'idle-timeout', 'max-connections', 'connect-timeout'] as const;

async function yargsParse(argv: string[]): Promise<Raw> {
  const { default: yargs } = await import('yargs');
  const version = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  const shown: Record<string, object> = { ...FLAGS };
  for (const name of NUMERIC) {
    const f = FLAGS[name];
    shown[name] = { ...f, type: 'number', requiresArg: true, ...('default' in f ? { default: Number(f.default) } : {}) };
  }
  const args = yargs(argv)
    .scriptName(NAME)
    // Short enough never to wrap mid-flag; the options follow one per line.
    .usage(`Usage: ${NAME} [OPTIONS] < KEY\n\nReads an API key (the first line of stdin) and relays POST /v1/responses on 127.0.0.1 to the upstream with it.`)
    .options(shown)
    .strict()
    .version(version)
    .help()
    .alias('h', 'help')
    .wrap(100)
    .exitProcess(false)
    .fail((msg, err) => die(`${msg ?? err?.message ?? 'invalid arguments'} (see --help)`, EXIT_USAGE))
    .parseSync();
  if (args.help || args.version) process.exit(0);
  for (const name of Object.keys(FLAGS)) {
    if (Array.isArray(args[name])) die(`--${name} given more than once`, EXIT_USAGE);
  }
  // The numbers' own text, as the quick path reads it (yargs has already
  // refused unknown flags and missing values).
  const { values } = parseArgs({ args: argv, options: FLAGS, strict: false, allowPositionals: true });
  const raw = args as unknown as Record<string, unknown>;
  for (const name of NUMERIC) raw[name] = values[name];
  return raw as unknown as Raw;
}

async function readOptions(argv: string[]): Promise<Options> {
  const args = quickParse(argv) ?? (await yargsParse(argv));
  let upstream: Upstream;
  try {
    upstream = parseUpstream(args['upstream-url'] ?? DEFAULT_UPSTREAM);
  } catch (err) {
    die((err as Error).message, EXIT_USAGE);
  }
  if (args['server-info'] === '') die('--server-info needs a file name', EXIT_USAGE);
  return {
    port: args.port === undefined ? 0 : integer('port', args.port, 0, 65535),
    serverInfo: args['server-info'],
    httpShutdown: args['http-shutdown'],
    upstream,
    maxHeadBytes: integer('max-head-bytes', args['max-head-bytes'], 1024, 16 * 1024 * 1024),
    headTimeoutMs: integer('head-timeout', args['head-timeout'], 1, 3600) * 1000,
    idleTimeoutMs: integer('idle-timeout', args['idle-timeout'], 1, 86400) * 1000,
    maxConnections: integer('max-connections', args['max-connections'], 1, 100000),
    connectTimeoutMs: integer('connect-timeout', args['connect-timeout'], 1, 600) * 1000,
  };
}

async function main(): Promise<void> {
  // A stderr reader that went away (EPIPE) must not turn every log line into
  // an uncaught exception whose report is one more failed write: a busy loop.
  process.stderr.on('error', () => {});
  // Before anything else, and long before the key exists (issue 5).
  try {
    harden((line) => process.stderr.write(`${NAME}: ${line}\n`));
  } catch (err) {
    if (err instanceof HardenError) die(err.message, EXIT_FAILURE);
    throw err;
  }
  // Every exit that runs JS: zero the key, remove the server-info file.
  const cleanUp = (): void => {
    wipeKey();
    removeServerInfo();
  };
  wipeOnExit(cleanUp);
  const opts = await readOptions(process.argv.slice(2));
  if (opts.upstream.secure === false && !isLoopback(opts.upstream)) {
    process.stderr.write(`${NAME}: warning: --upstream-url is plain http to a non-loopback host; the key will cross the network in clear text\n`);
  }
  // tty.isatty, not process.stdin: that getter opens a stream on fd 0, which
  // makes a pipe non-blocking and, for other stdin kinds, may read ahead into
  // pooled Buffers that are never zeroed.
  if (tty.isatty(0)) process.stderr.write(`${NAME}: reading the API key from stdin (end with Enter)\n`);
  let auth: Buffer;
  try {
    auth = readKeyLine(0, (line) => process.stderr.write(`${NAME}: ${line}\n`));
  } catch (err) {
    if (err instanceof KeyError) die(err.message, EXIT_FAILURE);
    throw err;
  }

  // Idle upstream connections live 30 s, so Codex turns a few seconds apart
  // reuse one instead of paying a new TLS handshake; one that the upstream
  // closes first is dropped on its FIN (or, rarely, met by the next request:
  // relay.ts replays it only with an Idempotency-Key).
  const pool = new Pool(30_000, 256);
  const server = createRelayServer({
    relay: {
      upstream: opts.upstream,
      pool,
      prefix: requestPrefix(opts.upstream),
      auth,
      connectTimeoutMs: opts.connectTimeoutMs,
      maxHeadBytes: opts.maxHeadBytes,
    },
    shutdown: opts.httpShutdown,
    onShutdown: () => process.exit(0),
    headTimeoutMs: opts.headTimeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs,
    maxConnections: opts.maxConnections,
    log: (line) => process.stderr.write(`${NAME}: ${line}\n`),
  });
  server.on('error', (err: NodeJS.ErrnoException) => die(`cannot listen on 127.0.0.1:${opts.port} (${err.code ?? err.message})`, EXIT_FAILURE));
  server.listen({ host: '127.0.0.1', port: opts.port }, () => {
    const { port } = server.address() as { port: number };
    // A SIGUSR1 that arrived before harden() may have started the inspector late.
    try {
      assertInspectorOff();
    } catch (err) {
      die((err as Error).message, EXIT_FAILURE);
    }
    // The line first (stderr to a pipe or file is a synchronous write), so a
    // starter that sees the file can count on the line being written too.
    process.stderr.write(`responses-api-proxy listening on 127.0.0.1:${port}\n`);
    if (opts.serverInfo) {
      try {
        writeServerInfo(opts.serverInfo, port);
      } catch (err) {
        die(`cannot write --server-info ${opts.serverInfo} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, EXIT_FAILURE);
      }
    }
  });

  // SIGQUIT's default action dumps core: wipe first, then let it happen.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'] as const) {
    process.once(signal, () => {
      cleanUp();
      // Die by the same signal, so the parent sees the usual status.
      process.kill(process.pid, signal);
    });
  }
  // One broken connection must not take the others with it.
  process.on('uncaughtException', (err) => process.stderr.write(`${NAME}: internal error: ${err.name}\n`));
}

await main();
