/**
 * An operator stream (after the open exchange) as both ends use it: frames
 * pulled one at a time (`next()`), writes that report backpressure
 * (`drained()`), and the end of the stream seen once.
 *
 * Backpressure both ways: frames wait in a queue until pulled; once more than
 * HIGH_WATER bytes of them wait, the stream is paused (its mux window then
 * stops the peer), and resumed when the reader caught up. Writers check
 * `write`'s answer and await `drained()`.
 *
 * Cost: one promise per pulled frame. Remote access moves files and
 * keystrokes, not the proxy's hot path; a file chunk is ≤ 32 KiB (one mux
 * frame) and each is written to disk with its own await anyway.
 */
import type { Conn, ConnHandler } from "../runtime/types.ts";
import { ProxyError } from "../errors/mod.ts";
import { dataHeader, DATA_CHUNK, type Frame, FrameDecoder } from "./frames.ts";

const HIGH_WATER = 1024 * 1024;

export class FrameStream implements ConnHandler {
  private readonly dec = new FrameDecoder();
  private readonly queue: Frame[] = [];
  private queuedBytes = 0;
  private paused = false;
  private waiter: ((f: Frame | null) => void) | null = null;
  private failWaiter: ((e: Error) => void) | null = null;
  private drainWaiters: (() => void)[] = [];
  /** The last write was not fully accepted: onDrain is owed. */
  private full = false;
  /** The peer sent FIN. */
  ended = false;
  closed = false;
  error: Error | null = null;
  /** Told once when the stream is gone (closed, or failed to decode). */
  onGone: ((err: Error | null) => void) | null = null;

  constructor(readonly conn: Conn) {
    conn.setHandler(this);
    conn.resume();
  }

  // ---------------------------------------------------------------- reading

  onData(_c: Conn, chunk: Uint8Array): void {
    this.dec.push(chunk);
    for (;;) {
      let f: Frame | null;
      try {
        f = this.dec.next();
      } catch (e) {
        this.fail(e as Error);
        return;
      }
      if (f === null) break;
      if (this.waiter !== null) {
        const w = this.waiter;
        this.waiter = null;
        this.failWaiter = null;
        w(f);
        continue;
      }
      this.queue.push(f);
      this.queuedBytes += f.type === 0 ? f.data.length : 64;
    }
    if (this.queuedBytes > HIGH_WATER && !this.paused) {
      this.paused = true;
      this.conn.pause();
    }
  }

  /** The next frame; null once the peer ended the stream; rejects when it broke. */
  next(): Promise<Frame | null> {
    const f = this.queue.shift();
    if (f !== undefined) {
      this.queuedBytes -= f.type === 0 ? f.data.length : 64;
      if (this.paused && this.queuedBytes < HIGH_WATER / 2) {
        this.paused = false;
        this.conn.resume();
      }
      return Promise.resolve(f);
    }
    if (this.error !== null) return Promise.reject(this.error);
    if (this.ended || this.closed) return Promise.resolve(null);
    return new Promise<Frame | null>((resolve, reject) => {
      this.waiter = resolve;
      this.failWaiter = reject;
    });
  }

  /** The next MSG frame's map; anything else (or the end) is a protocol error naming `what`. */
  async nextMsg(what: string): Promise<Record<string, unknown>> {
    const f = await this.next();
    if (f === null) throw new ProxyError("UPSTREAM_RESET", "upstream", `the stream ended while waiting for ${what}`);
    if (f.type !== 1) throw new ProxyError("TUNNEL_PROTOCOL", "upstream", `expected ${what}, got a frame of type ${f.type}`);
    return f.msg;
  }

  onEnd(): void {
    this.ended = true;
    this.wake(null);
  }

  onClose(_c: Conn, err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (err && this.error === null) this.error = err;
    this.wake(null);
    for (const d of this.drainWaiters.splice(0)) d();
    this.onGone?.(this.error);
  }

  private wake(f: Frame | null): void {
    const w = this.waiter;
    const fw = this.failWaiter;
    this.waiter = null;
    this.failWaiter = null;
    if (this.error !== null && fw !== null) fw(this.error);
    else w?.(f);
  }

  private fail(e: Error): void {
    if (this.error === null) this.error = e;
    this.wake(null);
    this.conn.close();
  }

  // ---------------------------------------------------------------- writing

  onDrain(): void {
    this.full = false;
    for (const d of this.drainWaiters.splice(0)) d();
  }

  /** Queues bytes; false: await `drained()` before writing more. */
  write(bytes: Uint8Array): boolean {
    if (this.closed) return false;
    const ok = this.conn.write(bytes);
    if (!ok) this.full = true;
    return ok;
  }

  /** File or terminal bytes as DATA frames of at most DATA_CHUNK (views, no copy). */
  writeData(bytes: Uint8Array): boolean {
    let ok = true;
    for (let o = 0; o < bytes.length; o += DATA_CHUNK) {
      const piece = bytes.subarray(o, Math.min(bytes.length, o + DATA_CHUNK));
      this.write(dataHeader(piece.length));
      ok = this.write(piece);
    }
    return ok && !this.closed;
  }

  /** Resolves once a write that was not fully accepted has drained (or the stream is gone). */
  drained(): Promise<void> {
    if (this.closed || !this.full) return Promise.resolve();
    return new Promise<void>((r) => this.drainWaiters.push(r));
  }

  /** Half-close: no more frames from us. */
  end(): void {
    if (!this.closed) this.conn.end();
  }

  close(): void {
    this.conn.close();
  }
}
