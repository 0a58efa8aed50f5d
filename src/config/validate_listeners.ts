/**
 * [[listeners]]: one table per bound socket. Keys common to every kind, plus
 * each kind's own (sni: max_client_hello; connect: max_header_bytes,
 * max_streams, tls, auth; socks5: auth; tunnel: tls, max_streams,
 * stream_window, keepalive_*, goaway_delay, open_timeout). A key of another kind is reported
 * as such rather than as unknown.
 */

import type { Address, ConnectListenerConfig, HostPort, HttpListenerConfig, ListenerBase, ListenerConfig, ListenerKind, TunnelListenerConfig, UdpListenerConfig } from "./types.ts";
import { addressFrom, formatAddress, formatHostPort } from "./address.ts";
import * as D from "./defaults.ts";
import { readBool, readDuration, readEnum, readInt, readString, readStringArray, readTable, readTableArray, reportDuplicates, type Entry } from "./fields.ts";
import { canonicalCidr } from "./cidr.ts";
import { checkKeys, describe, isTable, type Issues, type RawTable } from "./issues.ts";
import { readListenerTls } from "./validate_tls.ts";
import { readHttpTls } from "./validate_acme.ts";

export const COMMON_LISTENER_KEYS = [
  "name",
  "kind",
  "address",
  "accept_proxy",
  "handshake_timeout",
  "idle_timeout",
  "max_connections",
] as const;

/** The keys each kind adds to the common ones. */
export const KIND_KEYS: Readonly<Record<ListenerKind, readonly string[]>> = {
  sni: ["max_client_hello"],
  connect: ["max_header_bytes", "max_streams", "connect_timeout", "tls", "auth"],
  socks5: ["connect_timeout", "auth"],
  tunnel: ["max_streams", "stream_window", "keepalive_interval", "keepalive_timeout", "goaway_delay", "open_timeout", "tls"],
  tcp: [],
  udp: ["max_flows", "max_datagram"],
  http: ["tls", "max_header_bytes", "keepalive_timeout", "request_timeout", "redirect_https", "trusted_proxies", "upstream_keepalive", "max_streams"],
};

/** Common keys that mean nothing on a udp listener (no connection, no handshake). */
const NOT_UDP_KEYS: Readonly<Record<string, string>> = {
  accept_proxy: "a PROXY header belongs to a stream connection; datagrams carry none",
  handshake_timeout: "a datagram is forwarded as it arrives: there is no handshake",
  max_connections: "use max_flows (client addresses at once, per worker)",
};

/** Every key any listener kind understands. */
export const LISTENER_KEYS: readonly string[] = [...new Set([...COMMON_LISTENER_KEYS, ...Object.values(KIND_KEYS).flat()])];

export function readListeners(is: Issues, raw: RawTable, admin: HostPort | null, baseDir: string): ListenerConfig[] {
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
    // Required, not defaulted: a file should say which kind it means.
    let kind: ListenerKind = "sni";
    if (t["kind"] === undefined) is.add(`${at}.kind`, `is required (${D.LISTENER_KINDS.join(" | ")})`);
    else kind = readEnum(is, t, "kind", `${at}.kind`, D.LISTENER_KINDS, "sni");
    for (const key of Object.keys(t)) {
      if (!LISTENER_KEYS.includes(key) || (COMMON_LISTENER_KEYS as readonly string[]).includes(key) || KIND_KEYS[kind].includes(key)) continue;
      const kinds = D.LISTENER_KINDS.filter((k) => KIND_KEYS[k].includes(key));
      is.add(`${at}.${key}`, `only applies to kind = ${kinds.map((k) => `"${k}"`).join(" or ")} listeners, this one is "${kind}"`);
    }

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
          // A udp and a stream listener may share a port number (DNS on 53 both ways).
          const key = (kind === "udp" ? "udp " : "") + formatAddress(address);
          const prev = byAddress.get(key);
          if (prev === -1) is.add(`${at}.address`, `${key} is already the admin address`);
          else if (prev !== undefined) is.add(`${at}.address`, `${key} is already used by listeners[${prev}]`);
          else byAddress.set(key, index);
        }
      }
    }

    const base: ListenerBase = {
      name,
      kind,
      address,
      acceptProxy: readEnum(is, t, "accept_proxy", `${at}.accept_proxy`, D.ACCEPT_PROXY_MODES, "none"),
      handshakeTimeoutMs: readDuration(is, t, "handshake_timeout", `${at}.handshake_timeout`, D.HANDSHAKE_TIMEOUT),
      idleTimeoutMs: readDuration(is, t, "idle_timeout", `${at}.idle_timeout`, kind === "udp" ? D.UDP_IDLE_TIMEOUT : D.IDLE_TIMEOUT),
      maxConnections: readInt(is, t, "max_connections", `${at}.max_connections`, D.MAX_CONNECTIONS),
    };
    switch (kind) {
      case "sni":
        out.push({ ...base, kind, maxClientHello: readInt(is, t, "max_client_hello", `${at}.max_client_hello`, D.MAX_CLIENT_HELLO) });
        break;
      case "connect":
        out.push(readConnect(is, t, at, base, baseDir));
        break;
      case "socks5":
        out.push({
          ...base,
          kind,
          connectTimeoutMs: readDuration(is, t, "connect_timeout", `${at}.connect_timeout`, D.PROXY_CONNECT_TIMEOUT),
          auth: readEnum(is, t, "auth", `${at}.auth`, D.PROXY_AUTH_MODES, "none"),
        });
        break;
      case "tunnel": {
        const l = readTunnel(is, t, at, base, baseDir);
        if (l !== null) out.push(l);
        break;
      }
      case "tcp":
        out.push({ ...base, kind });
        break;
      case "udp":
        out.push(readUdp(is, t, at, base));
        break;
      case "http":
        out.push(readHttp(is, t, at, base, baseDir));
        break;
    }
  }
  return out;
}

function readConnect(is: Issues, t: RawTable, at: string, base: ListenerBase, baseDir: string): ConnectListenerConfig {
  let tls = null;
  if (t["tls"] !== undefined) {
    const tt = readTable(is, t, "tls", `${at}.tls`);
    if (isTable(t["tls"])) tls = readListenerTls(is, tt, `${at}.tls`, baseDir);
  }
  // A knob that does nothing is a trap: HTTP/2 (and so streams) needs TLS with ALPN.
  if (t["tls"] === undefined && t["max_streams"] !== undefined) {
    is.add(`${at}.max_streams`, "only applies with [listeners.tls] (HTTP/2 CONNECT is offered over TLS only)");
  }
  return {
    ...base,
    kind: "connect",
    maxHeaderBytes: readInt(is, t, "max_header_bytes", `${at}.max_header_bytes`, D.MAX_HEADER_BYTES),
    maxStreams: readInt(is, t, "max_streams", `${at}.max_streams`, D.MAX_STREAMS),
    connectTimeoutMs: readDuration(is, t, "connect_timeout", `${at}.connect_timeout`, D.PROXY_CONNECT_TIMEOUT),
    tls,
    auth: readEnum(is, t, "auth", `${at}.auth`, D.PROXY_AUTH_MODES, "none"),
  };
}

/** `kind = "tunnel"`: agents dial in over TLS (required: tokens and certificates travel over it). */
function readTunnel(is: Issues, t: RawTable, at: string, base: ListenerBase, baseDir: string): TunnelListenerConfig | null {
  let tls = null;
  if (t["tls"] === undefined) is.add(`${at}.tls`, "is required for a tunnel listener ([listeners.tls] with cert and key): agents authenticate over TLS");
  else {
    const tt = readTable(is, t, "tls", `${at}.tls`);
    if (isTable(t["tls"])) {
      tls = readListenerTls(is, tt, `${at}.tls`, baseDir);
      for (const k of ["trust_domain", "namespace"]) {
        if (tt[k] !== undefined) is.add(`${at}.tls.${k}`, "only applies to connect listeners (HBONE identity policy); tunnel agents are matched to [[tokens]] by name");
      }
    }
  }
  // The tunnel's bytes are TLS that the runtime terminates: a PROXY header would have to come before it.
  if (base.acceptProxy !== "none") is.add(`${at}.accept_proxy`, "cannot be used on a tunnel listener: a PROXY header comes before the TLS handshake, which the runtime terminates");
  const keepaliveIntervalMs = readDuration(is, t, "keepalive_interval", `${at}.keepalive_interval`, D.KEEPALIVE_INTERVAL);
  const keepaliveTimeoutMs = readDuration(is, t, "keepalive_timeout", `${at}.keepalive_timeout`, D.KEEPALIVE_TIMEOUT);
  if (keepaliveTimeoutMs < 2 * keepaliveIntervalMs) {
    is.add(`${at}.keepalive_timeout`, `must be at least twice keepalive_interval (${keepaliveIntervalMs} ms), got ${keepaliveTimeoutMs} ms: one late keepalive must not end a session`);
  }
  const l: TunnelListenerConfig = {
    ...base,
    kind: "tunnel",
    tls: tls!,
    maxStreams: readInt(is, t, "max_streams", `${at}.max_streams`, D.MAX_STREAMS),
    streamWindow: readInt(is, t, "stream_window", `${at}.stream_window`, D.STREAM_WINDOW),
    keepaliveIntervalMs,
    keepaliveTimeoutMs,
    goawayDelayMs: readDuration(is, t, "goaway_delay", `${at}.goaway_delay`, D.GOAWAY_DELAY),
    openTimeoutMs: readDuration(is, t, "open_timeout", `${at}.open_timeout`, D.OPEN_TIMEOUT),
  };
  return tls === null ? null : l;
}

/**
 * `kind = "http"`: HTTP/1.1 reverse proxy, HTTPS with [listeners.tls].
 * keepalive_timeout means the client side here (the tunnel listener's is the
 * agent session's NOP timeout): both are "how long a quiet connection lives".
 */
function readHttp(is: Issues, t: RawTable, at: string, base: ListenerBase, baseDir: string): HttpListenerConfig {
  let tls = null;
  if (t["tls"] !== undefined) {
    const tt = readTable(is, t, "tls", `${at}.tls`);
    // Several certificates by SNI, and ACME: config/validate_acme.ts.
    if (isTable(t["tls"])) tls = readHttpTls(is, tt, `${at}.tls`, baseDir);
    if (base.acceptProxy !== "none") is.add(`${at}.accept_proxy`, "cannot be used with [listeners.tls]: a PROXY header comes before the TLS handshake, which the runtime terminates");
  }
  const redirectHttps = readBool(is, t, "redirect_https", `${at}.redirect_https`, false);
  if (redirectHttps && t["tls"] !== undefined) is.add(`${at}.redirect_https`, "only applies to a plain listener (without [listeners.tls]): it sends clients to https://");
  const trusted: Entry<string>[] = [];
  for (const { value, index } of readStringArray(is, t, "trusted_proxies", `${at}.trusted_proxies`, D.MAX_TRUSTED_PROXIES)) {
    const r = canonicalCidr(value);
    if ("error" in r) is.add(`${at}.trusted_proxies[${index}]`, r.error);
    else trusted.push({ value: r.cidr, index });
  }
  reportDuplicates(is, trusted, `${at}.trusted_proxies`);
  if (t["tls"] === undefined && t["max_streams"] !== undefined) {
    is.add(`${at}.max_streams`, "only applies with [listeners.tls] (HTTP/2 is offered over TLS only, by ALPN)");
  }
  return {
    ...base,
    kind: "http",
    tls: tls ?? null,
    maxHeaderBytes: readInt(is, t, "max_header_bytes", `${at}.max_header_bytes`, D.MAX_HEADER_BYTES),
    keepaliveTimeoutMs: readDuration(is, t, "keepalive_timeout", `${at}.keepalive_timeout`, D.HTTP_KEEPALIVE_TIMEOUT),
    requestTimeoutMs: readDuration(is, t, "request_timeout", `${at}.request_timeout`, D.HTTP_REQUEST_TIMEOUT),
    redirectHttps,
    trustedProxies: trusted.map((e) => e.value),
    upstreamKeepalive: readInt(is, t, "upstream_keepalive", `${at}.upstream_keepalive`, D.HTTP_UPSTREAM_KEEPALIVE),
    maxStreams: readInt(is, t, "max_streams", `${at}.max_streams`, D.HTTP_MAX_STREAMS),
  };
}

/** `kind = "udp"`: datagrams, one flow per client address. */
function readUdp(is: Issues, t: RawTable, at: string, base: ListenerBase): UdpListenerConfig {
  for (const [key, why] of Object.entries(NOT_UDP_KEYS)) {
    if (t[key] !== undefined) is.add(`${at}.${key}`, `does not apply to a udp listener: ${why}`);
  }
  if (base.address.kind === "unix") is.add(`${at}.address`, "a udp listener binds an IP address and port, not a unix socket");
  return {
    ...base,
    kind: "udp",
    acceptProxy: "none",
    maxConnections: 0,
    maxFlows: readInt(is, t, "max_flows", `${at}.max_flows`, D.MAX_FLOWS),
    maxDatagram: readInt(is, t, "max_datagram", `${at}.max_datagram`, D.MAX_DATAGRAM),
  };
}
