/**
 * One error class for the whole proxy (pingora's error model, undici's stable
 * codes). `code` is stable and machine-readable; `source` says whose fault it
 * was; each code maps to what the peer sees on every wire through one table
 * (`WIRE`: TLS alert, HTTP/1 and HTTP/2 status, SOCKS5 reply, tunnel code).
 *
 * Across postMessage send `toRecord()`, never the Error instance.
 */

export type ErrorSource = "downstream" | "upstream" | "internal";

/** Every code the data plane can report. Order is the stats slot order: append only. */
export const ERROR_CODES = [
  "TLS_DECODE", // malformed ClientHello / records
  "TLS_NOT_HANDSHAKE", // first bytes are not a TLS handshake record
  "TLS_HELLO_TOO_LARGE", // ClientHello over the configured bound
  "TLS_UNSUPPORTED", // legacy SSLv2 hello, unsupported version
  "NO_ROUTE", // no route for the server name
  "HANDSHAKE_TIMEOUT", // client did not finish its hello in time
  "IDLE_TIMEOUT", // no bytes either way for idle_timeout
  "UPSTREAM_CONNECT_REFUSED",
  "UPSTREAM_CONNECT_TIMEOUT",
  "UPSTREAM_RESET",
  "DOWNSTREAM_RESET",
  "PROXY_PROTOCOL", // malformed inbound PROXY header
  "LISTENER_FULL", // max_connections reached
  "ACCESS_DENIED", // CIDR lists
  "DRAINING", // closed by drain deadline
  "MUX_PROTOCOL",
  "AUTH_DENIED",
  "CONFIG",
  "INTERNAL",
  "TUNNEL_PROTOCOL", // malformed tunnel control / open / UDP message
  "ROLE_DENIED", // the token does not grant the role the agent asked for
  "SERVICE_DENIED", // the service name is outside the token's pattern
  "SESSION_LIMIT", // the token's max_sessions is reached
  "SERVICE_UNKNOWN", // no tunnel service of that name is configured or announced
  "SERVICE_OFFLINE", // the service's destination agent is not connected / could not reach it
  "HTTP_BAD_REQUEST", // malformed HTTP request head or CONNECT authority (connect listener)
  "HTTP_HEADER_TOO_LARGE", // request head over max_header_bytes, or too many fields
  "HTTP_METHOD_NOT_ALLOWED", // a proxy request that is neither CONNECT nor POST with x-tun
  "AUTH_REQUIRED", // no credentials (HTTP 407, SOCKS5 auth failure)
  "EGRESS_DENIED", // the destination is outside the [egress] policy (host, port or address)
  "IDENTITY_DENIED", // HBONE: the client's SPIFFE identity may not reach this destination
  "UPSTREAM_DNS", // the destination name did not resolve
  "SOCKS_PROTOCOL", // malformed SOCKS5 greeting, auth or request
  "H2_PROTOCOL", // HTTP/2 connection error (bad frame, HPACK, flow control): GOAWAY
  "DATAGRAM_TOO_LARGE", // udp listener: a datagram over max_datagram, dropped
  "SERVICE_UNREACHABLE", // the destination agent could not reach (or did not answer for) its local service
  "TLS_BAD_SERVER_NAME", // a well-formed ClientHello whose server_name cannot be a hostname (an IP, bad characters)
  "AUTH_INVALID", // credentials were presented but match no [[tokens]] entry (a wrong or revoked secret)
  "UPSTREAM_TIMEOUT", // http listener: the upstream sent no response head within request_timeout
  "HTTP_BAD_RESPONSE", // http listener: the upstream's response head or body framing is malformed
  "AGENT_DENIED", // remote access: the operator token's agents patterns do not name that agent
  "AGENT_UNKNOWN", // remote access: no agent of that name is connected
  "REMOTE_DISABLED", // remote access: the agent does not offer that kind (no --allow-shell / --allow-files, no PTY, read-only)
  "COMMAND_DENIED", // remote shell: the command is outside the agent's [shell] allow list
  "PATH_DENIED", // remote files: the path leaves the agent's roots (absolute, "..", a symlink out)
  "FILE_TOO_LARGE", // remote files: over the agent's [files] max_size
  "FILE_FAILED", // remote files: not found, not a regular file, or an I/O error on the agent
  "RELOAD_FAILED", // agent-reload: the agent's config file did not validate (nothing was applied)
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * Codes that record how a peer ended its connection (a TCP reset), not a
 * failure of edgemux's: many TLS clients reset once they have their answer.
 * Stats count them apart from errors (`*_aborts_total`), like HAProxy's
 * cli_abrt / srv_abrt.
 */
export const ABORT_CODES: ReadonlySet<string> = new Set(["DOWNSTREAM_RESET", "UPSTREAM_RESET"]);

export const ERROR_CODE_INDEX: Readonly<Record<ErrorCode, number>> = Object.fromEntries(
  ERROR_CODES.map((c, i) => [c, i]),
) as Record<ErrorCode, number>;

export interface ErrorRecord {
  code: ErrorCode;
  source: ErrorSource;
  message: string;
}

export class ProxyError extends Error {
  override readonly name = "ProxyError";
  constructor(
    readonly code: ErrorCode,
    readonly source: ErrorSource,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  toRecord(): ErrorRecord {
    return { code: this.code, source: this.source, message: this.message };
  }

  static fromRecord(r: ErrorRecord): ProxyError {
    return new ProxyError(r.code, r.source, r.message);
  }
}

/** TLS alert descriptions (RFC 8446 §6) used by the SNI listener. */
export const TlsAlert = {
  unexpected_message: 10,
  record_overflow: 22,
  handshake_failure: 40,
  protocol_version: 70,
  decode_error: 50,
  internal_error: 80,
  unrecognized_name: 112,
} as const;

/** RFC 1928 §6 reply codes (the REP field). */
export const SocksReply = {
  succeeded: 0x00,
  general_failure: 0x01,
  not_allowed: 0x02,
  network_unreachable: 0x03,
  host_unreachable: 0x04,
  connection_refused: 0x05,
  ttl_expired: 0x06,
  command_not_supported: 0x07,
  address_type_not_supported: 0x08,
} as const;

/**
 * Tunnel wire codes (DESIGN.md "Tunnel session"): the numbers carried in
 * `error` messages and in the `Edgemux-Error` header of a refused upgrade.
 * What each one means to the agent is in proto/tunnel_control.ts
 * (TUNNEL_ERRORS). They live here, not there, because proto/ imports
 * ProxyError from this module: importing them back would be an import cycle
 * in which this table reads them before they exist.
 */
export const TunnelErrorCode = {
  PROTOCOL: 1,
  VERSION: 2,
  HELLO_TIMEOUT: 3,
  BAD_TOKEN: 10,
  ROLE_DENIED: 11,
  CIDR_DENIED: 12,
  SERVICE_DENIED: 13,
  SESSION_LIMIT: 14,
  AUTH_REQUIRED: 15,
  SERVICE_UNKNOWN: 20,
  SERVICE_OFFLINE: 21,
  SERVICE_UNREACHABLE: 22,
  DRAINING: 30,
  INTERNAL: 31,
  AGENT_DENIED: 40,
  AGENT_UNKNOWN: 41,
  REMOTE_DISABLED: 42,
  COMMAND_DENIED: 43,
  PATH_DENIED: 44,
  FILE_TOO_LARGE: 45,
  FILE_FAILED: 46,
  CHECKSUM_MISMATCH: 47,
  RELOAD_FAILED: 48,
} as const;

/** What a peer sees for one code, on each wire. */
export interface WireRow {
  /** The TLS alert (sni listener), or null when the connection just closes. */
  tls: number | null;
  /** HTTP/1 status (CONNECT listener, admin API). */
  http: number;
  /** HTTP/2 status (HBONE); AUTH_REQUIRED is 401 here, 407 where the listener takes tokens (see h2StatusFor). */
  h2: number;
  /** SOCKS5 REP field. */
  socks: number;
  /** Tunnel wire code the edge sends (an `error` message, a refused upgrade). */
  tunnel: number;
}

const A = TlsAlert;
const S = SocksReply;
const T = TunnelErrorCode;

/**
 * The one table from error code to every wire. HTTP/2 (HBONE) answers 503
 * for everything but a bad request or a denial, as the HBONE listener always
 * has; HTTP/1 names the failure more finely (404, 408, 502, 504).
 */
export const WIRE: Readonly<Record<ErrorCode, Readonly<WireRow>>> = {
  TLS_DECODE:               { tls: A.decode_error,       http: 400, h2: 503, socks: S.general_failure,    tunnel: T.INTERNAL },
  // RFC 8446 §5: a record of the wrong type is an unexpected_message.
  TLS_NOT_HANDSHAKE:        { tls: A.unexpected_message, http: 400, h2: 503, socks: S.general_failure,    tunnel: T.INTERNAL },
  TLS_HELLO_TOO_LARGE:      { tls: A.record_overflow,    http: 400, h2: 503, socks: S.general_failure,    tunnel: T.INTERNAL },
  TLS_UNSUPPORTED:          { tls: A.protocol_version,   http: 400, h2: 503, socks: S.general_failure,    tunnel: T.INTERNAL },
  NO_ROUTE:                 { tls: A.unrecognized_name,  http: 404, h2: 503, socks: S.general_failure,    tunnel: T.INTERNAL },
  HANDSHAKE_TIMEOUT:        { tls: null,                 http: 408, h2: 503, socks: S.general_failure,    tunnel: T.HELLO_TIMEOUT },
  IDLE_TIMEOUT:             { tls: null,                 http: 400, h2: 503, socks: S.general_failure,    tunnel: T.INTERNAL },
  UPSTREAM_CONNECT_REFUSED: { tls: A.internal_error,     http: 502, h2: 503, socks: S.connection_refused, tunnel: T.SERVICE_UNREACHABLE },
  UPSTREAM_CONNECT_TIMEOUT: { tls: A.internal_error,     http: 504, h2: 503, socks: S.ttl_expired,        tunnel: T.SERVICE_UNREACHABLE },
  UPSTREAM_RESET:           { tls: null,                 http: 502, h2: 503, socks: S.connection_refused, tunnel: T.SERVICE_UNREACHABLE },
  DOWNSTREAM_RESET:         { tls: null,                 http: 400, h2: 503, socks: S.general_failure,    tunnel: T.INTERNAL },
  PROXY_PROTOCOL:           { tls: null,                 http: 400, h2: 503, socks: S.general_failure,    tunnel: T.INTERNAL },
  LISTENER_FULL:            { tls: A.internal_error,     http: 503, h2: 503, socks: S.general_failure,    tunnel: T.INTERNAL },
  ACCESS_DENIED:            { tls: A.handshake_failure,  http: 403, h2: 403, socks: S.not_allowed,        tunnel: T.CIDR_DENIED },
  DRAINING:                 { tls: A.internal_error,     http: 503, h2: 503, socks: S.general_failure,    tunnel: T.DRAINING },
  MUX_PROTOCOL:             { tls: null,                 http: 400, h2: 503, socks: S.general_failure,    tunnel: T.INTERNAL },
  AUTH_DENIED:              { tls: A.handshake_failure,  http: 403, h2: 403, socks: S.not_allowed,        tunnel: T.BAD_TOKEN },
  CONFIG:                   { tls: null,                 http: 500, h2: 503, socks: S.general_failure,    tunnel: T.INTERNAL },
  INTERNAL:                 { tls: A.internal_error,     http: 500, h2: 503, socks: S.general_failure,    tunnel: T.INTERNAL },
  TUNNEL_PROTOCOL:          { tls: null,                 http: 400, h2: 503, socks: S.general_failure,    tunnel: T.PROTOCOL },
  ROLE_DENIED:              { tls: null,                 http: 400, h2: 503, socks: S.general_failure,    tunnel: T.ROLE_DENIED },
  SERVICE_DENIED:           { tls: null,                 http: 403, h2: 503, socks: S.general_failure,    tunnel: T.SERVICE_DENIED },
  SESSION_LIMIT:            { tls: null,                 http: 400, h2: 503, socks: S.general_failure,    tunnel: T.SESSION_LIMIT },
  // HTTP/1 502: the gateway's next hop (the agent) is not there, as for a refused connection (RFC 9110 §15.6.3).
  SERVICE_UNKNOWN:          { tls: null,                 http: 502, h2: 503, socks: S.general_failure,    tunnel: T.SERVICE_UNKNOWN },
  SERVICE_OFFLINE:          { tls: null,                 http: 502, h2: 503, socks: S.general_failure,    tunnel: T.SERVICE_OFFLINE },
  HTTP_BAD_REQUEST:         { tls: null,                 http: 400, h2: 400, socks: S.general_failure,    tunnel: T.INTERNAL },
  HTTP_HEADER_TOO_LARGE:    { tls: null,                 http: 431, h2: 431, socks: S.general_failure,    tunnel: T.INTERNAL },
  HTTP_METHOD_NOT_ALLOWED:  { tls: null,                 http: 405, h2: 405, socks: S.general_failure,    tunnel: T.INTERNAL },
  AUTH_REQUIRED:            { tls: null,                 http: 407, h2: 401, socks: S.not_allowed,        tunnel: T.AUTH_REQUIRED },
  EGRESS_DENIED:            { tls: null,                 http: 403, h2: 403, socks: S.not_allowed,        tunnel: T.INTERNAL },
  IDENTITY_DENIED:          { tls: null,                 http: 403, h2: 403, socks: S.general_failure,    tunnel: T.INTERNAL },
  UPSTREAM_DNS:             { tls: null,                 http: 503, h2: 503, socks: S.host_unreachable,   tunnel: T.SERVICE_UNREACHABLE },
  SOCKS_PROTOCOL:           { tls: null,                 http: 400, h2: 503, socks: S.general_failure,    tunnel: T.INTERNAL },
  H2_PROTOCOL:              { tls: null,                 http: 400, h2: 503, socks: S.general_failure,    tunnel: T.INTERNAL },
  DATAGRAM_TOO_LARGE:       { tls: null,                 http: 400, h2: 503, socks: S.general_failure,    tunnel: T.PROTOCOL },
  SERVICE_UNREACHABLE:      { tls: A.internal_error,     http: 502, h2: 503, socks: S.connection_refused, tunnel: T.SERVICE_UNREACHABLE },
  // RFC 6066 §3: a name the server "does not recognize": unrecognized_name.
  TLS_BAD_SERVER_NAME:      { tls: A.unrecognized_name,  http: 400, h2: 503, socks: S.general_failure,    tunnel: T.INTERNAL },
  // Answered like missing credentials (a client re-prompts on 407), counted apart: a wrong secret is an operator's signal.
  AUTH_INVALID:             { tls: null,                 http: 407, h2: 401, socks: S.not_allowed,        tunnel: T.BAD_TOKEN },
  UPSTREAM_TIMEOUT:         { tls: null,                 http: 504, h2: 503, socks: S.ttl_expired,        tunnel: T.SERVICE_UNREACHABLE },
  HTTP_BAD_RESPONSE:        { tls: null,                 http: 502, h2: 503, socks: S.general_failure,    tunnel: T.SERVICE_UNREACHABLE },
  // Remote access (operator streams: shell, files, reload) only ever travels as tunnel codes.
  AGENT_DENIED:             { tls: null,                 http: 403, h2: 403, socks: S.not_allowed,        tunnel: T.AGENT_DENIED },
  AGENT_UNKNOWN:            { tls: null,                 http: 502, h2: 503, socks: S.general_failure,    tunnel: T.AGENT_UNKNOWN },
  REMOTE_DISABLED:          { tls: null,                 http: 403, h2: 403, socks: S.not_allowed,        tunnel: T.REMOTE_DISABLED },
  COMMAND_DENIED:           { tls: null,                 http: 403, h2: 403, socks: S.not_allowed,        tunnel: T.COMMAND_DENIED },
  PATH_DENIED:              { tls: null,                 http: 403, h2: 403, socks: S.not_allowed,        tunnel: T.PATH_DENIED },
  FILE_TOO_LARGE:           { tls: null,                 http: 413, h2: 413, socks: S.general_failure,    tunnel: T.FILE_TOO_LARGE },
  FILE_FAILED:              { tls: null,                 http: 502, h2: 503, socks: S.general_failure,    tunnel: T.FILE_FAILED },
  RELOAD_FAILED:            { tls: null,                 http: 502, h2: 503, socks: S.general_failure,    tunnel: T.RELOAD_FAILED },
};

/** The alert a TLS peer receives for a code, or null when the connection just closes. */
export function tlsAlertFor(code: ErrorCode): number | null {
  return WIRE[code].tls;
}

/** The HTTP status an HTTP/1 peer receives for a code (CONNECT listener, admin API). */
export function httpStatusFor(code: ErrorCode): number {
  return WIRE[code].http;
}

/**
 * The HTTP/1 status a client of the http listener receives: it talks to us
 * as to its origin server (Basic auth on a route), so missing or wrong
 * credentials are 401, not a forward proxy's 407; the rest is the table's.
 */
export function httpOriginStatusFor(code: ErrorCode): number {
  return code === "AUTH_REQUIRED" || code === "AUTH_INVALID" ? 401 : WIRE[code].http;
}

/**
 * The HTTP/2 status an HBONE client receives for a code. Missing credentials
 * are 407 (ask for Proxy-Authorization, RFC 9110 §15.5.8) when the listener
 * takes tokens, else 401.
 */
export function h2StatusFor(code: ErrorCode, proxyAuth = false): number {
  return proxyAuth && (code === "AUTH_REQUIRED" || code === "AUTH_INVALID") ? 407 : WIRE[code].h2;
}

/**
 * The RST_STREAM code (RFC 9113 §7) an HTTP/2 client of the http listener
 * receives when its response breaks after it started (before that it gets the
 * status page of httpOriginStatusFor): a stream the proxy gave up on is
 * CANCEL, a deadline or drain too; an upstream that failed mid-body is
 * INTERNAL_ERROR, so the client cannot take a cut-off body for a whole one.
 */
export function h2ResetFor(code: ErrorCode): number {
  switch (code) {
    case "DOWNSTREAM_RESET":
    case "IDLE_TIMEOUT":
    case "DRAINING":
      return 0x8; // CANCEL
    case "HTTP_BAD_REQUEST":
    case "H2_PROTOCOL":
      return 0x1; // PROTOCOL_ERROR
    case "LISTENER_FULL":
      return 0x7; // REFUSED_STREAM
    default:
      return 0x2; // INTERNAL_ERROR
  }
}

/** The SOCKS5 reply a client receives for a code (socks5 listener). */
export function socksReplyFor(code: ErrorCode): number {
  return WIRE[code].socks;
}

/** The tunnel wire code the edge sends for a code. */
export function tunnelCodeFor(code: ErrorCode): number {
  return WIRE[code].tunnel;
}

/**
 * The reverse direction, for the finer tunnel code space: per wire code, the
 * code it is counted and logged under and the status of a refused upgrade.
 * A wire code missing here (an unknown or newer one) is TUNNEL_PROTOCOL / 400.
 */
const TUNNEL_WIRE: ReadonlyMap<number, { error: ErrorCode; upgradeStatus: number }> = new Map([
  [T.PROTOCOL,            { error: "TUNNEL_PROTOCOL",   upgradeStatus: 400 }],
  [T.VERSION,             { error: "TUNNEL_PROTOCOL",   upgradeStatus: 400 }],
  [T.HELLO_TIMEOUT,       { error: "HANDSHAKE_TIMEOUT", upgradeStatus: 400 }],
  [T.BAD_TOKEN,           { error: "AUTH_INVALID",      upgradeStatus: 401 }],
  [T.ROLE_DENIED,         { error: "ROLE_DENIED",       upgradeStatus: 403 }],
  [T.CIDR_DENIED,         { error: "ACCESS_DENIED",     upgradeStatus: 403 }],
  [T.SERVICE_DENIED,      { error: "SERVICE_DENIED",    upgradeStatus: 403 }],
  [T.SESSION_LIMIT,       { error: "SESSION_LIMIT",     upgradeStatus: 429 }],
  [T.AUTH_REQUIRED,       { error: "AUTH_REQUIRED",     upgradeStatus: 401 }],
  [T.SERVICE_UNKNOWN,     { error: "SERVICE_UNKNOWN",   upgradeStatus: 400 }],
  [T.SERVICE_OFFLINE,     { error: "SERVICE_OFFLINE",   upgradeStatus: 400 }],
  [T.SERVICE_UNREACHABLE, { error: "SERVICE_UNREACHABLE", upgradeStatus: 400 }],
  [T.DRAINING,            { error: "DRAINING",          upgradeStatus: 503 }],
  [T.INTERNAL,            { error: "TUNNEL_PROTOCOL",   upgradeStatus: 503 }],
  [T.AGENT_DENIED,        { error: "AGENT_DENIED",      upgradeStatus: 403 }],
  [T.AGENT_UNKNOWN,       { error: "AGENT_UNKNOWN",     upgradeStatus: 400 }],
  [T.REMOTE_DISABLED,     { error: "REMOTE_DISABLED",   upgradeStatus: 403 }],
  [T.COMMAND_DENIED,      { error: "COMMAND_DENIED",    upgradeStatus: 403 }],
  [T.PATH_DENIED,         { error: "PATH_DENIED",       upgradeStatus: 403 }],
  [T.FILE_TOO_LARGE,      { error: "FILE_TOO_LARGE",    upgradeStatus: 400 }],
  [T.FILE_FAILED,         { error: "FILE_FAILED",       upgradeStatus: 400 }],
  // Found by the receiver after the bytes moved; counted with the other file failures.
  [T.CHECKSUM_MISMATCH,   { error: "FILE_FAILED",       upgradeStatus: 400 }],
  [T.RELOAD_FAILED,       { error: "RELOAD_FAILED",     upgradeStatus: 400 }],
] as const);

/** The code a tunnel wire code is counted and logged under (a refusal the edge sent or an agent answered). */
export function errorCodeForTunnel(wire: number): ErrorCode {
  return TUNNEL_WIRE.get(wire)?.error ?? "TUNNEL_PROTOCOL";
}

/** The HTTP status of an upgrade request the edge refuses with this tunnel wire code. */
export function httpStatusForTunnel(wire: number): number {
  return TUNNEL_WIRE.get(wire)?.upgradeStatus ?? 400;
}

/** Wraps anything thrown into a ProxyError so callers can rely on `.code`. */
export function asProxyError(err: unknown, fallback: ErrorCode = "INTERNAL", source: ErrorSource = "internal"): ProxyError {
  if (err instanceof ProxyError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ProxyError(fallback, source, message, { cause: err });
}
