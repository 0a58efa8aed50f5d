/**
 * Raw TOML table -> normalised Config. Walks the whole file, collecting every
 * problem (unknown keys, wrong types, values out of bounds, cross-field rules),
 * and throws one ConfigError listing them all.
 */

import type { Address, Config, HostPort, ListenerConfig, ListenerKind } from "./types.ts";
import { addressFrom, formatAddress, formatHostPort } from "./address.ts";
import { canonicalCidr } from "./cidr.ts";
import * as D from "./defaults.ts";
import { readBool, readDuration, readEnum, readInt, readString, readStringArray, readTable, readTableArray, reportDuplicates, type Entry } from "./fields.ts";
import { checkKeys, describe, Issues, type RawTable } from "./issues.ts";
import { readRoutes } from "./validate_routes.ts";

export const TOP_KEYS = ["workers", "drain_timeout", "log", "admin", "access", "stats", "listeners", "routes"] as const;
export const LOG_KEYS = ["level", "format", "connections"] as const;
export const ADMIN_KEYS = ["address"] as const;
export const ACCESS_KEYS = ["allow", "deny"] as const;
export const STATS_KEYS = ["max_routes"] as const;
export const LISTENER_KEYS = [
  "name",
  "kind",
  "address",
  "accept_proxy",
  "handshake_timeout",
  "idle_timeout",
  "max_client_hello",
  "max_connections",
] as const;

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

  const adminT = readTable(is, raw, "admin", "admin");
  checkKeys(is, adminT, "admin", ADMIN_KEYS);
  const admin = { address: readAdminAddress(is, adminT) };

  const accessT = readTable(is, raw, "access", "access");
  checkKeys(is, accessT, "access", ACCESS_KEYS);
  const access = { allow: readCidrs(is, accessT, "allow"), deny: readCidrs(is, accessT, "deny") };

  const statsT = readTable(is, raw, "stats", "stats");
  checkKeys(is, statsT, "stats", STATS_KEYS);
  const stats = { maxRoutes: readInt(is, statsT, "max_routes", "stats.max_routes", D.STATS_MAX_ROUTES) };

  const listeners = readListeners(is, raw, admin.address);
  const routes = readRoutes(is, raw, listeners, opts.baseDir);

  is.throwIfAny(opts.heading);
  return { workers, drainTimeoutMs, log, admin, access, stats, listeners, routes };
}

function readAdminAddress(is: Issues, t: RawTable): HostPort | null {
  const text = readString(is, t, "address", "admin.address") ?? D.DEFAULT_ADMIN;
  if (text === "off") return null;
  const r = addressFrom(text, { allowPortZero: true, allowHostnames: false, allowUnix: false });
  if ("error" in r) {
    is.add("admin.address", `${r.error}; "off" disables the admin API`);
    return null;
  }
  const a = r.address as Extract<Address, { kind: "tcp" }>;
  return { hostname: a.hostname, port: a.port };
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

function readListeners(is: Issues, raw: RawTable, admin: HostPort | null): ListenerConfig[] {
  const entries = readTableArray(is, raw, "listeners", "listeners", D.MAX_LISTENERS);
  if (raw["listeners"] === undefined || (Array.isArray(raw["listeners"]) && raw["listeners"].length === 0)) {
    is.add("listeners", "at least one [[listeners]] table is required");
  }
  const out: ListenerConfig[] = [];
  const byName = new Map<string, number>();
  const byAddress = new Map<string, number>();
  if (admin !== null && admin.port !== 0) byAddress.set(formatHostPort(admin.hostname, admin.port), -1);

  for (const { value: t, index } of entries) {
    const at = `listeners[${index}]`;
    checkKeys(is, t, at, LISTENER_KEYS);
    // Required, not defaulted: more listener kinds are coming and a file should say which it means.
    let kind: ListenerKind = "sni";
    if (t["kind"] === undefined) is.add(`${at}.kind`, `is required (${D.LISTENER_KINDS.join(" | ")})`);
    else kind = readEnum(is, t, "kind", `${at}.kind`, D.LISTENER_KINDS, "sni");

    const nameRaw = readString(is, t, "name", `${at}.name`);
    const name = nameRaw ?? kind;
    if (nameRaw !== null && !D.LISTENER_NAME.test(nameRaw)) {
      is.add(`${at}.name`, `must match [a-z0-9_-]{1,64}, got ${describe(nameRaw)}`);
    } else {
      const prev = byName.get(name);
      if (prev !== undefined) {
        const hint = nameRaw === null ? ` (name defaults to the kind; give each listener a name)` : "";
        is.add(`${at}.name`, `${describe(name)} is already used by listeners[${prev}]${hint}`);
      } else byName.set(name, index);
    }

    let address: Address = { kind: "tcp", hostname: "127.0.0.1", port: 0 };
    const addrText = readString(is, t, "address", `${at}.address`, true);
    if (addrText !== null) {
      const r = addressFrom(addrText, { allowPortZero: true, allowHostnames: false });
      if ("error" in r) is.add(`${at}.address`, r.error);
      else {
        address = r.address;
        // Port 0 asks the kernel for a fresh port each time: never a clash.
        if (address.kind === "unix" || address.port !== 0) {
          const key = formatAddress(address);
          const prev = byAddress.get(key);
          if (prev === -1) is.add(`${at}.address`, `${key} is already the admin address`);
          else if (prev !== undefined) is.add(`${at}.address`, `${key} is already used by listeners[${prev}]`);
          else byAddress.set(key, index);
        }
      }
    }

    out.push({
      name,
      kind,
      address,
      acceptProxy: readEnum(is, t, "accept_proxy", `${at}.accept_proxy`, D.ACCEPT_PROXY_MODES, "none"),
      handshakeTimeoutMs: readDuration(is, t, "handshake_timeout", `${at}.handshake_timeout`, D.HANDSHAKE_TIMEOUT),
      idleTimeoutMs: readDuration(is, t, "idle_timeout", `${at}.idle_timeout`, D.IDLE_TIMEOUT),
      maxClientHello: readInt(is, t, "max_client_hello", `${at}.max_client_hello`, D.MAX_CLIENT_HELLO),
      maxConnections: readInt(is, t, "max_connections", `${at}.max_connections`, D.MAX_CONNECTIONS),
    });
  }
  return out;
}
