// Start-up, in its security order. Each step runs only once every step above
// it has passed, so nothing is read, made or listened on before it must be:
//   1. harden: refuse risky Node options, keep SIGUSR1 from the inspector,
//      strip stray keys from the environment (long before a key exists);
//   2. options: the flags, judged before anything is made (options.ts);
//   3. egress and trust: the proxy and CA environment, read once;
//   4. parser pin: the llhttp wasm's bytes checked against their hash;
//   5. dump dir and usage file: made before the key is read, so a bad path
//      costs nothing;
//   6. read the secret: the key (or OIDC request token) from stdin, off-heap,
//      echo off at a terminal;
//   7. signal wipes: from now on every signal that ends the process zeroes
//      every secret first;
//   8. credential: the static key line, or the first OIDC access token (only a
//      process that holds one listens, as the original);
//   9. listen on 127.0.0.1;
//  10. server-info, then the "listening" line;
//  11. trust context: the SSL_CERT_FILE/DIR roots, built before any request.
// Every failure is a StartError, printed as one line by the one catch in
// start(), before anything listens or is written where it can be. The
// optional stages (the dump, the spend guard, OIDC, the terminal's echo) are imported only
// when their flag or stdin asks for them: each costs start-up time
// (bench/README.md) that a plain start need not pay.
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import tty from 'node:tty';
import { StaticCredential, type Credential } from '../credential/credential.js';
import type { Budget } from '../budget/budget.js';
import type { Dump } from '../dump/tap.js';
import { loadParser } from '../http/parser.js';
import { assertInspectorOff, harden, HardenError, wipeOnExit } from '../secret/harden.js';
import { KeyError, OIDC_REQUEST_TOKEN_WORDS, readKeyLine, readTokenLine } from '../secret/key.js';
import { Connector } from '../transport/connect.js';
import { EgressError, parseEgressEnv } from '../transport/egress.js';
import { loadTrust, TrustError } from '../transport/trust.js';
import { isLoopback } from '../transport/upstream.js';
import { makeDirs } from './dirs.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, NAME, StartError } from './exit.js';
import { parseOptions, type Options } from './options.js';
import { removeOwned, writeOwned } from './owned-file.js';
import { relayServer } from './wire.js';

const NOTHING = Buffer.alloc(0);
/** How long GET /shutdown waits for dumps still being written. */
const DUMP_FLUSH_MS = 5000;

/**
 * Signals that end the process and can be sent with kill(2): the ones whose
 * default action dumps core (signal(7)) come after the first three (issue
 * 19: SIGABRT, SIGTRAP, SIGSYS and SIGXCPU left the key in their cores); the
 * last six end it without a core, and are here so that the server-info file
 * goes with the process (a review found them skipping every clean-up).
 * SIGPROF is not here: V8's CPU profiler samples with it (--cpu-prof).
 * SIGXFSZ is not here: Node sets it to SIG_IGN at start (PlatformInit in
 * src/node.cc), so it neither ends the process nor dumps core, and a handler
 * would turn a write past RLIMIT_FSIZE, an EFBIG today, into a death.
 * SIGSEGV, SIGBUS, SIGILL and SIGFPE cannot run JS, sent or real: V8's
 * wasm trap handler owns SIGSEGV, and a listener for a fault signal is
 * unsafe (SECURITY.md: `ulimit -c 0`).
 */
const WIPE_THEN_DIE = [
  ...['SIGTERM', 'SIGINT', 'SIGHUP'],
  ...['SIGQUIT', 'SIGABRT', 'SIGTRAP', 'SIGSYS', 'SIGXCPU'],
  ...['SIGUSR2', 'SIGALRM', 'SIGVTALRM', 'SIGIO', 'SIGPWR', 'SIGSTKFLT'],
] as const;

const log = (line: string): void => void process.stderr.write(`${NAME}: ${line}\n`);

/** The errors start-up steps throw, each with the exit code it ends in; anything else is a bug and propagates. */
function asStartError(err: unknown): StartError | null {
  if (err instanceof StartError) return err;
  if (err instanceof HardenError || err instanceof KeyError) return new StartError(err.message, EXIT_FAILURE);
  // The environment is configuration like a flag: a usage error.
  if (err instanceof EgressError || err instanceof TrustError) return new StartError(err.message, EXIT_USAGE);
  return null;
}

/** Prints the one line (or the help or version on stdout) and exits; process.exit runs the 'exit' wipe (harden.ts). */
function end(err: StartError): never {
  if (err.exitCode === EXIT_OK) process.stdout.write(err.message);
  else log(err.message);
  process.exit(err.exitCode);
}

const code = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? 'error';

export async function start(argv: string[]): Promise<void> {
  // A stderr reader that went away (EPIPE) must not turn every log line into
  // an uncaught exception whose report is one more failed write: a busy loop.
  process.stderr.on('error', () => {});
  try {
    await startUp(argv);
  } catch (err) {
    const stop = asStartError(err);
    if (!stop) throw err;
    end(stop);
  }
}

async function startUp(argv: string[]): Promise<void> {
  harden(log);
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
    if (summary) log(summary);
  };
  wipeOnExit(cleanUp);

  // process.stdout is read only for --help: its getter opens a stream on fd 1.
  const opts = await parseOptions(argv, process.env, () => (tty.isatty(1) && process.stdout.columns) || 80);

  // Every connection to an upstream (the relay's and the OIDC calls') goes
  // this one way, through the egress route and trusted CAs read here, once.
  const trust = loadTrust(process.env);
  const connector = new Connector(parseEgressEnv(process.env), trust);

  // A missing or altered llhttp.wasm stops the proxy with one line, never a half start.
  try {
    loadParser();
  } catch (err) {
    throw new StartError((err as Error).message, EXIT_FAILURE);
  }
  if (opts.upstream.secure === false && !isLoopback(opts.upstream)) {
    log('warning: --upstream-url is plain http to a non-loopback host; the key will cross the network in clear text');
  }

  const dump = opts.dumpDir === undefined ? undefined : await makeDump(opts.dumpDir);
  const { maxRequests, maxTokens, usageFile } = opts.budget;
  if (maxRequests !== undefined || maxTokens !== undefined || usageFile !== undefined) budget = await makeSpendGuard(opts);

  const secret = await readSecret(opts);

  // Not earlier: while the read above blocks, a JS handler could not run, and
  // Ctrl-C at the prompt must still end the process. Before the OIDC start-up
  // calls (up to a minute of network): the request token and every access
  // token line are wiped (a GitHub JWT lives only inside one exchange call,
  // zeroed when it returns, and is out of reach here).
  for (const signal of WIPE_THEN_DIE) {
    process.once(signal, () => {
      cleanUp();
      // Die by the same signal, so the parent sees the usual status (and
      // the core, if the limit allows one, holds no secret).
      process.kill(process.pid, signal);
    });
  }

  if (opts.oidc) {
    // The request token's only copy; kept for renewals, wiped at exit.
    const token = (requestToken = secret);
    const cfg = opts.oidc;
    const [{ obtain, OidcError }, { OidcCredential }] = await Promise.all([import('../credential/oidc.js'), import('../credential/oidc-credential.js')]);
    const renew = () => obtain(cfg, token, connector);
    let first;
    try {
      first = await renew();
    } catch (err) {
      throw err instanceof OidcError ? new StartError(err.message, EXIT_FAILURE) : err;
    }
    // A request waits for a renewal as long as it would for the upstream connection.
    credential = new OidcCredential(renew, first, log, opts.connectTimeoutMs);
  } else {
    credential = new StaticCredential(secret);
  }

  // One broken connection must not take the others with it.
  process.on('uncaughtException', (err) => log(`internal error: ${err.name}`));
  const observers = [dump, budget].filter((o) => o !== undefined);
  // GET /shutdown: no new connection is taken, then the dumps already handed
  // to the writer land (bounded), then the process exits.
  const onShutdown = (): void => {
    server.close();
    void (dump?.written(DUMP_FLUSH_MS) ?? Promise.resolve()).then(() => process.exit(EXIT_OK));
  };
  const server = relayServer(opts, { credential, connector, observers, gate: budget, log, onShutdown });
  const port = await listen(server, opts.port);
  // A SIGUSR1 that arrived before harden() may have started the inspector late.
  assertInspectorOff();

  if (opts.serverInfo) {
    try {
      // The original's format (codex-action reads it): one line, port then pid.
      writeOwned(opts.serverInfo, `${JSON.stringify({ port, pid: process.pid })}\n`);
    } catch (err) {
      throw new StartError(`cannot write --server-info ${opts.serverInfo} (${code(err)})`, EXIT_FAILURE);
    }
  }
  // Announced only once the file is written, so a failure prints its one
  // line and no announcement of a proxy that never served.
  process.stderr.write(`responses-api-proxy listening on 127.0.0.1:${port}\n`);

  // Still in the turn that saw 'listening' (the awaits above resolve in
  // microtasks), so no request is read before the roots exist, and start-up
  // does not wait for them.
  trust.options();
  listening = true;
}

/** The spend guard, its usage file written once now, so that a bad path stops start-up before the key is read. */
async function makeSpendGuard(opts: Options): Promise<Budget> {
  const { makeBudget } = await import('./usage.js');
  try {
    return makeBudget(opts.budget, log);
  } catch (err) {
    throw new StartError(`cannot write --usage-file ${opts.budget.usageFile} (${code(err)})`, EXIT_FAILURE);
  }
}

/** Directories it creates are the user's alone: the dumps hold prompts and answers. */
async function makeDump(dir: string): Promise<Dump> {
  try {
    makeDirs(dir, 0o700);
    if (!fs.statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (err) {
    throw new StartError(`cannot create --dump-dir ${dir} (${code(err)})`, EXIT_FAILURE);
  }
  const { Dump } = await import('../dump/tap.js');
  return new Dump(path.resolve(dir), log);
}

/**
 * The key's header line, or the OIDC request token. tty.isatty, not
 * process.stdin: that getter opens a stream on fd 0, which makes a pipe
 * non-blocking and, for other stdin kinds, may read ahead into pooled
 * Buffers that are never zeroed.
 */
async function readSecret(opts: Options): Promise<Buffer> {
  const read = (): Buffer => (opts.oidc ? readTokenLine(0, NOTHING, NOTHING, OIDC_REQUEST_TOKEN_WORDS, log) : readKeyLine(0, opts.authHeader, log));
  if (!tty.isatty(0)) return read();
  // The prompt comes once echo is off: what is typed after it never shows.
  const { withoutEcho } = await import('../secret/echo.js');
  return withoutEcho(() => {
    log(`reading ${opts.oidc ? 'the GitHub OIDC request token' : 'the API key'} from stdin (end with Enter)`);
    return read();
  }, log);
}

/**
 * Listens on 127.0.0.1 and resolves with the port. A server error, then or
 * later (accept failing, say), ends the process with one line, as a bind
 * failure does.
 */
function listen(server: net.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException): StartError => new StartError(`cannot listen on 127.0.0.1:${port} (${err.code ?? err.message})`, EXIT_FAILURE);
    const refused = (err: NodeJS.ErrnoException): void => reject(failed(err));
    server.once('error', refused);
    server.listen({ host: '127.0.0.1', port }, () => {
      server.off('error', refused);
      server.on('error', (err: NodeJS.ErrnoException) => end(failed(err)));
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}
