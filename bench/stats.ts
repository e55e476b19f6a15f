// Nearest-rank percentiles and the summaries the report prints.

export interface Dist {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function dist(values: number[]): Dist {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s.length ? s[s.length - 1]! : NaN };
}

/** Path minus direct, percentile by percentile: the delay the path adds. */
export function added(path: Dist, direct: Dist): Dist {
  return { n: path.n, p50: path.p50 - direct.p50, p99: path.p99 - direct.p99, max: path.max - direct.max };
}

export function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}
