/**
 * One smux stream. It implements the runtime `Conn` interface, so the pipe code
 * that joins two sockets joins a socket and a stream, or two streams, unchanged:
 *
 * - `write(data)` queues a view of `data` (not copied until the frame is built)
 *   and returns false once the stream (or the session) holds its high-water
 *   mark; pause your source until `onDrain`.
 * - `pause()` stops `onData`. Arriving bytes are buffered and, in v2, not
 *   reported as consumed, so the peer runs out of window and stops; in v1 the
 *   session-wide receive buffer bounds them (the session then stops reading).
 * - `end()` sends FIN after the queued bytes (half-close); reading goes on.
 * - `close()` drops what is queued both ways, sends FIN if not sent yet and
 *   forgets the stream at once (later frames for its id are discarded), like
 *   Go's `Stream.Close`.
 * - `onClose` fires exactly once: after FIN went both ways, on `close()`, or
 *   when the session ends (then with the session's error).
 *
 * Fields below the public API are shared with session.ts and writer.ts; they
 * are not part of the public face exported by mod.ts.
 */
import { NULL_HANDLER } from "../runtime/mod.ts";
import type { Conn, ConnHandler, TlsInfo } from "../runtime/mod.ts";
import type { MuxSession } from "./session.ts";


export class MuxStream implements Conn {
  handler: ConnHandler = NULL_HANDLER;

  // ---- send side (bytes we write) ----
  /** Queued outgoing chunks (views of the caller's buffers); `sendPos` indexes into the first. */
  sendQ: Uint8Array[] = [];
  sendPos = 0;
  sendBytes = 0;
  /** v2: payload bytes put into frames so far, modulo 2^32. */
  numWritten = 0;
  /** v2: the peer's last UPD: bytes it consumed (mod 2^32) and its window. */
  peerConsumed = 0;
  peerWindow: number;
  /** In the session's round-robin of streams with sendable bytes. */
  inRing = false;
  nextInRing: MuxStream | null = null;
  /** write() returned false; onDrain is owed. */
  wantDrain = false;
  /** SYN not yet put on the wire (streams we opened). */
  synPending: boolean;
  /** end() or close() was called: FIN follows the queued bytes. */
  finQueued = false;
  finSent = false;
  /** In the session's control list (SYN, UPD or a bare FIN to send). */
  inCtl = false;
  nextInCtl: MuxStream | null = null;
  /** v2: an UPD is owed to the peer. */
  updPending = false;

  // ---- receive side (bytes the peer sends) ----
  /** Bytes received while paused, views of the session's read chunks. */
  recvQ: Uint8Array[] = [];
  recvBytes = 0;
  /** v2: bytes handed to onData (mod 2^32), and since the last UPD. */
  numRead = 0;
  readSinceUpd = 0;
  updSentOnce = false;
  paused = false;
  /** In the session's list of resumed streams with buffered bytes to deliver. */
  inDeliverQ = false;
  /** FIN received from the peer; `endDelivered` once onEnd was called. */
  remoteFin = false;
  endDelivered = false;
  /** Tick time since when this stream waits for a window the peer (having sent FIN) may never open; -1 if not. */
  finWaitSinceMs = -1;

  closed = false;

  constructor(readonly id: number, readonly session: MuxSession, opener: boolean, initialPeerWindow: number) {
    this.synPending = opener;
    this.peerWindow = initialPeerWindow;
  }

  // ---- Conn ----
  get remoteAddress(): string {
    return this.session.conn.remoteAddress;
  }
  get remotePort(): number {
    return this.session.conn.remotePort;
  }
  get localAddress(): string {
    return this.session.conn.localAddress;
  }
  get localPort(): number {
    return this.session.conn.localPort;
  }
  /** Bytes accepted by write() and not yet put into frames. */
  get writableLength(): number {
    return this.sendBytes;
  }

  write(data: Uint8Array): boolean {
    return this.session.streamWrite(this, data);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.recvBytes > 0 || (this.remoteFin && !this.endDelivered)) this.session.scheduleDeliver(this);
  }

  end(): void {
    this.session.streamEnd(this);
  }

  close(): void {
    this.session.streamClose(this, undefined);
  }

  setHandler(handler: ConnHandler): void {
    this.handler = handler;
  }

  /** Frames leave in per-tick batches; there is no Nagle to turn off per stream. */
  setNoDelay(_on: boolean): void {}

  tls(): TlsInfo | null {
    return this.session.conn.tls();
  }

  /** Bytes received and held for a paused consumer. */
  get bufferedBytes(): number {
    return this.recvBytes;
  }

  /** Both FINs done, or closed. */
  get isClosed(): boolean {
    return this.closed;
  }
}
