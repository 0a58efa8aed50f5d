/**
 * The `[[tokens]]` policy: who may use a forward-proxy listener (role
 * "proxy") and, for the tunnel listener, who may open sessions (roles
 * "source" / "destination", service patterns, max_sessions).
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
import { type AccessList, compileAccessList } from "./cidr.ts";

export interface TokenGrant {
  readonly name: string;
  readonly roles: ReadonlySet<TokenRole>;
  /** Service-name globs ("*", "web", "db-*"). */
  readonly services: readonly string[];
  readonly access: AccessList;
  /** Tunnel sessions at once; 0 = unlimited. */
  readonly maxSessions: number;
  /** Position in the config's tokens (stable for one config). */
  readonly index: number;
}

export type TokenCheck =
  | { ok: true; grant: TokenGrant }
  | { ok: false; code: Extract<ErrorCode, "AUTH_REQUIRED" | "AUTH_DENIED">; reason: string };

interface Entry {
  digest: Buffer;
  grant: TokenGrant;
}

/** Hex SHA-256 of a secret, as `[[tokens]] sha256` stores it (`edgemux hash-token`). */
export function hashToken(secret: string | Uint8Array): string {
  return createHash("sha256").update(secret).digest("hex");
}

export class TokenStore {
  private readonly byDigest = new Map<string, Entry>();
  private readonly byNameMap = new Map<string, TokenGrant>();

  constructor(tokens: readonly TokenConfig[]) {
    tokens.forEach((t, index) => {
      const grant: TokenGrant = {
        name: t.name,
        roles: new Set(t.roles),
        services: t.services,
        access: compileAccessList({ allow: t.allow, deny: t.deny }, `tokens[${index}]`),
        maxSessions: t.maxSessions,
        index,
      };
      this.byNameMap.set(t.name, grant);
      // Two names with one secret: the first wins (validation reports duplicate names, not secrets).
      if (!this.byDigest.has(t.sha256)) this.byDigest.set(t.sha256, { digest: Buffer.from(t.sha256, "hex"), grant });
    });
  }

  get size(): number {
    return this.byNameMap.size;
  }

  byName(name: string): TokenGrant | undefined {
    return this.byNameMap.get(name);
  }

  /** The grant for a secret, checked for `role` and the client address. */
  verify(secret: string | Uint8Array, role: TokenRole, clientIp: string): TokenCheck {
    const digest = createHash("sha256").update(secret).digest();
    const e = this.byDigest.get(digest.toString("hex"));
    if (e === undefined || !timingSafeEqual(digest, e.digest)) {
      return { ok: false, code: "AUTH_REQUIRED", reason: "The token matches no [[tokens]] entry" };
    }
    const g = e.grant;
    if (!g.roles.has(role)) return { ok: false, code: "AUTH_DENIED", reason: `Token '${g.name}' does not have role '${role}'` };
    if (!g.access.allows(clientIp)) return { ok: false, code: "AUTH_DENIED", reason: `Token '${g.name}' may not be used from ${clientIp}` };
    return { ok: true, grant: g };
  }
}

/** Whether a grant's service patterns allow `service` ("*" globs, anywhere in the pattern). */
export function serviceAllowed(grant: TokenGrant, service: string): boolean {
  for (const p of grant.services) if (globMatch(p, service)) return true;
  return false;
}

/** `*` matches any run of characters (including none); everything else literally. */
export function globMatch(pattern: string, s: string): boolean {
  if (pattern === "*") return true;
  const parts = pattern.split("*");
  if (parts.length === 1) return pattern === s;
  if (!s.startsWith(parts[0]!)) return false;
  let at = parts[0]!.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const k = s.indexOf(parts[i]!, at);
    if (k < 0) return false;
    at = k + parts[i]!.length;
  }
  const last = parts[parts.length - 1]!;
  return s.length - last.length >= at && s.endsWith(last);
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
