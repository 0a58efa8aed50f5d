/**
 * Who may use the admin API: `[[admin.tokens]]`, each with a scope. `read`
 * may GET the dashboard, `/status`, `/history` and `/metrics`; `admin` may do everything
 * (admin implies read). Anything not listed as read-only needs `admin`, so an
 * endpoint added later is closed by default. `/healthz` is open to everyone
 * (load balancers and orchestrators probe it without credentials).
 *
 * Credentials: `Authorization: Bearer <secret>`, or HTTP Basic with any user
 * name and the secret as password, so a browser can open the dashboard. The
 * secret is hashed and looked up in constant time (auth/'s SecretDigests,
 * the same lookup as `[[tokens]]`).
 */

import { parseProxyAuthorization, SecretDigests } from "../auth/mod.ts";
import type { AdminScope, AdminTokenConfig } from "../config/types.ts";

/** Paths everyone may GET, credentials or not. */
export const OPEN_PATHS: ReadonlySet<string> = new Set(["/healthz"]);
/** Paths a `read` token may GET or HEAD; everything else needs `admin`. */
export const READ_PATHS: ReadonlySet<string> = new Set(["/", "/status", "/metrics", "/history"]);

/** The challenge sent with every 401; Basic makes a browser ask for the secret. */
export const WWW_AUTHENTICATE = 'Basic realm="edgemux"';

export type AdminAccess =
  | { ok: true; token: string | null }
  | { ok: false; status: 401 | 403; error: string };

/** The scope a request needs; null when it needs none. */
export function requiredScope(method: string, path: string): AdminScope | null {
  const safe = method === "GET" || method === "HEAD";
  if (safe && OPEN_PATHS.has(path)) return null;
  return safe && READ_PATHS.has(path) ? "read" : "admin";
}

export class AdminAuth {
  private readonly digests = new SecretDigests<AdminTokenConfig>();

  constructor(tokens: readonly AdminTokenConfig[]) {
    for (const t of tokens) this.digests.add(t.sha256, t);
  }

  /** No tokens: the API is open (config validation allows that only on loopback or with admin.insecure). */
  get open(): boolean {
    return this.digests.size === 0;
  }

  /** Whether a request with this `Authorization` header may do something that needs `needed`. */
  check(authorization: string | null, needed: AdminScope | null): AdminAccess {
    if (needed === null || this.open) return { ok: true, token: null };
    // Authorization (RFC 9110 §11.6.2) has the same Bearer / Basic syntax as Proxy-Authorization.
    const creds = parseProxyAuthorization(authorization);
    if (creds === null) return { ok: false, status: 401, error: "authentication required: Authorization: Bearer <token>, or Basic with the token as password" };
    const t = this.digests.find(creds.secret);
    if (t === null) return { ok: false, status: 401, error: "the token matches no [[admin.tokens]] entry" };
    if (needed === "admin" && t.scope !== "admin") {
      return { ok: false, status: 403, error: `token '${t.name}' has scope "${t.scope}"; this needs scope "admin"` };
    }
    return { ok: true, token: t.name };
  }
}
