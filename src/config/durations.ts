/**
 * Durations in the config file are strings: one or more `<number><unit>` terms
 * with units ms, s, m, h, d ("250ms", "10s", "1.5s", "1m30s", "7d"), or a bare
 * "0". Fractions are allowed as long as the total is a whole number of
 * milliseconds ("1.5s" = 1500 ms; "0.5ms" is an error). Plain TOML numbers are
 * rejected: `30` would be ambiguous between seconds and milliseconds.
 */

import { ConfigError } from "./issues.ts";

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Longest duration string looked at; anything longer is not a duration a person wrote. */
const MAX_TEXT = 32;

const TERM = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/** Milliseconds, or the reason the text is not a duration. */
export function durationMs(text: string): { ms: number } | { error: string } {
  const bad = { error: `must be a duration like "250ms", "10s", "1m30s" (units ms, s, m, h, d), got ${JSON.stringify(text.slice(0, MAX_TEXT))}` };
  if (text.length === 0 || text.length > MAX_TEXT) return bad;
  if (text === "0") return { ms: 0 };
  let total = 0;
  TERM.lastIndex = 0;
  while (TERM.lastIndex < text.length) {
    const m = TERM.exec(text);
    if (m === null) return bad;
    // Scale in integer arithmetic where possible: "1.5s" -> 15 * 100, not 1.5 * 1000.
    const [whole, frac = ""] = m[1]!.split(".");
    const unit = UNIT_MS[m[2]!]!;
    const scaled = (Number(whole) * 10 ** frac.length + Number(frac || "0")) * unit;
    const ms = scaled / 10 ** frac.length;
    if (!Number.isInteger(ms)) return { error: `must be a whole number of milliseconds, got ${JSON.stringify(text)}` };
    total += ms;
  }
  if (!Number.isSafeInteger(total)) return bad;
  return { ms: total };
}

/** The shortest exact spelling of a millisecond count: 1500 -> "1s500ms", 600000 -> "10m". */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  let rest = ms;
  let out = "";
  for (const unit of ["d", "h", "m", "s", "ms"] as const) {
    const size = UNIT_MS[unit]!;
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}

/** Public form: milliseconds, or a ConfigError naming `field`. */
export function parseDuration(s: string, field: string): number {
  const r = durationMs(s);
  if ("error" in r) throw new ConfigError([`${field}: ${r.error}`]);
  return r.ms;
}
