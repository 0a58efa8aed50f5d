/**
 * `basic_auth` on an http route: HTTP Basic credentials checked against
 * `[[tokens]]` (user = the token's name, password = its secret, role
 * "http", the token's CIDRs applied). Null when the request may pass, else
 * the refusal (401 AUTH_REQUIRED / AUTH_INVALID, 403 AUTH_DENIED).
 */
import { parseProxyAuthorization, type TokenStore } from "../auth/mod.ts";
import { ProxyError } from "../errors/mod.ts";
import { fieldValue, type HttpRequestHead } from "../proto/mod.ts";

export function checkBasicAuth(head: HttpRequestHead, allowed: "any" | string[], tokens: TokenStore, clientAddress: string): ProxyError | null {
  const value = fieldValue(head, "authorization");
  const creds = value !== null && value.slice(0, 6).toLowerCase() === "basic " ? parseProxyAuthorization(value) : null;
  if (creds === null) return new ProxyError("AUTH_REQUIRED", "downstream", "This route needs Basic credentials: a token's name and secret");
  const check = tokens.verify(creds.secret, "http", clientAddress);
  if (!check.ok) return new ProxyError(check.code === "AUTH_INVALID" ? "AUTH_INVALID" : "AUTH_DENIED", "downstream", check.reason);
  const name = check.grant.name;
  // The user names the token: a secret alone must not pass for another name.
  if (creds.user !== name) return new ProxyError("AUTH_INVALID", "downstream", "The user is not the name of the token whose secret was given");
  if (allowed !== "any" && !allowed.includes(name)) return new ProxyError("AUTH_DENIED", "downstream", `Token '${name}' may not use this route`);
  return null;
}
