/**
 * What the proxy changes in a message head on its way through (pure):
 * hop-by-hop fields removed (RFC 9110 §7.6.1), the client named in
 * X-Forwarded-For / -Proto / -Host and RFC 7239 Forwarded, route response
 * fields set, and the head encoded back to bytes.
 *
 * Framing fields (Content-Length, Transfer-Encoding) are kept as received:
 * bodies pass through byte for byte (body.ts), so the framing that described
 * them still does.
 */
import type { HttpFields } from "../proto/mod.ts";
import { reasonPhrase } from "../proto/mod.ts";
import { forwardedFor } from "../upstream/mod.ts";

/**
 * RFC 9110 §7.6.1: "a proxy or gateway MUST parse a received Connection header field before a message is
 * forwarded and, for each connection-option in this field, remove any header or trailer field(s) from the
 * message with the same name as the connection-option, and then remove the Connection header field itself".
 * Also the fields it lists as hop-by-hop even when not named there.
 */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "te", "upgrade", "proxy-authorization", "proxy-authenticate"]);

/** Fields a Connection option may not remove: the message's framing and Host are not the sender's to drop. */
const NOT_REMOVABLE = new Set(["host", "content-length", "transfer-encoding"]);

const FORWARDED_FIELDS = new Set(["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"]);

/** The names the Connection fields list (lowercase), Host and framing excluded. */
function connectionOptions(fields: HttpFields): Set<string> {
  const out = new Set<string>();
  for (const [n, v] of fields) {
    if (n !== "connection") continue;
    for (const part of v.split(",")) {
      const o = part.trim().toLowerCase();
      if (o !== "" && !NOT_REMOVABLE.has(o)) out.add(o);
    }
  }
  return out;
}

/** True when the Connection fields list `token` (case-insensitive). */
export function connectionHas(fields: HttpFields, token: string): boolean {
  for (const [n, v] of fields) {
    if (n !== "connection") continue;
    for (const part of v.split(",")) if (part.trim().toLowerCase() === token) return true;
  }
  return false;
}

/** Who sent a request and how, for the forwarded fields. */
export interface ClientContext {
  /** The client's IP as the listener saw it (after an inbound PROXY header). */
  clientIp: string;
  /** The client is in trusted_proxies: its forwarded fields are kept and appended to. */
  trusted: boolean;
  proto: "http" | "https";
  /** The Host the client asked for, as sent (with a port when it had one); null when it sent none. */
  host: string | null;
}

/** RFC 7239 §4: value = token / quoted-string. */
function forwardedValue(v: string): string {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(v) ? v : `"${v.replace(/["\\]/g, "\\$&")}"`;
}

/** The Forwarded element this hop adds: `for=…;host=…;proto=…`. */
export function forwardedElement(c: ClientContext): string {
  // RFC 7239 §6.1: a unix-socket client has no address: "unknown".
  let e = c.clientIp === "" ? "for=unknown" : forwardedFor(c.clientIp);
  if (c.host !== null) e += `;host=${forwardedValue(c.host)}`;
  return `${e};proto=${c.proto}`;
}

/** The X-Forwarded-For form of the client: a bare address, IPv4-mapped IPv6 unmapped. */
function xffNode(ip: string): string {
  return ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip === "" ? "unknown" : ip;
}

export interface RequestRewrite {
  /** The Upgrade value to pass on (a WebSocket handshake), or null. */
  upgrade: string | null;
  /** Drop the client's Authorization: the proxy consumed it (the route's Basic auth). */
  dropAuthorization: boolean;
}

/**
 * The fields of a request as sent upstream: hop-by-hop fields gone (with
 * those Connection names), forwarded fields replaced or (trusted client)
 * appended to, and for an upgrade `Connection: upgrade` + `Upgrade`.
 */
export function upstreamRequestFields(fields: HttpFields, c: ClientContext, r: RequestRewrite): HttpFields {
  const named = connectionOptions(fields);
  const out: HttpFields = [];
  let xff: string | null = null;
  let xfp: string | null = null;
  let xfh: string | null = null;
  let fwd: string | null = null;
  for (const f of fields) {
    const n = f[0];
    if (HOP_BY_HOP.has(n) || named.has(n)) continue;
    if (FORWARDED_FIELDS.has(n)) {
      if (!c.trusted) continue;
      // Several lines of a list field are one list (RFC 9110 §5.3).
      if (n === "x-forwarded-for") xff = xff === null ? f[1] : `${xff}, ${f[1]}`;
      else if (n === "forwarded") fwd = fwd === null ? f[1] : `${fwd}, ${f[1]}`;
      else if (n === "x-forwarded-proto") xfp ??= f[1];
      else xfh ??= f[1];
      continue;
    }
    if (n === "authorization" && r.dropAuthorization) continue;
    out.push(f);
  }
  const node = xffNode(c.clientIp);
  out.push(["x-forwarded-for", xff === null || xff === "" ? node : `${xff}, ${node}`]);
  out.push(["x-forwarded-proto", xfp ?? c.proto]);
  const host = xfh ?? c.host;
  if (host !== null) out.push(["x-forwarded-host", host]);
  const element = forwardedElement(c);
  out.push(["forwarded", fwd === null || fwd === "" ? element : `${fwd}, ${element}`]);
  if (r.upgrade !== null) out.push(["connection", "upgrade"], ["upgrade", r.upgrade]);
  return out;
}

/**
 * The fields of a response as sent to the client: hop-by-hop fields gone,
 * the route's fields set (replacing the backend's of the same name), and
 * `Connection: close` when this is the connection's last response. For a
 * 101 the Upgrade the backend chose stays, with `Connection: upgrade`.
 */
export function clientResponseFields(fields: HttpFields, set: readonly [string, string][], opts: { close: boolean; switching: boolean }): HttpFields {
  const named = connectionOptions(fields);
  const replaced = set.length === 0 ? null : new Set(set.map(([n]) => n.toLowerCase()));
  const out: HttpFields = [];
  for (const f of fields) {
    const n = f[0];
    if (n === "upgrade" && opts.switching) {
      out.push(f);
      continue;
    }
    if (HOP_BY_HOP.has(n) || named.has(n) || (replaced !== null && replaced.has(n))) continue;
    out.push(f);
  }
  for (const f of set) out.push(f);
  if (opts.switching) out.push(["connection", "upgrade"]);
  else if (opts.close) out.push(["connection", "close"]);
  return out;
}

/**
 * Latin-1 bytes of a head (field values are read as latin1 by the codec, so
 * obs-text goes back out unchanged). Allocation: one buffer per head.
 */
function latin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

export function encodeRequestHead(method: string, target: string, fields: HttpFields): Uint8Array {
  let head = `${method} ${target} HTTP/1.1\r\n`;
  for (const [n, v] of fields) head += `${n}: ${v}\r\n`;
  return latin1(head + "\r\n");
}

export function encodeResponseHead(status: number, reason: string, fields: HttpFields): Uint8Array {
  let head = `HTTP/1.1 ${status} ${reason === "" ? reasonPhrase(status) : reason}\r\n`;
  for (const [n, v] of fields) head += `${n}: ${v}\r\n`;
  return latin1(head + "\r\n");
}
