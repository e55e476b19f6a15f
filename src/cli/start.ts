// Entry point: flags, key, listen, server-info. Every start-up failure is one
// line on stderr and a non-zero exit, before anything listens or is written.
import fs from 'node:fs';
import path from 'node:path';
import tty from 'node:tty';
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { createRelayServer } from '../relay/accept.js';
import { allowHostError } from '../relay/admit.js';
import { StaticCredential, type Credential } from '../credential/credential.js';
import { OidcCredential } from '../credential/oidc-credential.js';
import { assertInspectorOff, harden, HardenError, wipeOnExit } from '../secret/harden.js';
import { EgressError, parseEgressEnv, type EgressConfig } from '../transport/egress.js';
import { AUTH_HEADERS, KeyError, OIDC_REQUEST_TOKEN_WORDS, readKeyLine, readTokenLine, type AuthHeader } from '../secret/key.js';
import { EXCHANGE_URL, EXCHANGE_URL_ENV, httpsUrl, obtain, OidcError, type OidcConfig } from '../credential/oidc.js';
import { requestPrefix } from '../relay/rewrite.js';
import { loadParser } from '../http/parser.js';
import { makeDirs } from './dirs.js';
import { PACKAGE_JSON } from './paths.js';
import { removeOwned, writeOwned } from './owned-file.js';
import { makeBudget, type BudgetFlags } from './usage.js';
import { loadTrust, TrustError, type Trust } from '../transport/trust.js';
import { Connector } from '../transport/connect.js';
import { Pool } from '../transport/pool.js';
import { Dump } from '../dump/tap.js';
import type { Budget } from '../budget/budget.js';
import { DEFAULT_UPSTREAM, isLoopback, parseUpstream, type Upstream } from '../transport/upstream.js';

const NAME = 'codex-responses-api-proxy';
// Exit codes: 0 shutdown, 1 runtime failure (key, bind, server-info), 2 usage.
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
const NOTHING = Buffer.alloc(0);

interface Options {
  port: number;
  serverInfo: string | undefined;
  httpShutdown: boolean;
  allowHosts: string[];
  upstream: Upstream;
  maxHeadBytes: number;
  headTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
  connectTimeoutMs: number;
  authHeader: AuthHeader;
  dumpDir: string | undefined;
  /** --github-oidc: stdin holds the GitHub request token, not an API key. */
  oidc: OidcConfig | null;
  budget: BudgetFlags;
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
  'allow-host': {
    type: 'string',
    multiple: true,
    describe: 'Also admit Host NAME and NAME:<port>, or exactly NAME:PORT; repeatable, no wildcard. A risk: see SECURITY.md',
  },
  'upstream-url': { type: 'string', default: DEFAULT_UPSTREAM, describe: 'Absolute http(s) URL to forward requests to' },
  'max-head-bytes': { type: 'string', default: '65536', describe: 'Largest request head accepted (431 past it)' },
  'head-timeout': { type: 'string', default: '30', describe: 'Seconds a request head may take to arrive (408 past it)' },
  'idle-timeout': { type: 'string', default: '120', describe: 'Seconds an idle keep-alive connection stays open' },
  'max-connections': { type: 'string', default: '512', describe: 'Concurrent client connections; more are closed at once' },
  'connect-timeout': { type: 'string', default: '15', describe: 'Seconds to connect to the upstream, TLS included (504 past it)' },
  'auth-header': { type: 'string', default: 'authorization', describe: "Header that carries the key: 'authorization' (Bearer) or 'api-key' (Azure OpenAI)" },
  'dump-dir': { type: 'string', describe: 'Write each admitted request and its response as JSON files in DIR (mode 0600, credentials redacted)' },
  'max-requests': { type: 'string', describe: 'Admit at most N requests; later ones get 429 budget_exhausted' },
  'max-tokens': { type: 'string', describe: "Refuse new requests (429 budget_exhausted) once the replies' usage.total_tokens add up to N" },
  'usage-file': { type: 'string', describe: 'Write a JSON summary of requests and tokens to FILE after each reply and at exit (kept after exit)' },
  'github-oidc': {
    type: 'boolean',
    default: false,
    describe: 'Authenticate to the OpenAI API using GitHub Actions workload identity. In this mode stdin supplies the GitHub OIDC request token, not an API key',
  },
  'oidc-audience': { type: 'string', describe: 'Audience configured on the OpenAI workload identity provider' },
  'identity-provider-id': { type: 'string', describe: 'OpenAI workload identity provider ID' },
  'service-account-id': { type: 'string', describe: 'OpenAI service account ID selected by the provider mapping' },
  'github-oidc-request-url': {
    type: 'string',
    describe: "HTTPS token-request URL from GitHub's runner-provided ACTIONS_ID_TOKEN_REQUEST_URL. Use the value directly from the trusted runner environment, never from a workflow input or repository content",
  },
} as const;

const OIDC_FLAGS = ['github-oidc', 'oidc-audience', 'identity-provider-id', 'service-account-id', 'github-oidc-request-url'] as const;

type Raw = {
  [K in keyof typeof FLAGS]: (typeof FLAGS)[K] extends { multiple: true } ? string[] | undefined : (typeof FLAGS)[K]['type'] extends 'boolean' ? boolean : string | undefined;
};

/** Flags that may be given more than once; each use adds a value. */
const repeatable = (name: string): boolean => 'multiple' in FLAGS[name as keyof typeof FLAGS];

/**
 * yargs defines the command line, but importing it costs ~55 ms (its help
 * renderer pulls in string-width, whose Intl.Segmenter loads ICU data), more
 * than the whole start-up budget. A plainly well-formed command line — known
 * flags, each at most once unless repeatable (--allow-host), no
 * --help/--version — is read with util.parseArgs
 * instead; anything else goes to yargs, which prints help, the version, or
 * the error.
 */
function quickParse(argv: string[]): Raw | null {
  const seen = new Set<string>();
  for (const arg of argv) {
    if (!arg.startsWith('-')) continue;
    const name = arg.replace(/^--?/, '').split('=')[0]!;
    if (!(name in FLAGS) || (seen.has(name) && !repeatable(name))) return null;
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
const NUMERIC = ['port', 'max-head-bytes', 'head-timeout', 'idle-timeout', 'max-connections', 'connect-timeout', 'max-requests', 'max-tokens'] as const;

async function yargsParse(argv: string[]): Promise<Raw> {
  const { default: yargs } = await import('yargs');
  const version = (createRequire(import.meta.url)(PACKAGE_JSON) as { version: string }).version;
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
    .wrap(120)
    .exitProcess(false)
    .fail((msg, err) => die(`${msg ?? err?.message ?? 'invalid arguments'} (see --help)`, EXIT_USAGE))
    .parseSync();
  if (args.help || args.version) process.exit(0);
  for (const name of Object.keys(FLAGS)) {
    if (repeatable(name)) {
      // yargs gives one value as a string and repeated ones as an array.
      if (args[name] !== undefined) args[name] = ([] as unknown[]).concat(args[name]).map(String);
    } else if (Array.isArray(args[name])) {
      die(`--${name} given more than once`, EXIT_USAGE);
    }
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
  const authHeader = args['auth-header'] ?? 'authorization';
  if (!(AUTH_HEADERS as string[]).includes(authHeader)) die(`--auth-header must be one of ${AUTH_HEADERS.join(', ')}, got ${JSON.stringify(authHeader)}`, EXIT_USAGE);
  if (args['dump-dir'] === '') die('--dump-dir needs a directory name', EXIT_USAGE);
  if (args['usage-file'] === '') die('--usage-file needs a file name', EXIT_USAGE);
  const limit = (name: 'max-requests' | 'max-tokens'): number | undefined => (args[name] === undefined ? undefined : integer(name, args[name], 1, Number.MAX_SAFE_INTEGER));
  const allowHosts = args['allow-host'] ?? [];
  for (const name of allowHosts) {
    const why = allowHostError(name);
    if (why) die(`--allow-host ${JSON.stringify(name)} ${why}`, EXIT_USAGE);
  }
  return {
    port: args.port === undefined ? 0 : integer('port', args.port, 0, 65535),
    serverInfo: args['server-info'],
    httpShutdown: args['http-shutdown'],
    allowHosts,
    upstream,
    maxHeadBytes: integer('max-head-bytes', args['max-head-bytes'], 1024, 16 * 1024 * 1024),
    headTimeoutMs: integer('head-timeout', args['head-timeout'], 1, 3600) * 1000,
    idleTimeoutMs: integer('idle-timeout', args['idle-timeout'], 1, 86400) * 1000,
    maxConnections: integer('max-connections', args['max-connections'], 1, 100000),
    connectTimeoutMs: integer('connect-timeout', args['connect-timeout'], 1, 600) * 1000,
    authHeader: authHeader as AuthHeader,
    dumpDir: args['dump-dir'],
    oidc: readOidc(args, authHeader as AuthHeader),
    budget: { maxRequests: limit('max-requests'), maxTokens: limit('max-tokens'), usageFile: args['usage-file'] },
  };
}

/**
 * The five OIDC flags, all or none (a usage error names the missing ones),
 * then the original's checks, each one line and exit 1, in its order.
 * Values are used as given, not trimmed.
 */
function readOidc(args: Raw, authHeader: AuthHeader): OidcConfig | null {
  const given = OIDC_FLAGS.filter((f) => (f === 'github-oidc' ? args[f] : args[f] !== undefined));
  if (given.length === 0) return null;
  const missing = OIDC_FLAGS.filter((f) => !given.includes(f));
  if (missing.length > 0) die(`GitHub OIDC mode needs all five of its flags; missing: ${missing.map((f) => `--${f}`).join(', ')}`, EXIT_USAGE);
  // An OpenAI access token is a Bearer token; Azure's api-key header cannot carry it.
  if (authHeader !== 'authorization') die('--github-oidc sends a Bearer token: it cannot be combined with --auth-header api-key', EXIT_USAGE);
  // A test hook: the exchange goes elsewhere, so the access token it yields
  // is not OpenAI's and may go to another upstream too.
  const exchangeRaw = process.env[EXCHANGE_URL_ENV];
  if (exchangeRaw === undefined && args['upstream-url'] !== undefined && args['upstream-url'] !== DEFAULT_UPSTREAM) {
    die('workload identity requires the default OpenAI Responses endpoint', EXIT_FAILURE);
  }
  for (const f of ['oidc-audience', 'identity-provider-id', 'service-account-id'] as const) {
    if (args[f]!.trim() === '') die(`workload identity requires a nonempty --${f}`, EXIT_FAILURE);
  }
  const requestUrl = httpsUrl(args['github-oidc-request-url']!);
  if (requestUrl === 'invalid') die('invalid GitHub OIDC request URL', EXIT_FAILURE);
  if (requestUrl === 'not-https') die('GitHub OIDC request URL must be HTTPS without user info or fragment', EXIT_FAILURE);
  const exchangeUrl = httpsUrl(exchangeRaw ?? EXCHANGE_URL);
  if (typeof exchangeUrl === 'string') die(`${EXCHANGE_URL_ENV} must be an absolute HTTPS URL without user info or fragment`, EXIT_FAILURE);
  return {
    audience: args['oidc-audience']!,
    identityProviderId: args['identity-provider-id']!,
    serviceAccountId: args['service-account-id']!,
    requestUrl,
    exchangeUrl,
  };
}

export async function start(argv: string[]): Promise<void> {
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
  let credential: Credential | null = null;
  let requestToken: Buffer | null = null;
  let budget: Budget | undefined;
  let listening = false;
  // Every exit that runs JS: zero every secret, remove the server-info file;
  // once serving, write the usage file a last time and sum it up in one line.
  const cleanUp = (): void => {
    requestToken?.fill(0);
    credential?.wipe();
    removeOwned();
    const summary = listening ? budget?.close() : null;
    if (summary) process.stderr.write(`${NAME}: ${summary}\n`);
  };
  wipeOnExit(cleanUp);
  const opts = await readOptions(argv);
  // The environment is read once, here: a bad proxy URL or CA file is a
  // configuration error like a bad flag (exit 2), found before the key is read.
  let egress: EgressConfig;
  let trust: Trust;
  try {
    egress = parseEgressEnv(process.env);
    trust = loadTrust(process.env);
  } catch (err) {
    if (err instanceof EgressError || err instanceof TrustError) die(err.message, EXIT_USAGE);
    throw err;
  }
  // The HTTP parser's bytes are checked before the key is read: a missing or
  // altered llhttp.wasm stops the proxy with one line, never a half start.
  try {
    loadParser();
  } catch (err) {
    die((err as Error).message, EXIT_FAILURE);
  }
  if (opts.upstream.secure === false && !isLoopback(opts.upstream)) {
    process.stderr.write(`${NAME}: warning: --upstream-url is plain http to a non-loopback host; the key will cross the network in clear text\n`);
  }
  const log = (line: string): void => void process.stderr.write(`${NAME}: ${line}\n`);
  // Made before the key is read and before listening, so a bad path costs nothing.
  // Directories it creates are the user's alone: the dumps hold prompts and answers.
  let dump: Dump | undefined;
  if (opts.dumpDir !== undefined) {
    try {
      makeDirs(opts.dumpDir, 0o700);
      if (!fs.statSync(opts.dumpDir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    } catch (err) {
      die(`cannot create --dump-dir ${opts.dumpDir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, EXIT_FAILURE);
    }
    dump = new Dump(path.resolve(opts.dumpDir), log);
  }
  try {
    budget = makeBudget(opts.budget, log);
  } catch (err) {
    die(`cannot write --usage-file ${opts.budget.usageFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, EXIT_FAILURE);
  }
  // tty.isatty, not process.stdin: that getter opens a stream on fd 0, which
  // makes a pipe non-blocking and, for other stdin kinds, may read ahead into
  // pooled Buffers that are never zeroed.
  const what = opts.oidc ? 'the GitHub OIDC request token' : 'the API key';
  if (tty.isatty(0)) process.stderr.write(`${NAME}: reading ${what} from stdin (end with Enter)\n`);
  const warn = (line: string): void => void process.stderr.write(`${NAME}: ${line}\n`);
  let secret: Buffer;
  try {
    secret = opts.oidc ? readTokenLine(0, NOTHING, NOTHING, OIDC_REQUEST_TOKEN_WORDS, warn) : readKeyLine(0, opts.authHeader, warn);
  } catch (err) {
    if (err instanceof KeyError) die(err.message, EXIT_FAILURE);
    throw err;
  }
  // From the moment a secret exists, and before the OIDC start-up calls
  // (up to a minute of network), every catchable signal wipes the request
  // token and every access-token line first (a GitHub JWT lives only inside
  // one exchange call, zeroed when it returns, and is out of reach here);
  // SIGQUIT's default action dumps core, so that matters most. Not earlier:
  // while the read above blocks, a JS handler could not run, and Ctrl-C at
  // the prompt must still end the process.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'] as const) {
    process.once(signal, () => {
      cleanUp();
      // Die by the same signal, so the parent sees the usual status.
      process.kill(process.pid, signal);
    });
  }
  // Every connection to an upstream (the relay's and the OIDC calls') goes this one way.
  const connector = new Connector(egress, trust);
  if (opts.oidc) {
    // The request token's only copy; kept for renewals, wiped at exit.
    const token = (requestToken = secret);
    const cfg = opts.oidc;
    const renew = () => obtain(cfg, token, connector);
    let first;
    try {
      // Only a process that holds a valid access token listens (as the original).
      first = await renew();
    } catch (err) {
      if (err instanceof OidcError) die(err.message, EXIT_FAILURE);
      throw err;
    }
    credential = new OidcCredential(renew, first, (line) => process.stderr.write(`${NAME}: ${line}\n`));
  } else {
    credential = new StaticCredential(secret);
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
      connector,
      prefix: requestPrefix(opts.upstream, connector.forwardProxy(opts.upstream)),
      credential,
      connectTimeoutMs: opts.connectTimeoutMs,
      maxHeadBytes: opts.maxHeadBytes,
    },
    shutdown: opts.httpShutdown,
    allowHosts: opts.allowHosts,
    onShutdown: () => process.exit(0),
    headTimeoutMs: opts.headTimeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs,
    maxConnections: opts.maxConnections,
    observers: [dump, budget].filter((o) => o !== undefined),
    gate: budget,
    log,
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
        writeOwned(opts.serverInfo, `${JSON.stringify({ port, pid: process.pid })}\n`);
      } catch (err) {
        die(`cannot write --server-info ${opts.serverInfo} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, EXIT_FAILURE);
      }
    }
    // SSL_CERT_FILE/DIR roots: built here, in the same turn, so no request is
    // read before it and start-up does not wait for it.
    trust.options();
    listening = true;
  });

  // One broken connection must not take the others with it.
  process.on('uncaughtException', (err) => process.stderr.write(`${NAME}: internal error: ${err.name}\n`));
}

