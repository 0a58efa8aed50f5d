/**
 * `kind = "http"`: an HTTP/1.1 reverse proxy on plain TCP, or HTTPS with
 * [listeners.tls]. Admission (access lists, max_connections, drain) is the
 * front door's; each admitted connection is an HttpConnection (connection.ts)
 * that reads many requests in turn, routes each by Host and path
 * (routes.ts) and speaks HTTP/1.1 to the route's targets through upstream/,
 * reusing idle upstream connections (pool.ts).
 */
import { CidrSet, TokenStore } from "../auth/mod.ts";
import type { HttpListenerConfig } from "../config/types.ts";
import { FrontListener, type ListenerDeps, type ListenerSettings } from "../frontdoor/mod.ts";
import type { Conn, Listener, TlsServerOptions } from "../runtime/types.ts";
import { type AcmeState, CertificateSet } from "./certificates.ts";
import { HttpConnection } from "./connection.ts";
import { UpstreamPool } from "./pool.ts";
import { compileHttpRoutes, type HttpRouteTable } from "./routes.ts";

/** What an http listener needs beyond the front door's: the worker's ACME certificates and challenges. */
export interface HttpListenerDeps extends ListenerDeps {
  acme?: AcmeState;
}

export class HttpListener extends FrontListener<HttpListenerConfig, HttpConnection> {
  declare routes: HttpRouteTable;
  /** HTTPS: the certificates by SNI (replaced on reload); null on a plain listener. */
  declare certificates: CertificateSet | null;
  /** The SNI-selecting socket (listenSelectingTls); null when the front door's listen was used. */
  private selecting: Listener | null = null;
  private unsubscribe: (() => void) | null = null;
  declare tokens: TokenStore;
  declare trusted: CidrSet;
  declare pool: UpstreamPool;
  /** This listener answers `[acme]`'s TLS-ALPN-01 challenges (an acme listener, challenge resolved to tls-alpn-01). */
  declare answersTlsAlpn01: boolean;

  protected configure(s: ListenerSettings): void {
    const l = s.listener as HttpListenerConfig;
    this.routes = compileHttpRoutes(s.config.routes, l.name, s.backends);
    this.tokens = new TokenStore(s.config.tokens);
    this.trusted = CidrSet.parse(l.trustedProxies, `listeners.${l.name}.trusted_proxies`);
    // Idle connections belong to the routes they were made for: a reload starts afresh.
    this.pool?.clear();
    this.pool = new UpstreamPool(l.upstreamKeepalive);
    this.certificates = l.tls === null ? null : CertificateSet.of(l.tls, this.acme);
    this.answersTlsAlpn01 = l.tls?.acme === true && s.config.acme?.challengeType === "tls-alpn-01";
    this.selecting?.refreshCertificates?.();
  }

  get acme(): AcmeState | null {
    return (this.deps as HttpListenerDeps).acme ?? null;
  }

  /** HTTP-01: the key authorization for `token`, or null (plain listeners answer it before routing). */
  httpChallenge(token: string): string | null {
    return this.acme?.challenges.httpChallengeResponse(token) ?? null;
  }

  override async start(hostname: string, port: number): Promise<Listener> {
    const tls = this.listenTls();
    const a = this.config.address;
    if (tls === undefined || a.kind === "unix" || this.runtime.listenSelectingTls === undefined) {
      if (this.answersTlsAlpn01) {
        this.log.warn("https listener cannot answer TLS-ALPN-01 on this runtime", { listener: this.name, runtime: this.runtime.name, reason: "the certificate must be chosen by the ClientHello's ALPN (Bun only); use challenge = \"http-01\" with a plain http listener" });
      }
      if (tls !== undefined && (this.config.tls!.certificates.length > 1 || this.config.tls!.acme)) {
        this.log.warn("https listener serves one certificate on this runtime", { listener: this.name, runtime: this.runtime.name, reason: "no certificate selection by SNI (Deno.listenTls takes one certificate); changes need a restart" });
      }
      return super.start(hostname, port);
    }
    this.selecting = await this.runtime.listenSelectingTls({ address: { hostname, port, reusePort: true }, tls, onAccept: (conn) => this.accept(conn) });
    // An ACME certificate that arrives later may become the default (a listener with acme alone).
    this.unsubscribe = this.acme?.onChange(() => this.selecting?.refreshCertificates?.()) ?? null;
    return this.selecting;
  }

  protected override createSession(conn: Conn, nowMs: number): HttpConnection {
    return new HttpConnection(conn, this, nowMs);
  }

  protected override listenTls(): TlsServerOptions | undefined {
    if (this.certificates === null) return undefined;
    const d = this.certificates.defaultCertificate;
    if (d === null && this.runtime.listenSelectingTls === undefined) {
      throw new Error(`listener ${this.name}: [listeners.tls] with acme alone needs cert and key on the ${this.runtime.name} runtime (it cannot add certificates while listening)`);
    }
    // HTTP/2 (h2_server.ts) or HTTP/1.1, as the client prefers; connection.ts dispatches on the result.
    return {
      cert: d?.cert ?? "",
      key: d?.key ?? "",
      alpn: ["h2", "http/1.1"],
      // Read at each handshake, so a reload or a new ACME certificate applies at once.
      selectCertificate: (servername) => this.certificates?.select(servername) ?? null,
      // TLS-ALPN-01 (RFC 8737): a ClientHello offering only acme-tls/1 gets the pending challenge's certificate.
      ...(this.answersTlsAlpn01 ? { acmeTlsAlpnCertificate: (servername: string) => this.acme?.alpnChallenge(servername) ?? null, helloTimeoutMs: this.config.handshakeTimeoutMs } : {}),
    };
  }

  override sweep(nowMs: number): void {
    super.sweep(nowMs);
    this.pool.sweep(nowMs);
  }

  override stopAccepting(): void {
    super.stopAccepting();
    this.selecting?.close();
    this.selecting = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.pool.clear();
  }
}
