/**
 * `kind = "http"`: the HTTP/1.1 reverse proxy (HTTPS with [listeners.tls]).
 * Pure parts (routes, body framing, field rewriting, request targets) beside
 * the connection state machine and the listener.
 */
export { HttpListener } from "./listener.ts";
export { BodyFramer, BodyKind, requestBodyOf, responseBodyOf } from "./body.ts";
export { HttpRouteTable, compileHttpRoutes, pathMatches } from "./routes.ts";
export { AcmeState, CertificateSet, type HeldCertificate } from "./certificates.ts";
