/**
 * The one listener base (admission) every kind sits on: bind with reusePort,
 * admit or refuse each accepted connection (global access lists,
 * max_connections across workers, draining), own the connections it started,
 * sweep their deadlines, drain and abort them, and account the listener's
 * stats slot and connection log line once.
 *
 * Stats on the listener slot (the contract of stats/writer.ts): `opened` /
 * `refused` per connection at accept; `handshake` once per connection when its
 * preamble was read; `bytes` from the relay; `error` per failure; `closed` +
 * `duration` when the connection is gone. A route's slot gets `opened` when
 * the route is chosen, and the same bytes, error and closing.
 */
import type { AccessList } from "../auth/mod.ts";
import type { ListenerConfig } from "../config/types.ts";
import type { ErrorCode } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import { formatPeer } from "../proto/mod.ts";
import type { KernelPromotion } from "../relay/mod.ts";
import { coarseClock, wallMs } from "../runtime/mod.ts";
import type { Conn, ConnHandler, Listener, Runtime, TlsServerOptions } from "../runtime/types.ts";
import { release, type StatsWriter, tryAcquire } from "../stats/mod.ts";
import type { UpstreamContext } from "../upstream/mod.ts";
import { FrontSession } from "./session.ts";
import type { DataPlaneListener, FrontConnection, ListenerDeps, ListenerSettings, Preamble } from "./types.ts";

export abstract class FrontListener<C extends ListenerConfig, S extends FrontConnection = FrontConnection> implements DataPlaneListener {
  /** Every live connection; the sweeper walks it twice a second. */
  readonly sessions = new Set<S>();
  readonly name: string;
  listenerSlot: number;
  config!: C;
  access!: AccessList;
  logConnections = true;
  protected draining = false;
  private listener: Listener | null = null;
  private routeSlots: Record<string, number> = {};
  private overflowRouteSlot = 0;

  constructor(settings: ListenerSettings, protected readonly deps: ListenerDeps) {
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
  get upstream(): UpstreamContext {
    return this.deps.upstream;
  }
  get kernelRelay(): KernelPromotion | null {
    return this.deps.relay ?? null;
  }
  now(): number {
    return coarseClock.now;
  }

  /**
   * New limits, routes and policy (SIGHUP); connections already admitted keep
   * what they chose. A kind change never reaches here (reload refuses it).
   */
  update(s: ListenerSettings): void {
    if (this.config !== undefined && s.listener.kind !== this.config.kind) {
      throw new Error(`listener ${this.name}: cannot become a ${s.listener.kind} listener without a restart`);
    }
    this.config = s.listener as C;
    this.access = s.access;
    // Nothing to build per connection when its record would be dropped by the level anyway.
    this.logConnections = s.config.log.connections && this.deps.log.enabled("info");
    this.routeSlots = s.slots.routes;
    this.overflowRouteSlot = s.slots.overflowRoute;
    this.configure(s);
  }

  /** The kind's own part of a (re)configuration: route table, policy. */
  protected abstract configure(s: ListenerSettings): void;
  /**
   * The kind's handler for an admitted connection: by default a front session
   * running the kind's preamble. Kinds whose connections carry more than one
   * tunnel (HTTP/2 CONNECT, agent sessions) make their own.
   */
  protected createSession(conn: Conn, nowMs: number): S {
    return new FrontSession(conn, this, this.preamble(), nowMs) as FrontConnection as S;
  }

  /** A new connection's preamble (see createSession). */
  protected preamble(): Preamble {
    throw new Error(`listener ${this.name}: kind ${this.config.kind} has no preamble`);
  }
  /** TLS settings for the socket, if the kind terminates TLS. */
  protected listenTls(): TlsServerOptions | undefined {
    return undefined;
  }
  /** Refuse new connections once draining (tunnel agents are sent elsewhere); others are served, bounded by the drain deadline. */
  protected readonly refuseWhileDraining: boolean = false;

  routeSlot(routeName: string): number {
    return this.routeSlots[routeName] ?? this.overflowRouteSlot;
  }

  start(hostname: string, port: number): Listener | Promise<Listener> {
    const a = this.config.address;
    const tls = this.listenTls();
    this.listener = this.deps.runtime.listen({
      address: a.kind === "unix" ? { unix: a.path } : { hostname, port, reusePort: true },
      ...(tls !== undefined ? { tls } : {}),
      onAccept: (conn) => this.accept(conn),
    });
    return this.listener;
  }

  protected accept(conn: Conn): ConnHandler | null {
    // A connection the runtime hands over after stopAccepting() (Deno may
    // complete an accept already in flight) is served, not dropped: the client
    // was already accepted by the kernel, and the drain deadline bounds it.
    let refusal: ErrorCode | null = null;
    if (this.draining && this.refuseWhileDraining) refusal = "DRAINING";
    // No rules, no work: reading the peer address costs a call into the runtime.
    else if (!this.access.empty && !this.access.allows(conn.remoteAddress)) refusal = "ACCESS_DENIED";
    else if (!tryAcquire(this.deps.limits, this.listenerSlot, this.config.maxConnections)) refusal = "LISTENER_FULL";
    const st = this.deps.stats;
    if (refusal !== null) {
      st.refused(this.listenerSlot);
      st.error(this.listenerSlot, refusal);
      if (this.logConnections && refusal !== "DRAINING") {
        this.deps.log.info("refused", { listener: this.name, client: formatPeer(conn.remoteAddress, conn.remotePort), error: refusal });
      }
      conn.close();
      return null;
    }
    st.opened(this.listenerSlot);
    conn.setNoDelay(true);
    // Exact start time: the handshake deadline must never fire early (the sweeper may fire it up to a sweep late).
    const s = this.createSession(conn, wallMs());
    this.sessions.add(s);
    return s;
  }

  /** A connection may hand itself to another handler (TLS ALPN dispatch). */
  replaceSession(old: S, next: S): void {
    if (this.sessions.delete(old)) this.sessions.add(next);
  }

  /** Called once per connection when it is gone. */
  connectionEnded(s: S, seconds: number, error: ErrorCode | null): void {
    if (!this.sessions.delete(s)) return;
    const st = this.deps.stats;
    st.closed(this.listenerSlot);
    st.duration(this.listenerSlot, seconds);
    release(this.deps.limits, this.listenerSlot);
    if (error !== null) st.error(this.listenerSlot, error);
  }

  /** A single-tunnel session's end: listener and route stats, then its log line (built only when written). */
  sessionEnded(s: FrontSession): void {
    if (!this.sessions.has(s as unknown as S)) return;
    const seconds = s.seconds();
    const error = s.errorCode;
    this.connectionEnded(s as unknown as S, seconds, error);
    if (s.routeSlot >= 0) {
      const st = this.deps.stats;
      st.closed(s.routeSlot);
      st.duration(s.routeSlot, seconds);
      if (error !== null) st.error(s.routeSlot, error);
    }
    if (this.logConnections) s.logOutcome(this.deps.log, this.name, seconds);
  }

  /** Twice a second: handshake, idle and linger deadlines. */
  sweep(nowMs: number): void {
    for (const s of this.sessions) s.sweep(nowMs);
  }

  /** Stop accepting; open connections finish (each is told to drain). */
  stopAccepting(): void {
    this.draining = true;
    this.listener?.close();
    this.listener = null;
    for (const s of this.sessions) s.drain();
  }

  /** Drain deadline: close everything still open. */
  abortAll(): void {
    for (const s of [...this.sessions]) s.abort("DRAINING");
  }

  get open(): number {
    return this.sessions.size;
  }
}
