/**
 * Tunnel destinations as clients write them: `host:port` (the authority-form
 * of HTTP CONNECT, RFC 9110 §9.3.6, and the HTTP/2 `:authority`), and bare
 * hosts (SOCKS5 domain names, which curl also uses for IP literals).
 *
 * A host comes out canonical so policy compares one spelling: a DNS name in
 * the hostname canonicaliser's form (lowercase, no trailing dot, `[a-z0-9_-]`
 * labels), an IPv4 literal as four decimal octets (no leading zeros: "010"
 * is octal to some parsers), an IPv6 literal in RFC 5952 form. Other IPv4
 * spellings ("127.1", "0x7f.1") are refused, never guessed.
 */
import { ProxyError } from "../errors/mod.ts";
import { canonicalHostnameBytes } from "./hostname.ts";
import { formatHostPort, ipv6GroupsText, parseIPv6Groups } from "./ip_text.ts";

export type HostKind = "name" | "ipv4" | "ipv6";

export interface Authority {
  /** Canonical host; IPv6 without brackets. */
  host: string;
  kind: HostKind;
  port: number;
}

/** Longest authority text accepted: a 253-byte name, ":" and a port, with room for "[v6]". */
export const MAX_AUTHORITY_LENGTH = 262;

const enc = new TextEncoder();

function bad(what: string, text: string): ProxyError {
  const shown = JSON.stringify(text.length > 80 ? text.slice(0, 80) + "…" : text);
  return new ProxyError("HTTP_BAD_REQUEST", "downstream", `${what}: ${shown}`);
}

/** Strict dotted quad, or null. */
export function canonicalIPv4(s: string): string | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  for (const p of parts) {
    if (p.length === 0 || p.length > 3 || (p.length > 1 && p[0] === "0")) return null;
    for (let i = 0; i < p.length; i++) {
      const c = p.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return null;
    }
    if (Number(p) > 255) return null;
  }
  return s;
}

/**
 * RFC 4291 §2.2 text (hex groups, one "::", optional dotted-quad tail) to
 * its RFC 5952 form, or null. No zone ids.
 */
export function canonicalIPv6(s: string): string | null {
  const groups = new Uint16Array(8);
  return parseIPv6Groups(s, 0, s.length, groups) ? ipv6GroupsText(groups, false) : null;
}

/**
 * A host without a port: IPv4, IPv6 (bracketed or not), or a DNS name.
 * Throws HTTP_BAD_REQUEST (callers that are not HTTP map the code).
 */
export function parseHost(text: string): { host: string; kind: HostKind } {
  if (text.length === 0 || text.length > MAX_AUTHORITY_LENGTH) throw bad("host must be 1..253 characters", text);
  let inner = text;
  const bracketed = text.startsWith("[") && text.endsWith("]");
  if (bracketed) inner = text.slice(1, -1);
  if (bracketed || inner.includes(":")) {
    const v6 = canonicalIPv6(inner);
    if (v6 === null) throw bad("not an IPv6 address", text);
    return { host: v6, kind: "ipv6" };
  }
  const v4 = canonicalIPv4(inner);
  if (v4 !== null) return { host: v4, kind: "ipv4" };
  const bytes = enc.encode(inner);
  const name = bytes.length === inner.length ? canonicalHostnameBytes(bytes, 0, bytes.length) : null;
  if (name === null) throw bad("not a host name or IP address", text);
  return { host: name, kind: "name" };
}

/** "host:port" or "[v6]:port" with a port 1..65535 (decimal, no sign, no leading zeros). */
export function parseAuthority(text: string): Authority {
  if (text.length === 0 || text.length > MAX_AUTHORITY_LENGTH) throw bad("authority must be host:port of at most 262 characters", text);
  let hostText: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text.charCodeAt(close + 1) !== 0x3a) throw bad("authority must be [IPv6]:port", text);
    hostText = text.slice(0, close + 1);
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) throw bad("authority needs a port (host:port)", text);
    hostText = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (hostText.includes(":")) throw bad("an IPv6 authority needs brackets ([::1]:443)", text);
  }
  const port = parsePort(portText);
  if (port < 0) throw bad("port must be 1..65535", text);
  const h = parseHost(hostText);
  return { host: h.host, kind: h.kind, port };
}

/** Decimal 1..65535 without sign or leading zeros, or -1. */
export function parsePort(s: string): number {
  if (s.length === 0 || s.length > 5 || s[0] === "0") return -1;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v >= 1 && v <= 65535 ? v : -1;
}

export function formatAuthority(a: { host: string; port: number }): string {
  return formatHostPort(a.host, a.port);
}
