/**
 * Typed readers for one raw TOML field each. A reader reports a bad value to
 * `Issues` and returns the default, so validation continues and every problem
 * in the file is reported in one run.
 */

import { durationMs, formatDuration } from "./durations.ts";
import type { DurationBound, IntBound } from "./defaults.ts";
import { describe, didYouMean, isTable, type Issues, type RawTable } from "./issues.ts";

export function readInt(is: Issues, t: RawTable, key: string, field: string, b: IntBound): number {
  const v = t[key];
  if (v === undefined) return b.def;
  const range = `${b.min}..${b.max}`;
  if (typeof v === "bigint") {
    is.add(field, `must be ${range}, got ${v}`);
    return b.def;
  }
  if (typeof v !== "number" || !Number.isInteger(v)) {
    is.add(field, `must be an integer ${range}, got ${describe(v)}`);
    return b.def;
  }
  if (v < b.min || v > b.max) {
    is.add(field, `must be ${range}, got ${v}`);
    return b.def;
  }
  return v;
}

export function durationRange(b: DurationBound): string {
  const range = `${formatDuration(b.min)}..${formatDuration(b.max)}`;
  return b.zeroDisables ? `"0s" (off) or ${range}` : range;
}

export function readDuration(is: Issues, t: RawTable, key: string, field: string, b: DurationBound): number {
  const v = t[key];
  if (v === undefined) return b.def;
  if (typeof v !== "string") {
    is.add(field, `must be a duration string like "${formatDuration(b.def)}" (${durationRange(b)}), got ${describe(v)}`);
    return b.def;
  }
  const r = durationMs(v);
  if ("error" in r) {
    is.add(field, r.error);
    return b.def;
  }
  if (r.ms === 0 && b.zeroDisables) return 0;
  if (r.ms < b.min || r.ms > b.max) {
    is.add(field, `must be ${durationRange(b)}, got ${describe(v)}`);
    return b.def;
  }
  return r.ms;
}

export function readEnum<T extends string>(is: Issues, t: RawTable, key: string, field: string, values: readonly T[], def: T): T {
  const v = t[key];
  if (v === undefined) return def;
  if (typeof v === "string" && (values as readonly string[]).includes(v)) return v as T;
  const hint = typeof v === "string" ? didYouMean(v, values) : "";
  is.add(field, `must be one of ${values.join(" | ")}, got ${describe(v)}${hint}`);
  return def;
}

export function readBool(is: Issues, t: RawTable, key: string, field: string, def: boolean): boolean {
  const v = t[key];
  if (v === undefined) return def;
  if (typeof v === "boolean") return v;
  is.add(field, `must be true or false, got ${describe(v)}`);
  return def;
}

/** A string, or null when absent (`required` reports that) or of the wrong type. */
export function readString(is: Issues, t: RawTable, key: string, field: string, required = false): string | null {
  const v = t[key];
  if (v === undefined) {
    if (required) is.add(field, "is required");
    return null;
  }
  if (typeof v === "string") return v;
  is.add(field, `must be a string, got ${describe(v)}`);
  return null;
}

export interface Entry<T> {
  value: T;
  /** Position in the file's array, for messages. */
  index: number;
}

/** An array of strings; bad entries are reported by index and dropped. */
export function readStringArray(is: Issues, t: RawTable, key: string, field: string, maxCount: number): Entry<string>[] {
  const v = t[key];
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    is.add(field, `must be an array of strings, got ${describe(v)}`);
    return [];
  }
  if (v.length > maxCount) {
    is.add(field, `must have at most ${maxCount} entries, got ${v.length}`);
    return [];
  }
  const out: Entry<string>[] = [];
  v.forEach((e, index) => {
    if (typeof e === "string") out.push({ value: e, index });
    else is.add(`${field}[${index}]`, `must be a string, got ${describe(e)}`);
  });
  return out;
}

/** A sub-table such as [log]; an empty one when absent or of the wrong type. */
export function readTable(is: Issues, t: RawTable, key: string, field: string): RawTable {
  const v = t[key];
  if (v === undefined) return {};
  if (isTable(v)) return v;
  is.add(field, `must be a table ([${field}]), got ${describe(v)}`);
  return {};
}

/** An array of tables such as [[listeners]]; entries of the wrong type are reported and skipped. */
export function readTableArray(is: Issues, t: RawTable, key: string, field: string, maxCount: number): Entry<RawTable>[] {
  const v = t[key];
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    is.add(field, `must be an array of tables ([[${field}]]), got ${describe(v)}`);
    return [];
  }
  if (v.length > maxCount) {
    is.add(field, `must have at most ${maxCount} entries, got ${v.length}`);
    return [];
  }
  const out: Entry<RawTable>[] = [];
  v.forEach((e, index) => {
    if (isTable(e)) out.push({ value: e, index });
    else is.add(`${field}[${index}]`, `must be a table, got ${describe(e)}`);
  });
  return out;
}

/** Reports the second and later occurrences of each (canonical) value. */
export function reportDuplicates(is: Issues, entries: readonly Entry<string>[], field: string): void {
  const first = new Map<string, number>();
  for (const { value, index } of entries) {
    const at = first.get(value);
    if (at !== undefined) is.add(`${field}[${index}]`, `duplicate of ${field}[${at}] (${describe(value)})`);
    else first.set(value, index);
  }
}
