// The spend guard (--max-requests, --max-tokens, --usage-file): an admission
// check and an observer, both interfaces the relay owns (gate.ts,
// observer.ts), wired in by cli/. Every verdict is taken from the counters
// below, on the one JS thread, so concurrent streams cannot race it: a
// request is admitted and counted in the same step. Requests in flight when
// the budget runs out finish normally.
//
// Replies are counted beside the byte path. A compressed reply is decoded on
// zlib's thread pool, so its usage lands a little after its bytes reached
// the client; a client that reads response.completed and sends its next
// request at once would otherwise be judged before that usage counted. So
// with --max-tokens, a check first waits (SETTLE_MAX_MS at most) until every
// reply byte already relayed has been read.
import type { Gate, Refusal } from '../relay/gate.js';
import type { Observer } from '../relay/observer.js';
import { Meter, type Ledger } from './meter.js';
import { addTo, zero, type Tokens } from './usage.js';

export interface Limits {
  maxRequests: number | undefined;
  maxTokens: number | undefined;
}

/** The longest a request waits for replies still being decoded to be counted. */
export const SETTLE_MAX_MS = 2000;
/** Models listed apart in the usage file; later ones are summed under OTHER. */
const MODELS_MAX = 64;
const OTHER = '(other)';
/**
 * The usage file is written at most this often (a write is about 150 µs of
 * file system calls on the relay's thread); a change always leads to a write
 * within this time.
 */
export const SAVE_EVERY_MS = 200;
/** Distinct warnings logged; each is logged once. */
const WARNINGS_MAX = 16;

export class Budget implements Gate, Observer, Ledger {
  private requests = 0;
  private refused = 0;
  private unmetered = 0;
  private invalidUsage = 0;
  private readonly tokens = zero();
  private readonly models = new Map<string, Tokens & { responses: number }>();
  private readonly meters = new Set<Meter>();
  private readonly warned = new Set<string>();
  private saveTimer: NodeJS.Timeout | null = null;
  /** The cause of the last failed save, '' after a success. */
  private saveError = '';
  private lastSave = 0;
  private closed = false;

  /**
   * `write` replaces the usage file's content (cli/ owns how files are
   * written); null without --usage-file. It may throw.
   */
  constructor(
    private readonly limits: Limits,
    private readonly write: ((text: string) => void) | null,
    private readonly log: (line: string) => void,
  ) {}

  check(decide: (refusal: Refusal | null) => void): () => void {
    const busy = this.limits.maxTokens === undefined ? [] : [...this.meters].filter((m) => m.busy);
    if (busy.length === 0) {
      decide(this.verdict());
      return noop;
    }
    let left = busy.length;
    let over = false;
    const cancels: (() => void)[] = [];
    const stop = (): void => {
      over = true;
      clearTimeout(timer);
      for (const c of cancels) c();
    };
    const fire = (): void => {
      if (over) return;
      stop();
      decide(this.verdict());
    };
    const timer = setTimeout(fire, SETTLE_MAX_MS);
    for (const m of busy) cancels.push(m.settled(() => void (--left === 0 && fire())));
    return stop;
  }

  open(): Meter {
    const m = new Meter(this);
    this.meters.add(m);
    return m;
  }

  add(t: Tokens, model: string): void {
    addTo(this.tokens, t);
    const name = this.models.has(model) || this.models.size < MODELS_MAX ? model : OTHER;
    let m = this.models.get(name);
    if (!m) this.models.set(name, (m = { responses: 0, ...zero() }));
    m.responses++;
    addTo(m, t);
  }

  invalid(): void {
    this.invalidUsage++;
  }

  ended(meter: Meter, metered: boolean): void {
    if (!this.meters.delete(meter)) return;
    if (!metered) this.unmetered++;
    this.changed();
  }

  warn = (line: string): void => {
    if (this.warned.has(line) || this.warned.size >= WARNINGS_MAX) return;
    this.warned.add(line);
    this.log(`budget: ${line}`);
  };

  /** The usage file's content. */
  report(): string {
    const { maxRequests, maxTokens } = this.limits;
    return `${JSON.stringify(
      {
        requests: this.requests,
        refused: this.refused,
        ...this.tokens,
        unmetered: this.unmetered,
        invalid_usage: this.invalidUsage,
        models: Object.fromEntries(this.models),
        budgets: { max_requests: maxRequests ?? null, max_tokens: maxTokens ?? null },
        exhausted: this.exhausted()?.detail ?? null,
      },
      null,
      2,
    )}\n`;
  }

  /** Writes the usage file now; throws what the write throws (start-up reports it). */
  save(): void {
    this.write?.(this.report());
  }

  /** At exit: the usage file's last write, and the one line that sums up. Once; later calls return null. */
  close(): string | null {
    if (this.closed) return null;
    this.closed = true;
    if (this.saveTimer) clearTimeout(this.saveTimer);
    // Replies still streaming are cut by the exit: they count as unmetered.
    this.unmetered += this.meters.size;
    this.meters.clear();
    this.trySave();
    const t = this.tokens;
    const unmetered = this.unmetered;
    return (
      `usage: ${this.requests} requests admitted, ${this.refused} refused, ${t.total_tokens} tokens ` +
      `(${t.input_tokens} input, ${t.cached_input_tokens} cached, ${t.output_tokens} output, ${t.reasoning_tokens} reasoning), ` +
      `${unmetered} ${unmetered === 1 ? 'reply' : 'replies'} unmetered`
    );
  }

  /** What ran out, if anything: --max-requests needs nothing from the upstream, --max-tokens trusts its usage. */
  private exhausted(): Refusal | null {
    const { maxRequests, maxTokens } = this.limits;
    if (maxRequests !== undefined && this.requests >= maxRequests) return { kind: 'budget_exhausted', detail: `--max-requests ${maxRequests} reached` };
    if (maxTokens === undefined) return null;
    if (this.invalidUsage > 0) return { kind: 'budget_exhausted', detail: `--max-tokens ${maxTokens} reached (a reply reported usage that cannot be trusted)` };
    if (this.tokens.total_tokens >= maxTokens) return { kind: 'budget_exhausted', detail: `--max-tokens ${maxTokens} reached` };
    return null;
  }

  private verdict(): Refusal | null {
    const refusal = this.exhausted();
    if (refusal) {
      this.refused++;
      this.changed();
    } else {
      this.requests++;
    }
    return refusal;
  }

  /** The usage file is rewritten soon after a change, off the byte path, and at most every SAVE_EVERY_MS. */
  private changed(): void {
    if (!this.write || this.saveTimer || this.closed) return;
    this.saveTimer = setTimeout(
      () => {
        this.saveTimer = null;
        this.trySave();
      },
      Math.max(0, this.lastSave + SAVE_EVERY_MS - Date.now()),
    );
  }

  private trySave(): void {
    this.lastSave = Date.now();
    try {
      this.save();
      this.saveError = '';
    } catch (err) {
      // One line per run of failures, not one per save (every 200 ms under load).
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      if (code !== this.saveError) this.warn(`cannot write the usage file (${code}); later failures with the same cause are not reported`);
      this.saveError = code;
    }
  }
}

function noop(): void {}
