/**
 * Base for a Conn carried over another Conn (a framing layer such as a
 * WebSocket or a stream's first-message reader): the addresses, the write
 * queue, Nagle and the TLS facts are the inner connection's.
 */
import type { Conn, TlsInfo } from "./types.ts";

export abstract class LayeredConn {
  constructor(readonly inner: Conn) {}

  get remoteAddress(): string {
    return this.inner.remoteAddress;
  }
  get remotePort(): number {
    return this.inner.remotePort;
  }
  get localAddress(): string {
    return this.inner.localAddress;
  }
  get localPort(): number {
    return this.inner.localPort;
  }
  get writableLength(): number {
    return this.inner.writableLength;
  }
  setNoDelay(on: boolean): void {
    this.inner.setNoDelay(on);
  }
  tls(): TlsInfo | null {
    return this.inner.tls();
  }
}
