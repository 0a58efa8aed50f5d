/**
 * Responses the http listener writes itself: error pages (the status comes
 * from the one errors table), the HTTPS redirect, the Basic-auth challenge.
 * Short text pages that name the cause, with the code in `Edgemux-Error`.
 */
import { type ErrorCode, httpOriginStatusFor } from "../errors/mod.ts";
import { printable, reasonPhrase } from "../proto/mod.ts";

const enc = new TextEncoder();

export interface LocalResponse {
  status: number;
  /** The whole HTTP/1.1 response. */
  bytes: Uint8Array;
  /** Body bytes (for the access log). */
  bodyBytes: number;
  /** The same response for HTTP/2: its fields (lowercase names, no Connection) and body. */
  fields: [string, string][];
  body: Uint8Array;
}

/** A whole response; `close` adds `Connection: close`; `head` (a HEAD request) leaves the body out but keeps its length. */
export function localResponse(status: number, fields: readonly [string, string][], body: string, opts: { close: boolean; head: boolean }): LocalResponse {
  let text = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
  const h2: [string, string][] = [];
  for (const [n, v] of fields) {
    text += `${n}: ${printable(v)}\r\n`;
    h2.push([n.toLowerCase(), printable(v)]);
  }
  const b = enc.encode(body);
  text += `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${b.length}\r\nCache-Control: no-store\r\n`;
  h2.push(["content-type", "text/plain; charset=utf-8"], ["content-length", String(b.length)], ["cache-control", "no-store"]);
  if (opts.close) text += "Connection: close\r\n";
  const head = enc.encode(text + "\r\n");
  if (opts.head || b.length === 0) return { status, bytes: head, bodyBytes: 0, fields: h2, body: EMPTY };
  const out = new Uint8Array(head.length + b.length);
  out.set(head);
  out.set(b, head.length);
  return { status, bytes: out, bodyBytes: b.length, fields: h2, body: b };
}

const EMPTY = new Uint8Array(0);

/** The page for an error: "502 Bad Gateway", the code and the message (it may quote client input: kept printable). */
export function errorPage(code: ErrorCode, message: string, opts: { close: boolean; head: boolean }): LocalResponse {
  const status = httpOriginStatusFor(code);
  const extra: [string, string][] = [["Edgemux-Error", code]];
  if (status === 401) extra.push(["WWW-Authenticate", 'Basic realm="edgemux", charset="UTF-8"']);
  const body = `${status} ${reasonPhrase(status)}\n\n${code}: ${printable(message)}\n`;
  return localResponse(status, extra, body, opts);
}

/** 301 to the same host and target over https (redirect_https). */
export function redirectHttps(host: string, origin: string, opts: { close: boolean; head: boolean }): LocalResponse {
  const location = `https://${host}${origin === "*" ? "/" : origin}`;
  return localResponse(301, [["Location", location]], `Moved to ${location}\n`, opts);
}
