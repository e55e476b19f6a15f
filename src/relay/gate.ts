// An admission check an optional stage may make (the spend guard's budget):
// the relay owns the interface, the stage implements it and cli/ wires it in.
// It is consulted once per request that passed admit.ts, before an exchange
// exists, so a refused request never reaches the upstream; requests already
// in flight are not affected.
import type { ErrorKind } from './errors.js';

/** Why a request is refused: an error kind, and text from the operator's configuration. */
export interface Refusal {
  kind: ErrorKind;
  /** Printable ASCII naming what ran out ("--max-tokens 1000 reached"); never request bytes. */
  detail: string;
}

export interface Gate {
  /**
   * Calls `decide` exactly once, with null to let the request through or a
   * refusal, either before returning or later (the gate bounds the wait),
   * unless the returned function is called first: the client left.
   */
  check(decide: (refusal: Refusal | null) => void): () => void;
}
