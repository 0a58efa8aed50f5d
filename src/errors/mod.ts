/**
 * One error class for the whole proxy (pingora's error model, undici's stable
 * codes). `code` is stable and machine-readable; `source` says whose fault it
 * was; each code maps to what the peer sees (see `tlsAlertFor`, `httpStatusFor`).
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
  "AUTH_REQUIRED", // no credentials, or credentials that match no token (HTTP 407, SOCKS5 auth failure)
  "EGRESS_DENIED", // the destination is outside the [egress] policy (host, port or address)
  "IDENTITY_DENIED", // HBONE: the client's SPIFFE identity may not reach this destination
  "UPSTREAM_DNS", // the destination name did not resolve
  "SOCKS_PROTOCOL", // malformed SOCKS5 greeting, auth or request
  "H2_PROTOCOL", // HTTP/2 connection error (bad frame, HPACK, flow control): GOAWAY
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

/** The alert a TLS peer receives for a code, or null when the connection just closes. */
export function tlsAlertFor(code: ErrorCode): number | null {
  switch (code) {
    case "TLS_DECODE":
      return TlsAlert.decode_error;
    case "TLS_NOT_HANDSHAKE":
      // RFC 8446 §5: a record of the wrong type is an unexpected_message.
      return TlsAlert.unexpected_message;
    case "TLS_HELLO_TOO_LARGE":
      return TlsAlert.record_overflow;
    case "TLS_UNSUPPORTED":
      return TlsAlert.protocol_version;
    case "NO_ROUTE":
      return TlsAlert.unrecognized_name;
    case "UPSTREAM_CONNECT_REFUSED":
    case "UPSTREAM_CONNECT_TIMEOUT":
    case "INTERNAL":
    case "LISTENER_FULL":
    case "DRAINING":
      return TlsAlert.internal_error;
    case "ACCESS_DENIED":
    case "AUTH_DENIED":
      return TlsAlert.handshake_failure;
    default:
      return null;
  }
}

/** The HTTP status an HTTP peer receives for a code (CONNECT listener, admin API). */
export function httpStatusFor(code: ErrorCode): number {
  switch (code) {
    case "AUTH_DENIED":
      return 403;
    case "ACCESS_DENIED":
      return 403;
    case "NO_ROUTE":
      return 404;
    case "HANDSHAKE_TIMEOUT":
      return 408;
    case "UPSTREAM_CONNECT_REFUSED":
    case "UPSTREAM_RESET":
      return 502;
    case "UPSTREAM_CONNECT_TIMEOUT":
      return 504;
    case "LISTENER_FULL":
    case "DRAINING":
      return 503;
    case "INTERNAL":
    case "CONFIG":
      return 500;
    case "HTTP_HEADER_TOO_LARGE":
      return 431;
    case "HTTP_METHOD_NOT_ALLOWED":
      return 405;
    case "AUTH_REQUIRED":
      return 407;
    case "EGRESS_DENIED":
    case "IDENTITY_DENIED":
    case "SERVICE_DENIED":
      return 403;
    case "UPSTREAM_DNS":
    case "SERVICE_UNKNOWN":
    case "SERVICE_OFFLINE":
      return 503;
    default:
      return 400;
  }
}

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

/** The SOCKS5 reply a client receives for a code (socks5 listener). */
export function socksReplyFor(code: ErrorCode): number {
  switch (code) {
    case "EGRESS_DENIED":
    case "ACCESS_DENIED":
    case "AUTH_DENIED":
    case "AUTH_REQUIRED":
      return SocksReply.not_allowed;
    case "UPSTREAM_DNS":
      return SocksReply.host_unreachable;
    case "UPSTREAM_CONNECT_REFUSED":
    case "UPSTREAM_RESET":
      return SocksReply.connection_refused;
    case "UPSTREAM_CONNECT_TIMEOUT":
      return SocksReply.ttl_expired;
    default:
      return SocksReply.general_failure;
  }
}

/** Wraps anything thrown into a ProxyError so callers can rely on `.code`. */
export function asProxyError(err: unknown, fallback: ErrorCode = "INTERNAL", source: ErrorSource = "internal"): ProxyError {
  if (err instanceof ProxyError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ProxyError(fallback, source, message, { cause: err });
}
