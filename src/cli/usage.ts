// --max-requests, --max-tokens and --usage-file made into the spend guard
// (src/budget/), with the usage file written the way this process writes
// files for others (owned-file.ts) and kept after exit for later steps.
import { Budget } from '../budget/budget.js';
import type { BudgetFlags } from './options.js';
import { writeOwned } from './owned-file.js';

/**
 * The budget, its usage file written once now so that a bad path stops
 * start-up. Throws what the write throws.
 */
export function makeBudget(flags: BudgetFlags, log: (line: string) => void): Budget {
  const { maxRequests, maxTokens, usageFile } = flags;
  const write = usageFile === undefined ? null : (text: string) => writeOwned(usageFile, text, true);
  const budget = new Budget({ maxRequests, maxTokens }, write, log);
  budget.save();
  return budget;
}
