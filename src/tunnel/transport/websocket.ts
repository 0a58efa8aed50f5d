/**
 * `WsConn`: a runtime `Conn` over another Conn that carries RFC 6455 binary
 * messages, so a MuxSession runs over a WebSocket unchanged. The frame codec
 * is pure and lives in src/proto/websocket.ts.
 *
 * Decision: the edge speaks WebSocket itself on the tunnel listener's own TLS
 * port (the upgrade request says `Upgrade: websocket` instead of
 * `edgemux-smux/2`), rather than through the runtimes' own WebSocket servers (Bun's serve, Deno's upgradeWebSocket) on
 * a second address. One port and one authentication path serve both
 * transports, the listener binds with reusePort like every other one, mTLS
 * works over WebSocket too, and Bun and Deno run the same code. The agent's
 * client uses the same codec over runtime.connect (TLS options, client
 * certificates and an Authorization header, which the WHATWG WebSocket API
 * cannot set). Interop with real implementations is tested against Bun's
 * WebSocket client and server (test/tunnel_e2e_test.ts).
 */
import { NULL_HANDLER } from "../../runtime/mod.ts";
import { encodeWsClose, encodeWsFrame, WsClose, type WsEvent, WsFrameDecoder, WsOpcode, type WsProtocolError } from "../../proto/websocket.ts";
import { type Conn, type ConnHandler, LayeredConn } from "../../runtime/mod.ts";


/**
 * A Conn whose bytes travel as WebSocket binary messages over `inner`.
 * `write` sends one binary frame per call (the mux writes whole batches);
 * backpressure, pause and resume pass through to `inner`. A close frame from
 * the peer ends the read side (`onEnd`), is answered, and the TCP side is
 * half-closed; `end()` and `close()` send our close frame first.
 */
export class WsConn extends LayeredConn implements Conn, ConnHandler {
  private handler: ConnHandler = NULL_HANDLER;
  private readonly decoder: WsFrameDecoder;
  private readonly masked: boolean;
  private closeSent = false;
  private ended = false;
  private closed = false;

  constructor(inner: Conn, readonly role: "server" | "client") {
    super(inner);
    this.decoder = new WsFrameDecoder(role);
    this.masked = role === "client";
    inner.setHandler(this);
  }

  write(data: Uint8Array): boolean {
    if (this.closed || this.closeSent) return false;
    return this.inner.write(encodeWsFrame(WsOpcode.BINARY, data, this.masked));
  }

  pause(): void {
    this.inner.pause();
  }
  resume(): void {
    this.inner.resume();
  }

  end(): void {
    if (this.closed) return;
    this.sendClose(WsClose.NORMAL, "");
    this.inner.end();
  }

  close(): void {
    if (this.closed) return;
    this.sendClose(WsClose.NORMAL, "");
    this.inner.close();
  }

  setHandler(handler: ConnHandler): void {
    this.handler = handler;
  }

  /** Feeds bytes read before this adapter took over (what followed the HTTP head). */
  feed(chunks: readonly Uint8Array[]): void {
    for (const c of chunks) this.onData(this.inner, c);
  }

  private sendClose(code: number, reason: string): void {
    if (this.closeSent) return;
    this.closeSent = true;
    this.inner.write(encodeWsClose(code, reason, this.masked));
  }

  // ---- events from the inner connection

  onData(_c: Conn, chunk: Uint8Array): void {
    if (this.closed) return;
    const d = this.decoder;
    d.push(chunk);
    for (;;) {
      let ev: WsEvent | null;
      try {
        ev = d.next();
      } catch (err) {
        const e = err as WsProtocolError;
        this.sendClose(e.closeCode, e.message.slice(0, 100));
        this.closed = true;
        this.inner.close();
        this.handler.onClose(this, e);
        return;
      }
      if (ev === null) return;
      switch (ev.type) {
        case "data":
          if (!this.ended) this.handler.onData(this, ev.bytes);
          break;
        case "ping":
          // §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in response".
          if (!this.closeSent) this.inner.write(encodeWsFrame(WsOpcode.PONG, ev.payload, this.masked));
          break;
        case "pong":
          break;
        case "close":
          // §5.5.1: answer with a close frame (echoing the code), then the TCP side goes.
          this.sendClose(ev.code === 1005 ? WsClose.NORMAL : ev.code, "");
          this.inner.end();
          this.deliverEnd();
          return;
      }
      if (this.closed) return;
    }
  }

  private deliverEnd(): void {
    if (this.ended) return;
    this.ended = true;
    this.handler.onEnd(this);
  }

  onDrain(): void {
    if (!this.closed) this.handler.onDrain(this);
  }

  onEnd(): void {
    // TCP FIN without a close frame (§7.1.5 "abnormal closure"): the read side is over all the same.
    this.deliverEnd();
  }

  onClose(_c: Conn, err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.handler.onClose(this, err);
  }
}
