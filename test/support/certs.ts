// The tests' one certificate maker: a throwaway CA and a server certificate
// for localhost, 127.0.0.1 and any extra DNS names (a name reached only
// through a test's egress proxy), made with the openssl command line at test
// time, so no key is committed. A peer trusts the certificate only when it is
// given caFile: left out, the same certificate is an untrusted one.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from './harness.js';

export interface TestPki {
  dir: string;
  caFile: string;
  key: Buffer;
  cert: Buffer;
}

export function makeTestPki(extraNames: string[] = []): TestPki {
  const dir = tmpDir();
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=proxy test CA');
  run('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  fs.writeFileSync(path.join(dir, 'ext.cnf'), `subjectAltName=${['localhost', ...extraNames].map((n) => `DNS:${n}`).join(',')},IP:127.0.0.1\n`);
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf');
  return {
    dir,
    caFile: path.join(dir, 'ca.pem'),
    key: fs.readFileSync(path.join(dir, 'server.key')),
    cert: fs.readFileSync(path.join(dir, 'server.pem')),
  };
}

/** Why openssl cannot be used here, or null when it can. */
export function opensslMissing(): string | null {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  return r.error || r.status !== 0 ? 'openssl is not installed: no certificate can be made for the TLS case' : null;
}
