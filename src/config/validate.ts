/**
 * Raw TOML table -> normalised Config. Walks the whole file, collecting every
 * problem (unknown keys, wrong types, values out of bounds, cross-field rules),
 * and throws one ConfigError listing them all.
 */

import type { Config, ConnectRuleConfig, ListenerConfig, RouteConfig, TokenConfig } from "./types.ts";
import { canonicalCidr } from "./cidr.ts";
import * as D from "./defaults.ts";
import { readBool, readDuration, readEnum, readInt, readStringArray, readTable, reportDuplicates, type Entry } from "./fields.ts";
import { checkKeys, Issues, type RawTable } from "./issues.ts";
import { readRoutes } from "./validate_routes.ts";
import { readListeners } from "./validate_listeners.ts";
import { readConnectRules, readEgress, readTokens } from "./validate_policy.ts";
import { readAdmin } from "./validate_admin.ts";
import { checkAcme, readAcme } from "./validate_acme.ts";
import { readCluster } from "./validate_cluster.ts";

export { LISTENER_KEYS } from "./validate_listeners.ts";
export { ADMIN_KEYS, ADMIN_TLS_KEYS, ADMIN_TOKEN_KEYS } from "./validate_admin.ts";

export const TOP_KEYS = [
  "workers",
  "drain_timeout",
  "log",
  "admin",
  "access",
  "stats",
  "relay",
  "acme",
  "listeners",
  "routes",
  "tokens",
  "tokens_file",
  "egress",
  "connect_rules",
  "cluster",
] as const;
export const LOG_KEYS = ["level", "format", "connections"] as const;
export const ACCESS_KEYS = ["allow", "deny"] as const;
export const STATS_KEYS = ["max_routes"] as const;
export const RELAY_KEYS = ["mode", "max_pipes", "promote_after"] as const;
export interface ValidateOptions {
  /** Directory that relative paths in the file (route `directory`) are resolved against. */
  baseDir: string;
  /** Field path -> the name shown in messages, for values that came from flags ("workers" -> "--workers"). */
  labels?: ReadonlyMap<string, string>;
  /** Heading of the thrown ConfigError. */
  heading?: string;
}

export function validate(raw: RawTable, opts: ValidateOptions): Config {
  const is = new Issues(opts.labels);
  checkKeys(is, raw, "", TOP_KEYS);

  const workers = readInt(is, raw, "workers", "workers", D.WORKERS);
  const drainTimeoutMs = readDuration(is, raw, "drain_timeout", "drain_timeout", D.DRAIN_TIMEOUT);

  const logT = readTable(is, raw, "log", "log");
  checkKeys(is, logT, "log", LOG_KEYS);
  const log = {
    level: readEnum(is, logT, "level", "log.level", D.LOG_LEVELS, D.DEFAULT_LOG_LEVEL),
    format: readEnum(is, logT, "format", "log.format", D.LOG_FORMATS, D.DEFAULT_LOG_FORMAT),
    connections: readBool(is, logT, "connections", "log.connections", true),
  };

  const admin = readAdmin(is, raw, opts.baseDir);

  const accessT = readTable(is, raw, "access", "access");
  checkKeys(is, accessT, "access", ACCESS_KEYS);
  const access = { allow: readCidrs(is, accessT, "allow"), deny: readCidrs(is, accessT, "deny") };

  const statsT = readTable(is, raw, "stats", "stats");
  checkKeys(is, statsT, "stats", STATS_KEYS);
  const stats = { maxRoutes: readInt(is, statsT, "max_routes", "stats.max_routes", D.STATS_MAX_ROUTES) };

  const relayT = readTable(is, raw, "relay", "relay");
  checkKeys(is, relayT, "relay", RELAY_KEYS);
  const relay = {
    mode: readEnum(is, relayT, "mode", "relay.mode", D.RELAY_MODES, "auto"),
    maxPipes: readInt(is, relayT, "max_pipes", "relay.max_pipes", D.RELAY_MAX_PIPES),
    promoteAfter: readInt(is, relayT, "promote_after", "relay.promote_after", D.RELAY_PROMOTE_AFTER),
  };

  const listeners = readListeners(is, raw, admin.address, opts.baseDir);
  const routes = readRoutes(is, raw, listeners, opts.baseDir);
  const { tokens, tokensFile } = readTokens(is, raw, opts.baseDir);
  const egress = readEgress(is, raw);
  const connectRules = readConnectRules(is, raw, listeners);
  checkProxyListeners(is, listeners, tokens, connectRules);
  checkBasicAuth(is, routes, tokens);
  const acme = readAcme(is, raw, opts.baseDir);
  checkAcme(is, acme, listeners, routes, raw["acme"] !== undefined);
  const cluster = readCluster(is, raw, listeners, admin.address, opts.baseDir);

  is.throwIfAny(opts.heading);
  return { workers, drainTimeoutMs, log, admin, access, stats, relay, acme, listeners, routes, tokens, tokensFile, egress, connectRules, cluster };
}

/** Cross-field rules of the forward-proxy listeners: settings that would refuse every client. */
function checkProxyListeners(is: Issues, listeners: readonly ListenerConfig[], tokens: readonly TokenConfig[], rules: readonly ConnectRuleConfig[]): void {
  listeners.forEach((l, i) => {
    if (l.kind === "sni" || l.kind === "tcp" || l.kind === "udp") return;
    if (l.kind === "http") return;
    if (l.kind === "tunnel") {
      if (!tokens.some((t) => t.roles.includes("source") || t.roles.includes("destination"))) {
        is.add(`listeners[${i}]`, `a tunnel listener needs a [[tokens]] entry with role "source" or "destination" (inline or in tokens_file); none has one, so every agent would be refused`);
      }
      return;
    }
    if (l.auth === "token" && !tokens.some((t) => t.roles.includes("proxy"))) {
      is.add(`listeners[${i}].auth`, `"token" needs a [[tokens]] entry with role "proxy" (inline or in tokens_file); none has it, so every client would be refused`);
    }
    if (l.kind === "connect" && l.tls !== null && l.acceptProxy !== "none") {
      is.add(`listeners[${i}].accept_proxy`, "cannot be used with [listeners.tls]: a PROXY header comes before the TLS handshake, which the runtime terminates");
    }
    if (l.kind !== "connect" || l.tls === null || l.tls.clientCert === "none") return;
    const ruled = rules.some((r) => r.listeners.length === 0 || r.listeners.includes(l.name));
    if (!ruled && (l.tls.trustDomain === null || l.tls.namespace === null)) {
      is.add(
        `listeners[${i}].tls`,
        "HBONE clients are checked against the listener's own SPIFFE trust domain and namespace: set trust_domain and namespace, " +
          "use a certificate with a spiffe://<trust-domain>/ns/<namespace>/... URI SAN, or add [[connect_rules]] for this listener",
      );
    }
  });
}

/**
 * `basic_auth` on an http route: `true` needs some [[tokens]] entry with role
 * "http"; a list names entries that must exist and have that role. Else every
 * client would be refused. (Routes that failed validation are not in `routes`,
 * and then the whole file is refused anyway.)
 */
function checkBasicAuth(is: Issues, routes: readonly RouteConfig[], tokens: readonly TokenConfig[]): void {
  routes.forEach((r, i) => {
    const auth = r.http?.basicAuth ?? null;
    if (auth === null) return;
    const field = `routes[${i}].basic_auth`;
    if (auth === "any") {
      if (!tokens.some((t) => t.roles.includes("http"))) is.add(field, `needs a [[tokens]] entry with role "http" (inline or in tokens_file); none has it, so every client would be refused`);
      return;
    }
    auth.forEach((name, k) => {
      const t = tokens.find((x) => x.name === name);
      if (t === undefined) is.add(`${field}[${k}]`, `no [[tokens]] entry is named ${JSON.stringify(name)}`);
      else if (!t.roles.includes("http")) is.add(`${field}[${k}]`, `token ${JSON.stringify(name)} needs role "http" to pass Basic auth`);
    });
  });
}

function readCidrs(is: Issues, t: RawTable, key: "allow" | "deny"): string[] {
  const field = `access.${key}`;
  const canonical: Entry<string>[] = [];
  for (const { value, index } of readStringArray(is, t, key, field, D.MAX_ACCESS_ENTRIES)) {
    const r = canonicalCidr(value);
    if ("error" in r) is.add(`${field}[${index}]`, r.error);
    else canonical.push({ value: r.cidr, index });
  }
  reportDuplicates(is, canonical, field);
  return canonical.map((e) => e.value);
}
