/**
 * One bidirectional stream of Bun's `node:quic` as a `Conn` (quic_types.ts).
 *
 * What `node:quic` (Bun 1.4.5) does and how this file copes (bench/README.md "QUIC probe"):
 * - Writing: `writer.write()` rejects when the stream's buffer is full instead
 *   of waiting, so we use `writeSync()`. It takes a whole chunk whenever the
 *   buffer has any room (so the buffer overshoots by at most one chunk) and
 *   returns false, taking nothing, when it is full: we keep the chunk and wait
 *   for the writer's drain promise (a symbol method, `Stream.drainableProtocol`,
 *   not exported: found by its description). One promise per full buffer, none per chunk.
 * - `writeSync() === false` with `desiredSize === null` means the send side is
 *   gone (the peer sent STOP_SENDING, or the stream was reset or closed) and
 *   nothing else says so: we turn it into a close.
 * - Reading is an async iterator that yields arrays of chunks; pausing is
 *   not pulling it. One promise per batch of chunks, not per chunk.
 * - But Bun 1.4.5 extends the QUIC flow-control window as packets arrive, not
 *   as the application reads (`maxStreamWindow`/`maxWindow` and the initial
 *   windows do not change that): a paused reader does NOT hold the sender, the
 *   receiving process buffers everything (measured: 128 MiB sent to a server
 *   that never read, its RSS +130 MiB, with 256 KiB / 1 MiB windows). `pause()`
 *   only stops delivery. Whoever needs a bound must add credit on top
 *   (test/quic_runtime_test.ts "known limit" fails once Bun fixes this).
 * - A RESET_STREAM from the peer makes the iterator throw
 *   ERR_QUIC_STREAM_RESET carrying the code; `onreset` gets the same code first.
 */
import { type ErrorSource, ProxyError } from "../errors/mod.ts";
import type { ConnHandler, TlsInfo } from "./types.ts";
import type { QuicStream } from "./quic_types.ts";

// deno-lint-ignore no-explicit-any
type NodeQuicStream = any;
// deno-lint-ignore no-explicit-any
type NodeQuicWriter = any;

/** What a stream needs from its session. */
export interface StreamOwner {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** "downstream" on a listener's sessions, "upstream" on ours. */
  readonly source: ErrorSource;
  tlsInfo(): TlsInfo;
  /** Bytes arrived (idle bookkeeping); once per batch of chunks. */
  heard(): void;
  streamClosed(s: BunQuicStream): void;
}

/** Bytes the stream's own buffer (node:quic `highWaterMark`) holds before `write` asks the caller to pause. */
export const STREAM_HIGH_WATER = 64 * 1024;

/** The writer's drain method: a symbol whose description is known but which is not exported. */
let drainSymbol: symbol | null | undefined = undefined;
function drainPromise(w: NodeQuicWriter): Promise<unknown> | null {
  if (drainSymbol === undefined) {
    drainSymbol = Object.getOwnPropertySymbols(w).find((s) => s.description === "Stream.drainableProtocol") ?? null;
  }
  return drainSymbol === null ? null : w[drainSymbol]();
}

/** `ERR_QUIC_STREAM_RESET | The QUIC stream was reset by the peer with error code 43`, or a QuicError's errorCode. */
// deno-lint-ignore no-explicit-any
export function quicErrorCode(e: any): number | null {
  if (e?.errorCode !== undefined) return Number(e.errorCode);
  const m = /error code (\d+)/.exec(String(e?.message ?? ""));
  return m ? Number(m[1]) : null;
}

export class BunQuicStream implements QuicStream {
  handler: ConnHandler;
  /** Null until `createBidirectionalStream` hands it over (a microtask after `openStream`). */
  private st: NodeQuicStream | null = null;
  private writer: NodeQuicWriter = null;
  /** Chunks the node:quic buffer has not taken yet; allocated on the first refusal. */
  private pending: Uint8Array[] | null = null;
  private pendingBytes = 0;
  private waitingDrain = false;
  private endRequested = false;
  private endSent = false;
  private paused = false;
  private wake: (() => void) | null = null;
  /** Closing: nothing more reaches the handler but onClose. */
  private closing = false;
  /** close() or reset() was called: the end that follows is no error. */
  private aborted = false;
  private closed = false;
  id = -1;
  resetCode: number | null = null;

  constructor(private readonly owner: StreamOwner, handler: ConnHandler) {
    this.handler = handler;
  }

  /** The node:quic stream exists: start reading and flush what was written meanwhile. */
  attach(st: NodeQuicStream): void {
    this.st = st;
    this.id = Number(st.id);
    st.highWaterMark = STREAM_HIGH_WATER;
    st.onerror = ignore;
    // deno-lint-ignore no-explicit-any
    st.onreset = (e: any) => (this.resetCode ??= quicErrorCode(e));
    st.closed.then(() => this.finish(undefined), (e: unknown) => this.finish(e));
    if (this.closing) return void st.destroy();
    this.writer = st.writer;
    const refused = this.pending !== null;
    // Writes made before now were refused (returned false): their drain is due once they are handed over.
    if ((refused || this.endRequested) && this.flush() && refused) this.handler.onDrain(this);
    void this.pump();
  }

  /** `createBidirectionalStream` failed (session closed, stream limit gone). */
  attachFailed(err: unknown): void {
    this.finish(err);
  }

  get remoteAddress(): string {
    return this.owner.remoteAddress;
  }
  get remotePort(): number {
    return this.owner.remotePort;
  }
  get localAddress(): string {
    return this.owner.localAddress;
  }
  get localPort(): number {
    return this.owner.localPort;
  }
  /** Ours plus what node:quic buffers and has not sent. */
  get writableLength(): number {
    const w = this.writer;
    const d = w === null ? null : w.desiredSize;
    return this.pendingBytes + (typeof d === "number" ? Math.max(0, STREAM_HIGH_WATER - d) : 0);
  }

  write(data: Uint8Array): boolean {
    if (this.closing || this.closed || this.endRequested) return false;
    if (this.pending === null && this.writer !== null) {
      if (this.writer.writeSync(data)) return this.writer.desiredSize > 0 || this.armDrain();
      if (this.writer.desiredSize === null) return this.sendSideGone();
    }
    // Not attached yet, or the buffer is full: keep a view (the caller does not reuse its chunk).
    (this.pending ??= []).push(data);
    this.pendingBytes += data.byteLength;
    if (this.writer !== null) this.armDrain();
    return false;
  }

  /** Waits for the writer's drain; returns false (the caller must pause). */
  private armDrain(): boolean {
    if (this.waitingDrain) return false;
    const p = drainPromise(this.writer);
    if (p === null) {
      // No drain promise: the buffer has room again already (or the writer is gone: flush sees it).
      queueMicrotask(() => this.drained());
    } else {
      this.waitingDrain = true;
      p.then(() => this.drained(), () => this.drained());
    }
    return false;
  }

  private drained(): void {
    this.waitingDrain = false;
    if (this.closing || this.closed) return;
    if (this.flush()) this.handler.onDrain(this);
  }

  /** Hands queued chunks to node:quic; true when none is left (then FIN if asked). */
  private flush(): boolean {
    const w = this.writer;
    const q = this.pending;
    while (q !== null && q.length > 0) {
      if (!w.writeSync(q[0])) {
        if (w.desiredSize === null) return this.sendSideGone();
        this.armDrain();
        return false;
      }
      this.pendingBytes -= q.shift()!.byteLength;
    }
    this.pending = null;
    if (this.endRequested && !this.endSent) {
      this.endSent = true;
      w.endSync();
      return true;
    }
    if (w.desiredSize === 0) {
      this.armDrain();
      return false;
    }
    return true;
  }

  /** The peer stopped reading (STOP_SENDING) or the stream died under us: nobody will take our bytes. */
  private sendSideGone(): false {
    if (!this.closing && !this.closed) {
      this.closing = true;
      this.finish(new ProxyError(this.resetKind(), this.owner.source, "QUIC stream: the peer stopped reading (STOP_SENDING) or reset the stream"));
      this.st?.destroy();
    }
    return false;
  }

  private resetKind(): "DOWNSTREAM_RESET" | "UPSTREAM_RESET" {
    return this.owner.source === "downstream" ? "DOWNSTREAM_RESET" : "UPSTREAM_RESET";
  }

  /** Reads batches until FIN, reset or close; waits while paused. */
  private async pump(): Promise<void> {
    const it = this.st[Symbol.asyncIterator]();
    try {
      for (;;) {
        while (this.paused && !this.closing) await new Promise<void>((r) => (this.wake = r));
        if (this.closing || this.closed) return;
        const r = await it.next();
        if (r.done) break;
        this.owner.heard();
        const batch: Uint8Array[] = r.value;
        for (let i = 0; i < batch.length; i++) {
          while (this.paused && !this.closing) await new Promise<void>((r) => (this.wake = r));
          if (this.closing || this.closed) return;
          this.handler.onData(this, batch[i]!);
        }
      }
    } catch (e) {
      if (this.closing || this.closed) return;
      const code = quicErrorCode(e);
      if (code !== null) this.resetCode ??= code;
      this.closing = true;
      this.finish(new ProxyError(this.resetKind(), this.owner.source, `QUIC stream reset by peer (code ${this.resetCode ?? "?"})`, { cause: e }));
      this.st.destroy();
      return;
    }
    if (!this.closing && !this.closed) this.handler.onEnd(this);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  end(): void {
    if (this.closing || this.closed || this.endRequested) return;
    this.endRequested = true;
    if (this.writer !== null && this.pending === null) {
      this.endSent = true;
      this.writer.endSync();
    }
  }

  /** Both ways now: RESET_STREAM(0) if we had not finished sending, STOP_SENDING(0) if the peer had not. */
  close(): void {
    this.abort(0);
  }

  reset(code: number): void {
    this.abort(code);
  }

  private abort(code: number): void {
    if (this.closing || this.closed) return;
    this.closing = true;
    this.aborted = true;
    this.pending = null;
    this.pendingBytes = 0;
    this.resume(); // let the read loop see `closing` and stop
    const st = this.st;
    if (st === null) return; // attach() destroys it
    const c = BigInt(code);
    if (!this.endSent) st.resetStream(c);
    // The peer's QUIC stack answers STOP_SENDING with RESET_STREAM(code); then both halves are done and `closed` settles.
    st.stopSending(c);
  }

  /** Called once, from `closed` settling or from a failure seen here first. */
  finish(err: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.closing = true;
    this.pending = null;
    this.pendingBytes = 0;
    const w = this.wake;
    this.wake = null;
    w?.();
    this.owner.streamClosed(this);
    // A close we asked for (close/reset, or both FINs) is no error; anything else is.
    const e = this.aborted || err === undefined || err === null ? undefined : err instanceof ProxyError ? err : this.errorFrom(err);
    this.handler.onClose(this, e);
  }

  /** A node:quic error (a reset, the session closing) as a ProxyError the core understands. */
  // deno-lint-ignore no-explicit-any
  private errorFrom(err: any): Error | undefined {
    const code = quicErrorCode(err);
    if (err?.code === "ERR_QUIC_STREAM_RESET" || (err?.type === "application" && this.resetCode !== null)) {
      return new ProxyError(this.resetKind(), this.owner.source, `QUIC stream reset by peer (code ${this.resetCode ?? code ?? "?"})`, { cause: err });
    }
    return new ProxyError(this.resetKind(), this.owner.source, `QUIC stream closed: ${err?.message ?? err}`, { cause: err });
  }

  setHandler(handler: ConnHandler): void {
    this.handler = handler;
  }

  /** QUIC has no Nagle: nothing to switch. */
  setNoDelay(_on: boolean): void {}

  tls(): TlsInfo {
    return this.owner.tlsInfo();
  }
}

function ignore(): void {}
