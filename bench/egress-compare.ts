// Side by side: the original and this relay through the same recording
// CONNECT proxy. Prints the CONNECT head each sent, whether each honoured
// SSL_CERT_FILE / SSL_CERT_DIR, and which of HTTPS_PROXY / https_proxy wins
// when both are set. Run: npm run build && node dist/bench/egress-compare.js
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeTestPki } from '../test/support/certs.js';
import { startConnectProxy } from '../test/support/connect-proxy.js';
import { CLI, rawExchange, request, responsesComplete, startUpstream, tmpDir, waitFor } from '../test/support/harness.js';

const ORIGINAL = path.resolve('bench/.cache/codex-0.171.0/codex');
const KEY = 'sk-compare-0123456789abcdefghijklmnopqrstuv';

async function run(which: 'original' | 'relay', env: NodeJS.ProcessEnv, url: string): Promise<{ status: number; stderr: string }> {
  const dir = tmpDir();
  const info = path.join(dir, 'info.json');
  const [cmd, args] = which === 'original' ? [ORIGINAL, ['responses-api-proxy']] : [process.execPath, [CLI]];
  const proc = spawn(cmd, [...args, '--server-info', info, '--upstream-url', url], { stdio: ['pipe', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '', ...env } });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  proc.stdin!.end(`${KEY}\n`);
  try {
    const { port } = JSON.parse(await waitFor('server-info', () => fs.existsSync(info) && fs.readFileSync(info, 'utf8'))) as { port: number };
    const res = await rawExchange(port, [request()], { until: responsesComplete, ms: 8000, quiet: true });
    return { status: res.status, stderr };
  } finally {
    proc.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const pki = makeTestPki(['api.example.test']);
const up = await startUpstream(undefined, { key: pki.key, cert: pki.cert });
const url = 'https://api.example.test/v1/responses';
const hashDir = tmpDir();
const hash = execFileSync('openssl', ['x509', '-hash', '-noout', '-in', pki.caFile]).toString().trim();
fs.copyFileSync(pki.caFile, path.join(hashDir, `${hash}.0`));

for (const which of ['original', 'relay'] as const) {
  const p = await startConnectProxy(up.port);
  const trust = which === 'original' ? { SSL_CERT_FILE: pki.caFile } : { NODE_EXTRA_CA_CERTS: pki.caFile };
  const r = await run(which, { HTTPS_PROXY: `http://user:pw@127.0.0.1:${p.port}`, ...trust }, url);
  console.log(`--- ${which}: status ${r.status}; CONNECT head received by the proxy:`);
  console.log(JSON.stringify(p.heads[0] ?? ''));
  await p.close();
}

for (const which of ['original', 'relay'] as const) {
  for (const [name, env] of [
    ['no extra CA', {}],
    ['SSL_CERT_FILE', { SSL_CERT_FILE: pki.caFile }],
    ['SSL_CERT_DIR', { SSL_CERT_DIR: hashDir }],
  ] as const) {
    const p = await startConnectProxy(up.port);
    const r = await run(which, { HTTPS_PROXY: p.url, ...env }, url);
    console.log(`${which} with ${name}: status ${r.status}${r.status === 200 ? '' : ` ${r.stderr.trim().split('\n').at(-1)}`}`);
    await p.close();
  }
}

for (const which of ['original', 'relay'] as const) {
  const upper = await startConnectProxy(up.port);
  const lower = await startConnectProxy(up.port);
  const trust = which === 'original' ? { SSL_CERT_FILE: pki.caFile } : { NODE_EXTRA_CA_CERTS: pki.caFile };
  const r = await run(which, { HTTPS_PROXY: upper.url, https_proxy: lower.url, ...trust }, url);
  console.log(`${which} with HTTPS_PROXY and https_proxy both set: status ${r.status}; HTTPS_PROXY got ${upper.connections}, https_proxy got ${lower.connections} connection(s)`);
  await upper.close();
  await lower.close();
  const upperNo = await startConnectProxy(up.port);
  const r2 = await run(which, { HTTPS_PROXY: upperNo.url, NO_PROXY: 'other.test', no_proxy: 'example.test', ...trust }, url);
  console.log(`${which} with NO_PROXY=other.test no_proxy=example.test: status ${r2.status}; proxy got ${upperNo.connections} connection(s)`);
  await upperNo.close();
}

await up.close();
fs.rmSync(pki.dir, { recursive: true, force: true });
fs.rmSync(hashDir, { recursive: true, force: true });
