/**
 * The HTTP/1.1 exchange that turns an agent's TLS connection into a tunnel
 * session, sans-I/O (no sockets, no timers):
 *
 *   agent → edge   GET /edgemux/tunnel HTTP/1.1
 *                  Host: edge.example
 *                  Connection: Upgrade
 *                  Upgrade: edgemux-smux/2        (or: websocket + Sec-WebSocket-Key/Version)
 *                  Authorization: Bearer <token>  (optional: a client certificate, or the token in hello)
 *   edge → agent   HTTP/1.1 101 Switching Protocols
 *                  Connection: Upgrade
 *                  Upgrade: edgemux-smux/2        (or: websocket + Sec-WebSocket-Accept)
 *
 * after which the connection carries smux v2 frames (raw, or inside RFC 6455
 * binary messages). A refusal is a plain HTTP response whose `Edgemux-Error`
 * header holds the numeric tunnel error code and `Edgemux-Reason` the reason,
 * then close. Both directions are parsed by proto/'s strict HTTP/1 head
 * codec (bare LF, obs-fold, control characters, repeated framing fields, a
 * missing or repeated Host are refused there, for every listener); the checks
 * here are what an upgrade adds on top.
 */
// SHA-1 from proto/, not node:crypto: loading node:crypto costs an agent ~4 MB of resident memory.
import { base64, sha1 } from "../../proto/sha1.ts";
import { ProxyError } from "../../errors/mod.ts";
import {
  encodeClosingResponse,
  fieldCount,
  fieldList,
  fieldValue,
  Http1RequestParser,
  Http1ResponseParser,
  type HttpRequestHead,
  type HttpResponseHead,
  listHasToken,
} from "../../proto/http1_head.ts";
import { TunnelErrorCode, tunnelErrorInfo } from "../../proto/tunnel_control.ts";

export const TUNNEL_PATH = "/edgemux/tunnel";
/** The Upgrade token for raw smux v2 over the TLS connection. */
export const SMUX_UPGRADE = "edgemux-smux/2";
/** Optional WebSocket subprotocol the agent asks for (and the edge echoes). */
export const WS_SUBPROTOCOL = "edgemux-smux.v2";
/** RFC 6455 §1.3: the GUID appended to Sec-WebSocket-Key. */
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
export const MAX_HEAD_BYTES = 8 * 1024;
const MAX_HEADERS = 64;

/** The parser the edge reads an agent's upgrade request with. Its errors are HTTP_BAD_REQUEST / HTTP_HEADER_TOO_LARGE. */
export function upgradeRequestParser(): Http1RequestParser {
  return new Http1RequestParser({ maxHeadBytes: MAX_HEAD_BYTES, maxFields: MAX_HEADERS });
}

/** The parser the agent reads the edge's answer with; a malformed answer is TUNNEL_PROTOCOL. */
export function upgradeResponseParser(): Http1ResponseParser {
  return new Http1ResponseParser({ maxHeadBytes: MAX_HEAD_BYTES, maxFields: MAX_HEADERS, errorCode: "TUNNEL_PROTOCOL" });
}

function fail(message: string): ProxyError {
  return new ProxyError("TUNNEL_PROTOCOL", "downstream", message);
}

// ---------------------------------------------------------------- edge side

export type UpgradeTransport = "smux" | "websocket";

export interface UpgradeRequest {
  transport: UpgradeTransport;
  /** The bearer token from Authorization, or null. */
  token: string | null;
  /** WebSocket only: Sec-WebSocket-Key. */
  wsKey: string | null;
  /** WebSocket only: the client offered our subprotocol. */
  wsSubprotocol: boolean;
}

/** Checks an agent's request head; throws ProxyError("TUNNEL_PROTOCOL") naming what is wrong. */
export function checkUpgradeRequest(head: HttpRequestHead): UpgradeRequest {
  // RFC 9110 §7.8: Upgrade is only meaningful together with "Connection: upgrade".
  if (head.method !== "GET") throw fail(`tunnel upgrade must be GET, got ${head.method.slice(0, 16)}`);
  // RFC 9110 §7.8: "A server MUST ignore an Upgrade header field that is received in an HTTP/1.0 request."
  if (head.minorVersion !== 1) throw fail("tunnel upgrade must be HTTP/1.1, got HTTP/1.0");
  // An upgrade carries no content: whatever follows the head is the new protocol. A declared body would be
  // read as smux frames here and as a body by anything in front of us, so it is refused, not skipped.
  // (RFC 6455 §4.1 requires a GET for WebSocket; RFC 9110 §9.3.1: "content received in a GET request has no
  // generally defined semantics".)
  if (fieldCount(head, "transfer-encoding") > 0) throw fail("an upgrade request has no body: Transfer-Encoding is not allowed");
  const cl = fieldValue(head, "content-length");
  if (cl !== null && Number(cl) !== 0) throw fail(`an upgrade request has no body: Content-Length ${cl.slice(0, 20)} is not allowed`);
  if (!listHasToken(fieldList(head, "connection"), "upgrade")) throw fail("missing Connection: Upgrade");
  const auth = fieldValue(head, "authorization");
  let token: string | null = null;
  if (auth !== null) {
    const m = /^Bearer +(\S+)$/i.exec(auth);
    if (!m) throw fail("Authorization must be 'Bearer <token>'");
    token = m[1]!;
  }
  const upgrade = fieldList(head, "upgrade") ?? "";
  if (listHasToken(upgrade, SMUX_UPGRADE)) return { transport: "smux", token, wsKey: null, wsSubprotocol: false };
  if (listHasToken(upgrade, "websocket")) {
    // RFC 6455 §11.3.1: "The |Sec-WebSocket-Key| header field MUST NOT appear more than once in an HTTP request."
    // §11.3.5: "The |Sec-WebSocket-Version| header field MUST NOT appear more than once in an HTTP request".
    if (fieldCount(head, "sec-websocket-key") > 1) throw fail("more than one Sec-WebSocket-Key");
    if (fieldCount(head, "sec-websocket-version") > 1) throw fail("more than one Sec-WebSocket-Version");
    const key = fieldValue(head, "sec-websocket-key") ?? "";
    // RFC 6455 §4.2.1: the key "when decoded, is 16 bytes in length"; version "MUST be 13".
    if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) throw fail("Sec-WebSocket-Key must be 16 bytes in base64");
    if (fieldValue(head, "sec-websocket-version") !== "13") throw fail("Sec-WebSocket-Version must be 13");
    const wsSubprotocol = listHasToken(fieldList(head, "sec-websocket-protocol"), WS_SUBPROTOCOL);
    return { transport: "websocket", token, wsKey: key, wsSubprotocol };
  }
  throw fail(`Upgrade must be ${SMUX_UPGRADE} or websocket, got ${JSON.stringify(upgrade.slice(0, 40))}`);
}

/** RFC 6455 §4.2.2: base64(SHA-1(key + GUID)). */
export function wsAccept(key: string): string {
  return base64(sha1(new TextEncoder().encode(key + WS_GUID)));
}

const enc = new TextEncoder();

export function switchingProtocols(req: UpgradeRequest): Uint8Array {
  const lines = ["HTTP/1.1 101 Switching Protocols", "Connection: Upgrade"];
  if (req.transport === "smux") lines.push(`Upgrade: ${SMUX_UPGRADE}`);
  else {
    lines.push("Upgrade: websocket", `Sec-WebSocket-Accept: ${wsAccept(req.wsKey!)}`);
    if (req.wsSubprotocol) lines.push(`Sec-WebSocket-Protocol: ${WS_SUBPROTOCOL}`);
  }
  return enc.encode(`${lines.join("\r\n")}\r\n\r\n`);
}

/** The HTTP status a refused upgrade answers with. */
export function httpStatusForTunnelError(code: number): number {
  switch (code) {
    case TunnelErrorCode.BAD_TOKEN:
    case TunnelErrorCode.AUTH_REQUIRED:
      return 401;
    case TunnelErrorCode.ROLE_DENIED:
    case TunnelErrorCode.CIDR_DENIED:
    case TunnelErrorCode.SERVICE_DENIED:
      return 403;
    case TunnelErrorCode.SESSION_LIMIT:
      return 429;
    case TunnelErrorCode.DRAINING:
    case TunnelErrorCode.INTERNAL:
      return 503;
    default:
      return 400;
  }
}

/** A refusal: status, `Edgemux-Error: <code>`, `Edgemux-Reason: <text>`, a text body, close. */
export function refusalResponse(code: number, reason: string): Uint8Array {
  const status = httpStatusForTunnelError(code);
  const info = tunnelErrorInfo(code);
  // Header values must be visible ASCII (RFC 9110 §5.5): the encoder makes them so; the reason is bounded here.
  const clean = reason.slice(0, 300);
  const fields: [string, string][] = status === 401 ? [["WWW-Authenticate", "Bearer"]] : [];
  fields.push(["Edgemux-Error", String(code)], ["Edgemux-Reason", clean]);
  return encodeClosingResponse(status, fields, `edgemux: tunnel refused: ${info.name} (${code}): ${clean}`);
}

// ---------------------------------------------------------------- agent side

export interface UpgradeRequestOptions {
  host: string;
  transport: UpgradeTransport;
  token: string | null;
  /** WebSocket: 16 random bytes, base64. */
  wsKey?: string;
  userAgent?: string;
}

export function upgradeRequest(o: UpgradeRequestOptions): Uint8Array {
  const lines = [`GET ${TUNNEL_PATH} HTTP/1.1`, `Host: ${o.host}`, "Connection: Upgrade"];
  if (o.transport === "smux") lines.push(`Upgrade: ${SMUX_UPGRADE}`);
  else {
    lines.push("Upgrade: websocket", `Sec-WebSocket-Key: ${o.wsKey}`, "Sec-WebSocket-Version: 13", `Sec-WebSocket-Protocol: ${WS_SUBPROTOCOL}`);
  }
  if (o.token !== null) lines.push(`Authorization: Bearer ${o.token}`);
  if (o.userAgent) lines.push(`User-Agent: ${o.userAgent}`);
  return enc.encode(`${lines.join("\r\n")}\r\n\r\n`);
}

export type UpgradeOutcome =
  | { ok: true }
  | { ok: false; status: number; code: number; reason: string };

/** Reads the edge's answer to `upgradeRequest`. A non-edgemux refusal (a proxy's 502) maps to PROTOCOL/INTERNAL. */
export function checkUpgradeResponse(head: HttpResponseHead, transport: UpgradeTransport, wsKey?: string): UpgradeOutcome {
  const status = head.status;
  if (status === 101) {
    if (transport === "smux" && !listHasToken(fieldList(head, "upgrade"), SMUX_UPGRADE)) {
      return { ok: false, status, code: TunnelErrorCode.PROTOCOL, reason: `101 without Upgrade: ${SMUX_UPGRADE}` };
    }
    // RFC 6455 §11.3.3: "The |Sec-WebSocket-Accept| header field MUST NOT appear more than once in an HTTP response."
    if (transport === "websocket" && (fieldCount(head, "sec-websocket-accept") !== 1 || fieldValue(head, "sec-websocket-accept") !== wsAccept(wsKey ?? ""))) {
      return { ok: false, status, code: TunnelErrorCode.PROTOCOL, reason: "101 with a wrong Sec-WebSocket-Accept" };
    }
    return { ok: true };
  }
  const codeText = fieldValue(head, "edgemux-error");
  const code = codeText !== null && /^\d{1,5}$/.test(codeText) ? Number(codeText) : status >= 500 ? TunnelErrorCode.INTERNAL : TunnelErrorCode.PROTOCOL;
  const reason = fieldValue(head, "edgemux-reason") ?? `HTTP ${status} ${head.reason}`.trim();
  return { ok: false, status, code, reason };
}
