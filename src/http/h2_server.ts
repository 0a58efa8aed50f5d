/**
 * HTTP/2 towards clients on an HTTPS http listener (ALPN "h2"): one
 * H2Server per connection, on the HTTP/2 connection of src/mux (the one HBONE
 * uses), each request stream an H2Exchange (h2_exchange.ts) routed and sent
 * upstream in HTTP/1.1 like a request of connection.ts.
 *
 * Limits: SETTINGS_MAX_CONCURRENT_STREAMS is `max_streams` (a stream over
 * it is refused with REFUSED_STREAM, and so is one whose predecessors were
 * reset while their upstream was still being reached: resetting buys no more
 * dials, the "rapid reset" pattern); SETTINGS_MAX_HEADER_LIST_SIZE is
 * `max_header_bytes` (a bigger request gets 431). No SETTINGS within
 * `handshake_timeout` ends the connection (SETTINGS_TIMEOUT); no stream for
 * `keepalive_timeout` sends GOAWAY, as does drain, after which the streams
 * under way finish.
 */
import type { ErrorCode, ProxyError } from "../errors/mod.ts";
import { LINGER_MS } from "../frontdoor/mod.ts";
import { H2Connection, type H2ConnectionOwner, type H2Stream } from "../mux/mod.ts";
import { H2Code, H2Error } from "../proto/mod.ts";
import type { Conn, ConnHandler } from "../runtime/types.ts";
import type { HttpConnection } from "./connection.ts";
import { H2Exchange } from "./h2_exchange.ts";
import type { HttpListener } from "./listener.ts";

export class H2Server implements H2ConnectionOwner, ConnHandler {
  readonly h2: H2Connection;
  /** Requests under way, each until its stream is gone and its dial settled. */
  readonly exchanges = new Set<H2Exchange>();
  private readonly startedMs: number;
  private endedAtMs = 0;
  private finished = false;
  private errorCode: ErrorCode | null = null;
  /** The socket is gone (closed by either side). */
  private socketClosed = false;

  constructor(readonly front: HttpConnection, readonly l: HttpListener, private readonly ended: (code: ErrorCode | null) => void) {
    this.startedMs = l.now();
    const cfg = l.config;
    this.h2 = new H2Connection(front.client, this, { role: "server", maxConcurrentStreams: cfg.maxStreams, maxHeaderListBytes: cfg.maxHeaderBytes });
    // The socket's events pass through here: once the HTTP/2 connection has ended (GOAWAY sent, our FIN
    // written), the socket lingers until the client closes it too, so our last frames are not lost to a close.
    front.client.setHandler(this);
  }

  onData(c: Conn, chunk: Uint8Array): void {
    if (!this.h2.closed) this.h2.onData(c, chunk); // after the end: read and discarded
  }

  onDrain(): void {
    if (!this.h2.closed) this.h2.onDrain();
  }

  onEnd(c: Conn): void {
    if (!this.h2.closed) this.h2.onEnd();
    // The client's FIN after ours (or after a connection error): nothing more can come either way.
    if (this.h2.closed) c.close();
  }

  onClose(c: Conn, err?: Error): void {
    this.socketClosed = true;
    if (!this.h2.closed) this.h2.onClose(c, err);
    this.maybeFinish();
  }

  /** `first`: the bytes that showed the client speaks HTTP/2 (its preface). */
  start(first: Uint8Array): void {
    this.h2.start(first);
  }

  onStreamHeaders(_c: H2Connection, s: H2Stream, fields: [string, string][], tooLarge: boolean, endStream: boolean): void {
    if (this.exchanges.size >= this.l.config.maxStreams || this.front.isDraining) {
      this.h2.streamReset(s, H2Code.REFUSED_STREAM);
      return;
    }
    // The request body (and an END_STREAM with the HEADERS) waits, bounded by the stream window, until the upstream is there.
    s.pause();
    const ex = new H2Exchange(this, s);
    this.exchanges.add(ex);
    ex.start(fields, tooLarge, endStream);
  }

  /** A stream's end reaches its exchange as the stream's onClose. */
  onStreamClosed(): void {}

  onConnectionClosed(_c: H2Connection, err: ProxyError | null): void {
    this.endedAtMs = this.l.now();
    if (err !== null && err.code !== "DOWNSTREAM_RESET") this.errorCode ??= err instanceof H2Error ? "H2_PROTOCOL" : err.code;
    this.maybeFinish();
  }

  exchangeEnded(ex: H2Exchange): void {
    if (!this.exchanges.delete(ex)) return;
    this.maybeFinish();
  }

  /** Done once the HTTP/2 connection ended, every exchange is recorded and the socket closed. */
  private maybeFinish(): void {
    if (this.socketClosed && this.h2.closed && this.exchanges.size === 0) this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (!this.socketClosed) this.front.client.close();
    this.ended(this.errorCode);
  }

  sweep(nowMs: number): void {
    const cfg = this.l.config;
    if (this.h2.closed) {
      // After our GOAWAY (or a connection error) the peer gets the front door's linger to close first.
      if (nowMs - this.endedAtMs >= LINGER_MS) {
        for (const ex of [...this.exchanges]) ex.abort("DRAINING");
        this.exchanges.clear();
        this.finish();
      }
      return;
    }
    if (!this.h2.settled && nowMs - this.startedMs >= cfg.handshakeTimeoutMs) {
      this.errorCode = "HANDSHAKE_TIMEOUT";
      this.h2.connectionError(new H2Error(H2Code.SETTINGS_TIMEOUT, `No HTTP/2 preface and SETTINGS within ${cfg.handshakeTimeoutMs} ms`));
      return;
    }
    for (const ex of [...this.exchanges]) ex.sweep(nowMs);
    if (this.exchanges.size === 0 && (this.front.isDraining || nowMs - this.h2.lastActiveMs >= cfg.keepaliveTimeoutMs)) {
      this.h2.goaway(H2Code.NO_ERROR, this.front.isDraining ? "draining" : "idle");
    }
  }

  /** GOAWAY: no new streams; the open ones finish, then the connection closes. */
  drain(): void {
    this.h2.goaway(H2Code.NO_ERROR, "draining");
  }

  abort(code: ErrorCode): void {
    this.errorCode ??= code;
    for (const ex of [...this.exchanges]) ex.abort(code);
    this.h2.abort();
    this.finish();
  }
}
