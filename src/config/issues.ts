/**
 * How configuration problems are reported: every check adds one line
 * `<field>: <problem>` to an Issues list, validation carries on, and at the end
 * all lines are thrown together in one ConfigError. The operator fixes the
 * whole file in one pass instead of one error per run.
 */

import { ProxyError } from "../errors/mod.ts";

export class ConfigError extends ProxyError {
  /** One line per problem, each `<field>: <what is wrong>`. */
  readonly issues: string[];
  constructor(issues: string[], heading = "invalid configuration", options?: { cause?: unknown }) {
    const n = issues.length;
    const head = `${heading} (${n} ${n === 1 ? "problem" : "problems"})`;
    super("CONFIG", "internal", [head + ":", ...issues.map((i) => "  " + i)].join("\n"), options);
    this.issues = issues;
  }
}

/**
 * Collects problems. `labels` renames a field when its value came from a
 * command-line flag, so the operator is told to fix `--workers`, not the file.
 */
export class Issues {
  readonly list: string[] = [];
  constructor(private readonly labels: ReadonlyMap<string, string> = new Map()) {}

  add(field: string, problem: string): void {
    this.list.push(`${this.labels.get(field) ?? field}: ${problem}`);
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  throwIfAny(heading?: string): void {
    if (this.list.length > 0) throw new ConfigError(this.list, heading);
  }
}

/** Longest quoted value shown in a message; a 1 MB string stays out of the log. */
const SHOW_MAX = 80;

/** How a raw TOML value is shown after "got". */
export function describe(v: unknown): string {
  if (typeof v === "string") {
    const s = v.length > SHOW_MAX ? v.slice(0, SHOW_MAX) + "…" : v;
    return JSON.stringify(s);
  }
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return "an array";
  if (v instanceof Date) return `a date/time (${String(v)})`;
  if (v === null || v === undefined) return "nothing";
  return "a table";
}

/** A TOML table (smol-toml returns null-prototype objects; dates are Date subclasses). */
export type RawTable = { [key: string]: unknown };

export function isTable(v: unknown): v is RawTable {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Edit distance, bounded: inputs here are short key and enum names. */
function distance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Infinity;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The candidate `got` was probably meant to be, or null. Case and `-`/`_` are
 * ignored in `got`; candidates are compared as given.
 */
export function nearest(got: string, candidates: readonly string[]): string | null {
  const g = got.toLowerCase().replaceAll("-", "_");
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(g, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  // Close means at most 2 edits and less than half the word changed...
  if (best !== null && bestD <= 2 && bestD * 2 < Math.max(best.length, 2)) return best;
  // ...or one word begins the other ("warning" -> "warn", "addr" -> "address").
  return candidates.find((c) => Math.min(c.length, g.length) >= 3 && (g.startsWith(c) || c.startsWith(g))) ?? null;
}

/** ` (did you mean "address"?)` when one candidate is close, else "". */
export function didYouMean(got: string, candidates: readonly string[]): string {
  const best = nearest(got, candidates);
  return best === null ? "" : ` (did you mean "${best}"?)`;
}

/** Reports every key of `table` that is not in `known`, then returns. */
export function checkKeys(issues: Issues, table: RawTable, prefix: string, known: readonly string[]): void {
  for (const key of Object.keys(table)) {
    if (known.includes(key)) continue;
    const field = prefix === "" ? key : `${prefix}.${key}`;
    issues.add(field, `unknown key${didYouMean(key, known)}`);
  }
}
