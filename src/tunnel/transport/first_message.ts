/**
 * Reads the one length-prefixed message that starts a tunnel data stream
 * (`open`, or the `ok` / `error` answering it), then steps aside: bytes that
 * arrived after the message are kept (the stream is paused meanwhile, so at
 * most one window of them) and handed to whoever takes the stream over.
 *
 * One of these per stream open, on the edge and in the agent. Time bound:
 * a timer per pending open (cleared when the message arrives), not per chunk.
 */
import { NULL_HANDLER } from "../../runtime/mod.ts";
import { ProxyError } from "../../errors/mod.ts";
import { OPEN_MAX_MESSAGE, type TunnelMessage, TunnelMessageDecoder } from "../../proto/tunnel_control.ts";
import { type Conn, type ConnHandler, LayeredConn } from "../../runtime/mod.ts";

export type FirstMessageCallback = (err: ProxyError | null, msg: TunnelMessage | null, rest: Uint8Array[]) => void;

export class FirstMessage implements ConnHandler {
  private readonly decoder: TunnelMessageDecoder;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private done = false;
  /** After the message: bytes that followed it, until the new owner takes the stream. */
  private rest: Uint8Array[] = [];
  /** The stream ended or closed after the message, before the new owner took it. */
  ended = false;
  closed = false;
  closeErr: Error | undefined;

  constructor(readonly conn: Conn, timeoutMs: number, private readonly cb: FirstMessageCallback, source: "downstream" | "upstream" = "downstream") {
    this.decoder = new TunnelMessageDecoder(OPEN_MAX_MESSAGE, source);
    conn.setHandler(this);
    if (timeoutMs > 0) this.timer = setTimeout(() => this.finish(new ProxyError("HANDSHAKE_TIMEOUT", source, `no tunnel open message within ${timeoutMs} ms`)), timeoutMs);
  }

  onData(_c: Conn, chunk: Uint8Array): void {
    if (this.done) {
      // Bounded: the stream is paused once the message is in; a mux stream's window caps what was already in flight.
      this.rest.push(chunk);
      return;
    }
    this.decoder.push(chunk);
    let msg: TunnelMessage | null;
    try {
      msg = this.decoder.next();
    } catch (err) {
      this.finish(err as ProxyError);
      return;
    }
    if (msg === null) return;
    this.rest = this.decoder.rest();
    this.conn.pause();
    this.done = true;
    this.clearTimer();
    this.cb(null, msg, this.rest);
  }

  /** The new owner calls this: the bytes that arrived after the message (and since). */
  takeRest(): Uint8Array[] {
    const r = this.rest;
    this.rest = [];
    return r;
  }

  onDrain(): void {}

  onEnd(): void {
    if (this.done) {
      this.ended = true;
      return;
    }
    this.finish(new ProxyError("TUNNEL_PROTOCOL", "downstream", "the stream ended before its open message was complete"));
  }

  onClose(_c: Conn, err?: Error): void {
    if (this.done) {
      this.closed = true;
      this.closeErr = err;
      return;
    }
    this.finish(new ProxyError("DOWNSTREAM_RESET", "downstream", `the stream closed before its open message${err ? `: ${err.message}` : ""}`));
  }

  /** Gives up waiting (the owner is going away). */
  cancel(): void {
    if (this.done) return;
    this.done = true;
    this.clearTimer();
  }

  private finish(err: ProxyError): void {
    if (this.done) return;
    this.done = true;
    this.clearTimer();
    this.cb(err, null, []);
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}


/** How long a stream closed by its owner keeps reading (and discarding) while waiting for the peer's FIN. */
export const DRAIN_ON_CLOSE_MS = 10_000;

/**
 * A tunnel stream as handed to a relay, after its first message:
 *
 * - it first delivers `early` chunks (bytes that arrived before its new owner
 *   took over, and an end or close that came meanwhile), then passes events
 *   through; delivery starts when a handler is set (unless the owner paused
 *   it), so an owner that only calls `setHandler` — as the SNI listener's
 *   relay does with a connection it dialed — gets every byte;
 * - `close()` is graceful. smux has no reset: a stream we just forget would
 *   leave the peer writing into a window that never reopens (its relay
 *   paused, a window of bytes held, until its FIN-wait timeout). So a close
 *   before the peer's FIN sends our FIN after what is queued and keeps
 *   reading and discarding until the peer's FIN arrives (the far side ended
 *   too) or DRAIN_ON_CLOSE_MS pass; the owner gets onClose at once.
 */
export class StreamConn extends LayeredConn implements Conn, ConnHandler {
  private handler: ConnHandler | null = null;
  private paused = false;
  private scheduled = false;
  private holding = true;
  private peerEnded = false;
  private gone = false;

  constructor(
    inner: Conn,
    private early: Uint8Array[],
    private pendingEnd = false,
    private pendingClose: { err?: Error } | null = null,
  ) {
    super(inner);
    this.peerEnded = pendingEnd;
    inner.setHandler(this);
  }

  write(data: Uint8Array): boolean {
    return this.gone ? false : this.inner.write(data);
  }
  end(): void {
    this.inner.end();
  }

  close(): void {
    if (this.gone) return;
    this.gone = true;
    const h = this.handler;
    this.handler = null;
    this.early = [];
    if (this.peerEnded || this.pendingClose !== null) this.inner.close();
    else {
      const inner = this.inner;
      const timer = setTimeout(() => inner.close(), DRAIN_ON_CLOSE_MS);
      (timer as { unref?: () => void }).unref?.();
      inner.setHandler({
        onData() {}, // discarded: the owner is gone
        onDrain() {},
        onEnd() {}, // FIN both ways: the stream finishes by itself
        onClose: () => clearTimeout(timer),
      });
      inner.end();
      inner.resume();
    }
    if (h !== null) queueMicrotask(() => h.onClose(this));
  }

  setHandler(handler: ConnHandler): void {
    this.handler = handler;
    if (this.holding && !this.paused) this.schedule();
  }

  pause(): void {
    this.paused = true;
    this.inner.pause();
  }

  resume(): void {
    this.paused = false;
    if (this.holding) {
      if (this.handler !== null) this.schedule();
    } else this.inner.resume();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => this.flushEarly());
  }

  private flushEarly(): void {
    this.scheduled = false;
    while (this.handler !== null && !this.paused && this.early.length > 0) this.handler.onData(this, this.early.shift()!);
    const h = this.handler;
    if (h === null || this.paused) return;
    this.holding = false;
    if (this.pendingEnd) {
      this.pendingEnd = false;
      h.onEnd(this);
    }
    if (this.pendingClose) {
      const c = this.pendingClose;
      this.pendingClose = null;
      this.gone = true;
      h.onClose(this, c.err);
      return;
    }
    if (!this.paused) this.inner.resume();
  }

  onData(_c: Conn, chunk: Uint8Array): void {
    if (this.holding || this.handler === null) this.early.push(chunk);
    else this.handler.onData(this, chunk);
  }
  onDrain(): void {
    this.handler?.onDrain(this);
  }
  onEnd(): void {
    this.peerEnded = true;
    if (this.holding || this.handler === null) this.pendingEnd = true;
    else this.handler.onEnd(this);
  }
  onClose(_c: Conn, err?: Error): void {
    if (this.holding || this.handler === null) {
      this.pendingClose = { err };
      return;
    }
    this.gone = true;
    this.handler.onClose(this, err);
  }
}

/**
 * The stream after its first message, for a new owner: a StreamConn that
 * starts delivering once its handler is set (and closes gracefully).
 */
export function handOver(fm: FirstMessage): Conn {
  return new StreamConn(fm.conn, fm.takeRest(), fm.ended, fm.closed ? { err: fm.closeErr } : null);
}
