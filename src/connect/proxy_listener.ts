/**
 * What the forward-proxy listeners (connect and socks5) share: bind with
 * reusePort, admit or refuse each connection (draining, access lists,
 * max_connections across workers), own the sessions they started, sweep
 * their deadlines, account the listener's stats slot, and write one log
 * line per tunnel. Each kind supplies its session class.
 *
 * Stats on the listener slot (the contract of stats/writer.ts): `opened` /
 * `refused` per connection at accept; `handshake` once per tunnel when its
 * request was read and authorised; `bytes` from the relay; `error` per
 * failed tunnel; `closed` + `duration` when the connection is gone.
 */
import type { TunnelOpener } from "./policy.ts";
import type { AccessList } from "../auth/mod.ts";
import type { Config, ConnectListenerConfig, ListenerConfig, Socks5ListenerConfig } from "../config/types.ts";
import type { ErrorCode } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Conn, ConnHandler, Listener, ListenOptions, Runtime } from "../runtime/types.ts";
import { release, type StatsWriter, tryAcquire } from "../stats/mod.ts";
import { coarseClock } from "../relay/mod.ts";
import type { Lookup } from "../auth/mod.ts";
import { type Principal, ProxyPolicy } from "./policy.ts";

export interface ProxyListenerDeps {
  runtime: Runtime;
  stats: StatsWriter;
  limits: Int32Array;
  log: Logger;
  /** Name resolution for [egress]; tests inject one. Default: the system resolver. */
  lookup?: Lookup;
  /** The worker's tunnel hub: `CONNECT <service>.tunnel:<port>` reaches a reverse-tunnel service. */
  tunnels?: TunnelOpener;
}

export interface ProxyListenerSettings<C> {
  config: Config;
  listener: C;
  access: AccessList;
  slots: { listeners: Record<string, number>; overflowListener: number };
}

/** One accepted connection: an HTTP/1.1 or SOCKS5 tunnel, or an HTTP/2 session of many. */
export interface ProxySession extends ConnHandler {
  sweep(nowMs: number): void;
  abort(code: ErrorCode): void;
  /** Stop taking new tunnels on this connection (HTTP/2 GOAWAY); open ones finish. */
  drain(): void;
}

/** What one tunnel did, for its log line and error counter. */
export interface TunnelRecord {
  proto: "http/1.1" | "h2" | "socks5";
  client: string;
  principal: Principal | null;
  /** What the client asked for (authority), when it got that far. */
  destination: string | null;
  /** The address dialled. */
  address: string | null;
  /** HTTP status or SOCKS5 reply sent, null when none was. */
  status: number | null;
  bytesIn: number;
  bytesOut: number;
  seconds: number;
  error: ErrorCode | null;
  /** HTTP/2: trace context headers, passed along in the log. */
  forwarded?: string | null;
  baggage?: string | null;
  traceparent?: string | null;
}

export abstract class ProxyListener<C extends ConnectListenerConfig | Socks5ListenerConfig> {
  readonly sessions = new Set<ProxySession>();
  readonly name: string;
  readonly listenerSlot: number;
  config!: C;
  policy!: ProxyPolicy;
  access!: AccessList;
  private logConnections = true;
  private listener: Listener | null = null;

  constructor(settings: ProxyListenerSettings<ListenerConfig>, protected readonly deps: ProxyListenerDeps) {
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

  /**
   * New limits and policy (SIGHUP); tunnels already open keep what they were
   * granted. Takes any listener's settings (the worker's interface); a kind
   * change never reaches here (reload refuses it).
   */
  update(s: ProxyListenerSettings<ListenerConfig>): void {
    if (s.listener.kind === "sni" || s.listener.kind === "tunnel") throw new Error(`listener ${this.name}: cannot become an ${s.listener.kind} listener without a restart`);
    this.config = s.listener as C;
    this.policy = new ProxyPolicy(s.config, s.listener, this.deps.lookup, this.deps.tunnels ?? null);
    this.access = s.access;
    this.logConnections = s.config.log.connections;
  }

  /** TLS settings for the socket, if any. */
  protected abstract listenTls(): ListenOptions["tls"];
  protected abstract createSession(conn: Conn, nowMs: number): ProxySession;

  start(hostname: string, port: number): Listener {
    const a = this.config.address;
    this.listener = this.deps.runtime.listen({
      address: a.kind === "unix" ? { unix: a.path } : { hostname, port, reusePort: true },
      tls: this.listenTls(),
      onAccept: (conn) => this.accept(conn),
    });
    return this.listener;
  }

  private accept(conn: Conn): ConnHandler | null {
    const st = this.deps.stats;
    const slot = this.listenerSlot;
    let refusal: ErrorCode | null = null;
    // Served even while draining: the runtime may complete an accept that was in
    // flight when the listener closed (Deno); the drain deadline bounds it.
    if (!this.access.allows(conn.remoteAddress)) refusal = "ACCESS_DENIED";
    else if (!tryAcquire(this.deps.limits, slot, this.config.maxConnections)) refusal = "LISTENER_FULL";
    if (refusal !== null) {
      st.refused(slot);
      st.error(slot, refusal);
      if (this.logConnections) {
        this.deps.log.info("refused", { listener: this.name, client: `${conn.remoteAddress}:${conn.remotePort}`, error: refusal });
      }
      conn.close();
      return null;
    }
    st.opened(slot);
    conn.setNoDelay(true);
    // Exact start time: the request deadline must never fire early.
    const s = this.createSession(conn, Date.now());
    this.sessions.add(s);
    return s;
  }

  /** A session may hand its connection to another (TLS ALPN dispatch). */
  replaceSession(old: ProxySession, next: ProxySession): void {
    if (this.sessions.delete(old)) this.sessions.add(next);
  }

  /** Called once per connection when it is gone. */
  connectionEnded(session: ProxySession, seconds: number): void {
    if (!this.sessions.delete(session)) return;
    const st = this.deps.stats;
    st.closed(this.listenerSlot);
    st.duration(this.listenerSlot, seconds);
    release(this.deps.limits, this.listenerSlot);
  }

  /** Called once per tunnel (per stream on HTTP/2). */
  tunnelEnded(r: TunnelRecord): void {
    if (r.error !== null) this.deps.stats.error(this.listenerSlot, r.error);
    if (!this.logConnections) return;
    this.deps.log.info("tunnel", {
      listener: this.name,
      proto: r.proto,
      client: r.client,
      identity: r.principal?.name ?? null,
      user: r.principal?.user ?? null,
      destination: r.destination,
      address: r.address,
      status: r.status,
      bytes_in: r.bytesIn,
      bytes_out: r.bytesOut,
      duration_ms: Math.round(r.seconds * 1000),
      error: r.error,
      forwarded: r.forwarded ?? null,
      baggage: r.baggage ?? null,
      traceparent: r.traceparent ?? null,
    });
  }

  sweep(nowMs: number): void {
    for (const s of this.sessions) s.sweep(nowMs);
  }

  stopAccepting(): void {
    this.listener?.close();
    this.listener = null;
    for (const s of this.sessions) s.drain();
  }

  abortAll(): void {
    for (const s of [...this.sessions]) s.abort("DRAINING");
  }

  get open(): number {
    return this.sessions.size;
  }
}
