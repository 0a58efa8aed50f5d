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
export type ListenerKind = "sni" | "connect" | "socks5" | "tunnel" | "tcp" | "udp" | "http";

/** What every listener kind has. */
export interface ListenerBase {
  name: string;
  kind: ListenerKind;
  address: Address;
  acceptProxy: AcceptProxyMode;
  /**
   * sni: the whole ClientHello must arrive within this. connect/socks5: the
   * request head (or SOCKS greeting, auth and request) must; a slower client
   * gets 408 (HTTP) or is cut off (SOCKS).
   */
  handshakeTimeoutMs: number;
  /** No bytes either way for this long closes the pair; 0 disables. */
  idleTimeoutMs: number;
  /** Open connections across all workers; 0 means unlimited. */
  maxConnections: number;
}

export interface SniListenerConfig extends ListenerBase {
  kind: "sni";
  /** Largest ClientHello handshake message accepted, in bytes. */
  maxClientHello: number;
}

/** How a forward-proxy listener authenticates clients: nobody, or a `[[tokens]]` entry with role "proxy". */
export type ProxyAuthMode = "none" | "token";
export type ClientCertMode = "none" | "request" | "require";

/** `[listeners.tls]`: the listener terminates TLS (connect now; the tunnel listener reuses it). */
export interface ListenerTlsConfig {
  /** Absolute paths, for messages and reload comparisons. */
  certPath: string;
  keyPath: string;
  clientCaPath: string | null;
  /** PEM text, read when the config was loaded. */
  cert: string;
  key: string;
  clientCa: string | null;
  clientCert: ClientCertMode;
  /**
   * HBONE default identity policy: a client must be in this SPIFFE trust
   * domain and namespace. Taken from the server certificate's
   * spiffe://<td>/ns/<ns>/... URI SAN when not set; null when neither says.
   */
  trustDomain: string | null;
  namespace: string | null;
}

/** One certificate file pair of an http listener, read when the config was loaded. */
export interface CertificateFile {
  /** Absolute paths (messages, the file watch). */
  certPath: string;
  keyPath: string;
  /** PEM text. */
  cert: string;
  key: string;
  /** The names it serves, lower case: its SAN DNS names (`*.example.com` included), else its subject CN. */
  names: string[];
  /** The leaf's notAfter, epoch ms (`edgemux_tls_certificate_expiry_timestamp_seconds`). */
  notAfter: number;
}

/**
 * `[listeners.tls]` of an http listener: one or more certificates chosen by
 * the client's SNI (the first also for clients without SNI and names none
 * serves), and/or certificates from `[acme]`.
 */
export interface HttpTlsConfig {
  /** `cert`/`key` first (when set), then each `[[listeners.tls.certificates]]`. */
  certificates: CertificateFile[];
  /** Serve `[acme]` certificates for the listener's route names. */
  acme: boolean;
}

export interface ConnectListenerConfig extends ListenerBase {
  kind: "connect";
  /** Resolving and connecting to a tunnel's destination, together. */
  connectTimeoutMs: number;
  /** Largest HTTP request head (request line + fields), bytes; also the HTTP/2 header list bound. */
  maxHeaderBytes: number;
  /** HTTP/2: concurrent CONNECT streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxStreams: number;
  /** Null: plain TCP, HTTP/1.1 only. */
  tls: ListenerTlsConfig | null;
  auth: ProxyAuthMode;
}

export interface Socks5ListenerConfig extends ListenerBase {
  kind: "socks5";
  connectTimeoutMs: number;
  auth: ProxyAuthMode;
}

/** `kind = "tunnel"`: reverse-tunnel agents connect here (TLS, an HTTP/1.1 upgrade, then an smux v2 session). */
export interface TunnelListenerConfig extends ListenerBase {
  kind: "tunnel";
  /** Required: agents authenticate over TLS (a bearer token, or a client certificate). */
  tls: ListenerTlsConfig;
  /** Streams per agent session, both directions (a peer SYN past it is refused). */
  maxStreams: number;
  /** Bytes a peer may send on one stream before it is read (the smux v2 window). */
  streamWindow: number;
  keepaliveIntervalMs: number;
  /** A session that received nothing for this long is dead. */
  keepaliveTimeoutMs: number;
  /** On drain, agents are told to reconnect after this (go-away). */
  goawayDelayMs: number;
  /** A destination agent must answer a stream's open within this. */
  openTimeoutMs: number;
}

/**
 * `kind = "tcp"`: plain L4 forwarding (HAProxy `mode tcp`, nginx `stream`). Its
 * targets come from the `[[routes]]` that name it in `listeners` (match "*"):
 * host:port, unix, hbone:// hops or `tunnel:NAME`, with balance, failover and
 * `proxy_protocol` as on any route. `handshake_timeout` bounds the inbound
 * PROXY header (accept_proxy); nothing else is read before the relay.
 */
export interface TcpListenerConfig extends ListenerBase {
  kind: "tcp";
}

/**
 * `kind = "udp"`: datagram forwarding to the host:port or `tunnel:NAME` targets
 * of the route that names it, one flow (one upstream socket or tunnel stream)
 * per client address, ended after `idle_timeout` without a datagram either way.
 * accept_proxy, handshake_timeout and max_connections do not apply: the bound is
 * `max_flows` per worker.
 */
export interface UdpListenerConfig extends ListenerBase {
  kind: "udp";
  /** Flows (client addresses) at once, per worker; a datagram from a new client past it is dropped and counted. */
  maxFlows: number;
  /** Largest datagram relayed either way, in bytes; a larger one is dropped and counted. */
  maxDatagram: number;
}

/**
 * `kind = "http"`: an HTTP/1.1 reverse proxy (plain, or HTTPS with
 * `[listeners.tls]`). Requests are routed by Host and path prefix to the
 * targets of the `[[routes]]` that name it (see src/http/).
 * `handshake_timeout` bounds each request head (408 past it).
 */
export interface HttpListenerConfig extends ListenerBase {
  kind: "http";
  /** Null: plain HTTP. */
  tls: HttpTlsConfig | null;
  /** Largest request head (request line + fields) and response head, bytes; 431 past it. */
  maxHeaderBytes: number;
  /** A client connection with no request under way is closed after this. */
  keepaliveTimeoutMs: number;
  /** From a request's head sent upstream until the upstream's response head; 504 past it. */
  requestTimeoutMs: number;
  /** Plain listener only: answer every request with 301 to https://host/path. */
  redirectHttps: boolean;
  /** Client CIDRs (canonical) whose X-Forwarded-* and Forwarded fields are kept and appended to; others' are replaced. */
  trustedProxies: string[];
  /** Idle upstream connections kept per route (per worker) for reuse; 0 = a new connection per request. */
  upstreamKeepalive: number;
  /** HTTPS: concurrent HTTP/2 streams per client connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxStreams: number;
}

export type ListenerConfig =
  | HttpListenerConfig
  | SniListenerConfig
  | ConnectListenerConfig
  | Socks5ListenerConfig
  | TunnelListenerConfig
  | TcpListenerConfig
  | UdpListenerConfig;

export type TokenRole = "proxy" | "source" | "destination" | "http" | "operator";

/** One `[[tokens]]` entry (inline or from `tokens_file`). The secret itself is never stored. */
export interface TokenConfig {
  /** Unique label, shown in logs. */
  name: string;
  /** Lowercase hex SHA-256 of the secret (64 characters). */
  sha256: string;
  roles: TokenRole[];
  /** Tunnel service-name patterns ("*" globs) this token may use. */
  services: string[];
  /** Client CIDRs (canonical); deny wins, empty allow = any. */
  allow: string[];
  deny: string[];
  /** Tunnel sessions at once; 0 = unlimited. */
  maxSessions: number;
  /** Role "operator": agent-name patterns ("*" globs) whose shell, files and reload it may reach; absent or empty = none. */
  agents?: string[];
}

/** An inclusive port range; a single port is `{ from: p, to: p }`. */
export interface PortRange {
  from: number;
  to: number;
}

/** `[egress]`: where connect and socks5 tunnels may go. */
export interface EgressConfig {
  /** Canonical hostname patterns: "example.com", "*.example.com", "*". */
  allowHosts: string[];
  allowPorts: PortRange[];
  /** Canonical CIDRs: destinations here pass even when private; deny_cidrs wins. */
  allowCidrs: string[];
  denyCidrs: string[];
  /** Let loopback, RFC 1918, link-local, CGNAT, ULA and other special ranges through. */
  allowPrivate: boolean;
}

/**
 * `[[connect_rules]]`: HBONE identity policy. With no rule for a listener, a
 * client must share the listener's SPIFFE trust domain and namespace; with
 * rules, a stream is allowed when one rule matches its identity and destination.
 */
export interface ConnectRuleConfig {
  /** SPIFFE ID pattern; `*` matches within one path segment (e.g. any service account of namespace ns), "*" alone matches any. */
  identity: string;
  /** Destination patterns: "host-pattern:port" ("*.svc.cluster.local:*", "db.internal:5432") or a CIDR ("10.0.0.0/8"); empty = any. */
  destinations: string[];
  /** Connect listener names the rule applies to; empty = all. */
  listeners: string[];
}

/** `[routes.hbone]`: a route whose targets are HBONE hops (HTTP/2 CONNECT over mTLS). */
export interface HboneRouteConfig {
  certPath: string;
  keyPath: string;
  caPath: string;
  cert: string;
  key: string;
  ca: string;
  /** TLS server name sent to the hop; null = the hop's host. */
  servername: string | null;
  /** Fixed CONNECT authority "host:port"; null = derived from the SNI name (Istio outbound_ names parsed). */
  authority: string | null;
  /** Port used with the SNI name when `authority` is null; 0 = the listener's own port. */
  port: number;
}

export interface RouteConfig {
  /** Stats/log label. Defaults to the match pattern. */
  name: string;
  /** Canonical hostname, "*.suffix" wildcard, or "*" (default route). */
  match: string;
  /** Only when the client offers one of these ALPN ids; empty = any. */
  alpn: string[];
  /** Listener names this route applies to; empty = every sni listener (tcp and udp listeners use only routes that name them). */
  listeners: string[];
  /** Backends (tried in balance order, failing over to the next). Empty when `directory` is set. */
  targets: Address[];
  balance: BalanceMode;
  connectTimeoutMs: number;
  proxyProtocol: ProxyProtocolMode;
  /** sniproxy directory mode: <directory>/<hostname>/tls-socket. Null for normal routes. */
  directory: string | null;
  /** Set when the targets are HBONE hops ("hbone://host:port" in the file); absent for plain TCP/unix targets. */
  hbone?: HboneRouteConfig;
  /** Set when the target is a tunnel service ("tunnel:NAME" in the file): the route reaches that service's agent. */
  tunnel?: string;
  /** Set on routes of http listeners: what they match and add beyond the host. */
  http?: HttpRouteOptions;
}

/** The http listener's part of a route. */
export interface HttpRouteOptions {
  /** Request paths this route takes ("/" = all); the longest matching prefix wins among routes of one host pattern. */
  pathPrefix: string;
  /** Fields set on every response (replacing the backend's field of that name), e.g. Strict-Transport-Security. */
  responseHeaders: [string, string][];
  /** Null: no authentication; "any": any [[tokens]] entry with role "http"; else only these token names. User = token name, password = the secret. */
  basicAuth: null | "any" | string[];
}

/** What an `[[admin.tokens]]` entry may do: `read` = `/`, `/status`, `/metrics`; `admin` = everything (admin implies read). */
export type AdminScope = "read" | "admin";

/** One `[[admin.tokens]]` entry. Like `[[tokens]]`, only the secret's SHA-256 is stored. */
export interface AdminTokenConfig {
  /** Unique among the admin tokens. */
  name: string;
  /** Lowercase hex SHA-256 of the secret (64 characters), as `edgemux hash-token` prints it. */
  sha256: string;
  scope: AdminScope;
}

/** `[admin.tls]`: the admin API is served over HTTPS. Read when the config is loaded; a change needs a restart. */
export interface AdminTlsConfig {
  /** Absolute paths, for messages and reload comparisons. */
  certPath: string;
  keyPath: string;
  /** PEM text. */
  cert: string;
  key: string;
}

export interface AdminConfig {
  /** Null disables the admin API. */
  address: HostPort | null;
  /**
   * Empty: the API is open to anyone who reaches it, which validation allows
   * only on a loopback address or with `insecure`. Reloadable.
   */
  tokens: AdminTokenConfig[];
  /** Let a non-loopback admin address run without tokens. */
  insecure: boolean;
  tls: AdminTlsConfig | null;
}

/**
 * `[relay]`: how established relays move their bytes. "kernel" hands them to
 * a native splice loop per worker (Bun on Linux) and refuses to start without
 * it; "auto" does so when it can and relays in JavaScript otherwise; "js"
 * never does. Read when workers start (a change needs a restart).
 */
export interface RelayConfig {
  mode: RelayMode;
  /** Pipes per worker for kernel relays (two per relay, two descriptors each); an empty pool relays in JavaScript. */
  maxPipes: number;
  /** A relay moves to the kernel once this many bytes went either way (0: at once). */
  promoteAfter: number;
}

export type RelayMode = "auto" | "kernel" | "js";

/**
 * `[acme]`: certificates from an ACME (RFC 8555) CA for http listeners with
 * `tls.acme = true`, for the exact names of their routes. The supervisor
 * alone talks to the CA; a change needs a restart.
 */
export interface AcmeConfig {
  /** The CA's directory URL (https://). */
  directory: string;
  /** Contact addresses, "mailto:..." (empty: none). */
  contact: string[];
  /** Absolute path of the state directory (account key, certificates). */
  stateDir: string;
  /** PEM CA bundle that verifies the directory's own TLS certificate (a private CA); null = the system's. */
  ca: string | null;
  caPath: string | null;
  /** When not empty: only these names (each an exact route name of an ACME listener); empty = all of them. */
  names: string[];
  maxConcurrent: number;
  newNamesPerHour: number;
  /** First retry after a failed order, ms; doubling up to 6 hours. */
  retryBaseMs: number;
  /** The challenge as configured (RFC 8555 §8.3 HTTP-01, RFC 8737 TLS-ALPN-01). */
  challenge: "auto" | "http-01" | "tls-alpn-01";
  /** The challenge answered: `challenge`, with `auto` resolved (HTTP-01 when a plain http listener exists, else TLS-ALPN-01). */
  challengeType: "http-01" | "tls-alpn-01";
}

/** Where the cluster registry's Redis is (`[cluster] redis`); the shape runtime/redis_types.ts `RedisTarget` takes. */
export type RedisAddress =
  | { kind: "tcp"; hostname: string; port: number; tls: boolean; db: number; username: string | null; password: string | null }
  | { kind: "unix"; path: string; db: number; username: string | null; password: string | null };

/** `[cluster.tls]`: this edge's certificate for edge-to-edge links (as server and client), and the CA that signs every edge's. */
export interface ClusterTlsConfig {
  certPath: string;
  keyPath: string;
  caPath: string;
  /** PEM text. */
  cert: string;
  key: string;
  ca: string;
}

/**
 * `[cluster]`: several edges share one registry in Redis (src/cluster/).
 * Null: everything stays in-process. Read at start (a change needs a restart).
 */
export interface ClusterConfig {
  redis: RedisAddress;
  /** `rediss://`: PEM CA bundle that verifies Redis's certificate; null = the system's CAs. */
  redisCa: string | null;
  redisCaPath: string | null;
  /** Every key is under `edgemux:{name}`: clusters sharing one Redis stay apart. */
  name: string;
  /** Unique among the cluster's live edges; default `<host name>:<first tunnel listener port>`. */
  edgeId: string;
  /** Where other edges dial this one (a name or IP, and port). */
  advertise: HostPort;
  /** The edge-to-edge listener; default 0.0.0.0 and the advertise port. */
  listen: HostPort;
  heartbeatMs: number;
  /** This edge's registry entries expire this long after its last heartbeat; > 2 × heartbeatMs. */
  ttlMs: number;
  tls: ClusterTlsConfig;
}

export interface Config {
  /** Worker threads; 0 = one per CPU. */
  workers: number;
  drainTimeoutMs: number;
  log: { level: LogLevel; format: LogFormat; connections: boolean };
  admin: AdminConfig;
  /** Global CIDR lists run before any other work: deny wins, then allow (empty allow = all). */
  access: { allow: string[]; deny: string[] };
  stats: { maxRoutes: number };
  relay: RelayConfig;
  /** Null: no ACME. */
  acme: AcmeConfig | null;
  listeners: ListenerConfig[];
  routes: RouteConfig[];
  /** Inline `[[tokens]]` followed by those of `tokens_file`. */
  tokens: TokenConfig[];
  /** Absolute path of `tokens_file` (re-read on every load, so on SIGHUP); null when unset. */
  tokensFile: string | null;
  egress: EgressConfig;
  connectRules: ConnectRuleConfig[];
  /** Null: no cluster, everything in-process. */
  cluster: ClusterConfig | null;
}
