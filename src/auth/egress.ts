/**
 * The `[egress]` policy: where connect and socks5 tunnels may go.
 *
 *   1. the port must be in allow_ports;
 *   2. a host name must match allow_hosts; an IP literal passes this step only
 *      with allow_hosts = ["*"] or when it is in allow_cidrs;
 *   3. a name is resolved once, to every address; each address is checked
 *      (deny_cidrs → refused; allow_cidrs → allowed; special-purpose ranges →
 *      refused unless allow_private; else allowed), and the allowed ones are
 *      returned in resolver order. The caller dials those IPs: the address
 *      checked is the address connected to (no second resolution, so no DNS
 *      rebinding between check and connect).
 */
import { lookup as dnsLookup } from "node:dns/promises";
import type { EgressConfig } from "../config/types.ts";
import { ProxyError } from "../errors/mod.ts";
import { CidrSet, parseAddressInto } from "./cidr.ts";
import { formatHostPort } from "../proto/mod.ts";

/**
 * IANA special-purpose and non-global ranges (RFC 6890 and its registries),
 * refused unless allow_private. IPv4-mapped IPv6 addresses need no entry of
 * their own: cidr.ts stores IPv4 as ::ffff:a.b.c.d, so "::ffff:127.0.0.1"
 * and "127.0.0.1" are the same value.
 */
export const SPECIAL_PURPOSE_CIDRS: readonly string[] = [
  "0.0.0.0/8", // "this network"
  "10.0.0.0/8", // RFC 1918
  "100.64.0.0/10", // shared address space (CGNAT), RFC 6598
  "127.0.0.0/8", // loopback
  "169.254.0.0/16", // link-local (cloud metadata endpoints live here)
  "172.16.0.0/12", // RFC 1918
  "192.0.0.0/24", // IETF protocol assignments
  "192.0.2.0/24", // TEST-NET-1
  "192.168.0.0/16", // RFC 1918
  "198.18.0.0/15", // benchmarking
  "198.51.100.0/24", // TEST-NET-2
  "203.0.113.0/24", // TEST-NET-3
  "224.0.0.0/4", // multicast
  "240.0.0.0/4", // reserved, and 255.255.255.255
  "::/128", // unspecified
  "::1/128", // loopback
  "64:ff9b::/96", // NAT64: embeds an IPv4 address we would not check
  "100::/64", // discard
  "2001::/23", // IETF protocol assignments (Teredo included)
  "2001:db8::/32", // documentation
  "2002::/16", // 6to4: embeds an IPv4 address
  "fc00::/7", // unique local
  "fe80::/10", // link-local
  "ff00::/8", // multicast
];

const SPECIAL = CidrSet.parse(SPECIAL_PURPOSE_CIDRS, "egress special-purpose ranges");

/** Resolves a name to every address (IPv4 and IPv6, resolver order). */
export type Lookup = (host: string) => Promise<string[]>;

export const systemLookup: Lookup = async (host) => {
  const r = await dnsLookup(host, { all: true, verbatim: true });
  return r.map((a) => a.address);
};

export interface Destination {
  host: string;
  kind: "name" | "ipv4" | "ipv6";
  port: number;
}

const scratch = new Uint32Array(4);

export class EgressPolicy {
  private readonly exact = new Set<string>();
  private readonly suffixes: string[] = [];
  private readonly anyHost: boolean;
  private readonly allow: CidrSet;
  private readonly deny: CidrSet;

  constructor(readonly config: EgressConfig) {
    let any = false;
    for (const p of config.allowHosts) {
      if (p === "*") any = true;
      else if (p.startsWith("*.")) this.suffixes.push(p.slice(1)); // ".example.com"
      else this.exact.add(p);
    }
    this.anyHost = any;
    this.allow = CidrSet.parse(config.allowCidrs, "egress.allow_cidrs");
    this.deny = CidrSet.parse(config.denyCidrs, "egress.deny_cidrs");
  }

  portAllowed(port: number): boolean {
    for (const r of this.config.allowPorts) if (port >= r.from && port <= r.to) return true;
    return false;
  }

  /** allow_hosts for a canonical name ("*.example.com" matches names below example.com, not itself). */
  hostAllowed(name: string): boolean {
    if (this.anyHost || this.exact.has(name)) return true;
    for (const s of this.suffixes) if (name.length > s.length && name.endsWith(s)) return true;
    return false;
  }

  /** The address rule alone; null when allowed, else why not. */
  addressProblem(ip: string): string | null {
    if (!parseAddressInto(ip, scratch)) return `${ip} is not an IP address`;
    if (this.deny.containsWords(scratch)) return `${ip} is in egress.deny_cidrs`;
    if (this.allow.containsWords(scratch)) return null;
    if (!this.config.allowPrivate && SPECIAL.containsWords(scratch)) {
      return `${ip} is a private or special-purpose address (egress.allow_private is off)`;
    }
    return null;
  }

  /** Whether `ip` is in allow_cidrs (used for IP literals and connect rules). */
  inAllowCidrs(ip: string): boolean {
    return parseAddressInto(ip, scratch) && this.allow.containsWords(scratch);
  }

  /**
   * Steps 1 and 2, before any resolution: throws EGRESS_DENIED.
   */
  checkRequest(d: Destination): void {
    if (!this.portAllowed(d.port)) throw denied(`port ${d.port} is not in egress.allow_ports`, d);
    if (d.kind === "name") {
      if (!this.hostAllowed(d.host)) throw denied(`${d.host} is not in egress.allow_hosts`, d);
    } else if (!this.anyHost && !this.inAllowCidrs(d.host)) {
      throw denied(`IP destinations need egress.allow_hosts = ["*"] or the address in egress.allow_cidrs`, d);
    }
  }

  /**
   * The whole decision: the addresses to dial, in order, each one checked.
   * Throws EGRESS_DENIED (policy) or UPSTREAM_DNS (the name does not resolve).
   */
  async resolve(d: Destination, lookup: Lookup = systemLookup, timeoutMs = 5000): Promise<string[]> {
    this.checkRequest(d);
    let addresses: string[];
    if (d.kind !== "name") addresses = [d.host];
    else {
      try {
        addresses = await withTimeout(lookup(d.host), timeoutMs, d.host);
      } catch (err) {
        if (err instanceof ProxyError) throw err;
        const code = (err as { code?: string }).code ?? (err as Error).message;
        throw new ProxyError("UPSTREAM_DNS", "upstream", `Cannot resolve ${d.host}: ${code}`, { cause: err });
      }
      if (addresses.length === 0) throw new ProxyError("UPSTREAM_DNS", "upstream", `${d.host} has no addresses`);
    }
    const allowed: string[] = [];
    let firstProblem: string | null = null;
    for (const a of addresses) {
      const p = this.addressProblem(a);
      if (p === null) allowed.push(a);
      else firstProblem ??= p;
    }
    if (allowed.length === 0) throw denied(firstProblem!, d);
    return allowed;
  }
}

function denied(reason: string, d: Destination): ProxyError {
  return new ProxyError("EGRESS_DENIED", "downstream", `Tunnel to ${formatHostPort(d.host, d.port)} refused: ${reason}`);
}

function withTimeout<T>(p: Promise<T>, ms: number, host: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ProxyError("UPSTREAM_DNS", "upstream", `Resolving ${host} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
