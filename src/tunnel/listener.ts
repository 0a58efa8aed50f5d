/**
 * A tunnel listener inside one worker: binds (TLS, reusePort), admits or
 * refuses each accepted agent connection (global access lists,
 * max_connections across workers, draining) and owns the sessions it
 * started. On drain it sends every agent a go-away, so agents finish their
 * streams and reconnect after `goaway_delay` (to another edge, or to this one
 * once it is back).
 */
import type { AccessList } from "../auth/mod.ts";
import type { Config, ListenerConfig, TunnelListenerConfig } from "../config/types.ts";
import type { Logger } from "../log/mod.ts";
import { MuxTicker } from "../mux/mod.ts";
import type { Conn, ConnHandler, Listener, ListenAddress, Runtime, TlsServerOptions } from "../runtime/types.ts";
import { release, type StatsWriter, tryAcquire } from "../stats/mod.ts";
import type { TunnelHub } from "./hub.ts";
import { type SessionCounters, type TokenEntry, TokenTable, type TunnelAuthority } from "./policy.ts";
import { EdgeSession, type TunnelSessionConfig, type TunnelSessionHost } from "./session.ts";

/** One ticker per worker thread drives keepalives of every tunnel session (this module is per thread). */
const ticker = new MuxTicker(1000);

/** What the worker gives a tunnel listener on start and on every reload (worker/listeners.ts ListenerSettings, narrowed). */
export interface TunnelListenerSettings {
  config: Config;
  /** Any kind (the worker's interface); a kind change never reaches a running listener (reload refuses it). */
  listener: ListenerConfig;
  /** The global [access] lists (checked at accept, before any token work). */
  access: AccessList;
  slots: { listeners: Record<string, number>; overflowListener: number };
}

/** One token table per loaded config, shared by the worker's tunnel listeners. */
const authorities = new WeakMap<Config, TokenTable>();

function authorityFor(config: Config, counters: SessionCounters | null): TokenTable {
  let t = authorities.get(config);
  if (t === undefined) {
    const entries: TokenEntry[] = config.tokens
      .filter((k) => k.roles.includes("source") || k.roles.includes("destination"))
      .map((k) => ({
        name: k.name,
        sha256: Uint8Array.from(k.sha256.match(/../g)!.map((h) => parseInt(h, 16))),
        roles: k.roles.filter((r): r is "source" | "destination" => r !== "proxy"),
        services: k.services,
        allow: k.allow,
        deny: k.deny,
        maxSessions: k.maxSessions,
      }));
    t = new TokenTable(entries, (name) => counters?.slotFor(name) ?? -1);
    authorities.set(config, t);
  }
  return t;
}

export interface TunnelListenerDeps {
  runtime: Runtime;
  stats: StatsWriter;
  limits: Int32Array;
  log: Logger;
  hub: TunnelHub;
}

export class TunnelListenerState implements TunnelSessionHost {
  readonly sessions = new Set<EdgeSession>();
  readonly name: string;
  config!: TunnelSessionConfig & { maxConnections: number; address: TunnelListenerConfig["address"] };
  authority!: TunnelAuthority;
  listenerSlot!: number;
  logConnections = true;
  private access!: AccessList;
  private tls: TlsServerOptions | null = null;
  private listener: Listener | null = null;
  private draining = false;
  private seq = 0;

  constructor(settings: TunnelListenerSettings, private readonly deps: TunnelListenerDeps) {
    this.name = settings.listener.name;
    this.update(settings);
  }

  get hub(): TunnelHub {
    return this.deps.hub;
  }
  get counters(): SessionCounters | null {
    return this.deps.hub.counters;
  }
  get stats(): StatsWriter {
    return this.deps.stats;
  }
  get log(): Logger {
    return this.deps.log;
  }
  get ticker(): MuxTicker {
    return ticker;
  }

  nextSessionId(): string {
    return `w${this.deps.hub.workerId}-${this.name}-${++this.seq}`;
  }

  /** New tokens, limits and timeouts (SIGHUP). Sessions already admitted keep their grant. */
  update(s: TunnelListenerSettings): void {
    const l = s.listener;
    if (l.kind !== "tunnel") throw new Error(`listener ${l.name}: cannot become a ${l.kind} listener without a restart`);
    this.config = {
      name: l.name,
      address: l.address,
      maxConnections: l.maxConnections,
      handshakeTimeoutMs: l.handshakeTimeoutMs,
      idleTimeoutMs: l.idleTimeoutMs,
      maxStreams: l.maxStreams,
      streamWindow: l.streamWindow,
      keepaliveIntervalMs: l.keepaliveIntervalMs,
      keepaliveTimeoutMs: l.keepaliveTimeoutMs,
      openTimeoutMs: l.openTimeoutMs,
      goawayDelayMs: l.goawayDelayMs,
      clientCert: l.tls.clientCert,
    };
    this.authority = authorityFor(s.config, this.deps.hub.counters);
    this.access = s.access;
    // mTLS: the certificate is asked for (and verified against client_ca) but a missing or bad
    // one does not fail the handshake unless client_cert = "require": tokens still work.
    this.tls = {
      cert: l.tls.cert,
      key: l.tls.key,
      ...(l.tls.clientCa !== null ? { ca: l.tls.clientCa } : {}),
      requestCert: l.tls.clientCert !== "none",
      rejectUnauthorized: l.tls.clientCert === "require",
    };
    this.listenerSlot = s.slots.listeners[l.name] ?? s.slots.overflowListener;
    this.logConnections = s.config.log.connections;
  }

  start(hostname: string, port: number): Listener {
    const a = this.config.address;
    const address: ListenAddress = a.kind === "unix" ? { unix: a.path } : { hostname, port, reusePort: true };
    this.listener = this.deps.runtime.listen({
      address,
      ...(this.tls ? { tls: this.tls } : {}),
      onAccept: (conn) => this.accept(conn),
    });
    return this.listener;
  }

  private accept(conn: Conn): ConnHandler | null {
    const st = this.deps.stats;
    const slot = this.listenerSlot;
    const refuse = (code: "DRAINING" | "ACCESS_DENIED" | "LISTENER_FULL") => {
      st.refused(slot);
      st.error(slot, code);
      if (code !== "DRAINING") {
        // Global [access] lists run before any token work: the agent sees a closed connection.
        this.deps.log.info("tunnel refused", { listener: this.name, peer: `${conn.remoteAddress}:${conn.remotePort}`, error: code });
      }
      conn.close();
      return null;
    };
    if (this.draining) return refuse("DRAINING");
    if (!this.access.allows(conn.remoteAddress)) return refuse("ACCESS_DENIED");
    if (!tryAcquire(this.deps.limits, slot, this.config.maxConnections)) return refuse("LISTENER_FULL");
    st.opened(slot);
    conn.setNoDelay(true);
    const s = new EdgeSession(conn, this, Date.now());
    this.sessions.add(s);
    return s;
  }

  sessionEnded(s: EdgeSession): void {
    if (!this.sessions.delete(s)) return;
    const o = s.outcome();
    const st = this.deps.stats;
    st.closed(this.listenerSlot);
    st.duration(this.listenerSlot, o.seconds);
    release(this.deps.limits, this.listenerSlot);
    if (o.error !== null) st.error(this.listenerSlot, o.error);
    if (this.logConnections) {
      this.deps.log.info("tunnel session ended", {
        listener: this.name,
        session: o.session,
        peer: o.peer,
        agent: o.agent,
        token: o.token,
        transport: o.transport,
        roles: o.roles,
        services: o.services,
        streams: o.streams,
        bytes_in: o.bytesIn,
        bytes_out: o.bytesOut,
        duration_ms: Math.round(o.seconds * 1000),
        error: o.error,
        reason: o.reason,
      });
    }
  }

  sweep(nowMs: number): void {
    for (const s of this.sessions) s.sweep(nowMs);
    this.deps.hub.sweep(nowMs, this.config.idleTimeoutMs);
  }

  /** Stop accepting and send every agent a go-away; sessions end as agents leave. */
  stopAccepting(): void {
    this.draining = true;
    this.listener?.close();
    this.listener = null;
    for (const s of this.sessions) s.sendGoAway("the edge is draining");
  }

  abortAll(): void {
    for (const s of [...this.sessions]) s.abort("DRAINING");
    this.deps.hub.abortAll();
  }

  get open(): number {
    return this.sessions.size;
  }
}
