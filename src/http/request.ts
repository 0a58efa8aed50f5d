/**
 * Reading a request head for routing (pure): the request target's forms
 * (RFC 9112 §3.2), the Host it names, and the path the route table sees.
 */
import { ProxyError } from "../errors/mod.ts";
import { parseHost } from "../proto/mod.ts";

function bad(message: string): ProxyError {
  return new ProxyError("HTTP_BAD_REQUEST", "downstream", message);
}

export interface Target {
  /** Origin-form target sent upstream: "/path?query", or "*" (OPTIONS). */
  origin: string;
  /** The authority of an absolute-form target (it replaces Host, RFC 9112 §3.2.2), else null. */
  authority: string | null;
}

/**
 * RFC 9112 §3.2: origin-form ("/p?q"), absolute-form ("http://h/p", which
 * "a server MUST accept"), asterisk-form (OPTIONS only). authority-form is
 * CONNECT's, refused before this (405).
 */
export function parseTarget(method: string, target: string): Target {
  if (target.charCodeAt(0) === 0x2f) {
    // RFC 9112 §3.2.1: origin-form = absolute-path [ "?" query ]; no fragment on the wire.
    if (target.includes("#")) throw bad("Request target with a fragment");
    return { origin: target, authority: null };
  }
  if (target === "*") {
    if (method !== "OPTIONS") throw bad(`"*" is the target of OPTIONS only, not ${method}`);
    return { origin: "*", authority: null };
  }
  const m = /^https?:\/\/([^/?#]*)([^#]*)$/i.exec(target);
  if (m === null) throw bad(`Request target must be /path or http(s)://host/path, got ${JSON.stringify(target.slice(0, 80))}`);
  const authority = m[1]!;
  // RFC 9110 §4.2.4: userinfo in an http(s) URI is deprecated and a recipient SHOULD treat it as an error.
  if (authority === "" || authority.includes("@")) throw bad("Absolute request target without a host, or with userinfo");
  const rest = m[2]!;
  return { origin: rest === "" ? "/" : rest.startsWith("?") ? `/${rest}` : rest, authority };
}

/**
 * The route-table name of a Host value ("Example.COM:8080" → "example.com"):
 * canonical, port dropped; null for an IP literal. Throws 400 when it is
 * neither a host name nor an IP address (the codec already refused
 * characters a Host cannot hold).
 */
export function hostName(value: string): string | null {
  let host = value;
  if (value.startsWith("[")) {
    const close = value.indexOf("]");
    if (close < 0) throw bad("Host with an unclosed IPv6 bracket");
    checkPort(value.slice(close + 1));
    host = value.slice(0, close + 1);
  } else {
    const colon = value.indexOf(":");
    if (colon >= 0) {
      checkPort(value.slice(colon));
      host = value.slice(0, colon);
    }
  }
  const h = parseHost(host);
  return h.kind === "name" ? h.host : null;
}

/** RFC 9110 §7.2: Host = uri-host [ ":" port ]; port = *DIGIT (an empty port is allowed). */
function checkPort(rest: string): void {
  if (rest === "") return;
  if (!/^:[0-9]{0,5}$/.test(rest)) throw bad(`Host port must be digits, got ${JSON.stringify(rest.slice(0, 20))}`);
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * The path the route table matches (the query cut off): percent-encoded
 * unreserved characters decoded (RFC 3986 §6.2.2.2: "%7E" and "~" are the
 * same URI), so "/%61dmin" cannot slip past a route for "/admin". A path with
 * a dot-segment ("/a/../b", "/./") is refused: clients remove them before
 * sending (RFC 3986 §5.2.4), and a backend that resolves them would serve a
 * path another route, perhaps with Basic auth, was meant to take.
 */
export function routingPath(origin: string): string {
  if (origin === "*") return "*";
  const q = origin.indexOf("?");
  let path = q < 0 ? origin : origin.slice(0, q);
  if (path.includes("%")) {
    path = path.replace(/%([0-9A-Fa-f]{2})/g, (whole, h: string) => {
      const c = String.fromCharCode(parseInt(h, 16));
      return UNRESERVED.test(c) ? c : whole.toUpperCase();
    });
  }
  for (const seg of path.split("/")) {
    if (seg === "." || seg === "..") throw bad("Request path with a dot-segment (/./ or /../)");
  }
  return path;
}
