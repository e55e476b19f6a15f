// Test harness: the proxy as a child process (as users run it), a recording
// upstream over raw sockets (http or https), the two paired for a suite
// (relayFixture), and a raw client. The upstream frames requests
// with its own small parser so tests never trust the code under test to
// check itself.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { MAIN } from '../../src/cli/paths.js';
import type { TestPki } from './certs.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The bin, as package.json names it. */
export const CLI = MAIN;
export const KEY = 'sk-test_Proxy-Key-0123456789';

export interface Proxy {
  port: number;
  proc: ChildProcess;
  stderr: () => string;
  stdout: () => string;
  /** Resolves with the exit code (or signal name) once the process ends. */
  exited: Promise<number | string>;
  stop: () => Promise<void>;
}

// Every test file runs in its own process (node --test): its temp folders
// go when it exits, pass or fail.
const tmpDirs: string[] = [];
process.on('exit', () => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * A port nothing listens on, for "upstream down" cases. A port freed by
 * closing a listener can be handed out again at once, to the proxy under
 * test itself or to a server of a test running beside it, which turns the
 * refusal into something else one run in many. bind(0) only ever hands out
 * ports in ip_local_port_range (32768-60999 here), and no test listens on 1.
 */
export const REFUSED_PORT = 1;

export function tmpDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'crap-test-'));
  tmpDirs.push(dir);
  return dir;
}

export async function waitFor<T>(what: string, probe: () => T | undefined | null | false, ms = 10000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Spawns the CLI with the key on stdin and waits for its server-info file. */
export async function startProxy(args: string[], opts: { key?: string | Buffer; env?: NodeJS.ProcessEnv; execArgv?: string[]; serverInfo?: string } = {}): Promise<Proxy> {
  const info = opts.serverInfo ?? path.join(tmpDir(), 'server-info.json');
  const proc = spawn(process.execPath, [...(opts.execArgv ?? []), CLI, '--server-info', info, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: opts.env ?? { PATH: process.env.PATH ?? '' },
  });
  let err = '';
  let out = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  proc.stdin!.end(opts.key ?? `${KEY}\n`);
  let dead: number | string | undefined;
  void exited.then((c) => (dead = c));
  let port = 0;
  try {
    port = await waitFor(`server-info from the proxy`, () => {
      if (dead !== undefined) throw new Error(`proxy exited (${dead}) before listening: ${err}`);
      try {
        // A file planted there by a test is not the proxy's until it parses.
        return (JSON.parse(fs.readFileSync(info, 'utf8')) as { port?: number }).port;
      } catch {
        return undefined;
      }
    });
    // The proxy writes its line before the file, but this process may not
    // have read that pipe yet when the file shows up.
    await waitFor('the listening line', () => dead !== undefined || err.includes(' listening on '));
  } catch (e) {
    // A proxy left running would keep this test file from ever ending.
    proc.kill('SIGKILL');
    throw e;
  }
  return {
    port,
    proc,
    stderr: () => err,
    stdout: () => out,
    exited,
    stop: async () => {
      if (dead === undefined) proc.kill('SIGTERM');
      await exited;
    },
  };
}

/** Runs the CLI to completion (for start-up failures). */
export function runCli(args: string[], stdin: string | Buffer, env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '' }, execArgv: string[] = []): Promise<{ code: number | string; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [...execArgv, CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
    let stderr = '';
    let stdout = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 15000);
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal ?? -1, stderr, stdout });
    });
    proc.stdin.on('error', () => {});
    proc.stdin.end(stdin);
  });
}

export interface Received {
  /** The request head exactly as received. */
  head: Buffer;
  /** The body exactly as framed on the wire (chunk lines included). */
  body: Buffer;
  conn: number;
}

export type Responder = (req: Received, sock: net.Socket) => void;

export interface Upstream {
  port: number;
  url: string;
  received: Received[];
  /** Every byte each connection sent, in connection order. */
  raw: Buffer[];
  /** The sockets, in the same order as `raw`. */
  conns: net.Socket[];
  connections: number;
  sockets: Set<net.Socket>;
  close: () => Promise<void>;
}

export const okJson = (body = '{"ok":true}'): Responder => (_req, sock) => {
  sock.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
};

/**
 * A raw upstream that records each request and answers with `respond`; with
 * `secure` (a key and certificate: certs.ts), an https one.
 * Framing: Content-Length, or chunked read to the last-chunk and trailers.
 */
export async function startUpstream(respond: Responder = okJson(), secure?: tls.TlsOptions): Promise<Upstream> {
  const rawParts: Buffer[][] = [];
  const up: Upstream = {
    port: 0,
    url: '',
    received: [],
    get raw() {
      return rawParts.map((p) => Buffer.concat(p));
    },
    conns: [],
    connections: 0,
    sockets: new Set(),
    close: async () => {},
  };
  const onConnection = (sock: net.Socket): void => {
    const conn = up.connections++;
    up.sockets.add(sock);
    sock.on('close', () => up.sockets.delete(sock));
    sock.on('error', () => {});
    sock.setNoDelay(true);
    const raw: Buffer[] = [];
    rawParts.push(raw);
    up.conns.push(sock);
    // Joined only once enough bytes for the next frame are in: large bodies stay linear.
    let pending: Buffer[] = [];
    let pendingLen = 0;
    let need = 0;
    sock.on('data', (d: Buffer) => {
      raw.push(d);
      pending.push(d);
      pendingLen += d.length;
      if (pendingLen < need) return;
      let buf = Buffer.concat(pending);
      for (let req = frame(buf); ; req = frame(buf)) {
        if ('need' in req) {
          need = req.need;
          break;
        }
        buf = buf.subarray(req.used);
        const r = { head: req.head, body: req.body, conn };
        up.received.push(r);
        respond(r, sock);
      }
      pending = [buf];
      pendingLen = buf.length;
    });
  };
  const server = secure ? tls.createServer(secure, onConnection) : net.createServer(onConnection);
  // A client that refuses the certificate (the untrusted case) aborts its handshake.
  if (secure) server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.port = (server.address() as net.AddressInfo).port;
  up.url = `${secure ? 'https' : 'http'}://127.0.0.1:${up.port}/v1/responses`;
  up.close = () =>
    new Promise((r) => {
      for (const s of up.sockets) s.destroy();
      server.close(() => r());
    });
  return up;
}

export interface RelayFixture {
  up: Upstream;
  proxy: Proxy;
}

export interface RelayFixtureOptions {
  /** The path and query the proxy forwards to (default /v1/responses). */
  target?: string;
  /** Serve https with this certificate; the proxy trusts its CA (NODE_EXTRA_CA_CERTS). */
  pki?: TestPki;
}

/**
 * An upstream answering with `respond`, and the proxy in front of it started
 * with `--upstream-url` and `args`, shared by the tests of the enclosing
 * describe (or file): both start in its `before` and stop in its `after`, so
 * the fields are set only once the tests run.
 */
export function relayFixture(args: string[] = [], respond: Responder = okJson(), opts: RelayFixtureOptions = {}): RelayFixture {
  const fx = {} as RelayFixture;
  const { pki, target = '/v1/responses' } = opts;
  before(async () => {
    fx.up = await startUpstream(respond, pki && { key: pki.key, cert: pki.cert });
    const url = `${pki ? 'https' : 'http'}://127.0.0.1:${fx.up.port}${target}`;
    fx.proxy = await startProxy(['--upstream-url', url, ...args], pki ? { env: { PATH: process.env.PATH ?? '', NODE_EXTRA_CA_CERTS: pki.caFile } } : {});
  });
  after(async () => {
    await fx.proxy?.stop();
    await fx.up?.close();
  });
  return fx;
}

/** One framed request, or how many bytes are needed before trying again. */
function frame(buf: Buffer): { head: Buffer; body: Buffer; used: number } | { need: number } {
  const more = { need: buf.length + 1 };
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return more;
  const head = buf.subarray(0, end + 4);
  const text = head.toString('latin1');
  const cl = /\r\ncontent-length:[ \t]*(\d+)/i.exec(text);
  if (/\r\ntransfer-encoding:[ \t]*chunked/i.test(text)) {
    let i = end + 4;
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', i);
      if (lineEnd < 0) return more;
      const size = parseInt(buf.toString('latin1', i, lineEnd).split(';')[0]!, 16);
      i = lineEnd + 2;
      if (size === 0) {
        // Trailers until an empty line.
        for (;;) {
          const t = buf.indexOf('\r\n', i);
          if (t < 0) return more;
          const empty = t === i;
          i = t + 2;
          if (empty) return { head, body: buf.subarray(end + 4, i), used: i };
        }
      }
      if (buf.length < i + size + 2) return more;
      i += size + 2;
    }
  }
  const n = cl ? Number(cl[1]) : 0;
  if (buf.length < end + 4 + n) return { need: end + 4 + n };
  return { head, body: buf.subarray(end + 4, end + 4 + n), used: end + 4 + n };
}

export interface RawResult {
  /** Everything the proxy sent before closing (or before `until` was satisfied). */
  data: Buffer;
  status: number;
  closed: boolean;
}

export interface ExchangeOptions {
  /** Stop collecting once this holds; without `quiet`, not holding within `ms` is an error. */
  until?: (data: Buffer) => boolean;
  ms?: number;
  /** Half-close after the last part. */
  end?: boolean;
  /** On timeout, resolve with what arrived instead of rejecting. */
  quiet?: boolean;
}

/**
 * Sends `parts` as separate writes (each flushed before the next) and collects
 * the reply until the proxy closes, or `until(data)` holds, or `ms` passes.
 */
export function rawExchange(port: number, parts: Buffer[], opts: ExchangeOptions = {}): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    let data = Buffer.alloc(0);
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data.toString('latin1', 0, 12));
      resolve({ data, status: m ? Number(m[1]) : 0, closed });
    };
    const timer = setTimeout(() => (opts.until && !opts.quiet ? reject(new Error(`no complete reply within ${opts.ms ?? 10000} ms: ${JSON.stringify(data.toString('latin1'))}`)) : finish(false)), opts.ms ?? 10000);
    sock.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      if (opts.until?.(data)) finish(false);
    });
    sock.on('close', () => finish(true));
    sock.on('error', () => {});
    sock.on('connect', async () => {
      for (const p of parts) {
        if (done || sock.destroyed) return;
        await new Promise<void>((r) => sock.write(p, () => r()));
        // Let the proxy read each part on its own.
        await new Promise((r) => setImmediate(r));
      }
      if (opts.end && !sock.destroyed) sock.end();
    });
  });
}

/** A complete HTTP/1.1 response with Content-Length is in `data` (n of them). */
export function responsesComplete(data: Buffer, n = 1): boolean {
  let i = 0;
  for (let k = 0; k < n; k++) {
    const end = data.indexOf('\r\n\r\n', i);
    if (end < 0) return false;
    const cl = /\r\ncontent-length:[ \t]*(\d+)/i.exec(data.toString('latin1', i, end + 2));
    const next = end + 4 + (cl ? Number(cl[1]) : 0);
    if (data.length < next) return false;
    i = next;
  }
  return true;
}

export const b = (s: string): Buffer => Buffer.from(s, 'latin1');

export function request(body = '{"model":"m","input":"hi"}', extra = '', target = '/v1/responses'): Buffer {
  return b(`POST ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}
