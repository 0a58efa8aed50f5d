/**
 * The byte pump every listener ends in: once a client and an upstream are
 * joined, each chunk read on one side is written to the other — no copy, no
 * promise, no closure per chunk. When a write is not fully taken the reading
 * side pauses until the writer drains. FIN is passed on as a half-close;
 * the pair is finished when both directions ended or either side is gone.
 *
 * This file is the hot path of the proxy. Keep it synchronous and flat.
 */
import type { ErrorCode } from "../errors/mod.ts";
import type { Conn, ConnHandler, KernelRelay, KernelRelayHandle, KernelRelayOwner } from "../runtime/types.ts";
import { coarseClock } from "../runtime/mod.ts";

/** What the relay reports per chunk and at the end; the listener owns the stats slots. */
export interface RelayOwner {
  /** Bytes moved: `toUpstream` client→upstream, `toClient` upstream→client. */
  relayBytes(relay: Relay, toUpstream: number, toClient: number): void;
  relayClosed(relay: Relay, errorCode: ErrorCode | null): void;
}

const CLIENT_ENDED = 1;
const UPSTREAM_ENDED = 2;
const BOTH = CLIENT_ENDED | UPSTREAM_ENDED;

/**
 * Where the relay may hand itself to the kernel relay (runtime/kernel_relay):
 * once `promoteAfter` bytes went either way (0: at start) and nothing is
 * queued, both sockets go to the native splice loop and the relay only waits
 * for its end. Short connections stay in JavaScript and take no pipes.
 */
export interface KernelPromotion {
  kernel: KernelRelay;
  promoteAfter: number;
}

export class Relay implements ConnHandler, KernelRelayOwner {
  bytesToUpstream = 0;
  bytesToClient = 0;
  /** Coarse time of the last byte either way; the worker's sweeper reads it. */
  lastActiveMs = coarseClock.now;
  /** Which sides sent FIN (CLIENT_ENDED | UPSTREAM_ENDED bits). */
  private ended = 0;
  /** Which sides are gone (same bits). */
  private closed = 0;
  private finished = false;
  private errorCode: ErrorCode | null = null;
  /** Set while the relay may still move to the kernel relay. */
  private promotion: KernelPromotion | null;
  /** Set once the native loop holds both sockets. */
  kernel: KernelRelayHandle | null = null;
  /** Bytes counted when the loop took over, and the loop's counters as last read. */
  private kernelBaseUp = 0;
  private kernelBaseDown = 0;

  constructor(
    readonly client: Conn,
    readonly upstream: Conn,
    private readonly owner: RelayOwner,
    promotion: KernelPromotion | null = null,
  ) {
    this.promotion = promotion;
  }

  /**
   * Take over both connections. `toUpstream` holds client bytes read before
   * the upstream existed (a PROXY header, the ClientHello, pipelined data);
   * `toClient` upstream bytes read before the relay owned it (a server that
   * speaks first). Both go out first, untouched. `clientEnded` /
   * `upstreamEnded`: that side's FIN already arrived; it is passed on now.
   */
  start(toUpstream: readonly Uint8Array[], toClient: readonly Uint8Array[] | null = null, clientEnded = false, upstreamEnded = false): void {
    this.client.setHandler(this);
    this.upstream.setHandler(this);
    let upOk = true;
    let n = 0;
    for (const chunk of toUpstream) {
      n += chunk.length;
      upOk = this.upstream.write(chunk);
    }
    let downOk = true;
    let m = 0;
    if (toClient !== null) {
      for (const chunk of toClient) {
        m += chunk.length;
        downOk = this.client.write(chunk);
      }
    }
    this.bytesToUpstream += n;
    this.bytesToClient += m;
    if (n > 0 || m > 0) this.owner.relayBytes(this, n, m);
    if (clientEnded) this.onEnd(this.client);
    if (upstreamEnded) this.onEnd(this.upstream);
    if (this.finished) return;
    if (upOk) this.client.resume();
    else this.client.pause();
    // The upstream was paused only if it spoke first (resume costs a syscall on some runtimes).
    if (toClient !== null) {
      if (downOk) this.upstream.resume();
      else this.upstream.pause();
    }
    if (this.promotion !== null && this.promotion.promoteAfter === 0) this.promote();
  }

  onData(conn: Conn, chunk: Uint8Array): void {
    this.lastActiveMs = coarseClock.now;
    if (conn === this.client) {
      this.bytesToUpstream += chunk.length;
      this.owner.relayBytes(this, chunk.length, 0);
      // A side that is gone takes nothing: pausing the reader for it would hold its bytes forever
      // (a mux stream's window, a socket's buffers) until the idle timeout; drop them instead.
      if (!this.upstream.write(chunk) && (this.closed & UPSTREAM_ENDED) === 0) this.client.pause();
    } else {
      this.bytesToClient += chunk.length;
      this.owner.relayBytes(this, 0, chunk.length);
      if (!this.client.write(chunk) && (this.closed & CLIENT_ENDED) === 0) this.upstream.pause();
    }
    if (this.promotion !== null && this.bytesToUpstream + this.bytesToClient >= this.promotion.promoteAfter) this.promote();
  }

  onDrain(conn: Conn): void {
    // The other side is gone and this one just flushed what it owed: done.
    if (this.closed !== 0) return conn.close();
    if (conn === this.client) {
      this.upstream.resume();
    } else {
      this.client.resume();
    }
    if (this.promotion !== null && this.bytesToUpstream + this.bytesToClient >= this.promotion.promoteAfter) this.promote();
  }

  /**
   * Hand both sockets to the native loop when nothing is queued and neither
   * side ended (a half-closed pair finishes here); else try again after the
   * next chunk or drain. An empty pipe pool keeps the relay in JavaScript.
   */
  private promote(): void {
    if (this.ended !== 0 || this.closed !== 0 || this.finished) {
      this.promotion = null;
      return;
    }
    if (this.client.writableLength > 0 || this.upstream.writableLength > 0) return;
    const h = this.promotion!.kernel.adopt(this.client, this.upstream, this);
    if (h === null) return;
    this.promotion = null;
    this.kernel = h;
    this.kernelBaseUp = this.bytesToUpstream;
    this.kernelBaseDown = this.bytesToClient;
  }

  /**
   * A relay held by the native loop: bring the byte counts and the last
   * activity up to date from its live counters (the sweeper calls this before
   * checking the idle deadline, so stats lag by at most one sweep).
   */
  refresh(): void {
    const h = this.kernel;
    if (h === null || this.finished) return;
    this.kernelBytes(h.toUpstream, h.toClient);
  }

  private kernelBytes(up: number, down: number): void {
    const dUp = this.kernelBaseUp + up - this.bytesToUpstream;
    const dDown = this.kernelBaseDown + down - this.bytesToClient;
    if (dUp <= 0 && dDown <= 0) return; // the loop's counters only grow
    this.bytesToUpstream += dUp;
    this.bytesToClient += dDown;
    this.lastActiveMs = coarseClock.now;
    this.owner.relayBytes(this, dUp, dDown);
  }

  kernelRelayEnded(toUpstream: number, toClient: number, failed: "client" | "upstream" | null): void {
    // After abort() the outcome is written already; the last bytes still count in the stats.
    this.kernelBytes(toUpstream, toClient);
    if (this.errorCode === null && failed !== null) this.errorCode = failed === "client" ? "DOWNSTREAM_RESET" : "UPSTREAM_RESET";
    this.finish();
  }

  onEnd(conn: Conn): void {
    if (conn === this.client) {
      this.ended |= CLIENT_ENDED;
      this.upstream.end();
    } else {
      this.ended |= UPSTREAM_ENDED;
      this.client.end();
    }
    if (this.ended === BOTH) this.finish();
  }

  onClose(conn: Conn, err?: Error): void {
    const isClient = conn === this.client;
    if (this.errorCode === null && err) this.errorCode = isClient ? "DOWNSTREAM_RESET" : "UPSTREAM_RESET";
    this.closed |= isClient ? CLIENT_ENDED : UPSTREAM_ENDED;
    if (this.closed === BOTH) return this.finish();
    // The other side may still owe its peer bytes: flush them (onDrain then
    // closes it). A peer that never reads is bounded by the idle timeout,
    // since the pair stays in its listener's sweep until both sides are gone.
    const other = isClient ? this.upstream : this.client;
    if (other.writableLength === 0) other.close();
    else other.end();
  }

  /** Close both sides now, recording why (idle timeout, drain deadline). */
  abort(code: ErrorCode): void {
    if (this.errorCode === null) this.errorCode = code;
    if (this.kernel !== null) {
      this.refresh();
      this.kernel.close();
      return this.finish();
    }
    this.client.close();
    this.upstream.close();
    this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.owner.relayClosed(this, this.errorCode);
  }

  get isFinished(): boolean {
    return this.finished;
  }
}
