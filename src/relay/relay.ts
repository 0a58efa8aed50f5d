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
import type { Conn, ConnHandler } from "../runtime/types.ts";
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

export class Relay implements ConnHandler {
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

  constructor(
    readonly client: Conn,
    readonly upstream: Conn,
    private readonly owner: RelayOwner,
  ) {}

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
  }

  onDrain(conn: Conn): void {
    // The other side is gone and this one just flushed what it owed: done.
    if (this.closed !== 0) return conn.close();
    if (conn === this.client) {
      this.upstream.resume();
    } else {
      this.client.resume();
    }
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
