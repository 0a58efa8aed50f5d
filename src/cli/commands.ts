/**
 * The command table. Every command lists every flag with its default in its
 * `--help`; `runCommand` returns the exit code, or null for `serve`, which
 * keeps running until drained.
 *
 * A command loads what it uses when it runs (`await import`), not when the
 * table is read: an agent process never holds the edge's config schema,
 * supervisor or admin app, and `edgemux version` loads almost nothing.
 */
import type { ConfigFlags } from "../config/mod.ts";
import { type FlagSpec, type FlagValues, flagHead, HELP_FLAG, nearestName, parseFlags } from "./flags.ts";
import type { Runtime } from "../runtime/types.ts";
import { VERSION } from "../version.ts";
import { AGENT_DEFAULTS } from "../agent/defaults.ts";
import type { AgentFlags } from "../agent/config.ts";
import process from "node:process";
import { resolve } from "node:path";

const MAX_SECRET_BYTES = 4096;

/** The secret on stdin, without one trailing newline; null when empty or too long. */
async function readSecret(): Promise<Uint8Array | null> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of process.stdin as AsyncIterable<Uint8Array>) {
    parts.push(chunk);
    n += chunk.length;
    if (n > MAX_SECRET_BYTES + 2) return null;
  }
  let all = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  if (all.length > 0 && all[all.length - 1] === 0x0a) all = all.subarray(0, all.length - 1);
  if (all.length > 0 && all[all.length - 1] === 0x0d) all = all.subarray(0, all.length - 1);
  return all.length === 0 || all.length > MAX_SECRET_BYTES ? null : all;
}

type Out = (s: string) => void;

interface Command {
  summary: string;
  usage: string;
  flags: Record<string, FlagSpec>;
  /** Positional arguments reach run(); without this, any is refused before it runs. */
  takesArgs?: true;
  run(rt: Runtime, values: FlagValues, positionals: string[], out: Out, err: Out): Promise<number | null> | number | null;
}

const configFlags: Record<string, FlagSpec> = {
  config: { type: "string", placeholder: "FILE", short: "c", default: "the built-in config, see `edgemux default-config`", help: "TOML config file (or give FILE as the argument)" },
  workers: { type: "string", placeholder: "N", short: "w", default: "config `workers`, else 0", help: "worker threads, 0 = one per CPU" },
  admin: { type: "string", placeholder: "ADDR|off", default: "config `admin.address`, else 127.0.0.1:9901", help: "admin API address host:port, or off" },
  "log-level": { type: "string", placeholder: "LEVEL", default: "config `log.level`, else info", help: "debug | info | warn | error" },
  "log-format": { type: "string", placeholder: "FORMAT", default: "config `log.format`, else text", help: "text | json" },
  "drain-timeout": { type: "string", placeholder: "DURATION", default: "config `drain_timeout`, else 30s", help: "how long SIGTERM lets connections finish, e.g. 30s" },
};

/** `edgemux agent`: every flag also has a key in the agent's TOML file (src/agent/config.ts; README "Reverse tunnels"). */
const agentFlags: Record<string, FlagSpec> = {
  config: { type: "string", placeholder: "FILE", short: "c", default: "none", help: "agent TOML file (see examples/agent.toml); flags win, --expose/--forward add to its lists" },
  edge: { type: "string", placeholder: "HOST:PORT", default: "required", help: "the edge's tunnel listener" },
  servername: { type: "string", placeholder: "NAME", default: "the --edge host", help: "TLS server name (SNI and certificate check)" },
  ca: { type: "string", placeholder: "FILE", default: "system roots", help: "CA bundle (PEM) that verifies the edge's certificate" },
  cert: { type: "string", placeholder: "FILE", default: "none", help: "client certificate (PEM) for mTLS, with --key" },
  key: { type: "string", placeholder: "FILE", default: "none", help: "private key (PEM) of --cert" },
  token: { type: "string", placeholder: "TOKEN", default: "$EDGEMUX_TOKEN", help: "bearer token (visible in ps: prefer --token-file)" },
  "token-file": { type: "string", placeholder: "FILE", default: "none", help: "file holding the bearer token" },
  name: { type: "string", placeholder: "NAME", default: "the host name", help: "agent name shown in the edge's logs" },
  transport: { type: "string", placeholder: "MODE", default: AGENT_DEFAULTS.transport, help: "upgrade (HTTP/1.1 upgrade to smux) | websocket (RFC 6455)" },
  expose: {
    type: "string",
    placeholder: "NAME=TARGET",
    multiple: true,
    default: "none",
    help: "destination role: NAME=TARGET[,proxy=v1|v2], TARGET host:port | unix:/path | file:./dir | udp:ip:port; repeatable",
  },
  forward: { type: "string", placeholder: "LISTEN=NAME", multiple: true, default: "none", help: "source role, TCP: LISTEN=NAME, e.g. 127.0.0.1:8000=web (port 0 = kernel picks); repeatable" },
  "forward-udp": { type: "string", placeholder: "LISTEN=NAME", multiple: true, default: "none", help: "source role, UDP: LISTEN=NAME; repeatable" },
  status: { type: "string", placeholder: "ADDR|off", default: AGENT_DEFAULTS.status, help: "status endpoint address (GET /status JSON, GET /metrics Prometheus text, GET /healthz), or off" },
  "reconnect-min": { type: "string", placeholder: "DURATION", default: AGENT_DEFAULTS.reconnectMin, help: "first reconnect delay (exponential backoff with jitter)" },
  "reconnect-max": { type: "string", placeholder: "DURATION", default: AGENT_DEFAULTS.reconnectMax, help: "longest reconnect delay" },
  "connect-timeout": { type: "string", placeholder: "DURATION", default: AGENT_DEFAULTS.connectTimeout, help: "dialing the edge: TCP, TLS, upgrade and hello" },
  "udp-idle": { type: "string", placeholder: "DURATION", default: AGENT_DEFAULTS.udpIdle, help: "close a UDP flow idle this long" },
  "stream-window": {
    type: "string",
    placeholder: "BYTES",
    default: String(AGENT_DEFAULTS.streamWindow),
    help: "bytes the edge may send on one stream before it is read (smux v2 window); raise it for long round trips",
  },
  "max-streams": { type: "string", placeholder: "N", default: String(AGENT_DEFAULTS.maxStreams), help: "open streams on the session, both directions" },
  "log-level": { type: "string", placeholder: "LEVEL", default: AGENT_DEFAULTS.logLevel, help: "debug | info | warn | error" },
  "log-format": { type: "string", placeholder: "FORMAT", default: AGENT_DEFAULTS.logFormat, help: "text | json" },
  "allow-files": {
    type: "string",
    placeholder: "[NAME=]DIR",
    multiple: true,
    default: "none: file copies are refused",
    help: "let operators copy files to and from DIR (`edgemux cp`), never outside it; repeatable (then paths start with the root's NAME)",
  },
  "state-dir": {
    type: "string",
    placeholder: "DIR",
    default: "none: nothing kept",
    help: "keep the agent's key pair and self-signed certificate (its fingerprint is in the ready line) and the edges it last reached in DIR (created 0700, files 0600)",
  },
  "allow-shell": { type: "boolean", default: "off: shells are refused", help: "let operators open a shell on this host (`edgemux shell`), as the agent's user; [shell] sets the command, an allow list and an idle timeout" },
};

/** The operator commands (`shell`, `cp`, `agent-reload`): how they reach the edge. */
const operatorFlags: Record<string, FlagSpec> = {
  edge: { type: "string", placeholder: "HOST:PORT", default: "$EDGEMUX_EDGE", help: "the edge's tunnel listener" },
  token: { type: "string", placeholder: "TOKEN", default: "$EDGEMUX_TOKEN", help: "a token with role \"operator\" whose agents patterns name the agent (visible in ps: prefer --token-file)" },
  "token-file": { type: "string", placeholder: "FILE", default: "none", help: "file holding the token" },
  ca: { type: "string", placeholder: "FILE", default: "system roots", help: "CA bundle (PEM) that verifies the edge's certificate" },
  servername: { type: "string", placeholder: "NAME", default: "the --edge host", help: "TLS server name (SNI and certificate check)" },
  cert: { type: "string", placeholder: "FILE", default: "none", help: "client certificate (PEM) for mTLS, with --key" },
  key: { type: "string", placeholder: "FILE", default: "none", help: "private key (PEM) of --cert" },
  transport: { type: "string", placeholder: "MODE", default: AGENT_DEFAULTS.transport, help: "upgrade | websocket" },
  "connect-timeout": { type: "string", placeholder: "DURATION", default: AGENT_DEFAULTS.connectTimeout, help: "dialing the edge: TCP, TLS, upgrade and hello" },
};

/** Connects an operator command to the edge; null after printing why not (exit status 1, or 2 for bad flags). */
async function operatorClient(rt: Runtime, values: FlagValues, where: string, err: Out): Promise<{ client: import("../remote/mod.ts").OperatorClient } | { code: number }> {
  const { ConfigError } = await import("../config/issues.ts");
  const { OperatorClient, operatorSettings, describeFailure } = await import("../remote/mod.ts");
  let settings;
  try {
    settings = operatorSettings(values as import("../remote/mod.ts").OperatorFlags, (n) => rt.env(n));
  } catch (e) {
    err(`${where}: ${e instanceof ConfigError ? e.issues.join("\n") : (e as Error).message}`);
    return { code: 2 };
  }
  try {
    return { client: await OperatorClient.connect(rt, settings) };
  } catch (e) {
    err(`${where}: ${describeFailure(e)}`);
    return { code: 1 };
  }
}

const serveFlags: Record<string, FlagSpec> = {
  ...configFlags,
  "listen-fd": {
    type: "string",
    placeholder: "NAME=FD",
    multiple: true,
    default: "none; systemd's LISTEN_FDS are adopted without it",
    help: "adopt the listening socket on descriptor FD for listener NAME instead of binding (NAME=FD, 0 = stdin as inetd passes it); repeatable",
  },
  "allow-shared-ports": {
    type: "boolean",
    default: "off: refuse to start when another process answers on a listener's port",
    help: "start beside another process on the same ports (SO_REUSEPORT splits new connections between them): the second process of a zero-downtime upgrade",
  },
};

/**
 * The config file of `serve`: `serve FILE` is `serve --config FILE`. Giving
 * it both ways is accepted only when both name the same file.
 */
function configPathOf(values: FlagValues, pos: string[]): { path: string | null } | { error: string } {
  const flag = typeof values.config === "string" ? values.config : null;
  if (pos.length > 1) return { error: `runs one config file, got ${pos.length}: ${pos.map((p) => JSON.stringify(p)).join(" ")} (check several with \`edgemux check-config\`)` };
  const arg = pos[0] ?? null;
  if (arg !== null && flag !== null && resolve(arg) !== resolve(flag)) {
    return { error: `two config files given, ${JSON.stringify(arg)} (argument) and ${JSON.stringify(flag)} (--config): give one` };
  }
  return { path: flag ?? arg };
}

/** check-config's report for one file: every line names the file, so several files' problems stay apart. */
function checkFailure(path: string, e: unknown, ConfigError: typeof import("../config/mod.ts").ConfigError): string {
  if (!(e instanceof ConfigError)) return `${path}: ${(e as Error).message}`;
  const n = e.issues.length;
  const head = `${path}: invalid configuration (${n} ${n === 1 ? "problem" : "problems"}):`;
  // A located problem already starts with the file (`FILE:23: …`).
  return [head, ...e.issues.map((i) => (i.startsWith(`${path}:`) ? i : `${path}: ${i}`))].join("\n");
}

function flagsFrom(values: FlagValues): ConfigFlags {
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
    usage: "edgemux serve [FILE | --config FILE] [flags]",
    flags: serveFlags,
    // Every argument is a config file: configPathOf refuses more than one with its own message.
    takesArgs: true,
    async run(rt, values, pos, _out, err) {
      const flags = flagsFrom(values);
      const chosen = configPathOf(values, pos);
      if ("error" in chosen) {
        err(`edgemux serve: ${chosen.error}`);
        return 2;
      }
      const path = chosen.path;
      // The edge's pieces (supervisor, admin app, data plane) load only for serve: an agent process never holds them.
      const { ConfigError, loadConfigFile, loadDefaultConfig } = await import("../config/mod.ts");
      const { passedSockets } = await import("../supervisor/mod.ts");
      const { serve } = await import("./serve.ts");
      let config;
      let inherited;
      try {
        config = path ? loadConfigFile(path, flags) : loadDefaultConfig(flags);
        inherited = passedSockets((n) => rt.env(n), rt.pid, (values["listen-fd"] as string[] | undefined) ?? []);
      } catch (e) {
        err(e instanceof ConfigError ? e.message : `edgemux: ${(e as Error).message}`);
        return 2;
      }
      return await serve(rt, config, path, flags, inherited, { allowSharedPorts: values["allow-shared-ports"] === true });
    },
  },
  "check-config": {
    summary: "validate config files (and flags) without starting",
    usage: "edgemux check-config FILE... [flags]",
    flags: {
      ...configFlags,
      config: { type: "string", placeholder: "FILE", short: "c", default: "none: give FILE as the argument", help: "a file to check, as well as any FILE arguments" },
      strict: { type: "boolean", default: "off: warnings are printed, the exit status stays 0", help: "a file with warnings (risky but valid settings) fails the check, exit status 1" },
    },
    takesArgs: true,
    async run(_rt, values, pos, out, err) {
      const paths = [...pos];
      const flag = values.config;
      if (typeof flag === "string" && !paths.some((p) => resolve(p) === resolve(flag))) paths.push(flag);
      if (paths.length === 0) {
        err("edgemux check-config: name the file(s) to check");
        return 2;
      }
      const flags = flagsFrom(values);
      const { ConfigError, loadConfigFile, warnings } = await import("../config/mod.ts");
      let code = 0;
      for (const path of paths) {
        try {
          const c = loadConfigFile(path, flags);
          const found = warnings(c);
          for (const w of found) err(`${path}: warning: ${w.field}: ${w.message}`);
          const counts = `${c.listeners.length} listener(s), ${c.routes.length} route(s)${found.length > 0 ? `, ${found.length} warning(s)` : ""}`;
          if (values.strict && found.length > 0) {
            err(`${path}: refused by --strict (${counts})`);
            code = 1;
          } else {
            out(`${path}: ok (${counts})`);
          }
        } catch (e) {
          err(checkFailure(path, e, ConfigError));
          code = 1;
        }
      }
      return code;
    },
  },
  hostname: {
    summary: "print the canonical form of a host name (IDNA A-label, lowercase, no trailing dot)",
    usage: "edgemux hostname NAME...",
    flags: {},
    takesArgs: true,
    async run(_rt, _values, pos, out, err) {
      if (pos.length === 0) {
        err("edgemux hostname: give at least one NAME");
        return 2;
      }
      const { canonicalHostname } = await import("../proto/mod.ts");
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
  "hash-token": {
    summary: "read a token secret from stdin and print its SHA-256 in hex, for [[tokens]] sha256",
    usage: "edgemux hash-token < secret.txt   (or: echo -n SECRET | edgemux hash-token)",
    flags: {},
    // Arguments are refused by run() itself, with the reason (shell history).
    takesArgs: true,
    async run(_rt, _values, pos, out, err) {
      if (pos.length > 0) {
        err("edgemux hash-token: the secret is read from stdin, not from arguments (they would land in shell history)");
        return 2;
      }
      const secret = await readSecret();
      const { hashToken } = await import("../auth/mod.ts");
      if (secret === null) {
        err(`edgemux hash-token: expected 1..${MAX_SECRET_BYTES} bytes on stdin (one trailing newline is ignored)`);
        return 1;
      }
      out(hashToken(secret));
      return 0;
    },
  },
  agent: {
    summary: "reverse-tunnel agent: expose local services through an edge, or reach services behind other agents",
    usage: "edgemux agent --edge HOST:PORT (--expose NAME=TARGET | --forward LISTEN=NAME)... [flags]",
    flags: agentFlags,
    async run(rt, values, _pos, _out, err) {
      const { runAgent } = await import("../agent/run.ts");
      return await runAgent(rt, values as AgentFlags, err);
    },
  },
  shell: {
    summary: "open a shell (a pseudo-terminal) on an agent started with --allow-shell; its exit status becomes ours",
    usage: "edgemux shell --edge HOST:PORT --token-file FILE AGENT [-- COMMAND ARGS...]",
    flags: operatorFlags,
    takesArgs: true,
    async run(rt, values, pos, _out, err) {
      const [agent, ...command] = pos;
      if (agent === undefined) return usageError(err, "edgemux shell", "name the agent: edgemux shell AGENT [-- COMMAND ARGS...]", "shell");
      const c = await operatorClient(rt, values, "edgemux shell", err);
      if ("code" in c) return c.code === 1 ? 255 : c.code;
      const { runShell, describeFailure, EXIT_LOST } = await import("../remote/mod.ts");
      try {
        return await runShell(c.client, agent, command.length > 0 ? command : undefined, err);
      } catch (e) {
        err(`edgemux shell: ${describeFailure(e)}`);
        return EXIT_LOST;
      } finally {
        c.client.close();
      }
    },
  },
  cp: {
    summary: "copy files or directory trees to or from an agent started with --allow-files (SHA-256 verified, resumable)",
    usage: "edgemux cp --edge HOST:PORT --token-file FILE (LOCAL AGENT:PATH | AGENT:PATH LOCAL)",
    flags: {
      ...operatorFlags,
      bwlimit: { type: "string", placeholder: "BYTES", default: "0: unlimited", help: "bytes per second the file data may move at" },
    },
    takesArgs: true,
    async run(rt, values, pos, out, err) {
      const { parseCopyEnd, upload, download, describeFailure } = await import("../remote/mod.ts");
      if (pos.length !== 2) return usageError(err, "edgemux cp", `takes a source and a destination, got ${pos.length} argument(s)`, "cp");
      const from = parseCopyEnd(pos[0]!);
      const to = parseCopyEnd(pos[1]!);
      if (("agent" in from) === ("agent" in to)) {
        return usageError(err, "edgemux cp", "one side must be AGENT:PATH and the other a local path (write a local path with a colon as ./a:b)", "cp");
      }
      const bw = typeof values.bwlimit === "string" ? values.bwlimit : "0";
      if (!/^\d{1,15}$/.test(bw)) return usageError(err, "edgemux cp", `--bwlimit must be a number of bytes per second, got ${JSON.stringify(bw)}`, "cp");
      const c = await operatorClient(rt, values, "edgemux cp", err);
      if ("code" in c) return c.code;
      const o = { bwlimit: Number(bw), out };
      try {
        const t = "agent" in to ? await upload(c.client, (from as { local: string }).local, to.agent, to.path, o) : await download(c.client, (from as { agent: string }).agent, (from as { path: string }).path, (to as { local: string }).local, o);
        out(`${t.files} file(s), ${t.bytes} byte(s) copied`);
        return 0;
      } catch (e) {
        err(`edgemux cp: ${describeFailure(e)}`);
        return 1;
      } finally {
        c.client.close();
      }
    },
  },
  "agent-reload": {
    summary: "ask an agent to re-read its config file; prints the result of its validation",
    usage: "edgemux agent-reload --edge HOST:PORT --token-file FILE AGENT",
    flags: operatorFlags,
    takesArgs: true,
    async run(rt, values, pos, out, err) {
      if (pos.length !== 1) return usageError(err, "edgemux agent-reload", "name one agent", "agent-reload");
      const c = await operatorClient(rt, values, "edgemux agent-reload", err);
      if ("code" in c) return c.code;
      const { reloadAgent, describeFailure } = await import("../remote/mod.ts");
      try {
        const r = await reloadAgent(c.client, pos[0]!);
        out(`${pos[0]}: ${r.file}: valid; applied: ${r.applied.join(", ") || "nothing changed"}${r.restartNeeded.length > 0 ? `; needs a restart of the agent: ${r.restartNeeded.join(", ")}` : ""}`);
        return 0;
      } catch (e) {
        err(`edgemux agent-reload: ${describeFailure(e)}`);
        return 1;
      } finally {
        c.client.close();
      }
    },
  },
  "default-config": {
    summary: "print the built-in default config (what `edgemux serve` runs without a config file)",
    usage: "edgemux default-config",
    flags: {},
    async run(_rt, _values, _pos, out) {
      const { defaultConfigToml, parseConfig } = await import("../config/mod.ts");
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
  const entries: [string, FlagSpec][] = [...Object.entries(c.flags), ["help", HELP_FLAG]];
  const width = Math.max(28, ...entries.map(([name, spec]) => flagHead(name, spec).length + 2));
  if (entries.length > 1) lines.push("Flags:");
  for (const [name, spec] of Object.entries(c.flags)) lines.push(`  ${flagHead(name, spec).padEnd(width)} ${spec.help} (default: ${spec.default})`);
  lines.push(`  ${flagHead("help", HELP_FLAG).padEnd(width)} ${HELP_FLAG.help}`);
  return lines.join("\n");
}

export function mainHelp(): string {
  const lines = [
    "edgemux — SNI router, CONNECT proxy and reverse-tunnel runtime",
    "",
    "Usage: edgemux COMMAND [flags]",
    "",
    "Commands:",
  ];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(16)} ${c.summary}`);
  lines.push(
    "",
    "`edgemux help COMMAND` (or `edgemux COMMAND --help`) shows a command's flags.",
    "",
    "Global flags:",
    "  --version, -V     print version and runtime",
    "  --help, -h        this help",
  );
  return lines.join("\n");
}

/** What `edgemux` alone prints, as an error: the command names, and where the rest is. */
function shortList(): string {
  return `edgemux: give a command: ${Object.keys(commands).join(", ")}\nrun \`edgemux help\` for what each does, \`edgemux help COMMAND\` for its flags`;
}

/** Flags of `edgemux` itself, before any command. */
const GLOBAL_FLAGS = ["--help", "-h", "--version", "-V"];

/** The commands that have the flag typed as `raw` (`--edge`, `-c`), as `edgemux agent` for messages. */
function ownersOf(raw: string, except: string | null): string[] {
  const owners = [];
  if (except !== null && GLOBAL_FLAGS.includes(raw)) owners.push("`edgemux`");
  for (const [name, c] of Object.entries(commands)) {
    if (name === except) continue;
    const has = raw.startsWith("--") ? Object.hasOwn(c.flags, raw.slice(2)) : Object.values(c.flags).some((f) => `-${f.short}` === raw);
    if (has) owners.push(`\`edgemux ${name}\``);
  }
  return owners;
}

function listed(items: string[]): string {
  return items.length <= 1 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}

/** The message for a flag `command` does not have: another command's flag, or the nearest of its own. */
function unknownFlag(command: string, raw: string): string {
  const owners = ownersOf(raw, command);
  if (owners.length > 0) return `unknown flag ${raw} (${raw} is a flag of ${listed(owners)})`;
  const near = raw.startsWith("--") ? nearestName(raw, [...Object.keys(commands[command]!.flags), "help"]) : null;
  return `unknown flag ${raw}${near === null ? "" : ` (did you mean --${near}?)`}`;
}

function unknownCommand(name: string, names: string[]): string {
  const near = nearestName(name, names);
  return `unknown command ${JSON.stringify(name)}${near === null ? "" : ` (did you mean ${near}?)`}`;
}

/** A usage error: one line that names the problem, one that says where help is; exit status 2. */
function usageError(err: Out, where: string, message: string, command: string | null): 2 {
  err(`${where}: ${message}\nrun \`edgemux help${command === null ? "" : ` ${command}`}\` for ${command === null ? "the commands" : "its flags"}`);
  return 2;
}

/** `edgemux help [COMMAND]`. */
function help(args: string[], out: Out, err: Out): number {
  if (args.length === 0 || (args.length === 1 && args[0] === "help")) {
    out(mainHelp());
    return 0;
  }
  if (args.length > 1) return usageError(err, "edgemux help", `shows one command, got ${args.map((a) => JSON.stringify(a)).join(" ")}`, null);
  const cmd = Object.hasOwn(commands, args[0]!) ? commands[args[0]!]! : undefined;
  if (cmd === undefined) return usageError(err, "edgemux help", unknownCommand(args[0]!, Object.keys(commands)), null);
  out(commandHelp(cmd));
  return 0;
}

export async function runCommand(rt: Runtime, argv: string[], out: Out, err: Out): Promise<number | null> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    err(shortList());
    return 2;
  }
  if (first === "--help" || first === "-h") {
    out(mainHelp());
    return 0;
  }
  if (first === "--version" || first === "-V") {
    out(versionLine(rt));
    return 0;
  }
  if (first === "help") return help(rest, out, err);
  if (first.startsWith("-")) {
    const raw = first.replace(/=.*$/s, "");
    const owners = ownersOf(raw, null);
    if (owners.length > 0) return usageError(err, "edgemux", `${raw} is a flag of ${listed(owners)}: give the command first`, null);
    const near = raw.startsWith("--") ? nearestName(raw, ["help", "version"]) : null;
    return usageError(err, "edgemux", `unknown flag ${raw}${near === null ? "" : ` (did you mean --${near}?)`}`, null);
  }
  const cmd = Object.hasOwn(commands, first) ? commands[first]! : undefined;
  if (cmd === undefined) return usageError(err, "edgemux", unknownCommand(first, [...Object.keys(commands), "help"]), null);
  const where = `edgemux ${first}`;
  const parsed = parseFlags(cmd.flags, rest);
  if ("unknown" in parsed) return usageError(err, where, unknownFlag(first, parsed.unknown), first);
  if ("error" in parsed) return usageError(err, where, parsed.error, first);
  if (parsed.values.help) {
    out(commandHelp(cmd));
    return 0;
  }
  if (!cmd.takesArgs && parsed.positionals.length > 0) {
    return usageError(err, where, `takes no arguments, got ${parsed.positionals.map((p) => JSON.stringify(p)).join(" ")}`, first);
  }
  return await cmd.run(rt, parsed.values, parsed.positionals, out, err);
}
