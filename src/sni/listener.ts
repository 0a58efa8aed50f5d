/**
 * An SNI listener inside one worker: binds with reusePort, admits or refuses
 * each accepted connection (access lists, max_connections across workers)
 * and owns the sessions it started. Reload swaps the route table,
 * limits and access lists; sessions already routed keep what they chose.
 */
import type { Config, SniListenerConfig } from "../config/types.ts";
import type { Logger } from "../log/mod.ts";
import { compileRouteTable, type RouteBackends, type RouteTable } from "../router/mod.ts";
import type { Conn, ConnHandler, Listener, Runtime } from "../runtime/types.ts";
import type { AccessList } from "../auth/mod.ts";
import { release, type StatsWriter, tryAcquire } from "../stats/mod.ts";
import { coarseClock } from "../relay/mod.ts";
import { SniSession } from "./session.ts";
import { HbonePool } from "../connect/mod.ts";
import type { TunnelHub } from "../tunnel/mod.ts";

export interface SniListenerDeps {
  runtime: Runtime;
  stats: StatsWriter;
  limits: Int32Array;
  log: Logger;
  /** Routes with a `tunnel:NAME` target open their streams here (the worker's tunnel hub). */
  tunnels?: TunnelHub;
}

/** The parts of a worker's listener settings the SNI listener reads (see worker/listeners.ts). */
export interface SniListenerSettings {
  config: Config;
  listener: SniListenerConfig;
  access: AccessList;
  backends: readonly RouteBackends[];
  slots: { listeners: Record<string, number>; routes: Record<string, number>; overflowListener: number; overflowRoute: number };
}

export class SniListenerState {
  /** Every live session; the sweeper walks it twice a second. */
  readonly sessions = new Set<SniSession>();
  readonly name: string;
  readonly listenerSlot: number;
  config!: SniListenerConfig;
  table!: RouteTable;
  access!: AccessList;
  private logConnections = true;
  private listener: Listener | null = null;
  private routeSlots: Record<string, number> = {};
  private hbone: HbonePool | null = null;
  private overflowRouteSlot = 0;

  constructor(settings: SniListenerSettings, private readonly deps: SniListenerDeps) {
    this.name = settings.listener.name;
    this.listenerSlot = settings.slots.listeners[this.name] ?? settings.slots.overflowListener;
    this.update(settings);
  }

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

  /** Pooled HBONE connections for routes with hbone:// targets; made on first use. */
  /** The worker's tunnel hub, for `tunnel:NAME` targets. */
  get tunnels(): TunnelHub | null {
    return this.deps.tunnels ?? null;
  }

  hbonePool(): HbonePool {
    return (this.hbone ??= new HbonePool(this.deps.runtime));
  }

  routeSlot(routeName: string): number {
    return this.routeSlots[routeName] ?? this.overflowRouteSlot;
  }

  /** New routes, limits and access lists (SIGHUP). Sessions already routed keep what they chose. */
  update(s: SniListenerSettings): void {
    this.config = s.listener;
    this.table = compileRouteTable(s.config.routes, this.name, s.backends);
    this.access = s.access;
    this.routeSlots = s.slots.routes;
    this.overflowRouteSlot = s.slots.overflowRoute;
    this.logConnections = s.config.log.connections;
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
    // A connection the runtime hands over after stopAccepting() (Deno may
    // complete an accept already in flight) is served, not dropped: the client
    // was already accepted by the kernel, and the drain deadline bounds it.
    // No rules, no work: reading the peer address costs a call into the runtime.
    if (!this.access.empty && !this.access.allows(conn.remoteAddress)) {
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
    if (this.logConnections) {
      this.deps.log.info("refused", { listener: this.config.name, client: `${conn.remoteAddress}:${conn.remotePort}`, error: code });
    }
  }

  /** Called once per session when both sides are gone. */
  sessionEnded(session: SniSession): void {
    if (!this.sessions.delete(session)) return;
    const st = this.deps.stats;
    const slot = this.listenerSlot;
    const seconds = session.seconds();
    const routeSlot = session.routeSlotIndex;
    const error = session.error;
    st.closed(slot);
    st.duration(slot, seconds);
    release(this.deps.limits, slot);
    if (routeSlot >= 0) {
      st.closed(routeSlot);
      st.duration(routeSlot, seconds);
    }
    if (error !== null) {
      st.error(slot, error);
      if (routeSlot >= 0) st.error(routeSlot, error);
    }
    // The log record (strings, an object) is built only when it is written.
    if (this.logConnections) {
      const o = session.outcome();
      this.deps.log.info("connection", {
        listener: this.config.name,
        client: o.client,
        sni: o.sni,
        route: o.route,
        backend: o.backend,
        bytes_in: o.bytesIn,
        bytes_out: o.bytesOut,
        duration_ms: Math.round(seconds * 1000),
        error,
      });
    }
  }

  /** Once a second: handshake, idle and linger deadlines. */
  sweep(nowMs: number): void {
    for (const s of this.sessions) s.sweep(nowMs);
  }

  /** Stop accepting; existing sessions continue. */
  stopAccepting(): void {
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
