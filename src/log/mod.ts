/**
 * Line-oriented logger: text in logfmt
 * (`ts=2026-11-21T22:54:48.123Z level=info msg=ready k=v reason="no route"`,
 * see `logfmtValue`) or JSON (one object per line). Workers and the supervisor
 * each hold one; the level and format follow the config and change on reload.
 */
import type { LogFormat, LogLevel } from "../config/types.ts";

export { connIdText, nextConnId, nextConnSeq, setConnIdTag } from "./conn_id.ts";

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export class Logger {
  private threshold: number;
  constructor(
    private level: LogLevel = "info",
    private format: LogFormat = "text",
    /** Fields added to every line (e.g. `worker`). */
    private readonly base: LogFields = {},
    private readonly sink: (line: string) => void = (line) => console.log(line),
  ) {
    this.threshold = LEVELS[level];
  }

  configure(level: LogLevel, format: LogFormat): void {
    this.level = level;
    this.format = format;
    this.threshold = LEVELS[level];
  }

  enabled(level: LogLevel): boolean {
    return LEVELS[level] >= this.threshold;
  }

  debug(msg: string, fields?: LogFields): void {
    if (LEVELS.debug >= this.threshold) this.emit("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    if (LEVELS.info >= this.threshold) this.emit("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    if (LEVELS.warn >= this.threshold) this.emit("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.emit("error", msg, fields);
  }
  /** Printed whatever the level: start-up facts a caller must be able to parse (the "ready" line). */
  always(msg: string, fields?: LogFields): void {
    this.emit("info", msg, fields);
  }

  private emit(level: LogLevel, msg: string, fields?: LogFields): void {
    const ts = new Date().toISOString();
    if (this.format === "json") {
      this.sink(JSON.stringify({ ts, level, msg, ...this.base, ...fields }));
      return;
    }
    let line = `ts=${ts} level=${level} msg=${logfmtValue(msg)}`;
    line += textFields(this.base, "");
    if (fields) line += textFields(fields, "");
    this.sink(line);
  }
}

/**
 * Text form of fields, logfmt: ` key=value` each. An object flattens to
 * dotted keys (`limits.max=3`); a list of plain values joins with commas
 * (`services=web,db`); a list holding objects flattens with each index
 * (`forwards.0.service=web forwards.0.listen=…`), the only form that neither
 * loses a field nor prints `[object Object]`. null and undefined are left out.
 */
function textFields(fields: LogFields, prefix: string): string {
  let out = "";
  for (const key in fields) {
    const v = fields[key];
    if (v === undefined || v === null) continue;
    if (typeof v === "object" && (!Array.isArray(v) || v.some((e) => typeof e === "object" && e !== null))) {
      out += textFields(v as LogFields, `${prefix}${key}.`);
      continue;
    }
    out += ` ${logfmtKey(prefix + key)}=${logfmtValue(Array.isArray(v) ? v.join(",") : String(v))}`;
  }
  return out;
}

/** A value that needs quotes: empty, or holding whitespace, a control character, `=` or `"`. */
const NEEDS_QUOTES = /[\s\p{Cc}="]/u;

/**
 * A logfmt value: bare when it can be, else double-quoted with `"` and `\`
 * escaped and control characters (line feed included) as `\n`, `\t`,
 * `\u001b`, so a line never breaks (JSON string escaping, which Go's logfmt
 * and slog readers unquote).
 */
export function logfmtValue(s: string): string {
  if (s !== "" && !NEEDS_QUOTES.test(s)) return s;
  // JSON leaves U+007F..U+009F (NEL among them) and the Unicode line/paragraph separators raw.
  return JSON.stringify(s).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A logfmt key is bare: a character that would end or split it becomes `_`. */
function logfmtKey(k: string): string {
  return k === "" ? "_" : k.replace(/[\s\p{Cc}="]/gu, "_");
}
