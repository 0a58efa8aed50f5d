/**
 * The command table. Every command lists every flag with its default in its
 * `--help`; `runCommand` returns the exit code, or null for `serve`, which
 * keeps running until drained.
 */
import { parseArgs } from "node:util";
import { type ConfigFlags, ConfigError, defaultConfigToml, loadConfigFile, loadDefaultConfig, parseConfig } from "../config/mod.ts";
import { canonicalHostname } from "../proto/mod.ts";
import type { Runtime } from "../runtime/types.ts";
import { VERSION } from "../version.ts";
import { serve } from "./serve.ts";

type Out = (s: string) => void;

interface FlagSpec {
  type: "string" | "boolean";
  short?: string;
  default?: string;
  help: string;
}

interface Command {
  summary: string;
  usage: string;
  flags: Record<string, FlagSpec>;
  run(rt: Runtime, values: Record<string, string | boolean | undefined>, positionals: string[], out: Out, err: Out): Promise<number | null> | number | null;
}

const configFlags: Record<string, FlagSpec> = {
  config: { type: "string", short: "c", help: "TOML config file; without it the built-in default config runs (see `edgemux default-config`)" },
  workers: { type: "string", short: "w", help: "worker threads, 0 = one per CPU (default: config `workers`, 0)" },
  admin: { type: "string", help: "admin API address host:port, or off (default: config `admin.address`, 127.0.0.1:9901)" },
  "log-level": { type: "string", help: "debug | info | warn | error (default: config `log.level`, info)" },
  "log-format": { type: "string", help: "text | json (default: config `log.format`, text)" },
  "drain-timeout": { type: "string", help: "how long SIGTERM lets connections finish, e.g. 30s (default: config `drain_timeout`, 30s)" },
};

function flagsFrom(values: Record<string, string | boolean | undefined>): ConfigFlags {
  const f: ConfigFlags = {};
  if (typeof values.workers === "string") f.workers = values.workers;
  if (typeof values.admin === "string") f.admin = values.admin;
  if (typeof values["log-level"] === "string") f.logLevel = values["log-level"];
  if (typeof values["log-format"] === "string") f.logFormat = values["log-format"];
  if (typeof values["drain-timeout"] === "string") f.drainTimeout = values["drain-timeout"];
  return f;
}

export const commands: Record<string, Command> = {
  serve: {
    summary: "run the proxy: supervisor, workers, admin API",
    usage: "edgemux serve [--config FILE] [flags]",
    flags: configFlags,
    async run(rt, values, _pos, _out, err) {
      const flags = flagsFrom(values);
      const path = typeof values.config === "string" ? values.config : null;
      let config;
      try {
        config = path ? loadConfigFile(path, flags) : loadDefaultConfig(flags);
      } catch (e) {
        err(e instanceof ConfigError ? e.message : `edgemux: ${(e as Error).message}`);
        return 2;
      }
      return await serve(rt, config, path, flags);
    },
  },
  "check-config": {
    summary: "validate a config file (and flags) without starting",
    usage: "edgemux check-config FILE [flags]",
    flags: { ...configFlags, config: { type: "string", short: "c", help: "the file to check (or give it as the argument)" } },
    run(_rt, values, pos, out, err) {
      const path = pos[0] ?? (typeof values.config === "string" ? values.config : undefined);
      if (!path) {
        err("edgemux check-config: name the file to check");
        return 2;
      }
      try {
        const c = loadConfigFile(path, flagsFrom(values));
        out(`${path}: ok (${c.listeners.length} listener(s), ${c.routes.length} route(s))`);
        return 0;
      } catch (e) {
        err(e instanceof ConfigError ? e.message : `${path}: ${(e as Error).message}`);
        return 1;
      }
    },
  },
  hostname: {
    summary: "print the canonical form of a host name (IDNA A-label, lowercase, no trailing dot)",
    usage: "edgemux hostname NAME...",
    flags: {},
    run(_rt, _values, pos, out, err) {
      if (pos.length === 0) {
        err("edgemux hostname: give at least one NAME");
        return 2;
      }
      let code = 0;
      for (const name of pos) {
        try {
          out(canonicalHostname(name));
        } catch (e) {
          err(`${JSON.stringify(name)}: ${(e as Error).message}`);
          code = 1;
        }
      }
      return code;
    },
  },
  "default-config": {
    summary: "print the built-in default config (what `edgemux serve` runs without --config)",
    usage: "edgemux default-config",
    flags: {},
    run(_rt, _values, _pos, out) {
      parseConfig(defaultConfigToml); // it must stay valid
      out(defaultConfigToml.trimEnd());
      return 0;
    },
  },
  version: {
    summary: "print version, runtime and runtime version",
    usage: "edgemux version",
    flags: {},
    run(rt, _values, _pos, out) {
      out(versionLine(rt));
      return 0;
    },
  },
};

export function versionLine(rt: Runtime): string {
  return `edgemux ${VERSION} (${rt.name} ${rt.version})`;
}

function commandHelp(c: Command): string {
  const lines = [`${c.usage}`, "", c.summary, ""];
  const entries = Object.entries(c.flags);
  if (entries.length > 0) lines.push("Flags:");
  for (const [flag, spec] of entries) {
    const head = `  ${spec.short ? `-${spec.short}, ` : "    "}--${flag}${spec.type === "string" ? " VALUE" : ""}`;
    lines.push(`${head.padEnd(30)} ${spec.help}`);
  }
  lines.push(`  ${"    --help".padEnd(28)} this help`);
  return lines.join("\n");
}

export function mainHelp(): string {
  const lines = [
    "edgemux — SNI router, CONNECT proxy and reverse-tunnel runtime",
    "",
    "Usage: edgemux <command> [flags]",
    "",
    "Commands:",
  ];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(16)} ${c.summary}`);
  lines.push("", "Global flags:", "  --version, -V     print version and runtime", "  --help, -h        this help; `edgemux <command> --help` for a command's flags");
  return lines.join("\n");
}

export async function runCommand(rt: Runtime, argv: string[], out: Out, err: Out): Promise<number | null> {
  const [first, ...rest] = argv;
  if (first === undefined || first === "--help" || first === "-h" || first === "help") {
    out(mainHelp());
    return first === undefined ? 2 : 0;
  }
  if (first === "--version" || first === "-V") {
    out(versionLine(rt));
    return 0;
  }
  const cmd = commands[first];
  if (!cmd) {
    err(`edgemux: unknown command ${JSON.stringify(first)}\n\n${mainHelp()}`);
    return 2;
  }
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = { help: { type: "boolean", short: "h" } };
  for (const [flag, spec] of Object.entries(cmd.flags)) options[flag] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}) };
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (e) {
    err(`edgemux ${first}: ${(e as Error).message}\n\n${commandHelp(cmd)}`);
    return 2;
  }
  if (parsed.values.help) {
    out(commandHelp(cmd));
    return 0;
  }
  return await cmd.run(rt, parsed.values as Record<string, string | boolean | undefined>, parsed.positionals, out, err);
}
