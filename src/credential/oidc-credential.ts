// The OIDC credential: a GitHub OIDC exchange (oidc.ts) that renews itself
// in the background. A line that has been replaced is zeroed only once no
// lease on it is left, so a write still queued never sends a zeroed line.
import { noop, type Credential, type Granted, type Lease } from './credential.js';
import { OidcError, type Issued } from './oidc.js';

/** A line and the leases on it; the credential's own reference counts as one. */
class Held {
  private refs = 1;

  constructor(readonly line: Buffer, readonly expiresAt: number, private readonly live: Set<Held>) {
    live.add(this);
  }

  lease(onRejected: (h: Held) => void): Lease {
    this.refs++;
    let released = false;
    return {
      line: this.line,
      release: () => {
        if (released) return;
        released = true;
        this.drop();
      },
      rejected: () => onRejected(this),
    };
  }

  drop(): void {
    if (--this.refs > 0) return;
    this.line.fill(0);
    this.live.delete(this);
  }
}

/** Before this share of the lifetime is left, renewal starts (the original's margin). */
const RENEW_SHARE = 0.1;
const RENEW_MARGIN_MAX_MS = 60_000;
const BACKOFF_MAX_MS = 30_000;
/**
 * A client can provoke a 401 (a foreign OpenAI-Project header, say); at most
 * one renewal per this interval follows from 401s, so no client can keep the
 * proxy renewing, or rate-limited at GitHub.
 */
const REJECTED_RENEW_MIN_MS = 30_000;

const now = (): number => performance.now();

/**
 * OIDC mode. Renewal starts in the background once at most 10% of the
 * lifetime (and at most 60 s) is left, so no request waits for it; one
 * flight at a time; a failure is retried after 1, 2, 4 … 30 s while the
 * current token keeps serving. Requests wait only when no valid token is
 * left and a renewal is in flight (after an upstream 401, or at expiry);
 * otherwise they get a 503 naming the last failure.
 */
export class OidcCredential implements Credential {
  private current: Held | null = null;
  /** Every line not yet zeroed: the current one and replaced ones still leased. */
  private readonly live = new Set<Held>();
  private flying = false;
  private failures = 0;
  private cause = 'TOKEN_EXPIRED';
  private waiting: Granted[] = [];
  private renewTimer: NodeJS.Timeout | null = null;
  private lastRejectedRenewal = -Infinity;
  /** When the scheduled renewal runs (Infinity: none scheduled). */
  private renewAt = Infinity;
  private expiryTimer: NodeJS.Timeout | null = null;

  constructor(private readonly renew: () => Promise<Issued>, first: Issued, private readonly log: (line: string) => void) {
    this.install(first);
  }

  acquire(done: Granted): () => void {
    const h = this.valid();
    if (h) {
      done(h.lease(this.onRejected), '');
    } else if (this.flying) {
      this.waiting.push(done);
      return () => {
        const i = this.waiting.indexOf(done);
        if (i >= 0) this.waiting.splice(i, 1);
      };
    } else {
      done(null, this.cause);
    }
    return noop;
  }

  wipe(): void {
    for (const h of this.live) h.line.fill(0);
  }

  private valid(): Held | null {
    if (this.current && now() >= this.current.expiresAt) this.retire();
    return this.current;
  }

  /** Drops the credential's own reference; the line is zeroed when the last lease goes. */
  private retire(): void {
    const old = this.current;
    this.current = null;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    old?.drop();
  }

  private install(issued: Issued): void {
    const at = now();
    this.retire();
    this.current = new Held(issued.line, at + issued.lifetimeMs, this.live);
    this.failures = 0;
    this.cause = 'TOKEN_EXPIRED';
    // Zero the line at expiry even if no request comes to notice.
    this.expiryTimer = setTimeout(() => this.valid(), issued.lifetimeMs + 1).unref();
    const margin = Math.min(issued.lifetimeMs * RENEW_SHARE, RENEW_MARGIN_MAX_MS);
    this.schedule(issued.lifetimeMs - margin);
  }

  private schedule(ms: number): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewAt = now() + Math.max(0, ms);
    this.renewTimer = setTimeout(() => this.start(), Math.max(0, ms)).unref();
  }

  private readonly onRejected = (h: Held): void => {
    // Only the current line's rejection matters; an old one is already replaced.
    if (h !== this.current) return;
    const since = now() - this.lastRejectedRenewal;
    if (since < REJECTED_RENEW_MIN_MS) {
      // Renew when the window ends, unless a renewal is due sooner anyway.
      const wait = REJECTED_RENEW_MIN_MS - since;
      if (!this.flying && this.renewAt > now() + wait) {
        this.schedule(wait);
        this.log(`upstream answered 401 again: renewing in ${Math.ceil(wait / 1000)} s (at most one 401 renewal per ${REJECTED_RENEW_MIN_MS / 1000} s)`);
      }
      return;
    }
    this.lastRejectedRenewal = now();
    this.log('upstream answered 401: renewing the access token before the next request');
    this.retire();
    this.start();
  };

  private start(): void {
    if (this.flying) return;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = null;
    this.renewAt = Infinity;
    this.flying = true;
    this.renew().then(
      (issued) => {
        this.flying = false;
        this.install(issued);
        this.flush();
      },
      (err: unknown) => {
        this.flying = false;
        this.failures++;
        this.cause = err instanceof OidcError ? err.code : 'RENEWAL_FAILED';
        const delay = Math.min(1000 * 2 ** (this.failures - 1), BACKOFF_MAX_MS);
        const message = err instanceof OidcError ? err.message : 'credential renewal failed';
        this.log(`${message}; ${this.valid() ? 'the current token still serves; ' : ''}retrying in ${delay / 1000} s`);
        this.schedule(delay);
        this.flush();
      },
    );
  }

  private flush(): void {
    for (const done of this.waiting.splice(0)) this.acquire(done);
  }
}

