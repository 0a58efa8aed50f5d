/**
 * The QUIC part of the runtime contract (DESIGN.md "QUIC transport"; issue 10).
 * `Runtime.quic` is present where the runtime's QUIC can carry edgemux's
 * tunnel: Bun (`quic_bun.ts`, over its experimental `node:quic`). Deno has none
 * (see deno.ts); callers fall back to TLS over TCP.
 *
 * A QUIC connection is a session; each bidirectional stream is a `Conn` with
 * the usual contract (write/onDrain backpressure, pause/resume, end = FIN,
 * close) plus `reset(code)`.
 */
import type { Conn, ConnHandler, TlsInfo } from "./types.ts";

export interface QuicTransportOptions {
  /** ALPN protocol ids; the server picks the first it shares with the client. */
  alpn: string[];
  /** Close the connection after this long with no packet either way (default 30 000; rounded up to whole seconds). */
  idleTimeoutMs?: number;
  /** Send a PING after this long without sending (keeps NAT bindings and the idle timer alive); 0 or absent: none. */
  keepAliveMs?: number;
  /** Bidirectional streams the peer may have open at once (default 100). */
  maxStreams?: number;
  /** Accept QUIC datagrams (RFC 9221; default true). */
  datagrams?: boolean;
  /** Most bytes one stream may have in flight towards us (flow-control window; default 1 MiB). */
  streamWindow?: number;
  /** Most bytes the whole connection may have in flight towards us (default 8 MiB). */
  connectionWindow?: number;
}

export interface QuicListenOptions extends QuicTransportOptions {
  hostname: string;
  /** 0 = the kernel picks; `QuicListener.port` tells which. */
  port: number;
  /** Certificate chain and key, PEM. */
  cert: string;
  key: string;
  /** PEM bundle of the CAs that sign client certificates. */
  ca?: string;
  /** Require a client certificate signed by `ca`; clients without one are refused in the handshake. */
  requestCert?: boolean;
  /** A connection finished its handshake. Set its handler (`session.setHandler`) now. */
  onSession(session: QuicSession): void;
}

export interface QuicListener {
  readonly hostname: string;
  readonly port: number;
  /** Stop accepting; established sessions go on, and the socket is released once the last one ends. */
  close(): void;
}

export interface QuicConnectOptions extends Omit<QuicTransportOptions, "alpn"> {
  /** An IP address or a name to resolve. */
  hostname: string;
  port: number;
  /** SNI and the name the certificate must carry (default `hostname`). */
  servername?: string;
  /** The one ALPN protocol offered (Bun's client offers exactly one). */
  alpn: string;
  /** PEM bundle of trusted CAs; absent: the system's. Ignored with `pinSha256`. */
  ca?: string;
  /**
   * Accept exactly the peer certificate with this SHA-256 fingerprint (hex,
   * colons allowed), whoever signed it and whatever names it carries (direct
   * paths: the fingerprint came through the edge). A mismatch closes the
   * connection with CRYPTO_ERROR bad_certificate and rejects the connect.
   */
  pinSha256?: string;
  /** Client certificate chain and key, PEM. */
  cert?: string;
  key?: string;
  /** Give up on the handshake after this long (default 10 000); rejects with UPSTREAM_CONNECT_TIMEOUT. */
  timeoutMs?: number;
}

/** How a session ended. */
export interface QuicCloseInfo {
  /** The application code (kind "app"), the transport error code (kind "transport"), 0 for "idle". */
  code: number;
  reason: string;
  /**
   * "app": CONNECTION_CLOSE of type application (ours or the peer's);
   * "transport": a transport or TLS error, or a close without an application code;
   * "idle": the idle timeout ran out (nothing was heard from the peer).
   */
  kind: "app" | "transport" | "idle";
  /** We closed it (`close()`), rather than the peer or the timeout. */
  local: boolean;
}

/** Events of one session, delivered to one handler object (usually the session owner itself). */
export interface QuicSessionHandler {
  /**
   * The peer opened a bidirectional stream. Give it a handler with
   * `stream.setHandler()` now, or refuse it with `stream.reset(code)`.
   */
  onStream(session: QuicSession, stream: QuicStream): void;
  /** One datagram; `data` is a fresh buffer owned by the callee. */
  onDatagram(session: QuicSession, data: Uint8Array): void;
  /** The session is gone; every stream got its `onClose` first. Called exactly once. */
  onClose(session: QuicSession, info: QuicCloseInfo): void;
}

export interface QuicSession {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /**
   * Sets who receives this session's events. Streams the peer opened before
   * a handler was set are delivered to it now.
   */
  setHandler(handler: QuicSessionHandler): void;
  /**
   * Opens a bidirectional stream. Usable at once: bytes written before QUIC
   * allows the stream (the peer's stream limit) wait in it, and `write`
   * returns false until they are sent.
   */
  openStream(handler: ConnHandler): QuicStream;
  /** Largest datagram `sendDatagram` takes now; 0 when the peer accepts none. */
  readonly maxDatagramSize: number;
  /** Queues one datagram; false (nothing sent) when it is over `maxDatagramSize` or the session is closing. Delivery is not guaranteed. */
  sendDatagram(data: Uint8Array): boolean;
  /** Closes now with an application code and reason the peer sees; open streams are cut. `onClose` follows. */
  close(code: number, reason: string): void;
  /** ALPN, SNI and the peer certificate; `authorized` is true when it was verified (CA or pin). */
  tls(): TlsInfo;
  /** Smoothed round-trip time in ms, as QUIC measures it. */
  rttMs(): number;
}

export interface QuicStream extends Conn {
  /** The QUIC stream id (client-opened bidirectional: 0, 4, 8, …; server-opened: 1, 5, …). */
  readonly id: number;
  /**
   * Aborts the stream both ways with an application code: RESET_STREAM for
   * what we send, STOP_SENDING for what we receive. The peer's `onClose`
   * gets an error and its stream's `resetCode` is `code`. Our `onClose` follows without one.
   */
  reset(code: number): void;
  /** The code of the RESET_STREAM the peer sent, once it has; null otherwise. */
  readonly resetCode: number | null;
}

export interface QuicRuntime {
  listen(opts: QuicListenOptions): Promise<QuicListener>;
  connect(opts: QuicConnectOptions): Promise<QuicSession>;
}
