/**
 * Listen and target addresses: "host:port", "[v6]:port" or "unix:/path".
 * IP literals are canonicalised (RFC 5952 for IPv6) so that two spellings of
 * one address compare equal; hostnames are canonicalised like route patterns.
 */

import { formatHostPort } from "../proto/ip_text.ts";
import type { Address } from "./types.ts";
import { canonicalIp, parseIPv4 } from "./ip.ts";
import { canonicalHostname } from "./hostname.ts";
import { ConfigError } from "./issues.ts";

export interface AddressOptions {
  /** Port 0 asks the kernel for a free port (listeners, admin); never for a target. */
  allowPortZero: boolean;
  /** Targets may name a host to resolve; a listen address must be an IP literal. */
  allowHostnames: boolean;
  /** Admin has no unix-socket form. Default true. */
  allowUnix?: boolean;
}

/** Linux `struct sockaddr_un.sun_path` is 108 bytes including the terminating NUL. */
export const MAX_UNIX_PATH = 107;
const MAX_TEXT = 300;

const utf8 = new TextEncoder();

export function addressFrom(text: string, opts: AddressOptions): { address: Address } | { error: string } {
  const got = JSON.stringify(text.length > 80 ? text.slice(0, 80) + "…" : text);
  if (text.length === 0) return { error: "must not be empty" };
  if (text.length > MAX_TEXT) return { error: `is too long to be an address, got ${got}` };

  if (text.startsWith("unix:")) {
    if (opts.allowUnix === false) return { error: `must be "host:port" (no unix socket here), got ${got}` };
    const path = text.slice(5);
    if (!path.startsWith("/")) return { error: `unix socket path must be absolute ("unix:/run/app.sock"), got ${got}` };
    if (path.includes("\0")) return { error: "unix socket path must not contain NUL" };
    const n = utf8.encode(path).length;
    if (n > MAX_UNIX_PATH) return { error: `unix socket path must be 1..${MAX_UNIX_PATH} bytes, got ${n}` };
    return { address: { kind: "unix", path } };
  }

  let hostText: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") return { error: `must be "[v6-address]:port", got ${got}` };
    hostText = text.slice(1, close);
    portText = text.slice(close + 2);
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) {
      const forms = opts.allowUnix === false ? `"host:port" or "[v6]:port"` : `"host:port", "[v6]:port" or "unix:/path"`;
      return { error: `must be ${forms}, got ${got}` };
    }
    hostText = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (hostText.includes(":")) return { error: `an IPv6 address needs brackets ("[::1]:443"), got ${got}` };
  }

  if (!/^\d{1,5}$/.test(portText)) return { error: `port must be a number ${opts.allowPortZero ? 0 : 1}..65535, got ${JSON.stringify(portText)}` };
  const port = Number(portText);
  const minPort = opts.allowPortZero ? 0 : 1;
  if (port < minPort || port > 65535) return { error: `port must be ${minPort}..65535, got ${port}` };

  if (hostText === "" || hostText === "*") {
    return { error: opts.allowHostnames ? `needs a host, got ${got}` : `needs a host; use 0.0.0.0 or [::] to listen on every address, got ${got}` };
  }
  if (text.startsWith("[")) {
    const ip = canonicalIp(hostText);
    if (ip === null || ip.family !== 6) return { error: `is not a valid IPv6 address (zone ids are not supported), got ${JSON.stringify(hostText)}` };
    return { address: { kind: "tcp", hostname: ip.text, port } };
  }
  if (parseIPv4(hostText) !== null) return { address: { kind: "tcp", hostname: hostText, port } };
  // A numeric last label makes the URL and inet_aton parsers read an IPv4 address ("127.1", "0x7f.1").
  if (/^[0-9.]+$/.test(hostText) || /(^|\.)(\d+|0x[0-9a-f]*)$/i.test(hostText)) {
    return { error: `is not a valid IPv4 address (four decimal octets 0..255), got ${JSON.stringify(hostText)}` };
  }
  if (!opts.allowHostnames) {
    return { error: `must be an IP address to listen on (127.0.0.1, 0.0.0.0, [::1], [::]), got ${JSON.stringify(hostText)}` };
  }
  const h = canonicalHostname(hostText);
  if ("error" in h) return { error: `host ${h.error}` };
  return { address: { kind: "tcp", hostname: h.name, port } };
}

/** Public form: the parsed address, or a ConfigError naming `field`. */
export function parseAddress(s: string, field: string, opts: AddressOptions): Address {
  const r = addressFrom(s, opts);
  if ("error" in r) throw new ConfigError([`${field}: ${r.error}`]);
  return r.address;
}

/** "127.0.0.1:8443", "[::1]:443", "unix:/run/app.sock". */
export function formatAddress(a: Address): string {
  if (a.kind === "unix") return `unix:${a.path}`;
  return formatHostPort(a.hostname, a.port);
}

export { formatHostPort };
