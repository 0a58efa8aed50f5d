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
 * then close. Both directions are parsed by `HttpHeadParser`.
 */
import { createHash } from "node:crypto";
import { ProxyError } from "../errors/mod.ts";
import { TunnelErrorCode, tunnelErrorInfo } from "../proto/tunnel_control.ts";

export const TUNNEL_PATH = "/edgemux/tunnel";
/** The Upgrade token for raw smux v2 over the TLS connection. */
export const SMUX_UPGRADE = "edgemux-smux/2";
/** Optional WebSocket subprotocol the agent asks for (and the edge echoes). */
export const WS_SUBPROTOCOL = "edgemux-smux.v2";
/** RFC 6455 §1.3: the GUID appended to Sec-WebSocket-Key. */
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
export const MAX_HEAD_BYTES = 8 * 1024;
const MAX_HEADERS = 64;

export interface HttpHead {
  /** Request: method, target, version. Response: version, status, reason. */
  line: [string, string, string];
  /** Lower-cased names; repeated headers joined with ", " (RFC 9110 §5.3). */
  headers: Map<string, string>;
}

const CR = 13;
const LF = 10;

/**
 * Collects bytes until the blank line that ends an HTTP/1.1 head, bounded by
 * `maxBytes`; `next()` parses it once, `rest()` hands back what followed.
 */
export class HttpHeadParser {
  private chunks: Uint8Array[] = [];
  private size = 0;
  private done = false;
  private restChunks: Uint8Array[] = [];

  constructor(private readonly kind: "request" | "response", private readonly maxBytes = MAX_HEAD_BYTES) {}

  push(chunk: Uint8Array): void {
    if (this.done) {
      this.restChunks.push(chunk);
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  /** The head once complete, null before. Throws ProxyError("TUNNEL_PROTOCOL") when malformed or over the bound. */
  next(): HttpHead | null {
    if (this.done) return null;
    const all = this.joined();
    const end = findHeadEnd(all);
    if (end < 0) {
      if (all.length > this.maxBytes) throw fail(`HTTP head is over ${this.maxBytes} bytes`);
      return null;
    }
    if (end > this.maxBytes) throw fail(`HTTP head is over ${this.maxBytes} bytes`);
    this.done = true;
    const rest = all.subarray(end);
    if (rest.length > 0) this.restChunks.unshift(rest);
    this.chunks = [];
    return parseHead(all.subarray(0, end), this.kind);
  }

  /** Bytes after the head (the first frames of the upgraded protocol). */
  rest(): Uint8Array[] {
    const r = this.restChunks;
    this.restChunks = [];
    return r;
  }

  private joined(): Uint8Array {
    if (this.chunks.length === 1) return this.chunks[0]!;
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    this.chunks = [out];
    return out;
  }
}

function fail(message: string): ProxyError {
  return new ProxyError("TUNNEL_PROTOCOL", "downstream", message);
}

/** Offset just past the blank line (CRLF CRLF, or LF LF which RFC 9112 §2.2 lets a recipient accept), or -1. */
function findHeadEnd(b: Uint8Array): number {
  for (let i = 0; i < b.length; i++) {
    if (b[i] !== LF) continue;
    if (b[i + 1] === LF) return i + 2;
    if (b[i + 1] === CR && b[i + 2] === LF) return i + 3;
  }
  return -1;
}

const TOKEN_CHAR = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function parseHead(bytes: Uint8Array, kind: "request" | "response"): HttpHead {
  // RFC 9112 §2.2: "a recipient MUST parse an HTTP message as a sequence of octets in an encoding that is a superset of US-ASCII".
  const text = new TextDecoder("latin1").decode(bytes);
  const lines = text.split("\n").map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l));
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const first = lines.shift() ?? "";
  const parts = first.split(" ");
  let line: [string, string, string];
  if (kind === "request") {
    if (parts.length !== 3) throw fail(`malformed request line ${JSON.stringify(first.slice(0, 80))}`);
    line = [parts[0]!, parts[1]!, parts[2]!];
    if (line[2] !== "HTTP/1.1") throw fail(`expected HTTP/1.1, got ${JSON.stringify(line[2].slice(0, 16))}`);
  } else {
    if (parts.length < 2 || !/^HTTP\/1\.[01]$/.test(parts[0]!) || !/^\d{3}$/.test(parts[1]!)) {
      throw fail(`malformed status line ${JSON.stringify(first.slice(0, 80))}`);
    }
    line = [parts[0]!, parts[1]!, parts.slice(2).join(" ")];
  }
  if (lines.length > MAX_HEADERS) throw fail(`more than ${MAX_HEADERS} header fields`);
  const headers = new Map<string, string>();
  for (const l of lines) {
    // RFC 9112 §5.2: obsolete line folding; "a server that receives an obs-fold ... MUST either reject the message".
    if (l.startsWith(" ") || l.startsWith("\t")) throw fail("obsolete header line folding");
    const colon = l.indexOf(":");
    // RFC 9112 §5.1: "No whitespace is allowed between the field name and colon."
    if (colon <= 0 || !TOKEN_CHAR.test(l.slice(0, colon))) throw fail(`malformed header line ${JSON.stringify(l.slice(0, 80))}`);
    const name = l.slice(0, colon).toLowerCase();
    const value = l.slice(colon + 1).trim();
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
  }
  return { line, headers };
}

/** True when a comma-separated header value lists `token` (case-insensitive). */
export function headerHasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  const t = token.toLowerCase();
  return value.split(",").some((v) => v.trim().toLowerCase() === t);
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
export function checkUpgradeRequest(head: HttpHead): UpgradeRequest {
  const [method] = head.line;
  const h = head.headers;
  // RFC 9110 §7.8: Upgrade is only meaningful together with "Connection: upgrade".
  if (method !== "GET") throw fail(`tunnel upgrade must be GET, got ${method.slice(0, 16)}`);
  if (!headerHasToken(h.get("connection"), "upgrade")) throw fail("missing Connection: Upgrade");
  const auth = h.get("authorization");
  let token: string | null = null;
  if (auth !== undefined) {
    const m = /^Bearer +(\S+)$/i.exec(auth);
    if (!m) throw fail("Authorization must be 'Bearer <token>'");
    token = m[1]!;
  }
  const upgrade = h.get("upgrade") ?? "";
  if (headerHasToken(upgrade, SMUX_UPGRADE)) return { transport: "smux", token, wsKey: null, wsSubprotocol: false };
  if (headerHasToken(upgrade, "websocket")) {
    const key = h.get("sec-websocket-key") ?? "";
    // RFC 6455 §4.2.1: the key "when decoded, is 16 bytes in length"; version "MUST be 13".
    if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) throw fail("Sec-WebSocket-Key must be 16 bytes in base64");
    if (h.get("sec-websocket-version") !== "13") throw fail("Sec-WebSocket-Version must be 13");
    const wsSubprotocol = headerHasToken(h.get("sec-websocket-protocol"), WS_SUBPROTOCOL);
    return { transport: "websocket", token, wsKey: key, wsSubprotocol };
  }
  throw fail(`Upgrade must be ${SMUX_UPGRADE} or websocket, got ${JSON.stringify(upgrade.slice(0, 40))}`);
}

/** RFC 6455 §4.2.2: base64(SHA-1(key + GUID)). */
export function wsAccept(key: string): string {
  return createHash("sha1").update(key + WS_GUID).digest("base64");
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

const STATUS_TEXT: Record<number, string> = { 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests", 503: "Service Unavailable" };

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
  // Header values must be visible ASCII (RFC 9110 §5.5); the reason is ours, but keep it safe.
  const clean = reason.replace(/[^\x20-\x7e]/g, "?").slice(0, 300);
  const body = `edgemux: tunnel refused: ${info.name} (${code}): ${clean}\n`;
  const wwwAuth = status === 401 ? "WWW-Authenticate: Bearer\r\n" : "";
  return enc.encode(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}\r\n${wwwAuth}Edgemux-Error: ${code}\r\nEdgemux-Reason: ${clean}\r\n` +
      `Content-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
  );
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
export function checkUpgradeResponse(head: HttpHead, transport: UpgradeTransport, wsKey?: string): UpgradeOutcome {
  const status = Number(head.line[1]);
  const h = head.headers;
  if (status === 101) {
    if (transport === "smux" && !headerHasToken(h.get("upgrade"), SMUX_UPGRADE)) {
      return { ok: false, status, code: TunnelErrorCode.PROTOCOL, reason: `101 without Upgrade: ${SMUX_UPGRADE}` };
    }
    if (transport === "websocket" && h.get("sec-websocket-accept") !== wsAccept(wsKey ?? "")) {
      return { ok: false, status, code: TunnelErrorCode.PROTOCOL, reason: "101 with a wrong Sec-WebSocket-Accept" };
    }
    return { ok: true };
  }
  const codeText = h.get("edgemux-error");
  const code = codeText !== undefined && /^\d{1,5}$/.test(codeText) ? Number(codeText) : status >= 500 ? TunnelErrorCode.INTERNAL : TunnelErrorCode.PROTOCOL;
  const reason = h.get("edgemux-reason") ?? `HTTP ${status} ${head.line[2]}`.trim();
  return { ok: false, status, code, reason };
}
