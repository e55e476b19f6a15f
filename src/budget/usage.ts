// What a reply's `usage` is worth to the spend guard. Only well-formed counts
// are added up; anything else a reply claims never lowers what was spent:
// usage that is absent (an error, a cut stream) leaves the reply unmetered,
// and usage that is present but broken (a negative, non-integer or
// non-finite count such as 1e400, a string, a repeated key, an object past
// the cap) is `invalid`, which exhausts --max-tokens (budget.ts).
import type { Pick } from '../relay/json-pick.js';

export interface Tokens {
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  /** What the budget counts: the reported total, or input + output when that is more. */
  total_tokens: number;
}

export const zero = (): Tokens => ({ input_tokens: 0, cached_input_tokens: 0, output_tokens: 0, reasoning_tokens: 0, total_tokens: 0 });

export function addTo(sum: Tokens, t: Tokens): void {
  sum.input_tokens += t.input_tokens;
  sum.cached_input_tokens += t.cached_input_tokens;
  sum.output_tokens += t.output_tokens;
  sum.reasoning_tokens += t.reasoning_tokens;
  sum.total_tokens += t.total_tokens;
}

/** A count: a JSON number that is a whole number from 0 to 2^53 - 1; null for anything else. */
function count(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null;
}

/** A count inside an optional details object (absent or null means 0, as some compatible servers send). */
function detail(obj: unknown, key: string): number | null {
  if (obj === undefined || obj === null) return 0;
  if (typeof obj !== 'object' || Array.isArray(obj)) return null;
  const v = (obj as Record<string, unknown>)[key];
  return v === undefined || v === null ? 0 : count(v);
}

export function readUsage(p: Pick): Tokens | 'missing' | 'invalid' {
  if (p.duplicate || p.oversized) return 'invalid';
  if (!p.value) return 'missing';
  let u: unknown;
  try {
    u = JSON.parse(p.value.toString('utf8'));
  } catch {
    return 'invalid';
  }
  // The Responses API sends "usage": null on events that have none yet.
  if (u === null) return 'missing';
  if (typeof u !== 'object' || Array.isArray(u)) return 'invalid';
  const o = u as Record<string, unknown>;
  const input = count(o['input_tokens']);
  const output = count(o['output_tokens']);
  const total = o['total_tokens'] === undefined ? 0 : count(o['total_tokens']);
  const cached = detail(o['input_tokens_details'], 'cached_tokens');
  const reasoning = detail(o['output_tokens_details'], 'reasoning_tokens');
  if (input === null || output === null || total === null || cached === null || reasoning === null) return 'invalid';
  // A total below its parts would spend less than the reply cost.
  const sum = input + output;
  if (!Number.isSafeInteger(sum)) return 'invalid';
  return { input_tokens: input, cached_input_tokens: cached, output_tokens: output, reasoning_tokens: reasoning, total_tokens: Math.max(total, sum) };
}

/** The model a reply names, for the per-model breakdown; 'unknown' when it names none that can be shown. */
export function modelName(p: Pick): string {
  if (!p.value || p.duplicate) return 'unknown';
  try {
    const m = JSON.parse(p.value.toString('utf8')) as unknown;
    return typeof m === 'string' && m.length > 0 && m.length <= 128 ? m : 'unknown';
  } catch {
    return 'unknown';
  }
}
