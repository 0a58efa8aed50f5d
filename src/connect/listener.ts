/**
 * `kind = "connect"`: HTTP/1.1 CONNECT on plain TCP; over TLS it offers ALPN
 * "h2" and "http/1.1" and hands each connection to HTTP/2 (HBONE,
 * hbone_server.ts) or HTTP/1.1 (http1_preamble.ts on the front session) by
 * what the client chose.
 */
import { monotonicMs } from "../runtime/mod.ts";
import { ProxyPolicy } from "../auth/mod.ts";
import type { ConnectListenerConfig } from "../config/types.ts";
import type { ErrorCode } from "../errors/mod.ts";
import { FrontListener, type FrontConnection, type ListenerSettings, type Preamble } from "../frontdoor/mod.ts";
import type { Conn, TlsServerOptions } from "../runtime/types.ts";
import { HboneSession } from "./hbone_server.ts";
import { Http1Preamble } from "./http1_preamble.ts";

export class ConnectListener extends FrontListener<ConnectListenerConfig> {
  declare policy: ProxyPolicy;

  protected configure(s: ListenerSettings): void {
    this.policy = new ProxyPolicy(s.config, s.listener as ConnectListenerConfig);
  }

  protected override listenTls(): TlsServerOptions | undefined {
    const t = this.config.tls;
    if (t === null) return undefined;
    return {
      cert: t.cert,
      key: t.key,
      ...(t.clientCa !== null ? { ca: t.clientCa } : {}),
      requestCert: t.clientCert !== "none",
      rejectUnauthorized: t.clientCert === "require",
      alpn: ["h2", "http/1.1"],
    };
  }

  protected override createSession(conn: Conn, nowMs: number): FrontConnection {
    return this.config.tls === null ? super.createSession(conn, nowMs) : new AlpnDispatch(conn, this, nowMs);
  }

  protected override preamble(): Preamble {
    return new Http1Preamble(this);
  }

  /** An HTTP/1.1 connection after TLS chose it (ALPN). */
  http1(conn: Conn, nowMs: number): FrontConnection {
    return super.createSession(conn, nowMs);
  }
}

/**
 * A TLS connection until its first bytes: the handshake is done by then, so
 * the negotiated ALPN says which protocol the client speaks.
 */
class AlpnDispatch implements FrontConnection {
  private ended = false;
  private readonly startedAt = monotonicMs();

  constructor(readonly conn: Conn, private readonly listener: ConnectListener, private readonly startedMs: number) {}

  onData(conn: Conn, chunk: Uint8Array): void {
    if (conn.tls()?.alpn === "h2") {
      const h2 = new HboneSession(conn, this.listener, this.startedMs);
      this.listener.replaceSession(this, h2);
      h2.start(chunk);
      return;
    }
    const h1 = this.listener.http1(conn, this.startedMs);
    this.listener.replaceSession(this, h1);
    conn.setHandler(h1);
    h1.onData(conn, chunk);
  }

  onDrain(): void {}

  onEnd(conn: Conn): void {
    conn.close();
  }

  onClose(): void {
    this.finish(null);
  }

  sweep(nowMs: number): void {
    // No application bytes within the handshake timeout (a TLS handshake that never finishes included).
    if (nowMs - this.startedMs >= this.listener.config.handshakeTimeoutMs) this.abort("HANDSHAKE_TIMEOUT");
  }

  drain(): void {}

  abort(code: ErrorCode): void {
    this.conn.close();
    this.finish(code);
  }

  private finish(code: ErrorCode | null): void {
    if (this.ended) return;
    this.ended = true;
    this.listener.connectionEnded(this, (monotonicMs() - this.startedAt) / 1000, code);
  }
}
