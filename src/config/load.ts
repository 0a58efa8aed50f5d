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
import { validate } from "./validate.ts";

export interface ParseOptions {
  /** Directory relative paths are resolved against; default the working directory. */
  baseDir?: string;
  flags?: ConfigFlags;
  /** Shown in the error heading, e.g. the file name. */
  source?: string;
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
      throw new ConfigError([`line ${err.line}, column ${err.column}: ${what}`], heading, { cause: err });
    }
    throw err;
  }
  const { raw: flagged, labels } = applyFlags(raw, opts.flags);
  return validate(flagged, { baseDir: resolve(opts.baseDir ?? "."), labels, heading });
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
  return parseConfig(text, { baseDir: dirname(resolve(path)), flags, source: path });
}

/** The built-in configuration (sni.d directory mode under the working directory), with flags applied. */
export function loadDefaultConfig(flags?: ConfigFlags): Config {
  return parseConfig(defaultConfigToml, { baseDir: resolve("."), flags, source: "the built-in configuration" });
}
