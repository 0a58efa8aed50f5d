/**
 * Command-line flags override the file. They are applied to the raw TOML
 * table before validation, so a flag value meets the same checks and bounds
 * as the file's; a problem with it is reported under the flag's name
 * (`--workers: must be an integer 0..256, got "four"`).
 */

import { isTable, type RawTable } from "./issues.ts";

/** Flag values as the CLI's parseArgs hands them over: strings, absent when not given. */
export type ConfigFlags = Partial<{
  workers: string;
  admin: string;
  logLevel: string;
  logFormat: string;
  drainTimeout: string;
}>;

/** Where each flag lands in the file's structure, and its name on the command line. */
const FLAG_FIELDS: ReadonlyArray<{ flag: keyof ConfigFlags; table: string | null; key: string; label: string }> = [
  { flag: "workers", table: null, key: "workers", label: "--workers" },
  { flag: "drainTimeout", table: null, key: "drain_timeout", label: "--drain-timeout" },
  { flag: "admin", table: "admin", key: "address", label: "--admin" },
  { flag: "logLevel", table: "log", key: "level", label: "--log-level" },
  { flag: "logFormat", table: "log", key: "format", label: "--log-format" },
];

export interface FlaggedRaw {
  /** A copy of the raw table with flag values in place; the input is not modified. */
  raw: RawTable;
  /** Field path -> flag name, for messages (pass to validate as `labels`). */
  labels: Map<string, string>;
}

export function applyFlags(raw: RawTable, flags: ConfigFlags = {}): FlaggedRaw {
  const out: RawTable = { ...raw };
  const labels = new Map<string, string>();
  for (const { flag, table, key, label } of FLAG_FIELDS) {
    const text = flags[flag];
    if (text === undefined) continue;
    // An integer flag becomes a number so it meets the file's integer check; anything else stays text and fails it.
    const value: unknown = flag === "workers" && /^\d{1,9}$/.test(text) ? Number(text) : text;
    if (table === null) {
      out[key] = value;
      labels.set(key, label);
      continue;
    }
    const sub = out[table];
    // A malformed table in the file (`log = 5`) is reported by validation; the flag then has nowhere to go.
    if (sub !== undefined && !isTable(sub)) continue;
    out[table] = { ...(sub ?? {}), [key]: value };
    labels.set(`${table}.${key}`, label);
  }
  return { raw: out, labels };
}
