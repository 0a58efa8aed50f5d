/**
 * What the listener decides about a request before any upstream is involved,
 * the same for HTTP/1.1 (connection.ts) and HTTP/2 (h2_server.ts): the ACME
 * HTTP-01 answer, the HTTPS redirect, the route by Host and path, Basic auth.
 */
import { ProxyError } from "../errors/mod.ts";
import { checkBasicAuth } from "./basic_auth.ts";
import type { Exchange } from "./exchange.ts";
import type { HttpListener } from "./listener.ts";
import { type LocalResponse, localResponse, redirectHttps } from "./pages.ts";

const ACME_CHALLENGE_PATH = "/.well-known/acme-challenge/";

/**
 * Redirect, ACME HTTP-01, route lookup and Basic auth for a read request
 * (HTTP/1.1 and HTTP/2 alike): null when `ex.route` is set and the request
 * goes upstream; a refusal; or a response of our own, built with the
 * caller's connection options.
 */
export function decideRoute(l: HttpListener, ex: Exchange, clientAddress: string): ProxyError | ((opts: { close: boolean; head: boolean }) => LocalResponse) | null {
  // ACME HTTP-01 (RFC 8555 §8.3): the CA fetches http://<name>/.well-known/acme-challenge/<token> from port 80.
  if (l.certificates === null && (ex.head.method === "GET" || ex.head.method === "HEAD") && ex.path.startsWith(ACME_CHALLENGE_PATH)) {
    const keyAuth = l.httpChallenge(ex.path.slice(ACME_CHALLENGE_PATH.length));
    if (keyAuth !== null) return (opts) => localResponse(200, [], keyAuth, opts);
  }
  if (l.config.redirectHttps) {
    const hostText = ex.hostText;
    if (hostText === null) return new ProxyError("HTTP_BAD_REQUEST", "downstream", "A redirect to https needs a Host");
    return (opts) => redirectHttps(hostText, ex.origin, opts);
  }
  const m = l.routes.lookup(ex.host, ex.path);
  if (m === null) return new ProxyError("NO_ROUTE", "downstream", `No route for host ${ex.hostText ?? "(none)"} and path ${ex.path.slice(0, 200)}`);
  ex.route = m;
  const auth = m.route.http?.basicAuth ?? null;
  if (auth !== null) {
    const refusal = checkBasicAuth(ex.head, auth, l.tokens, clientAddress);
    if (refusal !== null) return refusal;
  }
  return null;
}
