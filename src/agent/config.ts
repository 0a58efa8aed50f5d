/**
 * `edgemux agent` settings: an optional TOML file plus flags (flags win for
 * single values; `--expose`, `--forward` and `--forward-udp` add to the
 * file's lists). Every problem is collected and reported together, each line
 * naming the field (or flag) and what is wrong, like the edge's config.
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { hostname as osHostname } from "node:os";
import { dirname, resolve } from "node:path";
// The parts of the edge's config module that the agent shares, not its barrel: the agent must not load the edge's schema.
import { formatAddress, parseAddress } from "../config/address.ts";
import { parseDuration } from "../config/durations.ts";
import { ConfigError } from "../config/issues.ts";
import { AGENT_DEFAULTS } from "./defaults.ts";
import { AGENT_NAME, type ProxyWish, SERVICE_NAME } from "../proto/tunnel_control.ts";
import { type FileRoot, fileRoot } from "../remote/paths.ts";

/** Remote file access (`--allow-files`, `[files]`): operators copy files to and from these roots. */
export interface FilesConfig {
  roots: FileRoot[];
  /** Largest file copied either way, bytes. */
  maxSize: number;
  /** Refuse put and mkdir. */
  readOnly: boolean;
}

/** Remote shells (`--allow-shell`, `[shell]`). */
export interface ShellConfig {
  /** What `edgemux shell AGENT` runs. */
  command: string[];
  /** Commands an operator may run instead (`edgemux shell AGENT -- CMD`): program names or paths, "*" = any; empty = only `command`. */
  allow: string[];
  /** A shell with no bytes either way for this long is ended (0 = never). */
  idleTimeoutMs: number;
}

export type ExposeTarget =
  | { kind: "tcp"; hostname: string; port: number }
  | { kind: "unix"; path: string }
  | { kind: "files"; dir: string }
  | { kind: "udp"; hostname: string; port: number };

export interface Expose {
  name: string;
  target: ExposeTarget;
  /** PROXY header to send to the target when the edge does not ask for one itself. */
  proxy: ProxyWish;
}

export interface Forward {
  listen: { hostname: string; port: number };
  service: string;
  proto: "tcp" | "udp";
}

export interface AgentConfig {
  edge: { hostname: string; port: number };
  /** TLS server name (SNI and certificate check); default the edge host. */
  servername: string;
  transport: "upgrade" | "websocket";
  token: string | null;
  /** PEM contents. */
  ca: string | null;
  cert: string | null;
  key: string | null;
  name: string;
  exposes: Expose[];
  forwards: Forward[];
  status: { hostname: string; port: number } | null;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  connectTimeoutMs: number;
  /** How long an open may wait for the far end (source) or the local service (destination). */
  openTimeoutMs: number;
  udpIdleMs: number;
  /** The smux v2 window this agent advertises per stream: bytes the edge may send on one stream before it is read. */
  streamWindow: number;
  /** Open streams on the session, both directions; the edge refuses opens past it. */
  maxStreams: number;
  log: { level: "debug" | "info" | "warn" | "error"; format: "text" | "json" };
  /** Remote file access; absent or null: refused (REMOTE_DISABLED). */
  files?: FilesConfig | null;
  /** Remote shells; absent or null: refused (REMOTE_DISABLED). */
  shell?: ShellConfig | null;
  /** The config file (absolute), which `edgemux agent-reload` re-reads; null without one. */
  configPath?: string | null;
  /** `--state-dir`: the agent's key pair, certificate and the edges it last reached (state.ts); null: none kept. */
  stateDir?: string | null;
}

/** Flag values as parsed from the command line (strings, or arrays for repeatable flags). */
export interface AgentFlags {
  config?: string;
  edge?: string;
  servername?: string;
  transport?: string;
  token?: string;
  "token-file"?: string;
  ca?: string;
  cert?: string;
  key?: string;
  name?: string;
  expose?: string[];
  forward?: string[];
  "forward-udp"?: string[];
  status?: string;
  "reconnect-min"?: string;
  "reconnect-max"?: string;
  "connect-timeout"?: string;
  "udp-idle"?: string;
  "stream-window"?: string;
  "max-streams"?: string;
  "log-level"?: string;
  "log-format"?: string;
  "allow-files"?: string[];
  "allow-shell"?: boolean;
  "state-dir"?: string;
}

const FILE_KEYS = new Set([
  "edge",
  "servername",
  "transport",
  "token",
  "token_file",
  "ca",
  "cert",
  "key",
  "name",
  "status",
  "reconnect_min",
  "reconnect_max",
  "connect_timeout",
  "open_timeout",
  "udp_idle",
  "stream_window",
  "max_streams",
  "log",
  "expose",
  "forward",
  "files",
  "shell",
  "state_dir",
]);

const FILES_KEYS = ["roots", "max_size", "read_only"];
const SHELL_KEYS = ["command", "allow", "idle_timeout"];

class Problems {
  readonly list: string[] = [];
  add(field: string, problem: string): void {
    this.list.push(`${field}: ${problem}`);
  }
  /** Runs `fn`; a ConfigError it throws becomes problems (its lines already name the field). */
  try<T>(fn: () => T, fallback: T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof ConfigError) this.list.push(...e.issues);
      else this.list.push((e as Error).message);
      return fallback;
    }
  }
}

/**
 * `--expose NAME=TARGET[,proxy=v1|v2]` (or a file [[expose]]): TARGET is
 * `host:port`, `unix:/path`, `file:./dir` (the built-in static file server) or
 * `udp:host:port`.
 */
export function parseExpose(text: string, field: string, baseDir: string, p: Problems): Expose | null {
  const eq = text.indexOf("=");
  if (eq <= 0) {
    p.add(field, `must be NAME=TARGET (e.g. web=127.0.0.1:8080, site=file:./public, dns=udp:127.0.0.1:53), got ${JSON.stringify(text)}`);
    return null;
  }
  const name = text.slice(0, eq);
  const [targetText, ...opts] = text.slice(eq + 1).split(",");
  return exposeFrom(name, targetText!, opts, field, baseDir, p);
}

function exposeFrom(name: string, targetText: string, opts: string[], field: string, baseDir: string, p: Problems): Expose | null {
  if (!SERVICE_NAME.test(name)) {
    p.add(field, `service name must match [a-z0-9][a-z0-9_.-]{0,62}, got ${JSON.stringify(name)}`);
    return null;
  }
  let proxy: ProxyWish = "none";
  for (const o of opts) {
    const m = /^proxy=(none|v1|v2)$/.exec(o.trim());
    if (!m) p.add(field, `unknown option ${JSON.stringify(o)} (proxy=none|v1|v2)`);
    else proxy = m[1] as ProxyWish;
  }
  let target: ExposeTarget | null = null;
  if (targetText.startsWith("file:")) {
    const dir = targetText.slice(5);
    if (dir === "") p.add(field, "file: needs a directory (file:./public)");
    else target = { kind: "files", dir: resolve(baseDir, dir) };
  } else if (targetText.startsWith("udp:")) {
    const a = p.try(() => parseAddress(targetText.slice(4), field, { allowPortZero: false, allowHostnames: true, allowUnix: false }), null);
    if (a && a.kind === "tcp") {
      // Datagrams are sent to an address, never resolved per packet: a UDP target is an IP.
      if (!/^[\d.]+$/.test(a.hostname) && !a.hostname.includes(":")) p.add(field, `a udp: target must be an IP address, got ${JSON.stringify(a.hostname)}`);
      else target = { kind: "udp", hostname: a.hostname, port: a.port };
    }
  } else {
    const a = p.try(() => parseAddress(targetText, field, { allowPortZero: false, allowHostnames: true }), null);
    if (a) target = a.kind === "unix" ? { kind: "unix", path: a.path } : { kind: "tcp", hostname: a.hostname, port: a.port };
  }
  return target === null ? null : { name, target, proxy };
}

/** `--forward LISTEN=NAME` (TCP) or `--forward-udp LISTEN=NAME`: LISTEN is `ip:port` (port 0 = kernel picks). */
export function parseForward(text: string, proto: "tcp" | "udp", field: string, p: Problems): Forward | null {
  const eq = text.lastIndexOf("=");
  if (eq <= 0) {
    p.add(field, `must be LISTEN=SERVICE (e.g. 127.0.0.1:8000=web), got ${JSON.stringify(text)}`);
    return null;
  }
  return forwardFrom(text.slice(0, eq), text.slice(eq + 1), proto, field, p);
}

function forwardFrom(listen: string, service: string, proto: "tcp" | "udp", field: string, p: Problems): Forward | null {
  if (!SERVICE_NAME.test(service)) {
    p.add(field, `service name must match [a-z0-9][a-z0-9_.-]{0,62}, got ${JSON.stringify(service)}`);
    return null;
  }
  const a = p.try(() => parseAddress(listen, field, { allowPortZero: true, allowHostnames: false, allowUnix: false }), null);
  if (!a || a.kind !== "tcp") return null;
  return { listen: { hostname: a.hostname, port: a.port }, service, proto };
}

function str(raw: Record<string, unknown>, key: string, p: Problems): string | undefined {
  const v = raw[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string") {
    p.add(key, `must be a string, got ${typeof v}`);
    return undefined;
  }
  return v;
}

function readPem(path: string | undefined, field: string, baseDir: string, p: Problems): string | null {
  if (path === undefined) return null;
  try {
    return readFileSync(resolve(baseDir, path), "utf8");
  } catch (e) {
    p.add(field, `cannot read ${JSON.stringify(path)}: ${(e as Error).message}`);
    return null;
  }
}

function duration(text: string, field: string, min: number, max: number, p: Problems): number {
  const ms = p.try(() => parseDuration(text, field), -1);
  if (ms < 0) return min;
  if (ms < min || ms > max) {
    p.add(field, `must be between ${min} ms and ${max} ms, got ${JSON.stringify(text)}`);
    return min;
  }
  return ms;
}

/**
 * Builds the agent's settings from flags and, when `--config` names one, a
 * TOML file (the TOML parser loads only then). Rejects with a ConfigError
 * listing every problem.
 */
export async function loadAgentConfig(flags: AgentFlags, env: (name: string) => string | undefined = () => undefined): Promise<AgentConfig> {
  let raw: Record<string, unknown> = {};
  if (flags.config !== undefined) {
    try {
      const text = readFileSync(flags.config, "utf8");
      const { parse } = await import("smol-toml");
      raw = parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError([`${flags.config}: ${(e as Error).message}`], "invalid agent configuration");
    }
  }
  return agentConfigFrom(flags, raw, env);
}

/** loadAgentConfig once the file (if any) is parsed: `raw` is its table, `{}` without one. */
function agentConfigFrom(flags: AgentFlags, raw: Record<string, unknown>, env: (name: string) => string | undefined = () => undefined): AgentConfig {
  const p = new Problems();
  let baseDir = process.cwd();
  if (flags.config !== undefined) {
    baseDir = dirname(resolve(flags.config));
    for (const k of Object.keys(raw)) if (!FILE_KEYS.has(k)) p.add(k, "unknown key");
  }
  // Flags are resolved against the working directory, file values against the file's directory.
  const cwd = process.cwd();
  const pick = (flag: keyof AgentFlags, key: string): { v: string; field: string; base: string } | undefined => {
    const f = flags[flag];
    if (typeof f === "string") return { v: f, field: `--${flag}`, base: cwd };
    const v = str(raw, key, p);
    return v === undefined ? undefined : { v, field: key, base: baseDir };
  };

  const edgeText = pick("edge", "edge");
  let edge = { hostname: "", port: 0 };
  if (!edgeText) p.add("edge", "is required (--edge HOST:PORT)");
  else {
    const a = p.try(() => parseAddress(edgeText.v, edgeText.field, { allowPortZero: false, allowHostnames: true, allowUnix: false }), null);
    if (a && a.kind === "tcp") edge = { hostname: a.hostname, port: a.port };
  }
  const servername = pick("servername", "servername")?.v ?? edge.hostname;
  const transportText = pick("transport", "transport");
  const transport = transportText?.v ?? AGENT_DEFAULTS.transport;
  if (transport !== "upgrade" && transport !== "websocket") p.add(transportText!.field, `must be upgrade | websocket, got ${JSON.stringify(transport)}`);

  let token: string | null = null;
  const tokenText = pick("token", "token");
  const tokenFile = pick("token-file", "token_file");
  if (tokenText) token = tokenText.v;
  else if (tokenFile) {
    try {
      token = readFileSync(resolve(tokenFile.base, tokenFile.v), "utf8").trim();
    } catch (e) {
      p.add(tokenFile.field, `cannot read ${JSON.stringify(tokenFile.v)}: ${(e as Error).message}`);
    }
  } else token = env("EDGEMUX_TOKEN") ?? null;
  if (token !== null && (token === "" || /\s/.test(token) || token.length > 4096)) p.add(tokenText?.field ?? "token", "must be 1..4096 characters without spaces");

  const ca = pick("ca", "ca");
  const cert = pick("cert", "cert");
  const key = pick("key", "key");
  if ((cert === undefined) !== (key === undefined)) p.add(cert === undefined ? "cert" : "key", "cert and key go together (client certificate)");

  const nameText = pick("name", "name");
  const name = nameText?.v ?? osHostname().split(".")[0]!.replace(/[^A-Za-z0-9_.@-]/g, "-").slice(0, 64);
  if (!AGENT_NAME.test(name)) p.add(nameText?.field ?? "name", `must match [A-Za-z0-9][A-Za-z0-9_.@-]{0,63}, got ${JSON.stringify(name)}`);

  const exposes: Expose[] = [];
  const fileExposes = raw["expose"];
  if (fileExposes !== undefined) {
    if (!Array.isArray(fileExposes)) p.add("expose", "must be an array of tables ([[expose]])");
    else {
      fileExposes.forEach((e, i) => {
        const f = `expose[${i}]`;
        if (typeof e !== "object" || e === null) return p.add(f, "must be a table");
        const t = e as Record<string, unknown>;
        for (const k of Object.keys(t)) if (!["name", "target", "proxy_protocol"].includes(k)) p.add(`${f}.${k}`, "unknown key");
        if (typeof t.name !== "string" || typeof t.target !== "string") return p.add(f, "needs name and target strings");
        const opts = typeof t.proxy_protocol === "string" ? [`proxy=${t.proxy_protocol}`] : [];
        const x = exposeFrom(t.name, t.target, opts, f, baseDir, p);
        if (x) exposes.push(x);
      });
    }
  }
  (flags.expose ?? []).forEach((e) => {
    const x = parseExpose(e, "--expose", cwd, p);
    if (x) exposes.push(x);
  });
  const seen = new Set<string>();
  for (const x of exposes) {
    if (seen.has(x.name)) p.add("expose", `service ${JSON.stringify(x.name)} is exposed twice`);
    seen.add(x.name);
  }

  const forwards: Forward[] = [];
  const fileForwards = raw["forward"];
  if (fileForwards !== undefined) {
    if (!Array.isArray(fileForwards)) p.add("forward", "must be an array of tables ([[forward]])");
    else {
      fileForwards.forEach((e, i) => {
        const f = `forward[${i}]`;
        if (typeof e !== "object" || e === null) return p.add(f, "must be a table");
        const t = e as Record<string, unknown>;
        for (const k of Object.keys(t)) if (!["listen", "service", "proto"].includes(k)) p.add(`${f}.${k}`, "unknown key");
        if (typeof t.listen !== "string" || typeof t.service !== "string") return p.add(f, "needs listen and service strings");
        const proto = t.proto ?? "tcp";
        if (proto !== "tcp" && proto !== "udp") return p.add(`${f}.proto`, "must be tcp | udp");
        const x = forwardFrom(t.listen, t.service, proto, f, p);
        if (x) forwards.push(x);
      });
    }
  }
  for (const f of flags.forward ?? []) {
    const x = parseForward(f, "tcp", "--forward", p);
    if (x) forwards.push(x);
  }
  for (const f of flags["forward-udp"] ?? []) {
    const x = parseForward(f, "udp", "--forward-udp", p);
    if (x) forwards.push(x);
  }
  const given = (flags.expose?.length ?? 0) + (flags.forward?.length ?? 0) + (flags["forward-udp"]?.length ?? 0) +
    (Array.isArray(fileExposes) ? fileExposes.length : 0) + (Array.isArray(fileForwards) ? fileForwards.length : 0);
  const stateDir = pick("state-dir", "state_dir");
  if (stateDir !== undefined && (stateDir.v === "" || stateDir.v.includes("\0"))) p.add(stateDir.field, "must be a directory path");
  const files = readFiles(flags, raw, baseDir, cwd, p);
  const shell = readShell(flags, raw, env, p);
  if (given === 0 && files === null && shell === null) p.add("expose", "nothing to do: give at least one --expose, --forward, --allow-files or --allow-shell");

  const statusText = pick("status", "status");
  let status: AgentConfig["status"] = null;
  if (statusText && statusText.v !== "off") {
    const a = p.try(() => parseAddress(statusText.v, statusText.field, { allowPortZero: true, allowHostnames: false, allowUnix: false }), null);
    if (a && a.kind === "tcp") status = { hostname: a.hostname, port: a.port };
  }

  const dur = (flag: keyof AgentFlags, key: string, def: string, min: number, max: number) => {
    const t = pick(flag, key);
    return duration(t?.v ?? def, t?.field ?? key, min, max, p);
  };
  const reconnectMinMs = dur("reconnect-min", "reconnect_min", AGENT_DEFAULTS.reconnectMin, 10, 3_600_000);
  const reconnectMaxMs = dur("reconnect-max", "reconnect_max", AGENT_DEFAULTS.reconnectMax, 10, 86_400_000);
  if (reconnectMaxMs < reconnectMinMs) p.add("reconnect_max", "must not be less than reconnect_min");
  const connectTimeoutMs = dur("connect-timeout", "connect_timeout", AGENT_DEFAULTS.connectTimeout, 100, 300_000);
  const openTimeoutMs = duration(str(raw, "open_timeout", p) ?? AGENT_DEFAULTS.openTimeout, "open_timeout", 100, 300_000, p);
  const udpIdleMs = dur("udp-idle", "udp_idle", AGENT_DEFAULTS.udpIdle, 1000, 86_400_000);
  // Bounds as the edge's listener keys of the same names.
  const int = (flag: keyof AgentFlags, key: string, def: number, min: number, max: number) => {
    const f = flags[flag];
    const v: unknown = typeof f === "string" ? (/^\d+$/.test(f) ? Number(f) : f) : raw[key];
    const field = typeof f === "string" ? `--${flag}` : key;
    if (v === undefined) return def;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      p.add(field, `must be an integer between ${min} and ${max}, got ${JSON.stringify(v)}`);
      return def;
    }
    return v;
  };
  const streamWindow = int("stream-window", "stream_window", AGENT_DEFAULTS.streamWindow, 16_384, 4_194_304);
  const maxStreams = int("max-streams", "max_streams", AGENT_DEFAULTS.maxStreams, 1, 100_000);

  const logT = (raw["log"] ?? {}) as Record<string, unknown>;
  const level = flags["log-level"] ?? (typeof logT.level === "string" ? logT.level : AGENT_DEFAULTS.logLevel);
  const format = flags["log-format"] ?? (typeof logT.format === "string" ? logT.format : AGENT_DEFAULTS.logFormat);
  if (!["debug", "info", "warn", "error"].includes(level)) p.add("log.level", `must be debug | info | warn | error, got ${JSON.stringify(level)}`);
  if (!["text", "json"].includes(format)) p.add("log.format", `must be text | json, got ${JSON.stringify(format)}`);

  const cfg: AgentConfig = {
    edge,
    servername,
    transport: transport as AgentConfig["transport"],
    token,
    ca: readPem(ca?.v, ca?.field ?? "ca", ca?.base ?? cwd, p),
    cert: readPem(cert?.v, cert?.field ?? "cert", cert?.base ?? cwd, p),
    key: readPem(key?.v, key?.field ?? "key", key?.base ?? cwd, p),
    name,
    exposes,
    forwards,
    status,
    reconnectMinMs,
    reconnectMaxMs,
    connectTimeoutMs,
    openTimeoutMs,
    udpIdleMs,
    streamWindow,
    maxStreams,
    log: { level: level as AgentConfig["log"]["level"], format: format as AgentConfig["log"]["format"] },
    files,
    shell,
    configPath: flags.config !== undefined ? resolve(flags.config) : null,
    stateDir: stateDir ? resolve(stateDir.base, stateDir.v) : null,
  };
  if (p.list.length > 0) throw new ConfigError(p.list, "invalid agent configuration");
  return cfg;
}

/** `--allow-files DIR` (repeatable, `NAME=DIR`) and `[files]`: the flags' roots add to the file's. */
function readFiles(flags: AgentFlags, raw: Record<string, unknown>, baseDir: string, cwd: string, p: Problems): FilesConfig | null {
  const t = raw["files"];
  const specs: { spec: string; field: string; base: string }[] = [];
  let maxSize = AGENT_DEFAULTS.filesMaxSize;
  let readOnly = false;
  if (t !== undefined) {
    if (typeof t !== "object" || t === null || Array.isArray(t)) p.add("files", "must be a table ([files])");
    else {
      const f = t as Record<string, unknown>;
      for (const k of Object.keys(f)) if (!FILES_KEYS.includes(k)) p.add(`files.${k}`, `unknown key (${FILES_KEYS.join(", ")})`);
      if (!Array.isArray(f.roots) || f.roots.length === 0 || f.roots.some((r) => typeof r !== "string")) p.add("files.roots", "must list at least one directory (strings)");
      else f.roots.forEach((r, i) => specs.push({ spec: r as string, field: `files.roots[${i}]`, base: baseDir }));
      if (f.max_size !== undefined) {
        if (typeof f.max_size !== "number" || !Number.isSafeInteger(f.max_size) || f.max_size < 1) p.add("files.max_size", `must be a positive integer (bytes), got ${JSON.stringify(f.max_size)}`);
        else maxSize = f.max_size;
      }
      if (f.read_only !== undefined) {
        if (typeof f.read_only !== "boolean") p.add("files.read_only", "must be true or false");
        else readOnly = f.read_only;
      }
    }
  }
  for (const d of flags["allow-files"] ?? []) specs.push({ spec: d, field: "--allow-files", base: cwd });
  if (specs.length === 0) return null;
  const roots: FileRoot[] = [];
  for (const s of specs) {
    try {
      const r = fileRoot(s.spec, s.base);
      if (roots.some((x) => x.name === r.name)) p.add(s.field, `root name ${JSON.stringify(r.name)} is used twice (name one: NAME=DIR)`);
      roots.push(r);
    } catch (e) {
      p.add(s.field, `cannot use ${JSON.stringify(s.spec)} as a file root: ${(e as Error).message}`);
    }
  }
  return { roots, maxSize, readOnly };
}

/** `--allow-shell` and `[shell]`: either one turns shells on. */
function readShell(flags: AgentFlags, raw: Record<string, unknown>, env: (name: string) => string | undefined, p: Problems): ShellConfig | null {
  const t = raw["shell"];
  if (t === undefined && flags["allow-shell"] !== true) return null;
  const shell = env("SHELL");
  const cfg: ShellConfig = { command: [shell && shell.startsWith("/") ? shell : "/bin/sh"], allow: [], idleTimeoutMs: 0 };
  if (t === undefined) return cfg;
  if (typeof t !== "object" || t === null || Array.isArray(t)) {
    p.add("shell", "must be a table ([shell])");
    return cfg;
  }
  const f = t as Record<string, unknown>;
  for (const k of Object.keys(f)) if (!SHELL_KEYS.includes(k)) p.add(`shell.${k}`, `unknown key (${SHELL_KEYS.join(", ")})`);
  const strings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string" && x !== "" && !x.includes("\0"));
  if (f.command !== undefined) {
    if (!strings(f.command) || (f.command as string[]).length === 0) p.add("shell.command", `must be a non-empty list of strings, e.g. ["/bin/bash", "-l"]`);
    else cfg.command = f.command as string[];
  }
  if (f.allow !== undefined) {
    if (!strings(f.allow)) p.add("shell.allow", `must be a list of commands (names or paths), or ["*"] for any`);
    else cfg.allow = f.allow as string[];
  }
  if (f.idle_timeout !== undefined) {
    if (typeof f.idle_timeout !== "string") p.add("shell.idle_timeout", `must be a duration string ("30m"), got ${JSON.stringify(f.idle_timeout)}`);
    else cfg.idleTimeoutMs = f.idle_timeout === "0" || f.idle_timeout === "0s" ? 0 : duration(f.idle_timeout, "shell.idle_timeout", 1000, 7 * 86_400_000, p);
  }
  return cfg;
}

export function describeTarget(t: ExposeTarget): string {
  switch (t.kind) {
    case "tcp":
      return formatAddress({ kind: "tcp", hostname: t.hostname, port: t.port });
    case "unix":
      return `unix:${t.path}`;
    case "files":
      return `file:${t.dir}`;
    case "udp":
      return `udp:${formatAddress({ kind: "tcp", hostname: t.hostname, port: t.port })}`;
  }
}
