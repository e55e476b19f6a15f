// The command line's flags as one table, read by two parsers: util.parseArgs
// for a plainly well-formed command line, yargs for everything else (help,
// the version, and the error for a bad one).
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { DEFAULT_UPSTREAM } from '../transport/upstream.js';
import { EXIT_OK, EXIT_USAGE, NAME, StartError } from './exit.js';
import { PACKAGE_JSON } from './paths.js';

interface FlagSpec {
  type: 'string' | 'boolean';
  describe: string;
  default?: string | boolean;
  /** Repeatable: each use adds a value. */
  multiple?: true;
  /** An integer flag's inclusive range. */
  range?: readonly [number, number];
  /** What an integer counts, for --help and for options.ts ('seconds' become milliseconds). */
  unit?: 'seconds' | 'bytes';
}

/**
 * Every flag: its type, default, and what --help says. An integer flag also
 * has its inclusive range and unit; options.ts judges it against them. Values
 * stay strings so that one check judges them whichever parser read them.
 */
export const FLAGS = {
  port: { type: 'string', range: [0, 65535], describe: 'Port to bind on 127.0.0.1 (default: an ephemeral port)' },
  'server-info': { type: 'string', describe: 'Write {"port":<u16>,"pid":<u32>} to FILE once listening' },
  'http-shutdown': { type: 'boolean', default: false, describe: 'Enable GET /shutdown to exit with code 0' },
  'allow-host': {
    type: 'string',
    multiple: true,
    describe: 'Also admit Host NAME and NAME:<port>, or exactly NAME:PORT; repeatable, no wildcard. A risk: see SECURITY.md',
  },
  'upstream-url': { type: 'string', default: DEFAULT_UPSTREAM, describe: 'Absolute http(s) URL to forward requests to' },
  'max-head-bytes': { type: 'string', default: '65536', range: [1024, 16 * 1024 * 1024], unit: 'bytes', describe: 'Largest request head accepted (431 past it)' },
  'head-timeout': { type: 'string', default: '30', range: [1, 3600], unit: 'seconds', describe: 'How long a request head may take to arrive (408 past it)' },
  'idle-timeout': { type: 'string', default: '120', range: [1, 86400], unit: 'seconds', describe: 'How long an idle keep-alive connection stays open' },
  'max-connections': { type: 'string', default: '512', range: [1, 100000], describe: 'Concurrent client connections; past them the longest idle one is closed (503 if none is idle)' },
  'connect-timeout': { type: 'string', default: '15', range: [1, 600], unit: 'seconds', describe: 'How long connecting to the upstream may take, TLS included (504 past it)' },
  'auth-header': { type: 'string', default: 'authorization', describe: "Header that carries the key: 'authorization' (Bearer) or 'api-key' (Azure OpenAI)" },
  'dump-dir': { type: 'string', describe: 'Write each admitted request and its response as JSON files in DIR (mode 0600, credentials redacted)' },
  'max-requests': { type: 'string', range: [1, Number.MAX_SAFE_INTEGER], describe: 'Admit at most N requests; later ones get 429 budget_exhausted' },
  'max-tokens': { type: 'string', range: [1, Number.MAX_SAFE_INTEGER], describe: "Refuse new requests (429 budget_exhausted) once the replies' usage.total_tokens add up to N" },
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
} as const satisfies Record<string, FlagSpec>;

export type FlagName = keyof typeof FLAGS;
/** An integer flag: one with a range. */
export type IntegerFlag = { [K in FlagName]: (typeof FLAGS)[K] extends { range: readonly [number, number] } ? K : never }[FlagName];

/** What either parser read: strings (arrays for a repeatable flag), booleans, or undefined when not given. */
export type Raw = {
  [K in FlagName]: (typeof FLAGS)[K] extends { multiple: true } ? string[] | undefined : (typeof FLAGS)[K]['type'] extends 'boolean' ? boolean : string | undefined;
};

const NAMES = Object.keys(FLAGS) as FlagName[];
const spec = (name: FlagName): FlagSpec => FLAGS[name];
const isRepeatable = (name: FlagName): boolean => spec(name).multiple === true;
const isInteger = (name: FlagName): name is IntegerFlag => spec(name).range !== undefined;

/** The table as util.parseArgs takes it. */
const PARSE_ARGS = Object.fromEntries(
  NAMES.map((name) => {
    const { type, multiple, default: def } = spec(name);
    return [name, { type, ...(multiple ? { multiple } : {}), ...(def !== undefined ? { default: def } : {}) }];
  }),
) as Record<FlagName, { type: 'string' | 'boolean'; multiple?: boolean; default?: string | boolean }>;

/**
 * The flags as they are, or a StartError: the help or version text (exit
 * 0), or the usage error (exit 2). `helpWidth` is asked only for --help.
 */
export async function readFlags(argv: string[], helpWidth: () => number): Promise<Raw> {
  return quickParse(argv) ?? (await yargsParse(argv, helpWidth));
}

/**
 * yargs defines the command line, but importing it costs ~55 ms (its help
 * renderer pulls in string-width, whose Intl.Segmenter loads ICU data), more
 * than the whole start-up budget. A plainly well-formed command line — known
 * flags, each at most once unless repeatable (--allow-host), no
 * --help/--version — is read with util.parseArgs instead; anything else goes
 * to yargs, which gives the help, the version, or the error.
 */
function quickParse(argv: string[]): Raw | null {
  const seen = new Set<string>();
  for (const arg of argv) {
    if (!arg.startsWith('-')) continue;
    const name = arg.replace(/^--?/, '').split('=')[0]!;
    if (!(name in FLAGS) || (seen.has(name) && !isRepeatable(name as FlagName))) return null;
    seen.add(name);
  }
  try {
    const { values } = parseArgs({ args: argv, options: PARSE_ARGS, strict: true, allowPositionals: false });
    return values as Raw;
  } catch {
    return null;
  }
}

/** What --help shows for a flag: integers as numbers with their range, so it says [number] and plain defaults. */
function shown(name: FlagName): object {
  const f = spec(name);
  const given = { type: f.type, describe: f.describe, ...(f.default !== undefined ? { default: f.default } : {}) };
  if (!f.range) return given;
  const [min, max] = f.range;
  return {
    ...given,
    type: 'number',
    requiresArg: true,
    ...(f.default !== undefined ? { default: Number(f.default) } : {}),
    describe: `${f.describe}; ${min}-${max}${f.unit ? ` ${f.unit}` : ''}`,
  };
}

async function yargsParse(argv: string[], helpWidth: () => number): Promise<Raw> {
  const { default: yargs } = await import('yargs');
  const version = (createRequire(import.meta.url)(PACKAGE_JSON) as { version: string }).version;
  let printed = '';
  const args = yargs()
    .scriptName(NAME)
    // Short enough never to wrap mid-flag; the options follow one per line.
    .usage(`Usage: ${NAME} [OPTIONS] < KEY\n\nReads an API key (the first line of stdin) and relays POST /v1/responses on 127.0.0.1 to the upstream with it.`)
    .options(Object.fromEntries(NAMES.map((name) => [name, shown(name)])))
    .strict()
    .version(version)
    .alias('V', 'version')
    .help()
    .alias('h', 'help')
    // Issue 17: the terminal's width (80 into a pipe), not a fixed 120.
    .wrap(helpWidth())
    .exitProcess(false)
    .fail((msg, err) => {
      throw new StartError(`${msg ?? err?.message ?? 'invalid arguments'} (see --help)`, EXIT_USAGE);
    })
    // With a callback, yargs hands over the help or version text instead of printing it.
    .parseSync(argv, {}, (_err, _argv, output) => {
      printed = output;
    });
  if (args['help'] || args['version']) throw new StartError(`${printed}\n`, EXIT_OK);
  for (const name of NAMES) {
    if (isRepeatable(name)) {
      // yargs gives one value as a string and repeated ones as an array.
      if (args[name] !== undefined) args[name] = ([] as unknown[]).concat(args[name]).map(String);
    } else if (Array.isArray(args[name])) {
      throw new StartError(`--${name} given more than once`, EXIT_USAGE);
    }
  }
  // The integers' own text, as the quick path reads it: yargs's Number() of
  // it ("0x10" is 16) is never used (yargs has already refused unknown flags
  // and missing values).
  const { values } = parseArgs({ args: argv, options: PARSE_ARGS, strict: false, allowPositionals: true });
  const raw = args as unknown as Record<string, unknown>;
  for (const name of NAMES) if (isInteger(name)) raw[name] = values[name];
  return raw as unknown as Raw;
}
