/**
 * The validated, normalised configuration. Plain data only (it is posted to
 * workers): durations are milliseconds, addresses are parsed, names canonical.
 * The TOML file uses snake_case and duration strings ("10s"); see README.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";

export type HostPort = { hostname: string; port: number };
/** A listen or target address: TCP host:port or a unix socket path. */
export type Address = ({ kind: "tcp" } & HostPort) | { kind: "unix"; path: string };

export type ProxyProtocolMode = "none" | "v1" | "v2";
/** What a listener expects in front of the client's bytes. */
export type AcceptProxyMode = "none" | "v1" | "v2" | "any";
export type BalanceMode = "round_robin" | "least_conn";
export type ListenerKind = "sni";

export interface ListenerConfig {
  name: string;
  kind: ListenerKind;
  address: Address;
  acceptProxy: AcceptProxyMode;
  /** First byte to route chosen; a client slower than this is cut off. */
  handshakeTimeoutMs: number;
  /** No bytes either way for this long closes the pair; 0 disables. */
  idleTimeoutMs: number;
  /** Largest ClientHello handshake message accepted, in bytes. */
  maxClientHello: number;
  /** Open connections across all workers; 0 means unlimited. */
  maxConnections: number;
}

export interface RouteConfig {
  /** Stats/log label. Defaults to the match pattern. */
  name: string;
  /** Canonical hostname, "*.suffix" wildcard, or "*" (default route). */
  match: string;
  /** Only when the client offers one of these ALPN ids; empty = any. */
  alpn: string[];
  /** Listener names this route applies to; empty = every sni listener. */
  listeners: string[];
  /** Backends (tried in balance order, failing over to the next). Empty when `directory` is set. */
  targets: Address[];
  balance: BalanceMode;
  connectTimeoutMs: number;
  proxyProtocol: ProxyProtocolMode;
  /** sniproxy directory mode: <directory>/<hostname>/tls-socket. Null for normal routes. */
  directory: string | null;
}

export interface Config {
  /** Worker threads; 0 = one per CPU. */
  workers: number;
  drainTimeoutMs: number;
  log: { level: LogLevel; format: LogFormat; connections: boolean };
  /** Null disables the admin API. */
  admin: { address: HostPort | null };
  /** Global CIDR lists run before any other work: deny wins, then allow (empty allow = all). */
  access: { allow: string[]; deny: string[] };
  stats: { maxRoutes: number };
  listeners: ListenerConfig[];
  routes: RouteConfig[];
}
