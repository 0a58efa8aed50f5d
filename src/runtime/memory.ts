/**
 * In-memory connection pairs for unit tests (pingora's VirtualSocket idea).
 * Delivery is asynchronous (a macrotask per flush) like a real socket, honours
 * pause/resume, and `write` reports backpressure once the peer holds more than
 * `highWater` undelivered bytes, so backpressure logic is testable without I/O.
 */
import { NULL_HANDLER } from "./common.ts";
import type { Conn, ConnHandler, TlsInfo } from "./types.ts";


export interface MemoryPairOptions {
  highWater?: number;
  /** Split every write into chunks of at most this size on delivery (exercise reassembly). */
  maxChunk?: number;
}

export class MemoryConn implements Conn {
  handler: ConnHandler = NULL_HANDLER;
  peer!: MemoryConn;
  /** Bytes written by the peer, waiting for this side to read them. */
  inbox: Uint8Array[] = [];
  inboxBytes = 0;
  paused = false;
  /** The peer sent FIN and it has not been delivered yet. */
  finPending = false;
  private endSent = false;
  private finDelivered = false;
  closed = false;
  private scheduled = false;
  private wantDrain = false;
  bytesWritten = 0;

  constructor(
    readonly remoteAddress: string,
    readonly remotePort: number,
    readonly localAddress: string,
    readonly localPort: number,
    private readonly highWater: number,
    private readonly maxChunk: number,
  ) {}

  get writableLength(): number {
    return this.peer.inboxBytes;
  }

  write(data: Uint8Array): boolean {
    if (this.closed || this.endSent) return false;
    const p = this.peer;
    if (p.closed) return false;
    // Copy: the caller may reuse its buffer, as with a kernel socket.
    for (let off = 0; off < data.length; off += this.maxChunk) {
      const part = data.slice(off, Math.min(data.length, off + this.maxChunk));
      p.inbox.push(part);
      p.inboxBytes += part.length;
    }
    this.bytesWritten += data.length;
    p.schedule();
    const ok = p.inboxBytes < this.highWater;
    if (!ok) this.wantDrain = true;
    return ok;
  }

  schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setTimeout(() => this.deliver(), 0);
  }

  private deliver(): void {
    this.scheduled = false;
    while (!this.paused && !this.closed && this.inbox.length > 0) {
      const chunk = this.inbox.shift()!;
      this.inboxBytes -= chunk.length;
      this.handler.onData(this, chunk);
    }
    const p = this.peer;
    if (p.wantDrain && this.inboxBytes < p.highWater && !p.closed) {
      p.wantDrain = false;
      p.handler.onDrain(p);
    }
    if (!this.paused && !this.closed && this.inbox.length === 0 && this.finPending && !this.finDelivered) {
      this.finDelivered = true;
      this.handler.onEnd(this);
      if (this.endSent && !this.closed) this.closeBoth();
    }
  }

  pause(): void {
    this.paused = true;
  }
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.schedule();
  }

  end(): void {
    if (this.closed || this.endSent) return;
    this.endSent = true;
    this.peer.finPending = true;
    // The peer delivers what it still holds, then the FIN; with both FINs
    // exchanged its deliver() closes the pair.
    this.peer.schedule();
  }

  close(): void {
    this.closeBoth();
  }

  private closeBoth(): void {
    const a: MemoryConn = this;
    const b = this.peer;
    for (const c of [a, b]) {
      if (c.closed) continue;
      c.closed = true;
      c.inbox.length = 0;
      c.inboxBytes = 0;
      setTimeout(() => c.handler.onClose(c), 0);
    }
  }

  setHandler(handler: ConnHandler): void {
    this.handler = handler;
  }
  setNoDelay(): void {}
  tls(): TlsInfo | null {
    return null;
  }
}

/** Two connected ends: what `a` writes, `b` reads, and the other way round. */
export function memoryPair(opts: MemoryPairOptions = {}): [MemoryConn, MemoryConn] {
  const hw = opts.highWater ?? 64 * 1024;
  const mc = opts.maxChunk ?? 64 * 1024;
  const a = new MemoryConn("127.0.0.1", 40001, "127.0.0.1", 40002, hw, mc);
  const b = new MemoryConn("127.0.0.1", 40002, "127.0.0.1", 40001, hw, mc);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
