/**
 * Forward-proxy and tunnel policy: `[[tokens]]` (plus `tokens_file`),
 * `[egress]` and `[[connect_rules]]`. See the README's Configuration section
 * for what each key means.
 */

import { readFileSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { parse, TomlError } from "smol-toml";
import type { ConnectRuleConfig, EgressConfig, ListenerConfig, PortRange, TokenConfig, TokenRole } from "./types.ts";
import { canonicalCidr } from "./cidr.ts";
import { canonicalIp } from "./ip.ts";
import { canonicalPattern } from "./hostname.ts";
import * as D from "./defaults.ts";
import { type Entry, readBool, readInt, readString, readStringArray, readTable, readTableArray, reportDuplicates } from "./fields.ts";
import { checkKeys, describe, didYouMean, type Issues, type RawTable } from "./issues.ts";

export const TOKEN_KEYS = ["name", "sha256", "roles", "services", "allow", "deny", "max_sessions", "agents"] as const;
export const TOKENS_FILE_KEYS = ["tokens"] as const;
export const EGRESS_KEYS = ["allow_hosts", "allow_ports", "allow_cidrs", "deny_cidrs", "allow_private"] as const;
export const CONNECT_RULE_KEYS = ["identity", "destinations", "listeners"] as const;

const HEX64 = /^[0-9a-fA-F]{64}$/;

// ---- [[tokens]] and tokens_file ----------------------------------------------

export function readTokens(is: Issues, raw: RawTable, baseDir: string): { tokens: TokenConfig[]; tokensFile: string | null } {
  const tokens: TokenConfig[] = [];
  const names = new Map<string, string>();
  const add = (tok: TokenConfig | null, at: string) => {
    if (tok === null) return;
    const prev = names.get(tok.name);
    if (prev !== undefined) is.add(`${at}.name`, `${describe(tok.name)} is already used by ${prev}`);
    else names.set(tok.name, at);
    tokens.push(tok);
  };
  for (const { value, index } of readTableArray(is, raw, "tokens", "tokens", D.MAX_TOKENS)) {
    add(readToken(is, value, `tokens[${index}]`), `tokens[${index}]`);
  }

  const fileText = readString(is, raw, "tokens_file", "tokens_file");
  let tokensFile: string | null = null;
  if (fileText !== null) {
    if (fileText === "" || fileText.length > D.MAX_PATH || fileText.includes("\0")) {
      is.add("tokens_file", `must be a file path of 1..${D.MAX_PATH} characters without NUL, got ${describe(fileText)}`);
    } else {
      tokensFile = isAbsolute(fileText) ? resolve(fileText) : resolve(baseDir, fileText);
      const fileRaw = readTokensFile(is, tokensFile);
      if (fileRaw !== null) {
        checkKeys(is, fileRaw, tokensFile + ":", TOKENS_FILE_KEYS);
        for (const { value, index } of readTableArray(is, fileRaw, "tokens", `${tokensFile}: tokens`, D.MAX_TOKENS)) {
          const at = `${tokensFile}: tokens[${index}]`;
          add(readToken(is, value, at), at);
        }
      }
    }
  }
  if (tokens.length > D.MAX_TOKENS) is.add("tokens", `at most ${D.MAX_TOKENS} tokens in all (inline and tokens_file), got ${tokens.length}`);
  return { tokens, tokensFile };
}

function readTokensFile(is: Issues, path: string): RawTable | null {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > D.MAX_FILE_BYTES) {
      is.add("tokens_file", `${path} is ${size} bytes; at most ${D.MAX_FILE_BYTES}`);
      return null;
    }
    text = readFileSync(path, "utf8");
  } catch (err) {
    is.add("tokens_file", `cannot read ${path}: ${(err as Error).message}`);
    return null;
  }
  try {
    return parse(text, { integersAsBigInt: "asNeeded", unsafeKeyBehaviour: "throw", maxDepth: 8 }) as RawTable;
  } catch (err) {
    if (err instanceof TomlError) {
      is.add("tokens_file", `${path}: line ${err.line}, column ${err.column}: ${err.message.split("\n")[0]!.replace(/^Invalid TOML document: /, "")}`);
    } else is.add("tokens_file", `${path}: ${(err as Error).message}`);
    return null;
  }
}

function readToken(is: Issues, t: RawTable, at: string): TokenConfig | null {
  checkKeys(is, t, at, TOKEN_KEYS);
  const name = readString(is, t, "name", `${at}.name`, true);
  if (name !== null && !D.TOKEN_NAME.test(name)) is.add(`${at}.name`, `must be 1..253 of [A-Za-z0-9_.:@/-], got ${describe(name)}`);
  const sha = readString(is, t, "sha256", `${at}.sha256`, true);
  if (sha !== null && !HEX64.test(sha)) {
    is.add(`${at}.sha256`, `must be the 64 hex digits of the secret's SHA-256 (\`edgemux hash-token\` prints it), got ${describe(sha)}`);
  }

  let roles: TokenRole[] = ["proxy"];
  if (t["roles"] !== undefined) {
    const entries = readStringArray(is, t, "roles", `${at}.roles`, D.TOKEN_ROLES.length * 2);
    roles = [];
    for (const { value, index } of entries) {
      if ((D.TOKEN_ROLES as readonly string[]).includes(value)) roles.push(value as TokenRole);
      else is.add(`${at}.roles[${index}]`, `must be one of ${D.TOKEN_ROLES.join(" | ")}, got ${describe(value)}${didYouMean(value, D.TOKEN_ROLES)}`);
    }
    reportDuplicates(is, entries, `${at}.roles`);
    if (Array.isArray(t["roles"]) && t["roles"].length === 0) is.add(`${at}.roles`, "must name at least one role");
  }

  let services = ["*"];
  if (t["services"] !== undefined) {
    const entries = readStringArray(is, t, "services", `${at}.services`, D.MAX_PATTERNS).filter(({ value, index }) => {
      if (D.SERVICE_PATTERN.test(value)) return true;
      is.add(`${at}.services[${index}]`, `must be a service name or pattern of 1..253 [A-Za-z0-9_.-] with "*" globs, got ${describe(value)}`);
      return false;
    });
    reportDuplicates(is, entries, `${at}.services`);
    services = entries.map((e) => e.value);
  }

  const allow = readCidrList(is, t, "allow", `${at}.allow`);
  const deny = readCidrList(is, t, "deny", `${at}.deny`);
  const maxSessions = readInt(is, t, "max_sessions", `${at}.max_sessions`, D.MAX_SESSIONS);
  const agents = readAgentPatterns(is, t, at, roles);
  if (name === null || sha === null) return null;
  return { name, sha256: sha.toLowerCase(), roles, services, allow, deny, maxSessions, ...(agents !== null ? { agents } : {}) };
}

/**
 * `agents`: which agents an operator token may reach (shell, files, reload),
 * as agent names with "*" globs. Required with role "operator" (say ["*"] for
 * every agent: reaching a shell should never be an accident); only with it.
 */
function readAgentPatterns(is: Issues, t: RawTable, at: string, roles: readonly TokenRole[]): string[] | null {
  const operator = roles.includes("operator");
  if (t["agents"] === undefined) {
    if (operator) is.add(`${at}.agents`, `role "operator" needs the agents it may reach, e.g. agents = ["dev-*"] (["*"] for every agent)`);
    return null;
  }
  if (!operator) is.add(`${at}.agents`, `only applies to role "operator" (this token has ${roles.join(", ")})`);
  const entries = readStringArray(is, t, "agents", `${at}.agents`, D.MAX_PATTERNS).filter(({ value, index }) => {
    if (D.AGENT_PATTERN.test(value)) return true;
    is.add(`${at}.agents[${index}]`, `must be an agent name or pattern of 1..64 [A-Za-z0-9_.@-] with "*" globs, got ${describe(value)}`);
    return false;
  });
  reportDuplicates(is, entries, `${at}.agents`);
  if (Array.isArray(t["agents"]) && t["agents"].length === 0 && operator) is.add(`${at}.agents`, `must name at least one agent pattern (["*"] for every agent)`);
  return entries.map((e) => e.value);
}

/** CIDR list, canonical, duplicates reported. */
export function readCidrList(is: Issues, t: RawTable, key: string, field: string): string[] {
  const canonical: Entry<string>[] = [];
  for (const { value, index } of readStringArray(is, t, key, field, D.MAX_ACCESS_ENTRIES)) {
    const r = canonicalCidr(value);
    if ("error" in r) is.add(`${field}[${index}]`, r.error);
    else canonical.push({ value: r.cidr, index });
  }
  reportDuplicates(is, canonical, field);
  return canonical.map((e) => e.value);
}

// ---- [egress] ----------------------------------------------------------------

export function readEgress(is: Issues, raw: RawTable): EgressConfig {
  const t = readTable(is, raw, "egress", "egress");
  checkKeys(is, t, "egress", EGRESS_KEYS);
  let allowHosts = ["*"];
  if (t["allow_hosts"] !== undefined) {
    const entries: Entry<string>[] = [];
    for (const { value, index } of readStringArray(is, t, "allow_hosts", "egress.allow_hosts", D.MAX_PATTERNS)) {
      const r = canonicalPattern(value);
      if ("error" in r) is.add(`egress.allow_hosts[${index}]`, r.error);
      else entries.push({ value: r.pattern, index });
    }
    reportDuplicates(is, entries, "egress.allow_hosts");
    allowHosts = entries.map((e) => e.value);
  }
  const allowPorts = t["allow_ports"] === undefined ? D.DEFAULT_EGRESS_PORTS.map((p) => ({ from: p, to: p })) : readPorts(is, t["allow_ports"], "egress.allow_ports");
  return {
    allowHosts,
    allowPorts,
    allowCidrs: readCidrList(is, t, "allow_cidrs", "egress.allow_cidrs"),
    denyCidrs: readCidrList(is, t, "deny_cidrs", "egress.deny_cidrs"),
    allowPrivate: readBool(is, t, "allow_private", "egress.allow_private", false),
  };
}

/** Ports: integers 1..65535, "lo-hi" ranges, or "*" for all. */
function readPorts(is: Issues, v: unknown, field: string): PortRange[] {
  if (!Array.isArray(v)) {
    is.add(field, `must be an array of ports (443, "8000-8099", "*"), got ${describe(v)}`);
    return [];
  }
  if (v.length === 0) {
    is.add(field, `must not be empty: no tunnel could pass; use ["*"] for every port`);
    return [];
  }
  if (v.length > D.MAX_PATTERNS) {
    is.add(field, `must have at most ${D.MAX_PATTERNS} entries, got ${v.length}`);
    return [];
  }
  const out: PortRange[] = [];
  v.forEach((e, i) => {
    const at = `${field}[${i}]`;
    if (typeof e === "number") {
      if (Number.isInteger(e) && e >= 1 && e <= 65535) out.push({ from: e, to: e });
      else is.add(at, `must be a port 1..65535, got ${e}`);
      return;
    }
    if (typeof e === "string") {
      if (e === "*") return void out.push({ from: 1, to: 65535 });
      const m = /^(\d{1,5})-(\d{1,5})$/.exec(e);
      if (m) {
        const from = Number(m[1]);
        const to = Number(m[2]);
        if (from >= 1 && to <= 65535 && from <= to) return void out.push({ from, to });
      }
      is.add(at, `must be a port range "lo-hi" with 1 <= lo <= hi <= 65535, or "*", got ${describe(e)}`);
      return;
    }
    is.add(at, `must be a port number or a "lo-hi" range, got ${describe(e)}`);
  });
  return out;
}

// ---- [[connect_rules]] ---------------------------------------------------------

/** "spiffe://td/path" with `*` globs inside segments, or "*". */
const IDENTITY_PATTERN = /^spiffe:\/\/[A-Za-z0-9._*-]+(\/[A-Za-z0-9._*-]+)*$/;

export function readConnectRules(is: Issues, raw: RawTable, listeners: readonly ListenerConfig[]): ConnectRuleConfig[] {
  const connectNames = [...new Set(listeners.filter((l) => l.kind === "connect").map((l) => l.name))];
  const out: ConnectRuleConfig[] = [];
  for (const { value: t, index } of readTableArray(is, raw, "connect_rules", "connect_rules", D.MAX_CONNECT_RULES)) {
    const at = `connect_rules[${index}]`;
    checkKeys(is, t, at, CONNECT_RULE_KEYS);
    const identity = readString(is, t, "identity", `${at}.identity`, true);
    if (identity !== null && identity !== "*" && (identity.length > 2048 || !IDENTITY_PATTERN.test(identity))) {
      is.add(`${at}.identity`, `must be a SPIFFE ID pattern like "spiffe://cluster.local/ns/*/sa/*" ("*" globs within a segment), or "*", got ${describe(identity)}`);
    }
    const destinations: Entry<string>[] = [];
    for (const { value, index: i } of readStringArray(is, t, "destinations", `${at}.destinations`, D.MAX_PATTERNS)) {
      const r = canonicalDestination(value);
      if ("error" in r) is.add(`${at}.destinations[${i}]`, r.error);
      else destinations.push({ value: r.destination, index: i });
    }
    reportDuplicates(is, destinations, `${at}.destinations`);
    const ls = readStringArray(is, t, "listeners", `${at}.listeners`, D.MAX_LISTENERS).filter(({ value, index: i }) => {
      if (connectNames.includes(value)) return true;
      is.add(`${at}.listeners[${i}]`, `no connect listener named ${describe(value)}${didYouMean(value, connectNames)}`);
      return false;
    });
    reportDuplicates(is, ls, `${at}.listeners`);
    if (identity !== null) out.push({ identity, destinations: destinations.map((e) => e.value), listeners: ls.map((e) => e.value) });
  }
  return out;
}

/**
 * A destination pattern: a CIDR ("10.0.0.0/8", any port), or "host:port"
 * where host is a hostname pattern ("*.svc.cluster.local", "*") or an IP
 * ("[fd00::1]" for IPv6) and port a number or "*".
 */
export function canonicalDestination(text: string): { destination: string } | { error: string } {
  const bad = { error: `must be a CIDR ("10.0.0.0/8") or "host:port" with a hostname pattern or IP and a port or "*" ("*.svc.cluster.local:*", "[fd00::1]:443"), got ${describe(text)}` };
  if (text.includes("/")) {
    const r = canonicalCidr(text);
    return "error" in r ? r : { destination: r.cidr };
  }
  let host: string;
  let port: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") return bad;
    host = text.slice(1, close);
    port = text.slice(close + 2);
    const ip = canonicalIp(host);
    if (ip === null || ip.family !== 6) return bad;
    host = `[${ip.text}]`;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon <= 0) return bad;
    host = text.slice(0, colon);
    port = text.slice(colon + 1);
    const ip = canonicalIp(host);
    if (ip !== null) host = ip.text;
    else {
      const p = canonicalPattern(host);
      if ("error" in p) return { error: `host ${p.error}` };
      host = p.pattern;
    }
  }
  if (port !== "*" && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) return bad;
  return { destination: `${host}:${port === "*" ? "*" : Number(port)}` };
}
