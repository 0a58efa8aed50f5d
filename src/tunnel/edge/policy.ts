/**
 * Who may open a tunnel session, and what it may do: the token policy of the
 * tunnel listener (DESIGN.md "Security defaults").
 *
 * - Tokens are stored as SHA-256 digests (config `sha256`, or hashed when a
 *   token file is read) and compared in constant time: the presented token is
 *   hashed once and compared with `timingSafeEqual` against every entry,
 *   without an early exit, so timing says nothing about which entry (or how
 *   much of one) matched.
 * - A client certificate (mTLS) that verified against the listener's client
 *   CA authenticates as the entry whose `name` equals its identity: the first
 *   URI SAN (SPIFFE), else the first DNS SAN, else the subject CN.
 * - Per entry: roles (source, destination), service-name patterns, allow/deny
 *   CIDRs for the agent's address, and max_sessions (across workers: one
 *   Int32 cell per entry in shared memory, see `SessionCounters`).
 *
 * The global [access] lists run before any of this, at accept.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { type AccessList, compileAccessList } from "../../auth/mod.ts";
import type { PeerCertificate } from "../../runtime/types.ts";
import type { TunnelRole } from "../../proto/tunnel_control.ts";

/** One `[[tokens]]` entry in the form the tunnel needs (built from the config). */
export interface TokenEntry {
  name: string;
  /** SHA-256 of the token (32 bytes); null for a certificate-only entry. */
  sha256: Uint8Array | null;
  roles: readonly TunnelRole[];
  /** Service-name patterns: "web", "web-*", "*.dev", "*"; empty = none. */
  services: readonly string[];
  allow: readonly string[];
  deny: readonly string[];
  /** Sessions at once across workers; 0 = unlimited. */
  maxSessions: number;
}

export class TunnelGrant {
  readonly roles: ReadonlySet<TunnelRole>;
  private readonly exact = new Set<string>();
  /** Patterns with `*` globs ("web-*", "*.dev", "a*b"); `*` matches any run of service-name characters. */
  private readonly globs: RegExp[] = [];
  private any = false;
  readonly access: AccessList;

  constructor(readonly name: string, readonly entry: TokenEntry, readonly slot: number) {
    this.roles = new Set(entry.roles);
    for (const p of entry.services) {
      if (p === "*") this.any = true;
      else if (!p.includes("*")) this.exact.add(p.toLowerCase());
      else this.globs.push(new RegExp(`^${p.toLowerCase().split("*").map((part) => part.replace(/[.\\^$+?()[\]{}|-]/g, "\\$&")).join("[a-z0-9_.-]*")}$`));
    }
    this.access = compileAccessList({ allow: entry.allow, deny: entry.deny }, `tokens.${name}`);
  }

  get maxSessions(): number {
    return this.entry.maxSessions;
  }

  allowsService(name: string): boolean {
    if (this.any || this.exact.has(name)) return true;
    for (const g of this.globs) if (g.test(name)) return true;
    return false;
  }

  allowsAddress(ip: string): boolean {
    return this.access.allows(ip);
  }

  /** The roles asked for that this grant lacks. */
  missingRoles(roles: readonly TunnelRole[]): TunnelRole[] {
    return roles.filter((r) => !this.roles.has(r));
  }
}

/** What the tunnel listener asks of its policy (TokenTable implements it; tests may fake it). */
export interface TunnelAuthority {
  /** The grant for a bearer token, or null when no entry has its digest. */
  byToken(token: string): TunnelGrant | null;
  /** The grant for a verified client certificate, or null. */
  byCertificate(cert: PeerCertificate): TunnelGrant | null;
  /** Whether any entry exists at all (no tokens configured: every agent is refused). */
  readonly size: number;
}

export function sha256(text: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(text).digest());
}

/** The identity a certificate authenticates as: URI SAN, else DNS SAN, else CN. */
export function certificateIdentity(cert: PeerCertificate): string | null {
  return cert.uris[0] ?? cert.dnsNames[0] ?? cert.subjectCN ?? null;
}

export class TokenTable implements TunnelAuthority {
  private readonly grants: TunnelGrant[];
  /** Digests side by side, in entry order; a certificate-only entry holds 32 zero bytes that no token can hash to knowingly. */
  private readonly digests: Uint8Array[];
  private readonly byName = new Map<string, TunnelGrant>();

  /** `slotOf(name)`: the shared max_sessions cell of an entry (stable across reloads), or -1. */
  constructor(entries: readonly TokenEntry[], slotOf: (name: string) => number = () => -1) {
    this.grants = entries.map((e) => new TunnelGrant(e.name, e, slotOf(e.name)));
    this.digests = entries.map((e) => e.sha256 ?? new Uint8Array(32));
    for (const g of this.grants) this.byName.set(g.name, g);
  }

  get size(): number {
    return this.grants.length;
  }

  byToken(token: string): TunnelGrant | null {
    const d = sha256(token);
    let found = -1;
    // Every entry is compared, match or not: constant time in the token and in which entry matched.
    for (let i = 0; i < this.digests.length; i++) {
      const hit = timingSafeEqual(d, this.digests[i]!) && this.grants[i]!.entry.sha256 !== null;
      if (hit && found < 0) found = i;
    }
    return found < 0 ? null : this.grants[found]!;
  }

  byCertificate(cert: PeerCertificate): TunnelGrant | null {
    const id = certificateIdentity(cert);
    return id === null ? null : this.byName.get(id) ?? null;
  }
}
