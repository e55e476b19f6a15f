// `npm run demo`: stream one reply through the proxy, no key and no internet.
//
// It starts the fake Responses upstream (demo/fake-responses.ts) and the proxy
// (dist/src/main.js, as a child process with a dummy key piped on stdin), sends
// one streaming `POST /v1/responses` through the proxy with plain node:http,
// and prints each event as it arrives with the time it spent between the
// upstream's write and the client's read. Then it stops both, the proxy by
// `GET /shutdown`. Exit 0 on success; otherwise one line on stderr and exit 1.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SENT_AT_COMMENT, SseReader, nowEpochMs, startFakeResponses } from './fake-responses.js';
import type { FakeResponsesServer } from './fake-responses.js';
import { MAIN } from '../src/cli/paths.js';

/** The dummy key the demo pipes in; it only has to pass the proxy's `^[A-Za-z0-9_-]+$` check. */
const DEMO_KEY = 'sk-demo-not-a-real-key';

const CLI_PATH = MAIN;
const POLL_MS = 25;

interface ProxyOptions {
  upstreamUrl: string;
  key: string;
  /** How long to wait for the server-info file (default 10 s). */
  startTimeoutMs?: number;
}

interface RunningProxy {
  readonly port: number;
  readonly pid: number;
  /** `http://127.0.0.1:PORT/v1` */
  readonly baseUrl: string;
  readonly child: ChildProcess;
  /** Everything the proxy wrote to stderr so far. */
  stderr(): string;
  /** `GET /shutdown`, then wait for the exit; resolves to the exit code. */
  shutdown(timeoutMs?: number): Promise<number | null>;
  /** SIGKILL the proxy by its pid if it still runs, and remove its temp folder. Safe to call twice. */
  kill(): Promise<void>;
}

/**
 * Spawn `node dist/src/main.js --upstream-url URL --server-info FILE --http-shutdown`,
 * pipe `key` on stdin, and wait until FILE names the port.
 */
async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} does not exist: run \`npm run build\` first`);
  const dir = await mkdtemp(join(tmpdir(), 'responses-proxy-'));
  const infoFile = join(dir, 'server-info.json');
  const child = spawn(
    process.execPath,
    [CLI_PATH, '--upstream-url', options.upstreamUrl, '--server-info', infoFile, '--http-shutdown'],
    { stdio: ['pipe', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr += text;
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
  });
  const spawnFailed = new Promise<Error>((resolve) => child.once('error', resolve));
  child.stdin?.on('error', () => {
    // The proxy may exit (bad key) before reading stdin; its exit is reported instead.
  });
  child.stdin?.end(`${options.key}\n`);

  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 10_000);
  let info: { port: number; pid: number } | undefined;
  let failure: string | undefined;
  void spawnFailed.then((err) => {
    failure = `could not start the proxy: ${err.message}`;
  });
  // Bounded by the deadline: one read every POLL_MS.
  while (info === undefined && failure === undefined) {
    if (child.exitCode !== null || child.signalCode !== null) {
      failure = `the proxy exited (${child.exitCode ?? child.signalCode}) before listening: ${firstLine(stderr) || 'no message'}`;
      break;
    }
    if (Date.now() > deadline) {
      failure = `the proxy wrote no server-info file within ${options.startTimeoutMs ?? 10_000} ms`;
      break;
    }
    info = await readServerInfo(infoFile);
    if (info === undefined) await sleep(POLL_MS);
  }
  if (info === undefined) {
    await kill();
    throw new Error(failure);
  }

  const { port, pid } = info;
  return {
    port,
    pid,
    baseUrl: `http://127.0.0.1:${port}/v1`,
    child,
    stderr: () => stderr,
    kill,
    async shutdown(timeoutMs = 5_000): Promise<number | null> {
      const status = await httpGetStatus(port, '/shutdown', timeoutMs);
      if (status !== 200) throw new Error(`GET /shutdown answered ${status}, expected 200`);
      const code = await Promise.race([exited, sleep(timeoutMs, 'timeout' as const)]);
      if (code === 'timeout') {
        await kill();
        throw new Error(`the proxy did not exit within ${timeoutMs} ms of GET /shutdown`);
      }
      await rm(dir, { recursive: true, force: true });
      return code;
    },
  };
}

async function readServerInfo(file: string): Promise<{ port: number; pid: number } | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  // The proxy writes the file atomically, so a present file is a whole line.
  const value = JSON.parse(text) as { port?: unknown; pid?: unknown };
  if (typeof value.port !== 'number' || typeof value.pid !== 'number') {
    throw new Error(`unexpected server-info contents: ${text.trim()}`);
  }
  return { port: value.port, pid: value.pid };
}

function httpGetStatus(port: number, path: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

// ---------------------------------------------------------------------------
// The demo itself.

const EVENT_DELAY_MS = 120;
const DEMO_DEADLINE_MS = 30_000;
/** Sent by the demo client on purpose: the proxy must replace it with the piped key. */
const CLIENT_AUTHORIZATION = 'Bearer client-side-placeholder';

const useColor = process.stdout.isTTY === true && process.env['NO_COLOR'] === undefined;
const paint = (code: string) => (text: string) => (useColor ? `\x1b[${code}m${text}\x1b[0m` : text);
const dim = paint('2');
const bold = paint('1');
const green = paint('32');
const cyan = paint('36');

interface Arrival {
  type: string;
  relayMs: number | undefined;
  atMs: number;
  delta: string | undefined;
}

/** The proxy of a running demo, so that the last-resort deadline can stop it too. */
let demoProxy: RunningProxy | undefined;

async function demo(): Promise<void> {
  let upstream: FakeResponsesServer | undefined;
  let proxy: RunningProxy | undefined;
  try {
    upstream = await startFakeResponses({ delayMs: EVENT_DELAY_MS, timestampComments: true });
    console.log(`${bold('Fake Responses upstream')}  ${upstream.responsesUrl}`);
    proxy = await startProxy({ upstreamUrl: upstream.responsesUrl, key: DEMO_KEY });
    demoProxy = proxy;
    console.log(`${bold('Proxy')}                    http://127.0.0.1:${proxy.port}  (pid ${proxy.pid}, key piped on stdin)`);
    console.log('');

    const body = JSON.stringify({ model: 'gpt-demo', input: 'Say hello through the proxy.', stream: true });
    console.log(`POST http://127.0.0.1:${proxy.port}/v1/responses  ${dim(body)}`);
    const arrivals = await streamThroughProxy(proxy.port, body);

    const text = arrivals.map((a) => a.delta ?? '').join('');
    const relays = arrivals.map((a) => a.relayMs).filter((ms): ms is number => ms !== undefined);
    console.log('');
    console.log(`${bold('Assembled text')}  ${text}`);
    console.log(
      `${arrivals.length} events; time from the upstream's write to the client's read: ` +
        `median ${fmtMs(median(relays))}, max ${fmtMs(Math.max(...relays))}`,
    );

    const sent = upstream.streams[0]?.map((e) => e.type) ?? [];
    const got = arrivals.map((a) => a.type);
    if (sent.join(',') !== got.join(',')) {
      throw new Error(`the client got ${got.length} events but the upstream sent ${sent.length}`);
    }
    if (arrivals[arrivals.length - 1]?.type !== 'response.completed') {
      throw new Error('the stream ended without response.completed');
    }

    const seen = upstream.requests[0]?.headers.authorization;
    if (seen !== `Bearer ${DEMO_KEY}`) {
      throw new Error(`the upstream saw Authorization ${JSON.stringify(seen)}, not the piped key`);
    }
    console.log(
      `The upstream saw ${cyan(`Authorization: Bearer ${DEMO_KEY}`)} ${dim(`(the piped key; the client sent "${CLIENT_AUTHORIZATION}")`)}`,
    );

    const code = await proxy.shutdown();
    proxy = undefined;
    if (code !== 0) throw new Error(`the proxy exited with code ${code} after GET /shutdown`);
    console.log(`Proxy stopped by GET /shutdown (exit code 0); upstream stopped. ${green('Demo OK.')}`);
  } finally {
    await proxy?.kill();
    await upstream?.close();
  }
}

/** Send the request with node:http and print each SSE event the moment it is read. */
function streamThroughProxy(port: number, body: string): Promise<Arrival[]> {
  return new Promise((resolve, reject) => {
    const started = nowEpochMs();
    const arrivals: Arrival[] = [];
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/responses',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          accept: 'text/event-stream',
          authorization: CLIENT_AUTHORIZATION,
        },
        signal: AbortSignal.timeout(DEMO_DEADLINE_MS),
      },
      (res) => {
        const contentType = res.headers['content-type'] ?? '';
        console.log(dim(`HTTP/${res.httpVersion} ${res.statusCode} ${res.statusMessage ?? ''}, content-type: ${contentType}`));
        if (res.statusCode !== 200 || !contentType.startsWith('text/event-stream')) {
          res.resume();
          reject(new Error(`the proxy answered ${res.statusCode} ${contentType}, expected 200 text/event-stream`));
          return;
        }
        console.log('');
        console.log(dim(`${'since POST'.padStart(10)}  ${'upstream→client'.padStart(15)}  event`));
        const reader = new SseReader();
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          const now = nowEpochMs();
          for (const event of reader.push(chunk)) {
            const arrival = toArrival(event.event, event.data, event.comments, now - started, now);
            arrivals.push(arrival);
            printArrival(arrival);
          }
        });
        res.on('end', () => resolve(arrivals));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function toArrival(type: string | undefined, data: string, comments: string[], atMs: number, now: number): Arrival {
  const stamp = comments.find((c) => c.startsWith(`${SENT_AT_COMMENT}=`));
  const sentAt = stamp === undefined ? undefined : Number(stamp.slice(SENT_AT_COMMENT.length + 1));
  let delta: string | undefined;
  if (type === 'response.output_text.delta') {
    const parsed = JSON.parse(data) as { delta?: unknown };
    if (typeof parsed.delta === 'string') delta = parsed.delta;
  }
  return {
    type: type ?? '(no event name)',
    relayMs: sentAt === undefined || Number.isNaN(sentAt) ? undefined : now - sentAt,
    atMs,
    delta,
  };
}

function printArrival(a: Arrival): void {
  const at = `+${Math.round(a.atMs)} ms`.padStart(10);
  const relay = (a.relayMs === undefined ? '?' : fmtMs(a.relayMs)).padStart(15);
  const extra = a.delta === undefined ? '' : `  ${dim(JSON.stringify(a.delta))}`;
  console.log(`${dim(at)}  ${relay}  ${cyan(a.type)}${extra}`);
}

function fmtMs(ms: number): string {
  return `${ms.toFixed(1)} ms`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

// `npm run demo | head` closes stdout early: stop printing, but still stop the proxy and upstream.
process.stdout.on('error', () => {});
const deadline = setTimeout(() => {
  console.error(`demo: failed: no result within ${DEMO_DEADLINE_MS / 1000} s`);
  if (demoProxy?.child.exitCode === null) demoProxy.child.kill('SIGKILL');
  process.exit(1);
}, DEMO_DEADLINE_MS + 5_000);
deadline.unref();
demo().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`demo: failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
