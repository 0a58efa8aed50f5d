/**
 * HTTP/2 message heads ⇄ the HTTP/1.1 heads the upstream speaks (pure).
 *
 * A request's decoded header list (RFC 9113 §8.3) is checked and turned into
 * an HttpRequestHead as the HTTP/1.1 codec would have produced it, so the
 * rest of the listener (routing, forwarded fields, the upstream request)
 * reads one shape: `:authority` becomes Host, the `cookie` crumbs are joined
 * again (§8.2.3). A response head from the upstream goes the other way:
 * connection-specific fields dropped (§8.2.2), names lowercased.
 */
import { ProxyError } from "../errors/mod.ts";
import { CONNECTION_SPECIFIC, type HttpFields, type HttpRequestHead, readH2RequestFields } from "../proto/mod.ts";


export interface H2Request {
  /** The request as an HTTP/1.1 head: `target` is `:path`, Host comes first. */
  head: HttpRequestHead;
  /** `:authority` (or Host when absent), as sent; null when neither. */
  authority: string | null;
  /** The declared content-length, or -1. */
  contentLength: number;
}

function bad(message: string): ProxyError {
  return new ProxyError("HTTP_BAD_REQUEST", "downstream", message);
}

/** Reads a request's header list (§8.3.1); throws 400 (malformed), 405 (CONNECT: not this listener's). */
export function readH2Request(fields: readonly [string, string][]): H2Request {
  // Assigned in the callback below: typed wide so the checks after it are not narrowed to null.
  let host = null as string | null;
  let contentLength = -1;
  const cookies: string[] = [];
  const out: HttpFields = [];
  const { method, scheme, authority, path } = readH2RequestFields(fields, (name, value) => {
    if (name === "cookie") {
      cookies.push(value);
      return;
    }
    if (name === "host") {
      if (host !== null) throw bad("Repeated host");
      host = value;
      return;
    }
    if (name === "content-length") {
      if (contentLength >= 0 || !/^[0-9]{1,15}$/.test(value)) throw bad("Malformed or repeated content-length");
      contentLength = Number(value);
    }
    out.push([name, value]);
  });
  if (method === null) throw bad("No :method");
  if (method === "CONNECT") throw new ProxyError("HTTP_METHOD_NOT_ALLOWED", "downstream", "CONNECT is for connect listeners; this is an http listener");
  // §8.3.1: "All HTTP/2 requests MUST include exactly one valid value for the :method, :scheme, and :path pseudo-header fields, unless they are CONNECT requests".
  if (scheme === null || path === null) throw bad("Request without :scheme or :path");
  if (scheme !== "https" && scheme !== "http") throw bad(`Unsupported :scheme ${JSON.stringify(scheme.slice(0, 20))}`);
  if (path === "" || (path.charCodeAt(0) !== 0x2f && !(path === "*" && method === "OPTIONS"))) throw bad("Malformed :path");
  // §8.3.1: "A server SHOULD treat a request as malformed if it contains a Host header field that identifies an entity that differs from the entity in the :authority pseudo-header field."
  if (authority !== null && host !== null && authority.toLowerCase() !== host.toLowerCase()) throw bad("host differs from :authority");
  const hostText = authority ?? host;
  // RFC 9110 §7.2, as the HTTP/1.1 codec checks Host: the characters of a reg-name, an IP literal and a port (no userinfo).
  if (hostText !== null && !/^[A-Za-z0-9\-._~%!$&'()*+,;=:[\]]+$/.test(hostText)) throw bad("Malformed :authority");
  const head: HttpFields = hostText !== null ? [["host", hostText]] : [];
  for (const f of out) head.push(f);
  // §8.2.3: several cookie fields "MUST be concatenated into a single octet string using the two-octet delimiter of 0x3b, 0x20" before HTTP/1.1.
  if (cookies.length > 0) head.push(["cookie", cookies.join("; ")]);
  return { head: { method, target: path, minorVersion: 1, fields: head, headBytes: 0 }, authority: hostText, contentLength };
}

/** A response's fields for HTTP/2: `:status` first, names lowercased, connection-specific fields left out (§8.2.2). */
export function h2ResponseFields(status: number, fields: readonly [string, string][]): [string, string][] {
  const out: [string, string][] = [[":status", String(status)]];
  for (const [n, v] of fields) {
    const name = n.toLowerCase();
    if (CONNECTION_SPECIFIC.has(name) || name === "te") continue;
    out.push([name, v]);
  }
  return out;
}
