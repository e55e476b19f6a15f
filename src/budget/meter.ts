// One admitted exchange, watched for what it cost (an observer, observer.ts).
// A stream is counted when its terminal event goes by, not at the message's
// end: Codex closes its connection right after response.completed, often
// before the chunk terminator arrives. A JSON reply is counted when it ends.
// A reply that ends with no usage counts as unmetered.
import type { ExchangeObserver } from '../relay/observer.js';
import { ResponseReader, type Report } from '../relay/sse.js';
import { modelName, readUsage, type Tokens } from './usage.js';

/** What a meter reports to (budget.ts). */
export interface Ledger {
  add(tokens: Tokens, model: string): void;
  /** A reply claimed usage that cannot be trusted. */
  invalid(): void;
  /** The exchange is over; `metered` says some usage was counted. */
  ended(meter: Meter, metered: boolean): void;
  warn(line: string): void;
}

export class Meter implements ExchangeObserver {
  private reader: ResponseReader | null = null;
  private metered = false;
  private over = false;

  constructor(private readonly ledger: Ledger) {}

  /** Some reply bytes relayed to the client are still being decoded. */
  get busy(): boolean {
    return this.reader?.busy ?? false;
  }

  /** Calls `cb` once what was relayed so far has been counted; returns a cancel. */
  settled(cb: () => void): () => void {
    if (this.reader) return this.reader.settled(cb);
    cb();
    return noop;
  }

  requestBody(): void {}

  requestEnd(): void {}

  responseHead(status: number, head: Buffer): void {
    // Only a success carries usage; an error reply is a request without tokens.
    if (status >= 200 && status < 300) this.reader = new ResponseReader(head, this.report, this.ledger.warn);
  }

  responseBody(data: Buffer): void {
    this.reader?.data(data);
  }

  end(): void {
    if (this.over) return;
    this.over = true;
    if (this.reader) this.reader.finish(this.settle);
    else this.settle();
  }

  private readonly report = (r: Report): void => {
    const tokens = readUsage(r.usage);
    if (tokens === 'missing') return;
    if (tokens === 'invalid') return this.ledger.invalid();
    this.metered = true;
    this.ledger.add(tokens, modelName(r.model));
  };

  private readonly settle = (): void => this.ledger.ended(this, this.metered);
}

function noop(): void {}
