/**
 * `kind = "http"`: an HTTP/1.1 reverse proxy on plain TCP, or HTTPS with
 * [listeners.tls]. Admission (access lists, max_connections, drain) is the
 * front door's; each admitted connection is an HttpConnection (connection.ts)
 * that reads many requests in turn, routes each by Host and path
 * (routes.ts) and speaks HTTP/1.1 to the route's targets through upstream/,
 * reusing idle upstream connections (pool.ts).
 *
 * HTTPS takes one of two paths (named in the listener's start-up log line):
 * - "native": the runtime's own TLS listener (Bun.listen's `tls`,
 *   Deno.listenTls) with one certificate and ALPN h2/http/1.1. Bun.listen
 *   takes exactly one certificate object (an array, Bun.serve's SNI form, is
 *   refused in 1.4.5) and cannot swap it, so a reload that changes the
 *   certificate binds a new socket on the same port (reusePort) and closes
 *   the old one. Its TLS costs a fraction of node:tls's TLSSocket stream
 *   (bench/README.md, http section, has the figures).
 * - "node:tls": certificate selection by SNI among several files or ACME
 *   certificates, and TLS-ALPN-01 (runtime/node_tls.ts), where the set can
 *   change at every handshake. Bun only; Deno serves the first certificate.
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
  /** The HTTPS socket bound here (either path, Bun); null when the front door's listen was used. */
  private own: Listener | null = null;
  /** The path `own` took and, for "native", the certificate it serves (a change means a new socket). */
  private ownPath: HttpsPath | null = null;
  private ownCert: { cert: string; key: string } | null = null;
  private bindAt: { hostname: string; port: number } | null = null;
  /** True while listening for a reload's new socket: another reload waits for it (relisten runs again). */
  private relistening = false;
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
    // (Also called from the base constructor, before this class's fields exist: `own` is undefined then.)
    // An HTTPS listener that a reload makes plain keeps its socket until a restart (as a kind change would).
    if (!this.own || l.tls === null) return;
    if (this.httpsPath() !== this.ownPath || (this.ownPath === "native" && !sameCertificate(this.ownCert, this.certificates?.defaultCertificate ?? null))) {
      void this.relisten();
    } else this.own.refreshCertificates?.();
  }

  get acme(): AcmeState | null {
    return (this.deps as HttpListenerDeps).acme ?? null;
  }

  /** HTTP-01: the key authorization for `token`, or null (plain listeners answer it before routing). */
  httpChallenge(token: string): string | null {
    return this.acme?.challenges.httpChallengeResponse(token) ?? null;
  }

  /**
   * Which TLS an HTTPS listener on Bun takes: "native" with one certificate
   * file and no ACME (the set cannot change per handshake), else "node:tls"
   * (SNI selection among several, certificates that arrive while listening)
   * or "node:tls+tls-alpn-01" (the ClientHello read first, node_tls.ts).
   */
  private httpsPath(): HttpsPath {
    const t = this.config.tls!;
    if (this.answersTlsAlpn01) return "node:tls+tls-alpn-01";
    return t.certificates.length === 1 && !t.acme ? "native" : "node:tls";
  }

  override async start(hostname: string, port: number): Promise<Listener> {
    const tls = this.listenTls();
    const a = this.config.address;
    if (tls === undefined || a.kind === "unix" || this.runtime.listenSelectingTls === undefined) {
      if (tls !== undefined) {
        if (this.answersTlsAlpn01) {
          this.log.warn("https listener cannot answer TLS-ALPN-01 on this runtime", { listener: this.name, runtime: this.runtime.name, reason: "the certificate must be chosen by the ClientHello's ALPN (Bun only); use challenge = \"http-01\" with a plain http listener" });
        }
        if (this.config.tls!.certificates.length > 1 || this.config.tls!.acme) {
          this.log.warn("https listener serves one certificate on this runtime", { listener: this.name, runtime: this.runtime.name, reason: "no certificate selection by SNI (Deno.listenTls takes one certificate); changes need a restart" });
        }
        this.log.info("https listener", { listener: this.name, tls: "native", reason: `${this.runtime.name}: the runtime's own TLS, the default certificate`, certificates: this.config.tls!.certificates.length, acme: this.config.tls!.acme });
      }
      return super.start(hostname, port);
    }
    this.bindAt = { hostname, port };
    const l = await this.bind(hostname, port);
    this.bindAt = { hostname: l.hostname, port: l.port };
    return l;
  }

  /** Binds the HTTPS socket of the path the config asks for (reusePort: a reload binds beside the old one). */
  private async bind(hostname: string, port: number): Promise<Listener> {
    const tls = this.listenTls()!;
    const path = this.httpsPath();
    const onAccept = (conn: Conn) => this.accept(conn);
    const address = { hostname, port, reusePort: true };
    let l: Listener;
    if (path === "native") {
      const d = this.certificates!.defaultCertificate!;
      l = this.runtime.listen({ address, tls: { cert: d.cert, key: d.key, alpn: tls.alpn }, onAccept });
      this.ownCert = { cert: d.cert, key: d.key };
    } else {
      l = await this.runtime.listenSelectingTls!({ address, tls, onAccept });
      this.ownCert = null;
    }
    this.own = l;
    this.ownPath = path;
    if (this.acme !== null && this.unsubscribe === null) {
      // An ACME certificate that arrives later may become the default (a listener with acme alone).
      this.unsubscribe = this.acme.onChange(() => this.own?.refreshCertificates?.());
    }
    const reason = path === "native" ? "one certificate, no ACME" : path === "node:tls" ? "certificate selection by SNI" : "TLS-ALPN-01 reads each ClientHello";
    this.log.info("https listener", { listener: this.name, tls: path, reason, certificates: this.config.tls!.certificates.length, acme: this.config.tls!.acme });
    return l;
  }

  /** A reload changed the certificate of a native socket, or the path: a new socket on the same port, then the old one closes. */
  private async relisten(): Promise<void> {
    if (this.relistening || !this.bindAt || this.draining) return;
    this.relistening = true;
    const old = this.own;
    let bound = false;
    try {
      const l = await this.bind(this.bindAt.hostname, this.bindAt.port);
      old?.close();
      bound = true;
      if (this.draining) {
        // Stopped while the new socket was being bound.
        l.close();
        this.own = null;
      }
    } catch (err) {
      this.own = old;
      this.log.error("https listener could not rebind for its new certificates; serving the old ones", { listener: this.name, reason: (err as Error).message });
    } finally {
      this.relistening = false;
    }
    // A reload that came meanwhile.
    if (bound && this.own !== null && !this.draining && (this.httpsPath() !== this.ownPath || (this.ownPath === "native" && !sameCertificate(this.ownCert, this.certificates?.defaultCertificate ?? null)))) void this.relisten();
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
    this.own?.close();
    this.own = null;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.pool.clear();
  }
}

type HttpsPath = "native" | "node:tls" | "node:tls+tls-alpn-01";

function sameCertificate(a: { cert: string; key: string } | null, b: { cert: string; key: string } | null): boolean {
  return a === b || (a !== null && b !== null && a.cert === b.cert && a.key === b.key);
}
