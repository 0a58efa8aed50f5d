/**
 * Small, pure statistics helpers for the benchmark harness: medians of values
 * and medians of per-round ratios (a ratio is taken inside one round, so a
 * slow minute on the shared machine hits both sides of it).
 */

/** Median of finite numbers; NaN for an empty list. Does not mutate `xs`. */
export function median(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/** Nearest-rank percentile (p in 0..100) of finite numbers; NaN when empty. */
export function percentile(xs: readonly number[], p: number): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const rank = Math.ceil((Math.min(Math.max(p, 0), 100) / 100) * v.length);
  return v[Math.max(rank - 1, 0)]!;
}

/** Smallest and largest finite value, or NaN/NaN. */
export function spread(xs: readonly number[]): { min: number; max: number } {
  const v = xs.filter((x) => Number.isFinite(x));
  if (v.length === 0) return { min: Number.NaN, max: Number.NaN };
  return { min: Math.min(...v), max: Math.max(...v) };
}

/**
 * Median over rounds of a[i] / b[i]. Rounds where either side is missing,
 * non-finite or b is zero are skipped; NaN when no round is left.
 */
export function medianRatio(
  a: ReadonlyMap<number, number>,
  b: ReadonlyMap<number, number>,
): number {
  const ratios: number[] = [];
  for (const [round, x] of a) {
    const y = b.get(round);
    if (y === undefined || !Number.isFinite(x) || !Number.isFinite(y) || y === 0) continue;
    ratios.push(x / y);
  }
  return median(ratios);
}

/** Format a number with `digits` significant digits, "n/a" for NaN. */
export function fmt(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "n/a";
  if (x === 0) return "0";
  const abs = Math.abs(x);
  if (abs >= 10 ** digits) return Math.round(x).toLocaleString("en-US");
  return Number(x.toPrecision(digits)).toString();
}
