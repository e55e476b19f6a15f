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
/**
 * No renewal starts sooner than this after the previous one, whatever
 * lifetime the exchange gave (an expires_at one second ahead made renewal
 * run back to back, 25 GitHub calls per 10 s). A failure's back-off starts
 * here too. With tokens shorter than this, requests wait for the next
 * renewal (up to the connect timeout) rather than calling GitHub more often.
 */
const RENEW_FLOOR_MS = 5000;
const BACKOFF_MAX_MS = 30_000;
/**
 * Background renewal runs only while requests have come in within the last
 * lifetime, or this long if that is longer; afterwards the next request
 * renews, as the original always does, so an idle proxy calls no one.
 */
const ACTIVE_MIN_MS = 10 * 60_000;
/**
 * A client can provoke a 401 (a foreign OpenAI-Project header, say); at most
 * one renewal per this interval follows from 401s, so no client can keep the
 * proxy renewing, or rate-limited at GitHub.
 */
const REJECTED_RENEW_MIN_MS = 30_000;

const now = (): number => performance.now();

interface Waiter {
  done: Granted;
  timer: NodeJS.Timeout;
}

/**
 * OIDC mode. While requests keep coming, renewal starts in the background
 * once at most 10% of the lifetime (and at most 60 s) is left, so no request
 * waits for it; when they stop, it stops, and the next request renews. One
 * flight at a time, never sooner than RENEW_FLOOR_MS after the last; a
 * failure is retried after 5, 10, 20, 30 s while the current token keeps
 * serving. A request that finds no valid token waits for the renewal under
 * way (up to `waitMs`), or gets a 503 naming the last failure while a
 * failed one waits for its retry.
 */
export class OidcCredential implements Credential {
  private current: Held | null = null;
  /** Every line not yet zeroed: the current one and replaced ones still leased. */
  private readonly live = new Set<Held>();
  private flying = false;
  private failures = 0;
  private cause = 'TOKEN_EXPIRED';
  private waiting: Waiter[] = [];
  private renewTimer: NodeJS.Timeout | null = null;
  private lastRejectedRenewal = -Infinity;
  /** When the scheduled renewal runs (Infinity: none scheduled). */
  private renewAt = Infinity;
  private expiryTimer: NodeJS.Timeout | null = null;
  /** The first token was fetched just before construction: it counts as a renewal. */
  private lastStart = now();
  private lastRequest = -Infinity;
  private lifetimeMs = 0;

  constructor(
    private readonly renew: () => Promise<Issued>,
    first: Issued,
    private readonly log: (line: string) => void,
    /** How long a request waits for a renewal before its 503 (--connect-timeout). */
    private readonly waitMs: number,
  ) {
    this.install(first);
  }

  acquire(done: Granted): () => void {
    this.lastRequest = now();
    const h = this.valid();
    if (h) {
      // Idle until now: renewal resumes in the background.
      if (!this.flying && !this.renewTimer) this.plan(h);
      done(h.lease(this.onRejected), '');
      return noop;
    }
    // A failed renewal waits for its retry: say why at once.
    if (this.failures > 0 && this.renewTimer) {
      done(null, this.cause);
      return noop;
    }
    if (!this.flying) this.renewSoon();
    const waiter: Waiter = { done, timer: setTimeout(() => this.giveUp(waiter), this.waitMs) };
    this.waiting.push(waiter);
    return () => this.unwait(waiter);
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
    this.retire();
    this.current = new Held(issued.line, now() + issued.lifetimeMs, this.live);
    this.lifetimeMs = issued.lifetimeMs;
    this.failures = 0;
    this.cause = 'TOKEN_EXPIRED';
    // Zero the line at expiry even if no request comes to notice.
    this.expiryTimer = setTimeout(() => this.valid(), issued.lifetimeMs + 1).unref();
    this.plan(this.current);
  }

  /** The background renewal for a token: when its margin is reached, and not before the floor. */
  private plan(h: Held): void {
    const margin = Math.min(this.lifetimeMs * RENEW_SHARE, RENEW_MARGIN_MAX_MS);
    this.scheduleAt(Math.max(h.expiresAt - margin, this.lastStart + RENEW_FLOOR_MS), true);
  }

  /** Moves the scheduled renewal to `at`, never sooner than the floor; unless `replace`, one due sooner stays. */
  private scheduleAt(at: number, replace = false): void {
    at = Math.max(at, this.lastStart + RENEW_FLOOR_MS);
    if (!replace && this.renewAt <= at) return;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewAt = at;
    this.renewTimer = setTimeout(this.due, Math.max(0, at - now())).unref();
  }

  private readonly due = (): void => {
    this.renewTimer = null;
    this.renewAt = Infinity;
    // No request for a while: stop here; the next request renews.
    if (now() - this.lastRequest > Math.max(this.lifetimeMs, ACTIVE_MIN_MS)) return;
    this.start();
  };

  private readonly onRejected = (h: Held): void => {
    // Only the current line's rejection matters; an old one is already replaced.
    if (h !== this.current) return;
    const since = now() - this.lastRejectedRenewal;
    if (since < REJECTED_RENEW_MIN_MS) {
      // Renew when the window ends, unless a renewal is due sooner anyway.
      const wait = REJECTED_RENEW_MIN_MS - since;
      if (!this.flying && this.renewAt > now() + wait) {
        this.scheduleAt(now() + wait);
        this.log(`upstream answered 401 again: renewing in ${Math.ceil(wait / 1000)} s (at most one 401 renewal per ${REJECTED_RENEW_MIN_MS / 1000} s)`);
      }
      return;
    }
    this.lastRejectedRenewal = now();
    this.log('upstream answered 401: renewing the access token before the next request');
    this.retire();
    if (!this.flying) this.renewSoon();
  };

  /** Now, or at the floor if the last renewal was too recent. */
  private renewSoon(): void {
    if (now() >= this.lastStart + RENEW_FLOOR_MS) this.start();
    else this.scheduleAt(this.lastStart + RENEW_FLOOR_MS);
  }

  private start(): void {
    if (this.flying) return;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = null;
    this.renewAt = Infinity;
    this.flying = true;
    this.lastStart = now();
    this.renew().then(
      (issued) => {
        this.flying = false;
        this.install(issued);
        // Those who waited get the token just issued, however short its life.
        this.flush(this.current);
      },
      (err: unknown) => {
        this.flying = false;
        this.failures++;
        this.cause = err instanceof OidcError ? err.code : 'RENEWAL_FAILED';
        const delay = Math.min(RENEW_FLOOR_MS * 2 ** (this.failures - 1), BACKOFF_MAX_MS);
        const message = err instanceof OidcError ? err.message : 'credential renewal failed';
        const h = this.valid();
        this.log(`${message}; ${h ? 'the current token still serves; ' : ''}retrying in ${delay / 1000} s`);
        this.scheduleAt(now() + delay, true);
        this.flush(h);
      },
    );
  }

  private flush(h: Held | null): void {
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      if (h) w.done(h.lease(this.onRejected), '');
      else w.done(null, this.cause);
    }
  }

  private giveUp(w: Waiter): void {
    this.unwait(w);
    w.done(null, 'RENEWAL_TIMEOUT');
  }

  private unwait(w: Waiter): void {
    clearTimeout(w.timer);
    const i = this.waiting.indexOf(w);
    if (i >= 0) this.waiting.splice(i, 1);
  }
}
