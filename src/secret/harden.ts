// Closes the doors Node itself opens onto the key, as far as Node can without
// native code. cli.ts calls harden() before it reads the key, so nothing
// below ever runs with the key in memory except the exit wipe. SECURITY.md
// lists what stays out of reach (mlock, PR_SET_DUMPABLE, core dumps).
import inspector from 'node:inspector';

/** Why start-up was refused: one line naming the option. */
export class HardenError extends Error {}

/**
 * Node options that hand this process to someone else: a debugger (the
 * inspector), code loaded before ours, or a heap dump written to disk.
 * Names are compared after `_` → `-`, as Node itself accepts both spellings
 * (doc/api/cli.md: "Both underscores and dashes are allowed in option names").
 */
const RISKY: readonly { name: string; prefix: boolean; why: string }[] = [
  { name: '--inspect', prefix: true, why: 'starts a debugger that can read the key' },
  { name: '--debug', prefix: true, why: 'starts a debugger that can read the key' },
  { name: '--require', prefix: false, why: 'loads code into the proxy before it starts' },
  { name: '-r', prefix: false, why: 'loads code into the proxy before it starts' },
  { name: '--import', prefix: false, why: 'loads code into the proxy before it starts' },
  { name: '--loader', prefix: false, why: 'loads code into the proxy before it starts' },
  { name: '--experimental-loader', prefix: false, why: 'loads code into the proxy before it starts' },
  { name: '--heapsnapshot-signal', prefix: false, why: 'lets any process of this user dump the heap to disk' },
  // Not in issue 5's list, same harm: the heap goes to a file unasked.
  { name: '--heapsnapshot-near-heap-limit', prefix: false, why: 'writes the heap to disk' },
  // Node 22.14+/23.10+ (doc/api/cli.md): a JSON file whose "nodeOptions" may
  // hold --import preloads that never show in execArgv or NODE_OPTIONS. Node
  // shows only the flag (the default-file alias appears as this one); they
  // have run by now, but the key is not read yet. SECURITY.md lists the rest.
  { name: '--experimental-config-file', prefix: false, why: 'loads options, preloads included, from a file' },
  { name: '--experimental-default-config-file', prefix: false, why: 'loads options, preloads included, from ./node.config.json' },
];

/** The option's name as Node reads it: before any `=`, underscores as dashes. */
function optionName(token: string): string {
  const eq = token.indexOf('=');
  const name = eq < 0 ? token : token.slice(0, eq);
  // Node normalises only the long form; `-r` stays as it is.
  return name.startsWith('--') ? `--${name.slice(2).replace(/_/g, '-')}` : name;
}

function riskyName(token: string): string | null {
  if (!token.startsWith('-')) return null;
  const name = optionName(token);
  for (const r of RISKY) {
    if (r.prefix ? name.startsWith(r.name) : name === r.name) return `${name} ${r.why}`;
  }
  return null;
}

/**
 * Splits NODE_OPTIONS the way Node does (src/node_options.cc,
 * ParseNodeOptionsEnvVar): spaces separate tokens outside double quotes,
 * a quote toggles quoting wherever it appears (`--im"port"` is `--import`),
 * a backslash inside quotes takes the next character, and a token exists
 * only once it has a character (`""` yields none).
 */
export function splitNodeOptions(raw: string): string[] {
  const out: string[] = [];
  let quoted = false;
  let fresh = true;
  for (let i = 0; i < raw.length; i++) {
    let c = raw[i]!;
    if (c === '\\' && quoted) {
      // Node rejects a trailing backslash and starts nothing; neither do we.
      if (i + 1 === raw.length) break;
      c = raw[++i]!;
    } else if (c === ' ' && !quoted) {
      fresh = true;
      continue;
    } else if (c === '"') {
      quoted = !quoted;
      continue;
    }
    if (fresh) out.push(c);
    else out[out.length - 1] += c;
    fresh = false;
  }
  return out;
}

/** Returns the one-line reason to refuse start-up, or null. */
export function riskyStartup(execArgv: readonly string[], nodeOptions: string | undefined): string | null {
  for (const token of execArgv) {
    const why = riskyName(token);
    if (why) return `refusing to start: node option ${why}`;
  }
  for (const token of splitNodeOptions(nodeOptions ?? '')) {
    const why = riskyName(token);
    if (why) return `refusing to start: NODE_OPTIONS option ${why}`;
  }
  return null;
}

/** Throws HardenError while an inspector is listening in this process. */
export function assertInspectorOff(): void {
  // undefined when no inspector is active (doc/api/inspector.md, inspector.url()).
  if (inspector.url() !== undefined) throw new HardenError('refusing to run: a Node inspector is active in this process, and it can read the key');
}

// Variables that would carry the key (or load code) into this process's
// environment. OPENAI/AZURE keys belong on stdin; LD_* are stripped as the
// original's codex-process-hardening does (pre_main_hardening_linux).
const SECRET_VARS = ['OPENAI_API_KEY', 'AZURE_OPENAI_API_KEY'] as const;

/**
 * Removes stray secrets from process.env, never reading their values, and
 * returns the warnings to print. Removal only hides them from this process's
 * JS (and any child it might spawn): the kernel keeps the environment the
 * process was started with in /proc/<pid>/environ.
 */
export function stripEnvironment(env: NodeJS.ProcessEnv): string[] {
  const warnings: string[] = [];
  for (const name of SECRET_VARS) {
    if (!Object.prototype.hasOwnProperty.call(env, name)) continue;
    delete env[name];
    warnings.push(
      `warning: ${name} was set in this process's environment; it is removed from process.env, but stays readable to this user in /proc/${process.pid}/environ. ` +
        `Pipe the key on stdin and start the proxy with \`env -u ${name}\``,
    );
  }
  const loader = Object.keys(env).filter((name) => name.startsWith('LD_'));
  for (const name of loader) delete env[name];
  if (loader.length > 0) {
    // The loader acted on them before any JS ran; removing them only keeps
    // them from anything this process might start.
    warnings.push(`warning: removed ${loader.join(', ')} from the environment; they took effect when this process was loaded, before this check`);
  }
  return warnings;
}

/**
 * Node starts the inspector on 127.0.0.1:9229 when it receives SIGUSR1
 * (doc/api/process.md, "Signal events"). Node installs that behaviour with a
 * plain sigaction() (src/inspector_agent.cc, StartDebugSignalHandler →
 * RegisterSignalHandler(SIGUSR1, ...)); a JS listener makes libuv install its
 * own handler over it, so the signal reaches this listener and the inspector
 * never starts. test/security/sigusr1-inspector.test.ts checks that nothing
 * new listens and the proxy keeps serving.
 */
export function neutraliseSigusr1(log: (line: string) => void): void {
  process.on('SIGUSR1', () => log('ignored SIGUSR1: the inspector stays off'));
}

/**
 * Everything the proxy does before the key exists. Throws HardenError when
 * it must refuse to start; `log` gets the warnings.
 */
export function harden(log: (line: string) => void): void {
  // First, so that no later step leaves a window in which SIGUSR1 works.
  neutraliseSigusr1(log);
  const risky = riskyStartup(process.execArgv, process.env['NODE_OPTIONS']);
  if (risky) throw new HardenError(risky);
  assertInspectorOff();
  for (const w of stripEnvironment(process.env)) log(w);
}

/**
 * Zeroes the key on every exit that runs JS: process.exit() from anywhere
 * (/shutdown, die(), a fatal error path) and a natural end of the loop.
 * Death by signal skips 'exit': cli.ts wipes in its signal handlers.
 */
export function wipeOnExit(wipe: () => void): void {
  process.on('exit', wipe);
}
