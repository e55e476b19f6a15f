// What an optional stage may see of an exchange: --dump-dir's tap today, the
// spend guard's meter next. The relay owns this interface and the stages
// implement it; cli/ wires them in, so the relay never imports a stage.
// Every call is made on the byte path: an observer copies or counts and
// returns. It never delays, changes or re-frames a byte, and never sees the
// rewritten head, so never the credential line.
import type { RequestHead } from '../http/head.js';
import type { ErrorKind } from './errors.js';

/** How an exchange ended: at the response's framing, by the client leaving, or by an error. */
export type Outcome = 'complete' | 'client_abort' | ErrorKind;

export interface ExchangeObserver {
  /** Request body bytes exactly as forwarded, chunk framing included. */
  requestBody(bytes: Buffer): void;
  /** The request body reached its end. */
  requestEnd(): void;
  /** The final response head (1xx heads are not reported), as relayed. Valid during the call only. */
  responseHead(status: number, head: Buffer): void;
  /** Response body data as it is relayed, de-chunked by the parser. Valid during the call only. */
  responseBody(data: Buffer): void;
  /** The exchange is over; called exactly once. */
  end(outcome: Outcome): void;
}

export interface Observer {
  /** Called once a request is admitted; undefined leaves this exchange unobserved. */
  open(head: RequestHead): ExchangeObserver | undefined;
}

/** One observer for an exchange that several stages watch; undefined when none does. */
export function observe(observers: readonly Observer[], head: RequestHead): ExchangeObserver | undefined {
  let only: ExchangeObserver | undefined;
  let all: ExchangeObserver[] | undefined;
  for (const o of observers) {
    const x = o.open(head);
    if (!x) continue;
    if (!only) only = x;
    else (all ??= [only]).push(x);
  }
  if (!all) return only;
  const list = all;
  return {
    requestBody: (b) => list.forEach((x) => x.requestBody(b)),
    requestEnd: () => list.forEach((x) => x.requestEnd()),
    responseHead: (s, h) => list.forEach((x) => x.responseHead(s, h)),
    responseBody: (d) => list.forEach((x) => x.responseBody(d)),
    end: (o) => list.forEach((x) => x.end(o)),
  };
}
