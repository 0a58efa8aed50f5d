/**
 * Risky but valid configurations. Validation (validate.ts) refuses what
 * cannot work; these rules point at what works and is probably not meant:
 * an open proxy, egress to the internal network, a listener nothing is
 * routed to. Pure: computed from the parsed Config alone, so `check-config`
 * and `serve` report the same lines and tests never bind an address.
 *
 * (A non-loopback admin API without tokens is not here: it is an error,
 * validate_admin.ts.)
 */

import type { Config, ListenerConfig } from "./types.ts";
import { isLoopback } from "./validate_admin.ts";

export interface ConfigWarning {
  /** The field at fault, named as validation names it: `listeners[2].auth`, `egress.allow_private`. */
  field: string;
  message: string;
}

/** Every warning for `config`, in field order (listeners, then egress). */
export function warnings(config: Config): ConfigWarning[] {
  const out: ConfigWarning[] = [];
  config.listeners.forEach((l, i) => {
    const open = openProxy(l);
    if (open !== null) out.push({ field: `listeners[${i}].auth`, message: open });
    if (l.kind === "sni" && !routed(config, l.name)) {
      out.push({
        field: `listeners[${i}]`,
        message: `no route can match on sni listener "${l.name}" (${config.routes.length === 0 ? "there is no [[routes]] entry" : "every [[routes]] entry names other listeners"}): every client gets unrecognized_name; name it in a route's listeners, or leave a route's listeners empty (= every sni listener)`,
      });
    }
  });
  if (config.egress.allowPrivate) {
    out.push({
      field: "egress.allow_private",
      message: "connect and socks5 clients may reach loopback, RFC 1918, link-local and the other special-purpose ranges (this host and its internal network); prefer allow_cidrs with just the networks they need",
    });
  }
  return out;
}

/**
 * A forward proxy that anyone who reaches it may use. A connect listener
 * that requires a client certificate is authenticated by it (HBONE's SPIFFE
 * identity), so `auth = "none"` is not open there.
 */
function openProxy(l: ListenerConfig): string | null {
  if (l.kind !== "connect" && l.kind !== "socks5") return null;
  if (l.auth !== "none" || l.address.kind !== "tcp" || isLoopback(l.address.hostname)) return null;
  if (l.kind === "connect" && l.tls?.clientCert === "require") return null;
  const where = l.address.hostname.includes(":") ? `[${l.address.hostname}]` : l.address.hostname;
  return `${l.kind} listener "${l.name}" on ${where} with auth = "none" is an open proxy for anyone who reaches that address; set auth = "token" (with [[tokens]] of role "proxy"), require a client certificate (connect with [listeners.tls]), or bind it to loopback`;
}

/** Whether a route can match on sni listener `name`: one names it, or one names no listener at all. */
function routed(config: Config, name: string): boolean {
  return config.routes.some((r) => r.listeners.length === 0 || r.listeners.includes(name));
}
