/**
 * A command's flags: their declaration, how `--help` shows them, and parsing
 * that names the flag at fault. node:util parseArgs (the same in Bun and
 * Deno) splits the arguments into tokens without judging them; the checks
 * here turn each problem into one line a person can act on.
 */
import { parseArgs } from "node:util";
import { nearest } from "../config/issues.ts";

interface FlagBase {
  short?: string;
  /** What applies when the flag is absent, as `--help` shows it. */
  default: string;
  help: string;
}

export interface ValueFlag extends FlagBase {
  type: "string";
  /** Names the value in `--help` and in errors: `--workers N`, `--admin ADDR|off`. */
  placeholder: string;
  /** May be given more than once. */
  multiple?: boolean;
}

export interface SwitchFlag extends FlagBase {
  type: "boolean";
}

export type FlagSpec = ValueFlag | SwitchFlag;

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/** Every command takes `-h, --help`, besides its own flags. */
export const HELP_FLAG: SwitchFlag = { type: "boolean", short: "h", default: "", help: "this help" };

/** `-c, --config FILE`, as `--help` lists a flag. */
export function flagHead(name: string, spec: FlagSpec): string {
  return `${spec.short ? `-${spec.short}, ` : "    "}--${name}${spec.type === "string" ? ` ${spec.placeholder}` : ""}`;
}

export type ParsedFlags =
  | { values: FlagValues; positionals: string[] }
  /** A flag this command does not have, as typed (`--confg`, `-x`). */
  | { unknown: string }
  /** A known flag used wrongly: the whole message. */
  | { error: string };

/** Parses `args` against `flags` (plus --help); the first problem, in argument order, wins. */
export function parseFlags(flags: Record<string, FlagSpec>, args: string[]): ParsedFlags {
  const all: Record<string, FlagSpec> = { help: HELP_FLAG, ...flags };
  const options: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(all)) {
    options[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}), ...(spec.type === "string" && spec.multiple ? { multiple: true } : {}) };
  }
  // Not strict: an unknown flag or a missing value becomes a token to judge here, instead of parseArgs' generic message.
  const { values, positionals, tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  for (const t of tokens) {
    if (t.kind !== "option") continue;
    const spec = Object.hasOwn(all, t.name) ? all[t.name]! : undefined;
    if (spec === undefined) return { unknown: t.rawName };
    if (spec.type === "boolean") {
      if (t.value !== undefined) return { error: `${t.rawName} takes no value, got ${JSON.stringify(t.value)}` };
      continue;
    }
    const usage = `--${t.name} ${spec.placeholder}`;
    if (t.value === undefined) return { error: `${t.rawName} needs a value (${usage})` };
    // As parseArgs' strict mode does: a separate value that looks like a flag is most likely a forgotten value.
    if (!t.inlineValue && t.value.length > 1 && t.value.startsWith("-")) {
      return { error: `${t.rawName} needs a value (${usage}), got the flag ${JSON.stringify(t.value)} (write --${t.name}=${t.value} if that is the value)` };
    }
  }
  return { values: values as FlagValues, positionals };
}

/**
 * The one of `names` (flags without dashes, or commands) that `typed`
 * (`--confg`, `chek-config`) most likely meant; null when none is close.
 */
export function nearestName(typed: string, names: readonly string[]): string | null {
  // nearest() folds `-` into `_` in what was typed, so compare against the names folded the same way.
  const folded = names.map((n) => n.replaceAll("-", "_"));
  const hit = nearest(typed.replace(/^--?/, ""), folded);
  return hit === null ? null : names[folded.indexOf(hit)]!;
}
