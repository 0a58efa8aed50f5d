/**
 * Idle upstream connections of one http listener, per route: after a
 * response that left the connection reusable (HTTP/1.1, framed, no
 * `Connection: close`), it waits here for the route's next request. Bounded
 * per route (`upstream_keepalive`), last in first out (the warmest first),
 * and closed after POOL_IDLE_MS or as soon as the upstream speaks or closes
 * while idle (a server closing its keep-alive connection).
 *
 * Any target of the route may serve the route's next request (nginx's
 * `keepalive` per upstream block). The dial's least_conn slot is given back
 * when a connection goes idle: least_conn counts requests under way.
 */
import type { Conn, ConnHandler } from "../runtime/types.ts";
import type { Dialed } from "../upstream/mod.ts";

/** An idle upstream connection is closed after this long. */
export const POOL_IDLE_MS = 30_000;

interface Idle {
  up: Dialed;
  key: string;
  sinceMs: number;
}

export class UpstreamPool implements ConnHandler {
  private readonly byKey = new Map<string, Idle[]>();
  private readonly byConn = new Map<Conn, Idle>();

  constructor(public maxPerKey: number) {}

  /** The warmest idle connection of `key`, now handled by `handler`; null when none. */
  take(key: string, handler: ConnHandler): Dialed | null {
    const list = this.byKey.get(key);
    const e = list?.pop();
    if (e === undefined) return null;
    this.byConn.delete(e.up.conn);
    e.up.conn.setHandler(handler);
    return e.up;
  }

  /** Keeps `up` for `key`, or closes it when the route's pool is full. Its dial slot is given back either way. */
  put(key: string, up: Dialed, nowMs: number): void {
    up.release();
    let list = this.byKey.get(key);
    if (list === undefined) this.byKey.set(key, (list = []));
    if (list.length >= this.maxPerKey) {
      up.conn.close();
      return;
    }
    const e: Idle = { up, key, sinceMs: nowMs };
    list.push(e);
    this.byConn.set(up.conn, e);
    up.conn.setHandler(this);
    up.conn.resume();
  }

  get idle(): number {
    return this.byConn.size;
  }

  /** Closes connections idle for POOL_IDLE_MS. */
  sweep(nowMs: number): void {
    for (const e of [...this.byConn.values()]) if (nowMs - e.sinceMs >= POOL_IDLE_MS) this.evict(e.up.conn);
  }

  /** Reload or drain: every idle connection goes. */
  clear(): void {
    for (const c of [...this.byConn.keys()]) this.evict(c);
  }

  private evict(conn: Conn): void {
    const e = this.byConn.get(conn);
    if (e === undefined) return;
    this.byConn.delete(conn);
    const list = this.byKey.get(e.key);
    if (list !== undefined) {
      const i = list.indexOf(e);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.byKey.delete(e.key);
    }
    conn.close();
  }

  // An idle connection has nothing to say: bytes, a FIN or a close all end it.
  onData(conn: Conn): void {
    this.evict(conn);
  }
  onDrain(): void {}
  onEnd(conn: Conn): void {
    this.evict(conn);
  }
  onClose(conn: Conn): void {
    this.evict(conn);
  }
}
