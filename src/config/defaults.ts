/**
 * Every default and every bound of the config file in one place, so the
 * validator, the error messages and the README's configuration reference agree. Durations in ms.
 */

export interface IntBound {
  def: number;
  min: number;
  max: number;
}

export interface DurationBound extends IntBound {
  /** "0s" is accepted below `min` and means "off". */
  zeroDisables?: boolean;
}

export const WORKERS: IntBound = { def: 0, min: 0, max: 256 };
export const DRAIN_TIMEOUT: DurationBound = { def: 30_000, min: 0, max: 3_600_000 };
export const STATS_MAX_ROUTES: IntBound = { def: 4096, min: 1, max: 65_536 };
export const RELAY_MODES = ["auto", "kernel", "js"] as const;
/** [relay] max_pipes: per worker; 1,024 pipes are 2,048 descriptors (512 relays), within the 20,000 a process may hold. */
export const RELAY_MAX_PIPES: IntBound = { def: 1_024, min: 2, max: 16_384 };
/** [relay] promote_after: bytes either way before a relay moves to the kernel; below it a connection never takes pipes. */
export const RELAY_PROMOTE_AFTER: IntBound = { def: 131_072, min: 0, max: 1_073_741_824 };

export const HANDSHAKE_TIMEOUT: DurationBound = { def: 10_000, min: 100, max: 300_000 };
export const IDLE_TIMEOUT: DurationBound = { def: 600_000, min: 1_000, max: 7 * 86_400_000, zeroDisables: true };
/** A TLS handshake message may be 2^24-1 bytes; real ClientHellos (even post-quantum) fit in a few KiB. */
export const MAX_CLIENT_HELLO: IntBound = { def: 16_384, min: 512, max: 65_536 };
export const MAX_CONNECTIONS: IntBound = { def: 0, min: 0, max: 10_000_000 };

export const CONNECT_TIMEOUT: DurationBound = { def: 3_000, min: 10, max: 300_000 };

/** connect and socks5 listeners: resolving and connecting to a destination on the internet. */
export const PROXY_CONNECT_TIMEOUT: DurationBound = { def: 10_000, min: 10, max: 300_000 };
/** connect listeners: the HTTP request head (request line + fields), and the HTTP/2 header list. */
export const MAX_HEADER_BYTES: IntBound = { def: 16_384, min: 1_024, max: 65_536 };
/** connect listeners over TLS: concurrent HTTP/2 CONNECT streams per connection. */
export const MAX_STREAMS: IntBound = { def: 1_000, min: 1, max: 100_000 };
/** tunnel listeners: the smux v2 window per stream (Go smux: at most the 4 MiB session buffer). */
export const STREAM_WINDOW: IntBound = { def: 262_144, min: 16_384, max: 4_194_304 };
/** tunnel listeners: keepalive NOP interval, and silence after which a session is dead. */
export const KEEPALIVE_INTERVAL: DurationBound = { def: 10_000, min: 1_000, max: 300_000 };
export const KEEPALIVE_TIMEOUT: DurationBound = { def: 30_000, min: 2_000, max: 3_600_000 };
/** tunnel listeners: on drain, agents reconnect after this. */
export const GOAWAY_DELAY: DurationBound = { def: 1_000, min: 0, max: 300_000 };
/** tunnel listeners: a destination agent must answer an open within this. */
export const OPEN_TIMEOUT: DurationBound = { def: 10_000, min: 100, max: 300_000 };
/** udp listeners: a flow with no datagram either way for this long ends (DNS, NTP and game traffic are short). */
export const UDP_IDLE_TIMEOUT: DurationBound = { def: 30_000, min: 1_000, max: 86_400_000 };
/** udp listeners: flows (client addresses) at once per worker. */
export const MAX_FLOWS: IntBound = { def: 10_000, min: 1, max: 1_000_000 };
/** udp listeners: largest datagram relayed. 65,507 is the IPv4 UDP payload maximum; the tunnel's UDP record carries at most 65,535. */
export const MAX_DATAGRAM: IntBound = { def: 65_507, min: 512, max: 65_507 };
/** http listeners: a client connection with no request under way is closed after this. */
export const HTTP_KEEPALIVE_TIMEOUT: DurationBound = { def: 60_000, min: 1_000, max: 3_600_000 };
/** http listeners: from a request sent upstream until its response head (504 past it). */
export const HTTP_REQUEST_TIMEOUT: DurationBound = { def: 60_000, min: 100, max: 3_600_000 };
/** http listeners: idle upstream connections kept per route and worker. */
export const HTTP_UPSTREAM_KEEPALIVE: IntBound = { def: 16, min: 0, max: 1_024 };
/** HTTP/2 streams at once per client connection on an https listener (nginx's http2_max_concurrent_streams). */
export const HTTP_MAX_STREAMS: IntBound = { def: 128, min: 1, max: 100_000 };
/** http routes: response_headers entries. */
export const MAX_RESPONSE_HEADERS = 64;
/** http routes: longest path_prefix. */
export const MAX_PATH_PREFIX = 1_024;
/** http listeners: trusted_proxies entries. */
export const MAX_TRUSTED_PROXIES = 1_024;
/** [[tokens]] max_sessions (tunnel sessions at once; 0 = unlimited). */
export const MAX_SESSIONS: IntBound = { def: 0, min: 0, max: 1_000_000 };
/** [routes.hbone] port: 0 = the sni listener's own port. */
export const HBONE_PORT: IntBound = { def: 0, min: 0, max: 65_535 };
/** Ports new [egress] policies allow: HTTPS only, as squid's default SSL_ports. */
export const DEFAULT_EGRESS_PORTS: readonly number[] = [443];

export const DEFAULT_ADMIN = "127.0.0.1:9901";
export const DEFAULT_LOG_LEVEL = "info";
export const DEFAULT_LOG_FORMAT = "text";

/** Counts of list entries, bounded so a runaway generated file fails loudly. */
export const MAX_LISTENERS = 64;
export const MAX_ROUTES = 65_536;
export const MAX_TARGETS = 256;
export const MAX_ALPN = 32;
export const MAX_ACCESS_ENTRIES = 65_536;
/** RFC 7301 §3.1: "opaque ProtocolName<1..2^8-1>". */
export const MAX_ALPN_BYTES = 255;
export const MAX_ROUTE_NAME = 253;
export const MAX_DIRECTORY = 4096;
/** Longest file path accepted for certificates, keys and tokens_file. */
export const MAX_PATH = 4096;
export const MAX_TOKENS = 65_536;
/** `[[admin.tokens]]` entries: a few operators and scrapers, not a user table. */
export const MAX_ADMIN_TOKENS = 1_024;
export const MAX_PATTERNS = 4_096;
export const MAX_CONNECT_RULES = 4_096;
/** Largest PEM file (certificate chain, key or CA bundle) read. */
export const MAX_PEM_BYTES = 1024 * 1024;
/** Largest config file read, in bytes. */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;

export const LISTENER_NAME = /^[a-z0-9_-]{1,64}$/;
/** Route names are stats labels and log fields: printable, no spaces or quotes. */
export const ROUTE_NAME = /^[A-Za-z0-9_.*:@\/-]{1,253}$/;
/** Token names are log fields; the tunnel matches certificate identities (spiffe://...) against them. */
export const TOKEN_NAME = /^[A-Za-z0-9_.:@\/-]{1,253}$/;
/** A tunnel service name, in `tunnel:NAME` route targets (the grammar of proto/tunnel_control.ts SERVICE_NAME). */
export const TUNNEL_SERVICE = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
/** Tunnel service-name patterns: names with "*" globs. */
export const SERVICE_PATTERN = /^[A-Za-z0-9_.*-]{1,253}$/;
/** Agent-name patterns of an operator token (`agents`): agent names (proto/tunnel_control.ts AGENT_NAME) with "*" globs. */
export const AGENT_PATTERN = /^[A-Za-z0-9_.@*-]{1,64}$/;

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export const LOG_FORMATS = ["text", "json"] as const;
export const LISTENER_KINDS = ["sni", "connect", "socks5", "tunnel", "tcp", "udp", "http"] as const;
export const PROXY_AUTH_MODES = ["none", "token"] as const;
export const CLIENT_CERT_MODES = ["none", "request", "require"] as const;
export const TOKEN_ROLES = ["proxy", "source", "destination", "http", "operator"] as const;
export const ADMIN_SCOPES = ["read", "admin"] as const;
export const ACCEPT_PROXY_MODES = ["none", "v1", "v2", "any"] as const;
export const PROXY_PROTOCOL_MODES = ["none", "v1", "v2"] as const;
export const BALANCE_MODES = ["round_robin", "least_conn"] as const;

/**
 * The configuration used when no file is given, so a fresh checkout runs:
 * sniproxy-style directory mode, a TLS connection for <hostname> goes to the
 * unix socket ./sni.d/<hostname>/tls-socket under the working directory.
 */
export const defaultConfigToml = `# edgemux built-in configuration (used when no config file is given).
# Every option and its default: see the README.

[admin]
address = "127.0.0.1:9901"

[[listeners]]
name = "sni"
kind = "sni"
address = "127.0.0.1:8443"

# sniproxy directory mode: a client asking for <hostname> is relayed to the
# unix socket sni.d/<hostname>/tls-socket (relative to the working directory);
# a file sni.d/<hostname>/send-proxy-v1 makes it send a PROXY v1 header first.
[[routes]]
match = "*"
directory = "sni.d"
`;

/** `[acme]` (config/validate_acme.ts). */
export const ACME_MAX_CONCURRENT: IntBound = { def: 2, min: 1, max: 16 };
export const ACME_NEW_NAMES_PER_HOUR: IntBound = { def: 10, min: 1, max: 1000 };
export const ACME_MAX_NAMES = 1000;
export const ACME_CHALLENGES = ["auto", "http-01", "tls-alpn-01"] as const;
export const ACME_RETRY_BASE: DurationBound = { def: 60_000, min: 1_000, max: 3_600_000 };
/** `[[listeners.tls.certificates]]` per http listener. */
export const HTTP_MAX_CERTIFICATES = 256;

/** `[cluster]` (config/validate_cluster.ts). */
export const CLUSTER_HEARTBEAT: DurationBound = { def: 5_000, min: 100, max: 60_000 };
/** Default: 15 s, or 3 × heartbeat when that is longer; must be more than 2 × heartbeat. */
export const CLUSTER_TTL: DurationBound = { def: 15_000, min: 300, max: 600_000 };
export const CLUSTER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
export const CLUSTER_EDGE_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
export const REDIS_DEFAULT_PORT = 6379;
/** Redis `SELECT` index bound (the server's `databases` setting may allow fewer). */
export const REDIS_MAX_DB = 65_535;
