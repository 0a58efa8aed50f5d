/**
 * Pins the error-code → wire table. The expected values were taken from the
 * mappings as they stood before the table existed (the switch statements
 * `tlsAlertFor`, `httpStatusFor`, `socksReplyFor` here, `h2StatusFor` in
 * connect/hbone_server.ts, `errorCodeFor` in tunnel/session.ts and
 * `httpStatusForTunnelError` in tunnel/http_upgrade.ts), so moving them into
 * one table changed nothing a peer sees.
 */
import { expect, test } from "bun:test";
import { TUNNEL_ERRORS, TunnelErrorCode as ProtoTunnelErrorCode } from "../proto/tunnel_control.ts";
import {
  ERROR_CODES,
  type ErrorCode,
  errorCodeForTunnel,
  h2StatusFor,
  httpOriginStatusFor,
  httpStatusFor,
  httpStatusForTunnel,
  socksReplyFor,
  tlsAlertFor,
  tunnelCodeFor,
  TunnelErrorCode,
  WIRE,
} from "./mod.ts";

// code: [TLS alert, HTTP/1 status, HTTP/2 status, HTTP/2 status with proxy (token) auth, SOCKS5 reply]
const BEFORE: Record<ErrorCode, [number | null, number, number, number, number]> = {
  TLS_DECODE: [50, 400, 503, 503, 1],
  TLS_NOT_HANDSHAKE: [10, 400, 503, 503, 1],
  TLS_HELLO_TOO_LARGE: [22, 400, 503, 503, 1],
  TLS_UNSUPPORTED: [70, 400, 503, 503, 1],
  NO_ROUTE: [112, 404, 503, 503, 1],
  HANDSHAKE_TIMEOUT: [null, 408, 503, 503, 1],
  IDLE_TIMEOUT: [null, 400, 503, 503, 1],
  UPSTREAM_CONNECT_REFUSED: [80, 502, 503, 503, 5],
  UPSTREAM_CONNECT_TIMEOUT: [80, 504, 503, 503, 6],
  UPSTREAM_RESET: [null, 502, 503, 503, 5],
  DOWNSTREAM_RESET: [null, 400, 503, 503, 1],
  PROXY_PROTOCOL: [null, 400, 503, 503, 1],
  LISTENER_FULL: [80, 503, 503, 503, 1],
  ACCESS_DENIED: [40, 403, 403, 403, 2],
  DRAINING: [80, 503, 503, 503, 1],
  MUX_PROTOCOL: [null, 400, 503, 503, 1],
  AUTH_DENIED: [40, 403, 403, 403, 2],
  CONFIG: [null, 500, 503, 503, 1],
  INTERNAL: [80, 500, 503, 503, 1],
  TUNNEL_PROTOCOL: [null, 400, 503, 503, 1],
  ROLE_DENIED: [null, 400, 503, 503, 1],
  SERVICE_DENIED: [null, 403, 503, 503, 1],
  SESSION_LIMIT: [null, 400, 503, 503, 1],
  // 502 since the http listener: the agent is the gateway's missing next hop.
  SERVICE_UNKNOWN: [null, 502, 503, 503, 1],
  SERVICE_OFFLINE: [null, 502, 503, 503, 1],
  HTTP_BAD_REQUEST: [null, 400, 400, 400, 1],
  HTTP_HEADER_TOO_LARGE: [null, 431, 431, 431, 1],
  HTTP_METHOD_NOT_ALLOWED: [null, 405, 405, 405, 1],
  AUTH_REQUIRED: [null, 407, 401, 407, 2],
  EGRESS_DENIED: [null, 403, 403, 403, 2],
  IDENTITY_DENIED: [null, 403, 403, 403, 1],
  UPSTREAM_DNS: [null, 503, 503, 503, 4],
  SOCKS_PROTOCOL: [null, 400, 503, 503, 1],
  H2_PROTOCOL: [null, 400, 503, 503, 1],
  DATAGRAM_TOO_LARGE: [null, 400, 503, 503, 1],
  SERVICE_UNREACHABLE: [80, 502, 503, 503, 5],
  TLS_BAD_SERVER_NAME: [112, 400, 503, 503, 1],
  AUTH_INVALID: [null, 407, 401, 407, 2],
  UPSTREAM_TIMEOUT: [null, 504, 503, 503, 6],
  HTTP_BAD_RESPONSE: [null, 502, 503, 503, 1],
  AGENT_DENIED: [null, 403, 403, 403, 2],
  AGENT_UNKNOWN: [null, 502, 503, 503, 1],
  REMOTE_DISABLED: [null, 403, 403, 403, 2],
  COMMAND_DENIED: [null, 403, 403, 403, 2],
  PATH_DENIED: [null, 403, 403, 403, 2],
  FILE_TOO_LARGE: [null, 413, 413, 413, 1],
  FILE_FAILED: [null, 502, 503, 503, 1],
  RELOAD_FAILED: [null, 502, 503, 503, 1],
};

test("every code keeps the TLS alert, HTTP/1 and HTTP/2 status and SOCKS5 reply it had", () => {
  for (const code of ERROR_CODES) {
    const got = [tlsAlertFor(code), httpStatusFor(code), h2StatusFor(code), h2StatusFor(code, true), socksReplyFor(code)];
    expect({ code, got }).toEqual({ code, got: BEFORE[code] });
  }
});

test("the http listener answers missing or wrong credentials with 401 (an origin's Basic auth), the rest as the table", () => {
  expect(httpOriginStatusFor("AUTH_REQUIRED")).toBe(401);
  expect(httpOriginStatusFor("AUTH_INVALID")).toBe(401);
  for (const code of ERROR_CODES) if (code !== "AUTH_REQUIRED" && code !== "AUTH_INVALID") expect(httpOriginStatusFor(code)).toBe(httpStatusFor(code));
});

test("the table has one row per code and nothing else", () => {
  expect(Object.keys(WIRE).sort()).toEqual([...ERROR_CODES].sort());
  expect(Object.keys(BEFORE).sort()).toEqual([...ERROR_CODES].sort());
});

test("tunnel wire codes keep their numbers (agents of other versions read them)", () => {
  expect(ProtoTunnelErrorCode).toBe(TunnelErrorCode);
  expect(Object.entries(TunnelErrorCode)).toEqual([
    ["PROTOCOL", 1], ["VERSION", 2], ["HELLO_TIMEOUT", 3], ["BAD_TOKEN", 10], ["ROLE_DENIED", 11], ["CIDR_DENIED", 12],
    ["SERVICE_DENIED", 13], ["SESSION_LIMIT", 14], ["AUTH_REQUIRED", 15], ["SERVICE_UNKNOWN", 20], ["SERVICE_OFFLINE", 21],
    ["SERVICE_UNREACHABLE", 22], ["DRAINING", 30], ["INTERNAL", 31],
    ["AGENT_DENIED", 40], ["AGENT_UNKNOWN", 41], ["REMOTE_DISABLED", 42], ["COMMAND_DENIED", 43], ["PATH_DENIED", 44],
    ["FILE_TOO_LARGE", 45], ["FILE_FAILED", 46], ["CHECKSUM_MISMATCH", 47], ["RELOAD_FAILED", 48],
  ]);
});

// tunnel wire code → [ErrorCode (was errorCodeFor in tunnel/session.ts), HTTP status of a refused upgrade (was httpStatusForTunnelError)]
const WIRE_BEFORE: Record<number, [ErrorCode, number]> = {
  1: ["TUNNEL_PROTOCOL", 400], // PROTOCOL
  2: ["TUNNEL_PROTOCOL", 400], // VERSION
  3: ["HANDSHAKE_TIMEOUT", 400], // HELLO_TIMEOUT
  10: ["AUTH_INVALID", 401], // BAD_TOKEN: a wrong secret, counted apart from a missing one since AUTH_INVALID
  11: ["ROLE_DENIED", 403],
  12: ["ACCESS_DENIED", 403], // CIDR_DENIED
  13: ["SERVICE_DENIED", 403],
  14: ["SESSION_LIMIT", 429],
  15: ["AUTH_REQUIRED", 401], // AUTH_REQUIRED: no credentials at all
  20: ["SERVICE_UNKNOWN", 400],
  21: ["SERVICE_OFFLINE", 400],
  22: ["SERVICE_UNREACHABLE", 400], // its own stats code since the wire code travels only as the error code
  30: ["DRAINING", 503],
  31: ["TUNNEL_PROTOCOL", 503], // INTERNAL
  40: ["AGENT_DENIED", 403],
  41: ["AGENT_UNKNOWN", 400],
  42: ["REMOTE_DISABLED", 403],
  43: ["COMMAND_DENIED", 403],
  44: ["PATH_DENIED", 403],
  45: ["FILE_TOO_LARGE", 400],
  46: ["FILE_FAILED", 400],
  47: ["FILE_FAILED", 400], // CHECKSUM_MISMATCH
  48: ["RELOAD_FAILED", 400],
  // Codes the protocol does not define.
  0: ["TUNNEL_PROTOCOL", 400],
  4: ["TUNNEL_PROTOCOL", 400],
  99: ["TUNNEL_PROTOCOL", 400],
  65535: ["TUNNEL_PROTOCOL", 400],
  [-1]: ["TUNNEL_PROTOCOL", 400],
};

test("a tunnel wire code keeps its stats code and its upgrade refusal status", () => {
  for (const [wire, expected] of Object.entries(WIRE_BEFORE)) {
    const w = Number(wire);
    expect({ w, got: [errorCodeForTunnel(w), httpStatusForTunnel(w)] }).toEqual({ w, got: expected });
  }
  // Every code the protocol defines is pinned above.
  for (const w of Object.keys(TUNNEL_ERRORS)) expect(WIRE_BEFORE[Number(w)]).toBeDefined();
  expect(errorCodeForTunnel(1.5)).toBe("TUNNEL_PROTOCOL");
  expect(errorCodeForTunnel(Number.NaN)).toBe("TUNNEL_PROTOCOL");
});

test("tunnelCodeFor: the code the edge sends reads back as the same stats code", () => {
  for (const w of Object.values(TunnelErrorCode)) {
    const code = errorCodeForTunnel(w);
    expect({ w, back: errorCodeForTunnel(tunnelCodeFor(code)) }).toEqual({ w, back: code });
  }
  expect(tunnelCodeFor("AUTH_DENIED")).toBe(TunnelErrorCode.BAD_TOKEN);
  expect(tunnelCodeFor("AUTH_REQUIRED")).toBe(TunnelErrorCode.AUTH_REQUIRED);
  expect(tunnelCodeFor("UPSTREAM_CONNECT_REFUSED")).toBe(TunnelErrorCode.SERVICE_UNREACHABLE);
  // A code with no meaning of its own on the tunnel wire is the edge's internal error (retried by the agent).
  expect(tunnelCodeFor("TLS_DECODE")).toBe(TunnelErrorCode.INTERNAL);
  for (const code of ERROR_CODES) expect(TUNNEL_ERRORS[tunnelCodeFor(code) as keyof typeof TUNNEL_ERRORS]).toBeDefined();
});
