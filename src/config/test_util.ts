/** Helpers shared by the config tests. */

import { ConfigError } from "./issues.ts";
import { parseConfig, type ParseOptions } from "./load.ts";

/** A listener every test file needs, because a config without one is refused. */
export const LISTENER = `
[[listeners]]
kind = "sni"
address = "127.0.0.1:0"
`;

/** The issues a text produces; fails the test if it parses. */
export function issuesOf(toml: string, opts?: ParseOptions): string[] {
  try {
    parseConfig(toml, opts);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error("expected a ConfigError, but the config was accepted:\n" + toml);
}
