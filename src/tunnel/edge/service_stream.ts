/**
 * A stream to a tunnel service as the edge hands it to whoever asked for it
 * (a front session, a source agent's relay, a peer worker's link): the
 * graceful StreamConn, plus the service's counters in the worker's stats
 * slab. Every stream to a service is opened by its destination session
 * (EdgeSession.openService, on the worker that holds the agent), so each is
 * counted exactly once, there.
 *
 * Cost: one object per stream (it replaces the StreamConn handOver would
 * make), a number added per chunk, and plain stores into the slab when the
 * stream opens and when it ends.
 */
import type { Conn } from "../../runtime/types.ts";
import type { StatsWriter } from "../../stats/mod.ts";
import { type FirstMessage, StreamConn } from "../transport/mod.ts";

export class ServiceStream extends StreamConn {
  /** Client → service: what the owner wrote. */
  private bytesIn = 0;
  /** Service → client: what the agent sent. */
  private bytesOut = 0;
  private counted = false;

  private constructor(
    inner: Conn,
    early: Uint8Array[],
    pendingEnd: boolean,
    pendingClose: { err?: Error } | null,
    private readonly stats: StatsWriter,
    private readonly slot: number,
  ) {
    super(inner, early, pendingEnd, pendingClose);
    for (const c of early) this.bytesOut += c.length;
    stats.serviceOpened(slot);
  }

  /** The stream after the agent's ok (like handOver), counted on service slot `slot`. */
  static from(fm: FirstMessage, stats: StatsWriter, slot: number): ServiceStream {
    return new ServiceStream(fm.conn, fm.takeRest(), fm.ended, fm.closed ? { err: fm.closeErr } : null, stats, slot);
  }

  override write(data: Uint8Array): boolean {
    this.bytesIn += data.length;
    return super.write(data);
  }

  override onData(c: Conn, chunk: Uint8Array): void {
    this.bytesOut += chunk.length;
    super.onData(c, chunk);
  }

  override close(): void {
    super.close();
    this.ended();
  }

  override onClose(c: Conn, err?: Error): void {
    super.onClose(c, err);
    this.ended();
  }

  /** The stream is over for its owner or on the wire, whichever comes first: counted once. */
  private ended(): void {
    if (this.counted) return;
    this.counted = true;
    this.stats.serviceClosed(this.slot, this.bytesIn, this.bytesOut);
  }
}
