// Where the Authorization line comes from: the interface the relay leases
// from, and the stdin key (one line for the process's life). The renewing
// GitHub OIDC credential (oidc-credential.ts) implements it too. The relay asks for a lease per request and releases it
// when the exchange ends; a line that has been replaced is zeroed only once
// no lease on it is left, so a write still queued never sends a zeroed line.

export interface Lease {
  /** `Authorization: Bearer <token>\r\n`: valid until release(). */
  readonly line: Buffer;
  release(): void;
  /** The upstream answered 401 to this line: renew before the next request. */
  rejected(): void;
}

/** A lease, or null and an errno-style cause (errors.ts) when no valid token is left. */
export type Granted = (lease: Lease | null, cause: string) => void;

export interface Credential {
  /**
   * Calls back at once while a token is valid; waits only for a renewal
   * already in flight. The returned function withdraws a wait (the client
   * left), so nothing the exchange holds outlives it.
   */
  acquire(done: Granted): () => void;
  /** Zeroes every line still held; for exit paths. */
  wipe(): void;
}

/** Key mode: the key's line (secret/key.ts), its only owner: never replaced, wiped at exit. */
export class StaticCredential implements Credential {
  private readonly lease: Lease;

  constructor(line: Buffer) {
    this.lease = { line, release: noop, rejected: noop };
  }

  acquire(done: Granted): () => void {
    done(this.lease, '');
    return noop;
  }

  wipe(): void {
    this.lease.line.fill(0);
  }
}

export function noop(): void {}
