/**
 * An SNI listener inside one worker: binds with reusePort, admits or refuses
 * each accepted connection (access lists, max_connections across workers,
 * draining) and owns the sessions it started. Reload swaps the route table,
 * limits and access lists; sessions already routed keep what they chose.
 */
import type { ListenerConfig } from "../config/types.ts";
import { ProxyError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { RouteTable } from "../router/mod.ts";
import type { Conn, ConnHandler, Listener, Runtime } from "../runtime/types.ts";
import type { AccessList } from "../auth/mod.ts";
import { release, type StatsWriter, tryAcquire } from "../stats/mod.ts";
import { coarseClock } from "../relay/mod.ts";
import { SniSession } from "./session.ts";

export interface SniListenerDeps {
  runtime: Runtime;
  stats: StatsWriter;
  limits: Int32Array;
  log: Logger;
  /** Whether to log one line per connection outcome (log.connections). */
  logConnections: boolean;
}

export class SniListenerState {
  /** Every live session; the sweeper walks it once a second. */
  readonly sessions = new Set<SniSession>();
  /** Sessions in the relay phase (a subset of `sessions`). */
  readonly relays = new Set<SniSession>();
  private listener: Listener | null = null;
  private draining = false;
  private routeSlots: Record<string, number> = {};
  private overflowRouteSlot = 0;

  constructor(
    public config: ListenerConfig,
    public table: RouteTable,
    public access: AccessList,
    readonly listenerSlot: number,
    private readonly deps: SniListenerDeps,
  ) {}

  get runtime(): Runtime {
    return this.deps.runtime;
  }
  get stats(): StatsWriter {
    return this.deps.stats;
  }
  get log(): Logger {
    return this.deps.log;
  }

  now(): number {
    return coarseClock.now;
  }

  routeSlot(routeName: string): number {
    return this.routeSlots[routeName] ?? this.overflowRouteSlot;
  }

  /** New routes, limits and access lists (SIGHUP). */
  update(config: ListenerConfig, table: RouteTable, access: AccessList, routeSlots: Record<string, number>, overflowRouteSlot: number, logConnections: boolean): void {
    this.config = config;
    this.table = table;
    this.access = access;
    this.routeSlots = routeSlots;
    this.overflowRouteSlot = overflowRouteSlot;
    this.deps.logConnections = logConnections;
  }

  /** Bind (reusePort) and start accepting. Returns the bound port. */
  start(hostname: string, port: number): Listener {
    const a = this.config.address;
    this.listener = this.deps.runtime.listen({
      address: a.kind === "unix" ? { unix: a.path } : { hostname, port, reusePort: true },
      onAccept: (conn) => this.accept(conn),
    });
    return this.listener;
  }

  private accept(conn: Conn): ConnHandler | null {
    const st = this.deps.stats;
    const slot = this.listenerSlot;
    if (this.draining) {
      st.refused(slot);
      st.error(slot, "DRAINING");
      conn.close();
      return null;
    }
    if (!this.access.allows(conn.remoteAddress)) {
      st.refused(slot);
      st.error(slot, "ACCESS_DENIED");
      this.logRefusal(conn, "ACCESS_DENIED");
      conn.close();
      return null;
    }
    if (!tryAcquire(this.deps.limits, slot, this.config.maxConnections)) {
      st.refused(slot);
      st.error(slot, "LISTENER_FULL");
      this.logRefusal(conn, "LISTENER_FULL");
      conn.close();
      return null;
    }
    st.opened(slot);
    conn.setNoDelay(true);
    // Exact start time: the handshake deadline must never fire early (the sweeper may fire it up to SWEEP_INTERVAL_MS late).
    const session = new SniSession(conn, this, Date.now());
    this.sessions.add(session);
    return session;
  }

  private logRefusal(conn: Conn, code: string): void {
    if (this.deps.logConnections) {
      this.deps.log.info("refused", { listener: this.config.name, client: `${conn.remoteAddress}:${conn.remotePort}`, error: code });
    }
  }

  /** Called once per session when both sides are gone. */
  sessionEnded(session: SniSession): void {
    if (!this.sessions.delete(session)) return;
    this.relays.delete(session);
    const o = session.outcome();
    const st = this.deps.stats;
    const slot = this.listenerSlot;
    st.closed(slot);
    st.duration(slot, o.seconds);
    release(this.deps.limits, slot);
    if (o.routeSlot >= 0) {
      st.closed(o.routeSlot);
      st.duration(o.routeSlot, o.seconds);
    }
    if (o.error !== null) {
      st.error(slot, o.error);
      if (o.routeSlot >= 0) st.error(o.routeSlot, o.error);
    }
    if (this.deps.logConnections) {
      this.deps.log.info("connection", {
        listener: this.config.name,
        client: o.client,
        sni: o.sni,
        route: o.route,
        backend: o.backend,
        bytes_in: o.bytesIn,
        bytes_out: o.bytesOut,
        duration_ms: Math.round(o.seconds * 1000),
        error: o.error,
      });
    }
  }

  /** Once a second: handshake, idle and linger deadlines. */
  sweep(nowMs: number): void {
    for (const s of this.sessions) s.sweep(nowMs);
  }

  /** Stop accepting; existing sessions continue. */
  stopAccepting(): void {
    this.draining = true;
    this.listener?.close();
    this.listener = null;
  }

  /** Drain deadline: close everything still open. */
  abortAll(): void {
    for (const s of [...this.sessions]) s.abort("DRAINING");
  }

  get open(): number {
    return this.sessions.size;
  }
}

export { ProxyError };
