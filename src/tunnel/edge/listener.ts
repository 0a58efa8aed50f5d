/**
 * A tunnel listener inside one worker: binds (TLS, reusePort), admits or
 * refuses each accepted agent connection (global access lists,
 * max_connections across workers, draining) and owns the sessions it
 * started. On drain it sends every agent a go-away, so agents finish their
 * streams and reconnect after `goaway_delay` (to another edge, or to this one
 * once it is back).
 */
import type { Config, TunnelListenerConfig } from "../../config/types.ts";
import { FrontListener, type ListenerDeps, type ListenerSettings } from "../../frontdoor/mod.ts";
import { MuxTicker } from "../../mux/mod.ts";
import type { Conn, TlsServerOptions } from "../../runtime/types.ts";
import type { TunnelHub } from "./hub.ts";
import type { SessionCounters } from "../../stats/mod.ts";
import { TokenStore } from "../../auth/mod.ts";
import type { TunnelAuthority } from "./types.ts";
import { EdgeSession, type TunnelSessionConfig, type TunnelSessionHost } from "./session.ts";

/** One ticker per worker thread drives keepalives of every tunnel session (this module is per thread). */
const ticker = new MuxTicker(1000);

/** One token policy per loaded config, shared by the worker's tunnel listeners: the entries with a tunnel role. */
const authorities = new WeakMap<Config, TokenStore>();

function authorityFor(config: Config): TokenStore {
  let t = authorities.get(config);
  if (t === undefined) {
    t = new TokenStore(config.tokens.filter((k) => k.roles.includes("source") || k.roles.includes("destination") || k.roles.includes("operator")));
    authorities.set(config, t);
  }
  return t;
}

export interface TunnelListenerDeps extends ListenerDeps {
  hub: TunnelHub;
}

export class TunnelListenerState extends FrontListener<TunnelListenerConfig, EdgeSession> implements TunnelSessionHost {
  declare sessionConfig: TunnelSessionConfig;
  declare authority: TunnelAuthority;
  declare private tls: TlsServerOptions;
  /** Agents are sent to another edge while this one drains. */
  protected override readonly refuseWhileDraining = true;
  private seq = 0;

  constructor(settings: ListenerSettings, private readonly tunnelDeps: TunnelListenerDeps) {
    super(settings, tunnelDeps);
  }

  get hub(): TunnelHub {
    return this.tunnelDeps.hub;
  }
  get counters(): SessionCounters | null {
    return this.tunnelDeps.hub.counters;
  }
  get ticker(): MuxTicker {
    return ticker;
  }

  nextSessionId(): string {
    return `w${this.tunnelDeps.hub.workerId}-${this.name}-${++this.seq}`;
  }

  /** New tokens, limits and timeouts (SIGHUP). Sessions already admitted keep their grant. */
  protected configure(s: ListenerSettings): void {
    const l = s.listener as TunnelListenerConfig;
    this.sessionConfig = {
      name: l.name,
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
    this.authority = authorityFor(s.config);
    // mTLS: the certificate is asked for (and verified against client_ca) but a missing or bad
    // one does not fail the handshake unless client_cert = "require": tokens still work.
    this.tls = {
      cert: l.tls.cert,
      key: l.tls.key,
      ...(l.tls.clientCa !== null ? { ca: l.tls.clientCa } : {}),
      requestCert: l.tls.clientCert !== "none",
      rejectUnauthorized: l.tls.clientCert === "require",
    };
  }

  protected override listenTls(): TlsServerOptions {
    return this.tls;
  }

  protected override createSession(conn: Conn, nowMs: number): EdgeSession {
    return new EdgeSession(conn, this, nowMs);
  }

  agentSessionEnded(s: EdgeSession): void {
    if (!this.sessions.has(s)) return;
    const o = s.outcome();
    this.connectionEnded(s, o.seconds, o.error);
    if (this.logConnections) {
      this.log.info("tunnel session ended", {
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

  override sweep(nowMs: number): void {
    super.sweep(nowMs);
    this.tunnelDeps.hub.sweep(nowMs, this.config.idleTimeoutMs);
  }

  override abortAll(): void {
    super.abortAll();
    this.tunnelDeps.hub.abortAll();
  }
}
