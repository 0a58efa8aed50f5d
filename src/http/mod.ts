/**
 * `kind = "http"`: the HTTP/1.1 reverse proxy (HTTPS with [listeners.tls],
 * and there HTTP/2 towards clients by ALPN: h2_server.ts, h2_exchange.ts).
 * Pure parts (routes, body framing, field rewriting, request targets, HTTP/2
 * heads) beside the connection state machines and the listener.
 */
export { HttpListener } from "./listener.ts";
export { BodyFramer, BodyKind, requestBodyOf, responseBodyOf } from "./body.ts";
export { HttpRouteTable, compileHttpRoutes, pathMatches } from "./routes.ts";
export { AcmeState, CertificateSet, type HeldCertificate } from "./certificates.ts";
