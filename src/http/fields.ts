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

/** The names the Connection fields list (lowercase), Host and framing excluded; null when there are none (the usual case: no allocation). */
function connectionOptions(fields: HttpFields): Set<string> | null {
  let out: Set<string> | null = null;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    if (f[0] !== "connection") continue;
    for (const part of f[1].split(",")) {
      const o = part.trim().toLowerCase();
      if (o !== "" && !NOT_REMOVABLE.has(o)) (out ??= new Set()).add(o);
    }
  }
  return out;
}

/** True when the Connection fields list `token` (case-insensitive). */
export function connectionHas(fields: HttpFields, token: string): boolean {
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    if (f[0] !== "connection") continue;
    for (const part of f[1].split(",")) if (part.trim().toLowerCase() === token) return true;
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
  const out: HttpFields = [];
  rewriteRequest(fields, c, r, out);
  return out;
}

/**
 * The head of a request as sent upstream, as text (upstreamRequestFields'
 * fields after the request line): built straight from the client's fields,
 * with no array or pair per field (the HTTP/1.1 hot path, connection.ts).
 */
export function upstreamRequestHeadText(method: string, target: string, fields: HttpFields, c: ClientContext, r: RequestRewrite): string {
  return rewriteRequest(fields, c, r, null, `${method} ${target} HTTP/1.1\r\n`) + "\r\n";
}

/** Both forms of the request rewrite: pushes the fields to `out`, or (out null) appends `name: value` lines to `text`. */
function rewriteRequest(fields: HttpFields, c: ClientContext, r: RequestRewrite, out: HttpFields | null, text = ""): string {
  const named = connectionOptions(fields);
  let xff: string | null = null;
  let xfp: string | null = null;
  let xfh: string | null = null;
  let fwd: string | null = null;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const n = f[0];
    if (HOP_BY_HOP.has(n) || (named !== null && named.has(n))) continue;
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
    if (out !== null) out.push(f);
    else text += `${n}: ${f[1]}\r\n`;
  }
  const node = xffNode(c.clientIp);
  const host = xfh ?? c.host;
  const element = forwardedElement(c);
  const xffValue = xff === null || xff === "" ? node : `${xff}, ${node}`;
  const fwdValue = fwd === null || fwd === "" ? element : `${fwd}, ${element}`;
  if (out !== null) {
    out.push(["x-forwarded-for", xffValue]);
    out.push(["x-forwarded-proto", xfp ?? c.proto]);
    if (host !== null) out.push(["x-forwarded-host", host]);
    out.push(["forwarded", fwdValue]);
    if (r.upgrade !== null) out.push(["connection", "upgrade"], ["upgrade", r.upgrade]);
    return text;
  }
  text += `x-forwarded-for: ${xffValue}\r\nx-forwarded-proto: ${xfp ?? c.proto}\r\n`;
  if (host !== null) text += `x-forwarded-host: ${host}\r\n`;
  text += `forwarded: ${fwdValue}\r\n`;
  if (r.upgrade !== null) text += `connection: upgrade\r\nupgrade: ${r.upgrade}\r\n`;
  return text;
}

/**
 * The fields of a response as sent to the client: hop-by-hop fields gone,
 * the route's fields set (replacing the backend's of the same name), and
 * `Connection: close` when this is the connection's last response. For a
 * 101 the Upgrade the backend chose stays, with `Connection: upgrade`.
 */
export function clientResponseFields(fields: HttpFields, set: readonly [string, string][], opts: { close: boolean; switching: boolean }): HttpFields {
  const out: HttpFields = [];
  rewriteResponse(fields, set, opts.close, opts.switching, out);
  return out;
}

/** The head of a response as sent to the client, as text (clientResponseFields' fields after the status line), no array or pair per field. */
export function clientResponseHeadText(status: number, reason: string, fields: HttpFields, set: readonly [string, string][], close: boolean): string {
  return rewriteResponse(fields, set, close, false, null, `HTTP/1.1 ${status} ${reason === "" ? reasonPhrase(status) : reason}\r\n`) + "\r\n";
}

/** A route response field replaces the backend's of the same name (compared in lower case, as the codec gives names). */
function isReplaced(set: readonly [string, string][], n: string): boolean {
  for (let i = 0; i < set.length; i++) if (set[i]![0].toLowerCase() === n) return true;
  return false;
}

function rewriteResponse(fields: HttpFields, set: readonly [string, string][], close: boolean, switching: boolean, out: HttpFields | null, text = ""): string {
  const named = connectionOptions(fields);
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const n = f[0];
    const keep = (n === "upgrade" && switching) || !(HOP_BY_HOP.has(n) || (named !== null && named.has(n)) || (set.length > 0 && isReplaced(set, n)));
    if (!keep) continue;
    if (out !== null) out.push(f);
    else text += `${n}: ${f[1]}\r\n`;
  }
  for (let i = 0; i < set.length; i++) {
    if (out !== null) out.push(set[i]!);
    else text += `${set[i]![0]}: ${set[i]![1]}\r\n`;
  }
  if (switching) {
    if (out !== null) out.push(["connection", "upgrade"]);
    else text += "connection: upgrade\r\n";
  } else if (close) {
    if (out !== null) out.push(["connection", "close"]);
    else text += "connection: close\r\n";
  }
  return text;
}

/** Any character outside ASCII: the head then takes the slower per-character latin1 copy. */
const NON_ASCII = /[^\x00-\x7f]/;
const utf8 = new TextEncoder();

/**
 * Latin-1 bytes of a head (field values are read as latin1 by the codec, so
 * obs-text goes back out unchanged), followed in the same buffer by `body`
 * when given: head and a small body leave in one write, so one TLS record
 * and one send (connection.ts). Allocation: one buffer per head.
 */
export function latin1With(text: string, body: readonly Uint8Array[] | null, bodyBytes: number): Uint8Array {
  const out = new Uint8Array(text.length + bodyBytes);
  if (!NON_ASCII.test(text)) utf8.encodeInto(text, out); // ASCII: UTF-8 is the same bytes, copied natively
  else for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  if (body !== null) {
    let o = text.length;
    for (let i = 0; i < body.length; i++) {
      out.set(body[i]!, o);
      o += body[i]!.length;
    }
  }
  return out;
}

export function requestHeadText(method: string, target: string, fields: HttpFields): string {
  let head = `${method} ${target} HTTP/1.1\r\n`;
  for (let i = 0; i < fields.length; i++) head += `${fields[i]![0]}: ${fields[i]![1]}\r\n`;
  return head + "\r\n";
}

export function responseHeadText(status: number, reason: string, fields: HttpFields): string {
  let head = `HTTP/1.1 ${status} ${reason === "" ? reasonPhrase(status) : reason}\r\n`;
  for (let i = 0; i < fields.length; i++) head += `${fields[i]![0]}: ${fields[i]![1]}\r\n`;
  return head + "\r\n";
}

export function encodeRequestHead(method: string, target: string, fields: HttpFields): Uint8Array {
  return latin1With(requestHeadText(method, target, fields), null, 0);
}

export function encodeResponseHead(status: number, reason: string, fields: HttpFields): Uint8Array {
  return latin1With(responseHeadText(status, reason, fields), null, 0);
}
