/**
 * The `[[tokens]]` policy, one for every role: who may use a forward-proxy
 * listener (role "proxy") and, for the tunnel listener, who may open sessions
 * (roles "source" / "destination", by token or by client certificate, service
 * patterns, max_sessions) and who may reach agents' shells, files and reload
 * through it (role "operator", with the agent-name patterns of `agents`).
 *
 * Secrets are never stored: a token is configured as the SHA-256 of its
 * secret. A presented secret is hashed once; the digest is the key of a Map
 * (so lookup costs the same whatever the table size), and the entry found is
 * confirmed with a constant-time compare of the two digests
 * (node:crypto timingSafeEqual). The Map lookup can only leak timing about
 * the digest, which says nothing useful about the secret.
 *
 * Then, per entry: the role asked for, and the client's address against the
 * entry's allow/deny CIDRs (deny wins, empty allow = anywhere).
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { TokenConfig, TokenRole } from "../config/types.ts";
import type { ErrorCode } from "../errors/mod.ts";
import type { PeerCertificate } from "../runtime/types.ts";
import { type AccessList, compileAccessList } from "./cidr.ts";

/** What one `[[tokens]]` entry grants, for every role. */
export class TokenGrant {
  readonly name: string;
  readonly roles: ReadonlySet<TokenRole>;
  /** Service-name globs ("*", "web", "db-*"). */
  readonly services: readonly string[];
  readonly access: AccessList;
  /** Tunnel sessions at once; 0 = unlimited. */
  readonly maxSessions: number;
  private readonly exact = new Set<string>();
  /** Patterns with `*` globs ("web-*", "*.dev", "a*b"); `*` matches any run of service-name characters. */
  private readonly globs: RegExp[] = [];
  private any = false;
  /** Role "operator": agent-name globs it may reach (shell, files, reload); matched case-sensitively, as agent names are. */
  readonly agents: readonly string[];
  private readonly agentGlobs: RegExp[];

  constructor(t: TokenConfig, readonly index: number) {
    this.name = t.name;
    this.roles = new Set(t.roles);
    this.services = t.services;
    this.maxSessions = t.maxSessions;
    this.access = compileAccessList({ allow: t.allow, deny: t.deny }, `tokens[${index}]`);
    // Service names are lowercase [a-z0-9_.-] (proto/tunnel_control.ts SERVICE_NAME); patterns are matched folded.
    for (const p of t.services) {
      if (p === "*") this.any = true;
      else if (!p.includes("*")) this.exact.add(p.toLowerCase());
      else this.globs.push(new RegExp(`^${p.toLowerCase().split("*").map((part) => part.replace(/[.\\^$+?()[\]{}|-]/g, "\\$&")).join("[a-z0-9_.-]*")}$`));
    }
    this.agents = t.agents ?? [];
    this.agentGlobs = this.agents.map((p) => new RegExp(`^${p.split("*").map((part) => part.replace(/[.\\^$+?()[\]{}|-]/g, "\\$&")).join("[A-Za-z0-9_.@-]*")}$`));
  }

  /** Role "operator": whether the agent patterns allow reaching agent `name`. */
  allowsAgent(name: string): boolean {
    if (!this.roles.has("operator")) return false;
    for (const g of this.agentGlobs) if (g.test(name)) return true;
    return false;
  }

  /** Whether the service patterns allow `service`. */
  allowsService(service: string): boolean {
    if (this.any || this.exact.has(service)) return true;
    for (const g of this.globs) if (g.test(service)) return true;
    return false;
  }

  /** The entry's allow/deny CIDRs (deny wins, empty allow = anywhere). */
  allowsAddress(ip: string): boolean {
    return this.access.allows(ip);
  }

  /** The roles asked for that this grant lacks. */
  missingRoles(roles: readonly TokenRole[]): TokenRole[] {
    return roles.filter((r) => !this.roles.has(r));
  }
}

export type TokenCheck =
  | { ok: true; grant: TokenGrant }
  | { ok: false; code: Extract<ErrorCode, "AUTH_INVALID" | "AUTH_DENIED">; reason: string };

/** Hex SHA-256 of a secret, as `[[tokens]] sha256` stores it (`edgemux hash-token`). */
export function hashToken(secret: string | Uint8Array): string {
  return createHash("sha256").update(secret).digest("hex");
}

/**
 * Values keyed by the SHA-256 of a secret (lowercase hex, as `sha256` in the
 * config): `find` hashes the presented secret once, looks the digest up and
 * confirms it in constant time. The one lookup both `[[tokens]]` and
 * `[[admin.tokens]]` use.
 */
export class SecretDigests<T> {
  private readonly map = new Map<string, { digest: Buffer; value: T }>();

  /** The first value added for a digest wins. */
  add(sha256Hex: string, value: T): void {
    if (!this.map.has(sha256Hex)) this.map.set(sha256Hex, { digest: Buffer.from(sha256Hex, "hex"), value });
  }

  get size(): number {
    return this.map.size;
  }

  find(secret: string | Uint8Array): T | null {
    const digest = createHash("sha256").update(secret).digest();
    const e = this.map.get(digest.toString("hex"));
    return e !== undefined && timingSafeEqual(digest, e.digest) ? e.value : null;
  }
}

export class TokenStore {
  private readonly byDigest = new SecretDigests<TokenGrant>();
  private readonly byNameMap = new Map<string, TokenGrant>();

  constructor(tokens: readonly TokenConfig[]) {
    tokens.forEach((t, index) => {
      const grant = new TokenGrant(t, index);
      this.byNameMap.set(t.name, grant);
      // Two names with one secret: the first wins (validation reports duplicate names, not secrets).
      this.byDigest.add(t.sha256, grant);
    });
  }

  get size(): number {
    return this.byNameMap.size;
  }

  byName(name: string): TokenGrant | undefined {
    return this.byNameMap.get(name);
  }

  /** The grant whose digest a presented secret has, or null. */
  byToken(secret: string | Uint8Array): TokenGrant | null {
    return this.byDigest.find(secret);
  }

  /**
   * The grant a verified client certificate authenticates as: the entry whose
   * name is the certificate's identity (URI SAN, else DNS SAN, else CN).
   */
  byCertificate(cert: PeerCertificate): TokenGrant | null {
    const id = certificateIdentity(cert);
    return id === null ? null : this.byNameMap.get(id) ?? null;
  }

  /** The grant for a secret, checked for `role` and the client address. */
  verify(secret: string | Uint8Array, role: TokenRole, clientIp: string): TokenCheck {
    const g = this.byToken(secret);
    if (g === null) return { ok: false, code: "AUTH_INVALID", reason: "The token matches no [[tokens]] entry" };
    if (!g.roles.has(role)) return { ok: false, code: "AUTH_DENIED", reason: `Token '${g.name}' does not have role '${role}'` };
    if (!g.access.allows(clientIp)) return { ok: false, code: "AUTH_DENIED", reason: `Token '${g.name}' may not be used from ${clientIp}` };
    return { ok: true, grant: g };
  }
}

/** The identity a certificate authenticates as: URI SAN, else DNS SAN, else CN. */
export function certificateIdentity(cert: PeerCertificate): string | null {
  return cert.uris[0] ?? cert.dnsNames[0] ?? cert.subjectCN ?? null;
}

export interface ProxyCredentials {
  /** Informational (Basic's user-id); null for Bearer. */
  user: string | null;
  secret: string;
}

/**
 * Reads `Proxy-Authorization` (RFC 9110 §11.7.1): `Bearer <token>`
 * (RFC 6750 §2.1 syntax) or `Basic base64(user:token)` (RFC 7617 §2: the
 * password is the token). Scheme names are case-insensitive. Null when the
 * header is absent, of another scheme, or malformed.
 */
export function parseProxyAuthorization(value: string | null): ProxyCredentials | null {
  if (value === null) return null;
  const sp = value.indexOf(" ");
  if (sp <= 0) return null;
  const scheme = value.slice(0, sp).toLowerCase();
  const rest = value.slice(sp + 1).trim();
  if (rest.length === 0 || rest.length > 4096) return null;
  if (scheme === "bearer") {
    // RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(rest)) return null;
    return { user: null, secret: rest };
  }
  if (scheme === "basic") {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(rest)) return null;
    const decoded = Buffer.from(rest, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return null;
    const secret = decoded.slice(colon + 1);
    if (secret.length === 0) return null;
    return { user: decoded.slice(0, colon), secret };
  }
  return null;
}
