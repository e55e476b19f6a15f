// Which CAs verify the upstream. By default Node's own store: its bundled
// roots, plus NODE_EXTRA_CA_CERTS, plus the system store under
// --use-system-ca. SSL_CERT_FILE and SSL_CERT_DIR, which users of the
// original set for a TLS-inspecting egress proxy, add their certificates to
// that store. Loaded once at start-up into one SecureContext, so a connection
// does not re-parse some 150 roots.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';

export class TrustError extends Error {}

type TlsTrust = { secureContext: tls.SecureContext } | Record<string, never>;

/** The TLS options that verify an upstream: empty (Node's own store) unless SSL_CERT_FILE/DIR added roots. */
export class Trust {
  private built: TlsTrust = {};

  /** `pending`: the CA list for the context, built at the first options() call. */
  constructor(private pending: string[] | null = null) {}

  options(): TlsTrust {
    if (this.pending) {
      this.built = { secureContext: tls.createSecureContext({ ca: this.pending }) };
      this.pending = null;
    }
    return this.built;
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** A PEM certificate without its line breaks, to tell copies apart from new ones. */
const canonical = (pem: string): string => pem.replace(/\s+/g, '');

function certsIn(file: string, variable: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch (err) {
    throw new TrustError(`${variable}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  return text.match(PEM_CERT) ?? [];
}

/** The store Node would use on its own; getCACertificates exists from Node 22.15 / 23.10. */
function nodeDefaults(env: NodeJS.ProcessEnv): string[] {
  const get = (tls as { getCACertificates?: (type?: string) => string[] }).getCACertificates;
  if (get) return get('default');
  const roots = [...tls.rootCertificates];
  // Node 20 applies NODE_EXTRA_CA_CERTS only when no `ca` is given, so add it here.
  if (env.NODE_EXTRA_CA_CERTS) {
    try {
      roots.push(...certsIn(env.NODE_EXTRA_CA_CERTS, 'NODE_EXTRA_CA_CERTS'));
    } catch {
      // Node itself only warns about an unreadable NODE_EXTRA_CA_CERTS.
    }
  }
  return roots;
}

/** Reads SSL_CERT_FILE / SSL_CERT_DIR once; throws TrustError (one line) when one is set but unusable. */
export function loadTrust(env: NodeJS.ProcessEnv): Trust {
  const added: string[] = [];
  if (env.SSL_CERT_FILE) {
    const certs = certsIn(env.SSL_CERT_FILE, 'SSL_CERT_FILE');
    if (certs.length === 0) throw new TrustError(`SSL_CERT_FILE: no PEM certificate in ${env.SSL_CERT_FILE}`);
    added.push(...certs);
  }
  if (env.SSL_CERT_DIR) {
    // OpenSSL's convention: a colon-separated list of folders of PEM files
    // (c_rehash names them <hash>.0); every regular file is read.
    for (const dir of env.SSL_CERT_DIR.split(':').filter(Boolean)) {
      let names: string[];
      try {
        names = fs.readdirSync(dir);
      } catch (err) {
        throw new TrustError(`SSL_CERT_DIR: cannot read ${dir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      for (const name of names.sort()) {
        const file = path.join(dir, name);
        if (fs.statSync(file, { throwIfNoEntry: false })?.isFile()) added.push(...certsIn(file, 'SSL_CERT_DIR'));
      }
    }
  }
  if (added.length === 0) return new Trust();
  // These variables usually name the system bundle, which overlaps Node's own
  // roots almost entirely (and SSL_CERT_DIR holds each certificate twice, as
  // a file and as its hash link). Parsing ~450 certificates into a context
  // cost ~350 ms of start-up in a measurement; only what Node does not
  // already trust is added, and with nothing new Node's own store is kept.
  const defaults = nodeDefaults(env);
  const seen = new Set(defaults.map(canonical));
  const fresh = added.filter((pem) => !seen.has(canonical(pem)) && seen.add(canonical(pem)));
  if (fresh.length === 0) return new Trust();
  for (const pem of fresh) {
    try {
      new crypto.X509Certificate(pem);
    } catch {
      throw new TrustError('SSL_CERT_FILE/SSL_CERT_DIR: a certificate could not be parsed');
    }
  }
  // Building the context parses every root again (~50 ms): the CLI does it
  // once listening, after server-info is written and before any request.
  return new Trust([...defaults, ...fresh]);
}
