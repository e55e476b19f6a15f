// From the command line and the environment to the options start-up uses:
// pure, so each rule can be tested without spawning the program. Every
// refusal is a StartError carrying its exit code; nothing here exits or
// prints.
import { allowHostError } from '../relay/admit.js';
import { AUTH_HEADERS, type AuthHeader } from '../secret/key.js';
import { EXCHANGE_URL, EXCHANGE_URL_ENV, httpsUrl, type OidcConfig } from '../credential/oidc-config.js';
import { DEFAULT_UPSTREAM, parseUpstream, type Upstream } from '../transport/upstream.js';
import { EXIT_FAILURE, EXIT_USAGE, StartError } from './exit.js';
import { FLAGS, readFlags, type IntegerFlag, type Raw } from './flags.js';

export interface Options {
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

/** The spend guard's flags (src/budget/); all undefined: no budget stage at all. */
export interface BudgetFlags {
  maxRequests: number | undefined;
  maxTokens: number | undefined;
  usageFile: string | undefined;
}

const OIDC_FLAGS = ['github-oidc', 'oidc-audience', 'identity-provider-id', 'service-account-id', 'github-oidc-request-url'] as const;

/**
 * The options for `argv` (the arguments after the program's name) and `env`
 * (read for the OIDC exchange URL test hook only), or a StartError: the
 * help or version text with exit 0, a usage error with 2, or one of the
 * original's run-time refusals with 1. `helpWidth` gives --help's width.
 * Async only because yargs is imported when the command line needs it.
 */
export async function parseOptions(argv: string[], env: NodeJS.ProcessEnv, helpWidth: () => number = () => 80): Promise<Options> {
  const args = await readFlags(argv, helpWidth);
  let upstream: Upstream;
  try {
    upstream = parseUpstream(args['upstream-url'] ?? DEFAULT_UPSTREAM);
  } catch (err) {
    // The original exits 1 here: its URL check runs after clap's parsing.
    throw new StartError((err as Error).message, EXIT_FAILURE);
  }
  if (args['server-info'] === '') throw new StartError('--server-info needs a file name', EXIT_USAGE);
  const authHeader = args['auth-header'] ?? 'authorization';
  if (!(AUTH_HEADERS as string[]).includes(authHeader)) throw new StartError(`--auth-header must be one of ${AUTH_HEADERS.join(', ')}, got ${JSON.stringify(authHeader)}`, EXIT_USAGE);
  if (args['dump-dir'] === '') throw new StartError('--dump-dir needs a directory name', EXIT_USAGE);
  if (args['usage-file'] === '') throw new StartError('--usage-file needs a file name', EXIT_USAGE);
  const allowHosts = args['allow-host'] ?? [];
  for (const name of allowHosts) {
    const why = allowHostError(name);
    if (why) throw new StartError(`--allow-host ${JSON.stringify(name)} ${why}`, EXIT_USAGE);
  }
  return {
    port: args.port === undefined ? 0 : integer(args, 'port'),
    serverInfo: args['server-info'],
    httpShutdown: args['http-shutdown'],
    allowHosts,
    upstream,
    maxHeadBytes: integer(args, 'max-head-bytes'),
    headTimeoutMs: integer(args, 'head-timeout'),
    idleTimeoutMs: integer(args, 'idle-timeout'),
    maxConnections: integer(args, 'max-connections'),
    connectTimeoutMs: integer(args, 'connect-timeout'),
    authHeader: authHeader as AuthHeader,
    dumpDir: args['dump-dir'],
    oidc: readOidc(args, authHeader as AuthHeader, env),
    budget: {
      maxRequests: args['max-requests'] === undefined ? undefined : integer(args, 'max-requests'),
      maxTokens: args['max-tokens'] === undefined ? undefined : integer(args, 'max-tokens'),
      usageFile: args['usage-file'],
    },
  };
}

/** An integer flag judged as the text given (digits only), against its range; seconds come back as milliseconds. */
function integer(args: Raw, name: IntegerFlag): number {
  const { range, unit }: { range: readonly [number, number]; unit?: string } = FLAGS[name];
  const text = String(args[name]);
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(n >= range[0] && n <= range[1])) throw new StartError(`--${name} must be an integer from ${range[0]} to ${range[1]}, got ${JSON.stringify(text)}`, EXIT_USAGE);
  return unit === 'seconds' ? n * 1000 : n;
}

/**
 * The five OIDC flags, all or none (a usage error names the missing ones),
 * then the original's checks, each one line and exit 1, in its order.
 * Values are used as given, not trimmed.
 */
function readOidc(args: Raw, authHeader: AuthHeader, env: NodeJS.ProcessEnv): OidcConfig | null {
  const given = OIDC_FLAGS.filter((f) => (f === 'github-oidc' ? args[f] : args[f] !== undefined));
  if (given.length === 0) return null;
  const missing = OIDC_FLAGS.filter((f) => !given.includes(f));
  if (missing.length > 0) throw new StartError(`GitHub OIDC mode needs all five of its flags; missing: ${missing.map((f) => `--${f}`).join(', ')}`, EXIT_USAGE);
  // An OpenAI access token is a Bearer token; Azure's api-key header cannot carry it.
  if (authHeader !== 'authorization') throw new StartError('--github-oidc sends a Bearer token: it cannot be combined with --auth-header api-key', EXIT_USAGE);
  // A test hook: the exchange goes elsewhere, so the access token it yields
  // is not OpenAI's and may go to another upstream too.
  const exchangeRaw = env[EXCHANGE_URL_ENV];
  if (exchangeRaw === undefined && args['upstream-url'] !== undefined && args['upstream-url'] !== DEFAULT_UPSTREAM) {
    throw new StartError('workload identity requires the default OpenAI Responses endpoint', EXIT_FAILURE);
  }
  for (const f of ['oidc-audience', 'identity-provider-id', 'service-account-id'] as const) {
    if (args[f]!.trim() === '') throw new StartError(`workload identity requires a nonempty --${f}`, EXIT_FAILURE);
  }
  const requestUrl = httpsUrl(args['github-oidc-request-url']!);
  if (requestUrl === 'invalid') throw new StartError('invalid GitHub OIDC request URL', EXIT_FAILURE);
  if (requestUrl === 'not-https') throw new StartError('GitHub OIDC request URL must be HTTPS without user info or fragment', EXIT_FAILURE);
  const exchangeUrl = httpsUrl(exchangeRaw ?? EXCHANGE_URL);
  if (typeof exchangeUrl === 'string') throw new StartError(`${EXCHANGE_URL_ENV} must be an absolute HTTPS URL without user info or fragment`, EXIT_FAILURE);
  return {
    audience: args['oidc-audience']!,
    identityProviderId: args['identity-provider-id']!,
    serviceAccountId: args['service-account-id']!,
    requestUrl,
    exchangeUrl,
  };
}
