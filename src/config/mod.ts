/**
 * Configuration: a TOML file (snake_case, durations as "10s") plus
 * command-line flags, validated into the plain `Config` of types.ts. Every
 * problem is collected and thrown together as one ConfigError whose lines
 * name the field and the bound. the README's Configuration section lists every option.
 */

export type * from "./types.ts";
export { parseConfig, loadConfigFile, loadDefaultConfig, type ParseOptions } from "./load.ts";
export { defaultConfigToml } from "./defaults.ts";
export { ConfigError, didYouMean, nearest } from "./issues.ts";
export { parseDuration, formatDuration } from "./durations.ts";
export { parseAddress, formatAddress, type AddressOptions } from "./address.ts";
export { applyFlags, type ConfigFlags, type FlaggedRaw } from "./flags.ts";
export { reloadProblems } from "./reload.ts";
export { acmeNames } from "./validate_acme.ts";
export { type ConfigWarning, warnings } from "./warnings.ts";
