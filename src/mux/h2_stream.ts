/**
 * One HTTP/2 stream as a `Conn`, so the relay (and anything else written
 * against the runtime contract) can treat a CONNECT stream like a socket:
 *
 * - write(): DATA frames within the stream's and the connection's send
 *   windows; what does not fit waits here (bounded: the caller pauses its
 *   source when write returns false, and `onDrain` follows when it is out);
 * - pause()/resume(): while paused, DATA is held here (bounded by the
 *   window we advertised) and no WINDOW_UPDATE goes out, so the peer stops;
 * - end(): END_STREAM after what is queued; close(): END_STREAM when the
 *   peer had ended and nothing is queued, else RST_STREAM (CANCEL);
 * - events: onData per DATA piece (a view into the connection's read
 *   chunk), onEnd at the peer's END_STREAM, onClose once when the stream is
 *   gone both ways, reset, or the connection died.
 */
import { NULL_HANDLER } from "../runtime/mod.ts";
import type { Conn, ConnHandler, TlsInfo } from "../runtime/types.ts";
import type { H2Connection } from "./h2_connection.ts";


/** Bytes a stream holds for the peer before `write` asks its caller to pause. */
export const STREAM_HIGH_WATER = 64 * 1024;

export class H2Stream implements Conn {
  handler: ConnHandler = NULL_HANDLER;
  /** Send window (peer's): may go negative after a SETTINGS change. */
  sendWindow: number;
  /** Receive window we still grant the peer on this stream. */
  recvWindow: number;
  /** Bytes delivered (or discarded) since our last WINDOW_UPDATE for this stream. */
  recvUnacked = 0;
  /** Outgoing data waiting for window or for the socket. */
  pending: Uint8Array[] = [];
  pendingBytes = 0;
  /** end() was called: END_STREAM goes out after `pending`. */
  endQueued = false;
  /** END_STREAM sent / received. */
  localEnded = false;
  remoteEnded = false;
  /** Incoming data held while paused (views into read chunks). */
  inbox: Uint8Array[] = [];
  inboxBytes = 0;
  /** The peer's END_STREAM arrived while paused behind `inbox`. */
  endPending = false;
  paused = false;
  wantDrain = false;
  closed = false;
  /** Set by the connection: response/request headers seen. */
  headersDone = false;
  /** Free slot for the owner (the tunnel riding on this stream). */
  owner: unknown = null;

  constructor(readonly id: number, readonly connection: H2Connection, sendWindow: number, recvWindow: number) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  get remoteAddress(): string {
    return this.connection.conn.remoteAddress;
  }
  get remotePort(): number {
    return this.connection.conn.remotePort;
  }
  get localAddress(): string {
    return this.connection.conn.localAddress;
  }
  get localPort(): number {
    return this.connection.conn.localPort;
  }
  /** Queued bytes, plus one while a queued END_STREAM has not gone out (so a relay ends rather than resets us). */
  get writableLength(): number {
    return this.pendingBytes + (this.endQueued && !this.localEnded ? 1 : 0);
  }

  write(data: Uint8Array): boolean {
    if (this.closed || this.endQueued || data.length === 0) return !this.closed && !this.endQueued;
    return this.connection.streamWrite(this, data);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.connection.streamResumed(this);
  }

  end(): void {
    if (this.closed || this.endQueued) return;
    this.endQueued = true;
    this.connection.streamEnd(this);
  }

  /**
   * Close now: a clean END_STREAM when the peer had ended and nothing of ours
   * is queued; otherwise RST_STREAM CANCEL (an abort must not look complete).
   */
  close(): void {
    if (this.closed) return;
    this.connection.streamClose(this);
  }

  setHandler(handler: ConnHandler): void {
    this.handler = handler;
  }

  setNoDelay(): void {}

  tls(): TlsInfo | null {
    return this.connection.conn.tls();
  }
}
