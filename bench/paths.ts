// The paths under test and how each one is obtained, started and stopped.
// A path that cannot be had (no nginx, no network for the original) is
// skipped with one line saying why; the rest of the bench goes on.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { launch, portOpen, readServerInfo, run, stop, waitFor, type Started } from './procs.js';

export interface Env {
  root: string;
  cache: string;
  key: string;
  upstream: { http: number; https: number };
  tls: Tls;
  /** When set, the relays run under --cpu-prof with --http-shutdown, writing here. */
  profileDir?: string;
}

export interface Running {
  port: number;
  /** The process whose CPU and memory are measured: the relay itself. */
  proc: Started | null;
  startupMs: number;
}

export interface Path {
  name: string;
  /** Why it is skipped, if it is. */
  skip?: string;
  /** Measured only when --paths names it, so the full run stays as it was. */
  optIn?: boolean;
  start(env: Env): Promise<Running>;
}

const START_LIMIT_MS = 10_000;
// The relay's built entry, relative to the project root: named here only, so
// that moving it in src/ is a one-line change to the bench.
const RELAY_ENTRY = 'dist/src/main.js';
const upstreamUrl = (env: Env, scheme: 'http' | 'https') =>
  `${scheme}://127.0.0.1:${env.upstream[scheme]}/v1/responses`;

let seq = 0;
function infoFile(env: Env, name: string) {
  const dir = join(env.cache, 'run');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}-${process.pid}-${seq++}.json`);
  rmSync(file, { force: true });
  return file;
}

/** Starts a process that takes the key on stdin and writes --server-info, like the original. */
async function startWithInfo(env: Env, name: string, cmd: string, args: string[], extraEnv: NodeJS.ProcessEnv) {
  const file = infoFile(env, name);
  const t0 = process.hrtime.bigint();
  const proc = launch(cmd, [...args, '--server-info', file], { stdin: env.key + '\n', env: { ...process.env, ...extraEnv } });
  const startupMs = await waitFor(proc, () => readServerInfo(file) !== null, START_LIMIT_MS, t0);
  const info = readServerInfo(file);
  if (startupMs < 0 || !info) {
    await stop(proc);
    throw new Error(`${name} did not write its server-info: ${proc.stderr().trim().split('\n').slice(-3).join(' / ')}`);
  }
  rmSync(file, { force: true });
  return { port: info.port, proc, startupMs };
}

export function relay(scheme: 'http' | 'https', dump = false): Path {
  const name = dump ? 'relay-dump' : `relay-${scheme}`;
  return {
    name,
    // Only when --paths names it: the default full run keeps its time budget.
    ...(dump ? { optIn: true } : {}),
    start: (env) => {
      const prof = env.profileDir ? [`--cpu-prof`, `--cpu-prof-dir=${env.profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
      // A fresh directory per start; run.ts clears dump-* scratch at the next run.
      const dumpDir = dump ? ['--dump-dir', join(env.cache, `dump-${process.pid}-${seq++}`)] : [];
      const args = [...prof, join(env.root, RELAY_ENTRY), '--upstream-url', upstreamUrl(env, scheme), ...dumpDir, ...(env.profileDir ? ['--http-shutdown'] : [])];
      return startWithInfo(env, name, process.execPath, args, { NODE_EXTRA_CA_CERTS: env.tls.ca });
    },
  };
}

/**
 * This relay to the http upstream with the spend guard on: --max-tokens (set
 * out of reach, so every request is checked and none refused) and
 * --usage-file, in the scratch folder run.ts clears at the next run.
 */
export function relayBudget(): Path {
  return {
    name: 'relay-budget',
    optIn: true,
    start: (env) => {
      const usage = join(env.cache, 'run', `usage-${process.pid}-${seq++}.json`);
      const args = [join(env.root, 'dist/src/main.js'), '--upstream-url', upstreamUrl(env, 'http'), '--max-tokens', '1000000000000', '--usage-file', usage];
      return startWithInfo(env, 'relay-budget', process.execPath, args, {});
    },
  };
}

let tunnel: Promise<number> | null = null;

/** bench/tunnel-proxy.ts, started once and left to stopAll() at the end of the run. */
function tunnelPort(env: Env): Promise<number> {
  tunnel ??= new Promise((resolve, reject) => {
    const p = launch(process.execPath, [join(env.root, 'dist/bench/tunnel-proxy.js')]);
    let out = '';
    p.child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n')) resolve((JSON.parse(line!) as { port: number }).port);
    });
    p.child.once('exit', () => reject(new Error(`the tunnel proxy exited: ${p.stderr()}`)));
  });
  return tunnel;
}

/**
 * This relay to the https upstream through a local CONNECT proxy
 * (HTTPS_PROXY): the upstream is named api.bench.test, which the certificate
 * also carries, since a loopback upstream never goes through a proxy.
 */
export function relayConnect(): Path {
  return {
    name: 'relay-https-connect',
    optIn: true,
    start: async (env) => {
      const port = await tunnelPort(env);
      const args = [join(env.root, RELAY_ENTRY), '--upstream-url', `https://api.bench.test:${env.upstream.https}/v1/responses`];
      return startWithInfo(env, 'relay-https-connect', process.execPath, args, { NODE_EXTRA_CA_CERTS: env.tls.ca, HTTPS_PROXY: `http://127.0.0.1:${port}` });
    },
  };
}

/**
 * The original, to the plain or the TLS upstream. Over TLS it trusts the run's
 * CA through SSL_CERT_FILE, which bench/egress-compare.ts shows it honours;
 * NODE_EXTRA_CA_CERTS is Node's.
 */
export function original(bin: string | null, why: string, scheme: 'http' | 'https' = 'http'): Path {
  const name = scheme === 'http' ? 'original' : 'original-https';
  return {
    name,
    ...(bin ? {} : { skip: why }),
    start: (env) => {
      const home = join(env.cache, 'codex-home');
      mkdirSync(home, { recursive: true });
      return startWithInfo(env, name, bin!, ['responses-api-proxy', '--upstream-url', upstreamUrl(env, scheme)], {
        CODEX_HOME: home,
        ...(scheme === 'https' ? { SSL_CERT_FILE: env.tls.ca } : {}),
      });
    },
  };
}

/** The floor for any Node relay, plain or over TLS: bench/pipe-proxy.ts. */
export function nodePipe(scheme: 'http' | 'https' = 'http'): Path {
  const name = scheme === 'http' ? 'node-pipe' : 'node-pipe-tls';
  return {
    name,
    start: (env) =>
      startWithInfo(env, name, process.execPath, [join(env.root, 'dist/bench/pipe-proxy.js'), '--upstream-url', upstreamUrl(env, scheme)],
        // The same trust, by the same variable, as relay-https.
        scheme === 'https' ? { NODE_EXTRA_CA_CERTS: env.tls.ca } : {}),
  };
}

export function naive(): Path {
  return {
    name: 'naive-node',
    start: (env) =>
      startWithInfo(env, 'naive', process.execPath, [join(env.root, 'dist/bench/naive-proxy.js'), '--upstream-url', upstreamUrl(env, 'http')], {}),
  };
}

export function nginx(bin: string | null, why: string, scheme: 'http' | 'https' = 'http'): Path {
  const name = scheme === 'http' ? 'nginx' : 'nginx-https';
  return {
    name,
    ...(bin ? {} : { skip: why }),
    start: async (env) => {
      const dir = join(env.cache, `nginx-${process.pid}-${seq++}`);
      mkdirSync(dir, { recursive: true });
      const port = await freePort();
      writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, port, env, scheme));
      const t0 = process.hrtime.bigint();
      // One process (master_process off), like the single-threaded relay;
      // its PID is the one measured and stopped.
      const proc = launch(bin!, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')]);
      const startupMs = await waitFor(proc, () => portOpen(port), START_LIMIT_MS, t0);
      if (startupMs < 0) {
        await stop(proc);
        throw new Error(`${name} did not listen: ${proc.stderr().trim()}`);
      }
      return { port, proc, startupMs };
    },
  };
}

/**
 * The same relay either way; over TLS, nginx verifies the upstream against the
 * run's CA and reuses sessions on new connections. nginx checks the upstream's
 * certificate by DNS name only, so it names the upstream api.bench.test (which
 * the certificate carries) for SNI and verification, while it still connects
 * to 127.0.0.1 and sends the same Host header as the plain path.
 */
function nginxConf(dir: string, port: number, env: Env, scheme: 'http' | 'https') {
  const tls =
    scheme === 'https'
      ? `
      proxy_ssl_trusted_certificate ${env.tls.ca};
      proxy_ssl_verify on;
      proxy_ssl_verify_depth 2;
      proxy_ssl_server_name on;
      proxy_ssl_name api.bench.test;
      proxy_ssl_session_reuse on;`
      : '';
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream bench_upstream {
    server 127.0.0.1:${env.upstream[scheme]};
    keepalive 256;
  }
  server {
    listen 127.0.0.1:${port};
    location = /v1/responses {
      proxy_pass ${scheme}://bench_upstream;${tls}
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host 127.0.0.1:${env.upstream[scheme]};
      proxy_set_header Authorization "Bearer ${env.key}";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 60s;
    }
    location / { return 403; }
  }
}
`;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

// ---- obtaining the peers -------------------------------------------------

const CODEX_PKG = '@openai/codex@0.171.0-linux-x64';
const CODEX_PATH_IN_PKG = 'package/vendor/x86_64-unknown-linux-musl/bin/codex';

/** The original Rust proxy binary, fetched with `npm pack` into the cache on first use. */
export function fetchOriginal(cache: string): { bin: string | null; why: string } {
  if (process.platform !== 'linux' || process.arch !== 'x64') return { bin: null, why: `${CODEX_PKG} ships linux-x64 only` };
  const dir = join(cache, 'codex-0.171.0');
  const bin = join(dir, 'codex');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    const pack = run('npm', ['pack', CODEX_PKG, '--pack-destination', dir, '--silent'], 240_000);
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    if (!pack.ok || !tgz) return { bin: null, why: `npm pack ${CODEX_PKG} failed: ${pack.out.split('\n').slice(-2).join(' ')}` };
    const tar = run('tar', ['xzf', tgz, CODEX_PATH_IN_PKG], 120_000, dir);
    rmSync(join(dir, tgz), { force: true });
    if (!tar.ok) return { bin: null, why: `extracting ${CODEX_PATH_IN_PKG} failed: ${tar.out}` };
    renameSync(join(dir, CODEX_PATH_IN_PKG), bin);
    rmSync(join(dir, 'package'), { recursive: true, force: true });
  }
  const help = run(bin, ['responses-api-proxy', '--help'], 20_000);
  return help.ok ? { bin, why: '' } : { bin: null, why: `codex responses-api-proxy --help failed: ${help.out.slice(0, 200)}` };
}

/** nginx from Debian's package, installed if missing and if we may. */
export function findNginx(): { bin: string | null; why: string } {
  const where = () => ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'].find((p) => existsSync(p)) ?? null;
  if (where()) return { bin: where(), why: '' };
  if (process.getuid?.() !== 0) return { bin: null, why: 'nginx is not installed and the bench is not root to apt-get it' };
  process.env['DEBIAN_FRONTEND'] = 'noninteractive';
  let r = run('apt-get', ['install', '-y', '-qq', 'nginx'], 180_000);
  if (!r.ok) {
    run('apt-get', ['update', '-qq'], 180_000);
    r = run('apt-get', ['install', '-y', '-qq', 'nginx'], 180_000);
  }
  return where() ? { bin: where(), why: '' } : { bin: null, why: `apt-get install nginx failed: ${r.out.split('\n').slice(-2).join(' ')}` };
}

export interface Tls {
  ca: string;
  cert: string;
  key: string;
}

/** A throw-away CA and a server certificate for 127.0.0.1, made fresh each run, never committed. */
export function makeTls(cache: string): Tls {
  const dir = join(cache, 'tls');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const f = (n: string) => join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:api.bench.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  const steps: string[][] = [
    ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=bench test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'],
    ['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1'],
    ['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial',
      '-out', f('server.pem'), '-days', '2', '-extfile', f('server.ext')],
  ];
  for (const args of steps) {
    const r = run('openssl', args, 30_000);
    if (!r.ok) throw new Error(`openssl ${args[0]} failed: ${r.out}`);
  }
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key') };
}
