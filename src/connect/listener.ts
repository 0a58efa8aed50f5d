/**
 * A connect listener inside one worker: HTTP/1.1 CONNECT on plain TCP; over
 * TLS it offers ALPN "h2" and "http/1.1" and hands each connection to
 * HTTP/2 (HBONE) or HTTP/1.1 by what the client chose.
 */
import type { ConnectListenerConfig } from "../config/types.ts";
import type { ErrorCode } from "../errors/mod.ts";
import type { Conn, ListenOptions } from "../runtime/types.ts";
import { HboneSession } from "./hbone_server.ts";
import { Http1Tunnel } from "./http1_tunnel.ts";
import { ProxyListener, type ProxySession } from "./proxy_listener.ts";

export class ConnectListenerState extends ProxyListener<ConnectListenerConfig> {
  protected listenTls(): ListenOptions["tls"] {
    const t = this.config.tls;
    if (t === null) return undefined;
    return {
      cert: t.cert,
      key: t.key,
      ca: t.clientCa ?? undefined,
      requestCert: t.clientCert !== "none",
      rejectUnauthorized: t.clientCert === "require",
      alpn: ["h2", "http/1.1"],
    };
  }

  protected createSession(conn: Conn, nowMs: number): ProxySession {
    return this.config.tls === null ? new Http1Tunnel(conn, this, nowMs) : new AlpnDispatch(conn, this, nowMs);
  }
}

/**
 * A TLS connection until its first bytes: the handshake is done by then, so
 * the negotiated ALPN says which protocol the client speaks.
 */
class AlpnDispatch implements ProxySession {
  private ended = false;
  private readonly startedAt = performance.now();

  constructor(readonly conn: Conn, private readonly listener: ConnectListenerState, private readonly startedMs: number) {}

  onData(conn: Conn, chunk: Uint8Array): void {
    if (conn.tls()?.alpn === "h2") {
      const h2 = new HboneSession(conn, this.listener, this.startedMs);
      this.listener.replaceSession(this, h2);
      h2.start(chunk);
      return;
    }
    const h1 = new Http1Tunnel(conn, this.listener, this.startedMs);
    this.listener.replaceSession(this, h1);
    conn.setHandler(h1);
    h1.onData(conn, chunk);
  }

  onDrain(): void {}

  onEnd(conn: Conn): void {
    conn.close();
  }

  onClose(): void {
    this.finish();
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

  private finish(code: ErrorCode | null = null): void {
    if (this.ended) return;
    this.ended = true;
    if (code !== null) this.listener.stats.error(this.listener.listenerSlot, code);
    this.listener.connectionEnded(this, (performance.now() - this.startedAt) / 1000);
  }
}
