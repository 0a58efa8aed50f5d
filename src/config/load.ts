/**
 * Text or file -> Config: TOML parse (smol-toml), flags on top, validation.
 * Reads the file with node:fs so the same code runs on Bun and Deno.
 */

import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse, TomlError } from "smol-toml";
import type { Config } from "./types.ts";
import { defaultConfigToml, MAX_FILE_BYTES } from "./defaults.ts";
import { applyFlags, type ConfigFlags } from "./flags.ts";
import { ConfigError, type RawTable } from "./issues.ts";
import { locateIssues } from "./toml_lines.ts";
import { validate } from "./validate.ts";

export interface ParseOptions {
  /** Directory relative paths are resolved against; default the working directory. */
  baseDir?: string;
  flags?: ConfigFlags;
  /** Shown in the error heading, e.g. the file name. */
  source?: string;
  /**
   * The file the text came from, as the operator named it: each problem then
   * starts with `<file>:<line>: ` and names its [[listeners]] / [[routes]] /
   * [[tokens]] entry (`edge.toml:23: listeners[2] (name "public"): port: …`).
   */
  file?: string;
}

export function parseConfig(tomlText: string, opts: ParseOptions = {}): Config {
  const heading = opts.source === undefined ? "invalid configuration" : `invalid configuration in ${opts.source}`;
  if (tomlText.length > MAX_FILE_BYTES) {
    throw new ConfigError([`file: must be at most ${MAX_FILE_BYTES} bytes, got ${tomlText.length}`], heading);
  }
  let raw: RawTable;
  try {
    // Big integers come back as bigint so "70000000000000000000" is reported as out of range, not as a parse error.
    raw = parse(tomlText, { integersAsBigInt: "asNeeded", unsafeKeyBehaviour: "throw", maxDepth: 32 });
  } catch (err) {
    if (err instanceof TomlError) {
      const what = err.message.split("\n")[0]!.replace(/^Invalid TOML document: /, "");
      const at = opts.file === undefined ? `line ${err.line}, column ${err.column}` : `${opts.file}:${err.line}:${err.column}`;
      throw new ConfigError([`${at}: ${what}`], heading, { cause: err });
    }
    throw err;
  }
  const { raw: flagged, labels } = applyFlags(raw, opts.flags);
  try {
    return validate(flagged, { baseDir: resolve(opts.baseDir ?? "."), labels, heading });
  } catch (err) {
    if (opts.file === undefined || !(err instanceof ConfigError)) throw err;
    throw new ConfigError(locateIssues(err.issues, tomlText, raw, opts.file), heading, { cause: err.cause });
  }
}

/** Reads and validates a config file; relative paths in it are taken from the file's directory. */
export function loadConfigFile(path: string, flags?: ConfigFlags): Config {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ConfigError([`${path}: cannot read the config file: ${reason}`], "invalid configuration", { cause: err });
  }
  return parseConfig(text, { baseDir: dirname(resolve(path)), flags, source: path, file: path });
}

/** The built-in configuration (sni.d directory mode under the working directory), with flags applied. */
export function loadDefaultConfig(flags?: ConfigFlags): Config {
  return parseConfig(defaultConfigToml, { baseDir: resolve("."), flags, source: "the built-in configuration" });
}
