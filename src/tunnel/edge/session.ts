/**
 * One agent connection on the edge, from accept to the end of its session:
 *
 *   TLS → HTTP/1.1 upgrade (token in Authorization, or a client certificate)
 *       → 101 → smux v2 session (raw, or inside WebSocket binary messages)
 *       → control stream: hello → policy → welcome | error
 *       → streams both ways, each starting with open → ok | error
 *
 * Refusals before the upgrade answer with an HTTP status and the numbered
 * code (`Edgemux-Error`); after it, with an `error` message on the control
 * stream. Either way the agent prints the reason, and the refusal is logged
 * here with its reason. Only this session dies on bad input: a protocol
 * error closes this connection and nothing else.
 */
import { type ErrorCode, errorCodeForTunnel, ProxyError, tunnelCodeFor } from "../../errors/mod.ts";
import { type Logger, nextConnId } from "../../log/mod.ts";
import { MuxSession, type MuxStream, type MuxTicker } from "../../mux/mod.ts";
import { formatPeer, type Http1RequestParser } from "../../proto/mod.ts";
import {
  CONTROL_MAX_MESSAGE,
  encodeTunnelMessage,
  type HelloMessage,
  OPEN_MAX_MESSAGE,
  type OpenMessage,
  type RemoteMessage,
  type ServiceSpec,
  TUNNEL_VERSION,
  TunnelErrorCode,
  type TunnelMessage,
  TunnelMessageDecoder,
  type TunnelRole,
} from "../../proto/tunnel_control.ts";
import { Relay, type RelayOwner } from "../../relay/mod.ts";
import { coarseClock, idleExpired, monotonicMs, wallMs } from "../../runtime/mod.ts";
import type { Conn } from "../../runtime/types.ts";
import { type FrontConnection, LINGER_MS } from "../../frontdoor/mod.ts";
import type { StatsWriter } from "../../stats/mod.ts";
import { VERSION } from "../../version.ts";
import { checkUpgradeRequest, FirstMessage, handOver, refusalResponse, switchingProtocols, TUNNEL_MAX_FRAME, upgradeRequestParser, WsConn } from "../transport/mod.ts";
import { agentRoute, type DestinationSession, remoteStatsName, tunnelError, type TunnelHub } from "./hub.ts";
import { ServiceStream } from "./service_stream.ts";
import type { SessionCounters } from "../../stats/mod.ts";
import type { TokenGrant } from "../../auth/mod.ts";
import type { OpenRequest, TunnelAuthority, TunnelSessionCounts } from "./types.ts";

/** The tunnel listener's settings a session reads (see listener.ts). */
export interface TunnelSessionConfig {
  name: string;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  maxStreams: number;
  streamWindow: number;
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  openTimeoutMs: number;
  goawayDelayMs: number;
  /** "require": refuse agents without a verified client certificate (code AUTH_REQUIRED). */
  clientCert: "none" | "request" | "require";
}

/** What a session needs from its listener. */
export interface TunnelSessionHost {
  readonly sessionConfig: TunnelSessionConfig;
  readonly hub: TunnelHub;
  readonly authority: TunnelAuthority;
  readonly counters: SessionCounters | null;
  readonly stats: StatsWriter;
  readonly log: Logger;
  readonly ticker: MuxTicker;
  readonly listenerSlot: number;
  readonly logConnections: boolean;
  nextSessionId(): string;
  agentSessionEnded(s: EdgeSession): void;
}

/**
 * Where an agent session is. Not the front session's lifecycle: an agent
 * connection carries a whole multiplexed session (upgrade, hello, then many
 * streams), whose streams the hub relays one by one.
 */
const enum Stage {
  Head,
  Hello,
  Ready,
  Closing,
  Done,
}

/** A stream relayed through this session (source agent → service), for logs and idle checks. */
class SourceStream implements RelayOwner {
  relay: Relay | null = null;
  readonly startedAt = monotonicMs();
  error: ErrorCode | null = null;
  constructor(readonly session: EdgeSession, readonly service: string, readonly connId: string) {}
  relayBytes(_r: Relay, up: number, down: number): void {
    this.session.countBytes(up, down);
  }
  relayClosed(_r: Relay, code: ErrorCode | null): void {
    this.error = code;
    this.session.streamEnded(this);
  }
}

export class EdgeSession implements FrontConnection, DestinationSession {
  readonly id: string;
  agent = "";
  private stage = Stage.Head;
  draining = false;
  stageStartedMs: number;
  private head: Http1RequestParser | null = upgradeRequestParser();
  private transport: "smux" | "websocket" | "" = "";
  private mux: MuxSession | null = null;
  private control: MuxStream | null = null;
  private readonly ctl = new TunnelMessageDecoder(CONTROL_MAX_MESSAGE);
  private grant: TokenGrant | null = null;
  /** The grant's max_sessions cell, while this session holds one. */
  private sessionSlot = -1;
  private slotHeld = false;
  roles: TunnelRole[] = [];
  readonly services = new Map<string, ServiceSpec>();
  private readonly streams = new Set<SourceStream>();
  private readonly pendingOpens = new Set<FirstMessage>();
  private readonly startedAt = monotonicMs();
  private readonly peer: string;
  bytesUp = 0;
  bytesDown = 0;
  streamsTotal = 0;
  private errorCode: ErrorCode | null = null;
  private reason: string | null = null;
  /** The hub no longer routes to this session (it is leaving or ending). */
  private servicesRemoved = false;
  /** hub.sessionUp was called: sessionDown is owed at the end. */
  private listed = false;

  constructor(readonly conn: Conn, private readonly host: TunnelSessionHost, nowMs: number) {
    this.id = host.nextSessionId();
    this.stageStartedMs = nowMs;
    this.peer = formatPeer(conn.remoteAddress, conn.remotePort);
  }

  // ---------------------------------------------------------------- upgrade

  onData(c: Conn, chunk: Uint8Array): void {
    if (c === this.control) return this.onControlData(chunk);
    if (this.stage !== Stage.Head) return; // Closing: discard while our refusal drains
    const p = this.head!;
    p.push(chunk);
    let head;
    try {
      head = p.next();
    } catch (err) {
      return this.refuseHttp(TunnelErrorCode.PROTOCOL, (err as Error).message);
    }
    if (head === null) return;
    let req;
    try {
      req = checkUpgradeRequest(head);
    } catch (err) {
      return this.refuseHttp(TunnelErrorCode.PROTOCOL, (err as Error).message);
    }
    // Authenticate now when the agent sent a token or a client certificate; else at hello.
    const cfg = this.host.sessionConfig;
    const tls = this.conn.tls();
    const cert = tls?.authorized && tls.peerCertificate ? tls.peerCertificate : null;
    if (cfg.clientCert === "require" && cert === null) {
      return this.refuseHttp(TunnelErrorCode.AUTH_REQUIRED, "this listener requires a client certificate signed by its client CA");
    }
    if (req.token !== null) {
      const g = this.host.authority.byToken(req.token);
      if (g === null) return this.refuseHttp(TunnelErrorCode.BAD_TOKEN, "the bearer token matches no [[tokens]] entry");
      this.grant = g;
    } else if (cert !== null) {
      const g = this.host.authority.byCertificate(cert);
      if (g === null) return this.refuseHttp(TunnelErrorCode.BAD_TOKEN, "the client certificate's identity matches no [[tokens]] entry");
      this.grant = g;
    }
    if (this.grant !== null && !this.grant.allowsAddress(this.conn.remoteAddress)) {
      return this.refuseHttp(TunnelErrorCode.CIDR_DENIED, `address ${this.conn.remoteAddress} is not allowed for token '${this.grant.name}'`);
    }
    const rest = p.rest();
    this.head = null;
    this.transport = req.transport;
    this.conn.write(switchingProtocols(req));
    const wire = req.transport === "websocket" ? new WsConn(this.conn, "server") : this.conn;
    const mux = new MuxSession(wire, {
      client: false,
      version: 2,
      ticker: this.host.ticker,
      maxStreams: cfg.maxStreams,
      maxStreamBuffer: cfg.streamWindow,
      maxFrameSize: TUNNEL_MAX_FRAME,
      keepAliveIntervalMs: cfg.keepaliveIntervalMs,
      keepAliveTimeoutMs: cfg.keepaliveTimeoutMs,
    });
    this.mux = mux;
    mux.onStream = (s) => this.onStream(s);
    mux.onClosed = (_m, err) => this.onMuxClosed(err);
    this.stage = Stage.Hello;
    if (wire instanceof WsConn) wire.feed(rest);
    else for (const r of rest) mux.onData(wire, r);
  }

  onDrain(): void {}

  onEnd(c: Conn): void {
    if (c === this.control) {
      if (this.stage === Stage.Closing) {
        this.mux?.close();
        return;
      }
      // The agent half-closed its control stream: it leaves once its streams are done (after a
      // go-away). Route nothing new to it, answer with our FIN; its TCP FIN ends the session cleanly.
      this.leaveReady();
      this.draining = true;
      this.control.end();
      return;
    }
    if (c === this.conn && this.stage === Stage.Head) this.finish("TUNNEL_PROTOCOL", "closed before the upgrade request was complete");
    if (c === this.conn && this.stage === Stage.Closing) this.conn.close();
  }

  onClose(c: Conn, err?: Error): void {
    if (c === this.control) {
      // A leaving agent's control stream finished (FIN both ways): close once our side of every
      // stream is done too (we may still be delivering what it sent); the sweeper checks.
      if (this.stage === Stage.Ready && this.draining && this.servicesRemoved && !err) this.closeWhenIdle();
      else if (this.stage === Stage.Ready || this.stage === Stage.Hello) this.mux?.close();
      return;
    }
    if (c !== this.conn || this.mux !== null) return;
    this.finish(this.errorCode ?? (err ? "DOWNSTREAM_RESET" : null), this.reason);
  }

  private refuseHttp(code: number, reason: string): void {
    this.logRefusal(code, reason);
    this.stage = Stage.Closing;
    this.stageStartedMs = coarseClock.now;
    this.head = null;
    this.conn.write(refusalResponse(code, reason));
    this.conn.end();
    this.conn.resume();
  }

  private logRefusal(code: number, reason: string): void {
    this.errorCode = errorCodeForTunnel(code);
    this.reason = reason;
    this.host.log.info("tunnel refused", {
      listener: this.host.sessionConfig.name,
      session: this.id,
      peer: this.peer,
      agent: this.agent || null,
      token: this.grant?.name ?? null,
      code,
      error: this.errorCode,
      reason,
    });
  }

  // ---------------------------------------------------------------- control stream

  private onStream(s: MuxStream): void {
    if (this.control === null) {
      this.control = s;
      s.setHandler(this);
      return;
    }
    if (this.stage !== Stage.Ready) {
      s.close(); // data streams only after welcome
      return;
    }
    this.acceptSourceStream(s);
  }

  private onControlData(chunk: Uint8Array): void {
    if (this.stage === Stage.Closing || this.stage === Stage.Done) return;
    this.ctl.push(chunk);
    for (;;) {
      let m: TunnelMessage | null;
      try {
        m = this.ctl.next();
      } catch (err) {
        return this.refuseSession(TunnelErrorCode.PROTOCOL, (err as Error).message);
      }
      if (m === null) return;
      if (this.stage === Stage.Hello) {
        if (m.type !== "hello") return this.refuseSession(TunnelErrorCode.PROTOCOL, `expected hello first, got ${m.type}`);
        this.onHello(m);
      } else if (m.type === "announce") {
        this.onAnnounce(m.add, m.remove);
      } else if (m.type === "error") {
        this.host.log.info("tunnel agent reported an error", { session: this.id, agent: this.agent, code: m.code, reason: m.message });
      } else {
        return this.refuseSession(TunnelErrorCode.PROTOCOL, `unexpected ${m.type} on the control stream`);
      }
      if (this.stage !== Stage.Ready) return;
    }
  }

  private onHello(h: HelloMessage): void {
    this.agent = h.agent;
    if (h.version !== TUNNEL_VERSION) {
      return this.refuseSession(TunnelErrorCode.VERSION, `protocol version ${h.version} is not supported (this edge speaks ${TUNNEL_VERSION})`);
    }
    let g = this.grant;
    if (g === null) {
      if (h.token !== undefined) {
        g = this.host.authority.byToken(h.token);
        if (g === null) return this.refuseSession(TunnelErrorCode.BAD_TOKEN, "the token matches no [[tokens]] entry");
      } else {
        return this.refuseSession(TunnelErrorCode.AUTH_REQUIRED, "no token (Authorization header or hello) and no client certificate");
      }
      if (!g.allowsAddress(this.conn.remoteAddress)) {
        this.grant = g;
        return this.refuseSession(TunnelErrorCode.CIDR_DENIED, `address ${this.conn.remoteAddress} is not allowed for token '${g.name}'`);
      }
      this.grant = g;
    }
    const missing = g.missingRoles(h.roles);
    if (missing.length > 0) {
      return this.refuseSession(TunnelErrorCode.ROLE_DENIED, `token '${g.name}' does not grant the ${missing.join(" and ")} role`);
    }
    if (h.services.length > 0 && !h.roles.includes("destination")) {
      return this.refuseSession(TunnelErrorCode.ROLE_DENIED, "services can only be exposed with the destination role");
    }
    for (const s of h.services) {
      if (!g.allowsService(s.name)) {
        return this.refuseSession(TunnelErrorCode.SERVICE_DENIED, `service name '${s.name}' is not allowed for token '${g.name}' (allowed: ${g.services.join(", ") || "none"})`);
      }
    }
    const counters = this.host.counters;
    const slot = counters?.slotFor(g.name) ?? -1;
    if (counters !== null && !counters.tryAcquire(slot, g.maxSessions)) {
      return this.refuseSession(TunnelErrorCode.SESSION_LIMIT, `token '${g.name}' already has ${g.maxSessions} session(s) (max_sessions)`);
    }
    this.slotHeld = counters !== null;
    this.sessionSlot = slot;
    this.roles = h.roles;
    for (const s of h.services) this.services.set(s.name, s);
    this.stage = Stage.Ready;
    this.host.stats.handshake(this.host.listenerSlot, (monotonicMs() - this.startedAt) / 1000);
    if (this.services.size > 0) this.host.hub.addServices(this, [...this.services.keys()]);
    // A destination agent can be reached by operators (shell, files, reload: the agent decides what it offers).
    if (this.roles.includes("destination")) this.host.hub.addServices(this, [agentRoute(this.agent)]);
    this.sendControl({ type: "welcome", session: this.id, peer: this.peer, edge: `edgemux ${VERSION}` });
    this.listed = true;
    this.host.hub.sessionUp({
      id: this.id,
      listener: this.host.sessionConfig.name,
      agent: this.agent,
      token: g.name,
      peer: this.peer,
      transport: this.transport === "websocket" ? "websocket" : "smux",
      roles: [...this.roles],
      services: [...this.services.keys()],
      sinceMs: wallMs(),
    }, this);
    this.host.log.info("tunnel session", {
      listener: this.host.sessionConfig.name,
      session: this.id,
      peer: this.peer,
      agent: this.agent,
      token: g.name,
      transport: this.transport,
      roles: this.roles,
      services: [...this.services.keys()],
    });
    if (this.draining) this.sendGoAway("the edge is draining");
  }

  private onAnnounce(add: ServiceSpec[], remove: string[]): void {
    const g = this.grant!;
    if (add.length > 0 && !this.roles.includes("destination")) {
      return this.refuseSession(TunnelErrorCode.ROLE_DENIED, "services can only be exposed with the destination role");
    }
    for (const s of add) {
      if (!g.allowsService(s.name)) return this.refuseSession(TunnelErrorCode.SERVICE_DENIED, `service name '${s.name}' is not allowed for token '${g.name}'`);
    }
    const removed = remove.filter((n) => this.services.delete(n));
    for (const s of add) this.services.set(s.name, s);
    if (removed.length > 0) this.host.hub.removeServices(this, removed);
    if (add.length > 0) this.host.hub.addServices(this, add.map((s) => s.name));
    this.host.log.info("tunnel services changed", { session: this.id, agent: this.agent, added: add.map((s) => s.name), removed });
  }

  private sendControl(m: TunnelMessage): void {
    this.control?.write(encodeTunnelMessage(m));
  }

  /** Refusal after the upgrade: an error message on the control stream, then the session closes. */
  private refuseSession(code: number, reason: string): void {
    if (this.stage >= Stage.Closing) return;
    this.logRefusal(code, reason);
    this.leaveReady();
    this.stage = Stage.Closing;
    this.stageStartedMs = coarseClock.now;
    if (this.control !== null && !this.control.isClosed) {
      this.sendControl({ type: "error", code, message: reason });
      this.control.end();
    } else {
      this.mux?.close(new ProxyError(errorCodeForTunnel(code), "downstream", reason));
    }
  }

  /** Go-away: the agent finishes its streams and reconnects after the delay (elsewhere, or here once back). */
  /** The edge is draining: the agent is told to reconnect elsewhere (go-away); its streams finish. */
  drain(): void {
    this.sendGoAway("the edge is draining");
  }

  sendGoAway(reason: string): void {
    this.draining = true;
    if (this.stage !== Stage.Ready) return;
    this.sendControl({ type: "goaway", reconnectMs: this.host.sessionConfig.goawayDelayMs, reason });
  }

  // ---------------------------------------------------------------- streams

  /** DestinationSession: a client wants one of this agent's services. */
  openService(req: OpenRequest, timeoutMs: number): Promise<Conn> {
    return new Promise<Conn>((resolve, reject) => {
      const held = req.remote !== undefined ? this.roles.includes("destination") && req.service === agentRoute(this.agent) : this.services.has(req.service);
      if (this.stage !== Stage.Ready || this.mux === null || !held) {
        reject(tunnelError(req.remote !== undefined ? "AGENT_UNKNOWN" : "SERVICE_OFFLINE", `tunnel service '${req.service}': agent '${this.agent}' is not connected`));
        return;
      }
      let s: MuxStream;
      try {
        s = this.mux.openStream();
      } catch (err) {
        reject(tunnelError("SERVICE_OFFLINE", `tunnel service '${req.service}': ${(err as Error).message}`));
        return;
      }
      let open: OpenMessage | RemoteMessage;
      if (req.remote !== undefined) open = req.remote;
      else {
        open = { type: "open", service: req.service, proto: req.proto, client: req.client, server: req.server, proxy: req.proxy };
        if (req.connId !== undefined) open.connId = req.connId;
      }
      s.write(encodeTunnelMessage(open, OPEN_MAX_MESSAGE));
      const statsName = req.remote !== undefined ? remoteStatsName(req.remote.kind) : req.service;
      this.streamsTotal++;
      const fm: FirstMessage = new FirstMessage(s, timeoutMs, (err, msg) => {
        this.pendingOpens.delete(fm);
        if (err !== null) {
          s.close();
          const timedOut = err.code === "HANDSHAKE_TIMEOUT";
          // A destination answers an open once it reached its local service: no answer in time is that service's.
          reject(tunnelError(
            timedOut ? "SERVICE_UNREACHABLE" : "SERVICE_OFFLINE",
            `tunnel service '${req.service}' on agent '${this.agent}': ${timedOut ? `no answer within ${timeoutMs} ms` : err.message}`,
          ));
          return;
        }
        if (msg!.type === "ok") {
          resolve(ServiceStream.from(fm, this.host.stats, this.host.stats.serviceSlot(statsName)));
          return;
        }
        s.close();
        if (msg!.type === "error") {
          const what = req.remote !== undefined ? `agent '${this.agent}'` : `tunnel service '${req.service}' on agent '${this.agent}'`;
          reject(tunnelError(errorCodeForTunnel(msg!.code), `${what}: ${msg!.message}`));
        } else {
          reject(tunnelError("TUNNEL_PROTOCOL", `tunnel service '${req.service}': agent '${this.agent}' answered ${msg!.type} to open`));
        }
      }, "upstream");
      this.pendingOpens.add(fm);
    });
  }

  /** A source agent opened a stream: read its open request, reach the service, relay. */
  private acceptSourceStream(s: MuxStream): void {
    this.streamsTotal++;
    const fm: FirstMessage = new FirstMessage(s, this.host.sessionConfig.handshakeTimeoutMs, (err, msg) => {
      this.pendingOpens.delete(fm);
      if (err !== null) {
        this.host.log.debug("tunnel stream refused", { session: this.id, agent: this.agent, error: err.code, reason: err.message });
        s.close();
        return;
      }
      if (msg!.type === "remote") return this.acceptRemote(fm, s, msg as RemoteMessage);
      if (msg!.type !== "open") return this.refuseStream(s, TunnelErrorCode.PROTOCOL, `expected open, got ${msg!.type}`);
      const open = msg as OpenMessage;
      // The source agent's id of its local connection, or ours when it sent none (an older agent).
      const connId = open.connId ?? nextConnId();
      if (!this.roles.includes("source")) return this.refuseStream(s, TunnelErrorCode.ROLE_DENIED, "this session does not have the source role", connId);
      if (!this.grant!.allowsService(open.service)) {
        return this.refuseStream(s, TunnelErrorCode.SERVICE_DENIED, `service '${open.service}' is not allowed for token '${this.grant!.name}'`, connId);
      }
      // The client of record is the source agent as the edge sees it (what it claims is not trusted).
      const req: OpenRequest = { service: open.service, proto: open.proto, client: this.peer, server: formatPeer(this.conn.localAddress, this.conn.localPort), proxy: "none", connId };
      this.host.hub.open(req, this.host.sessionConfig.openTimeoutMs).then(
        (dest) => this.startSourceRelay(fm, s, dest, open.service, connId),
        (e: ProxyError) => this.refuseStream(s, tunnelCodeFor(e.code), e.message, connId),
      );
    });
    this.pendingOpens.add(fm);
  }

  /**
   * An operator stream (shell, files, reload): the token must have role
   * "operator" and name the agent in its `agents` patterns; the agent itself
   * then accepts or refuses (it knows what it offers). Every request and its
   * outcome is logged with the token's name: the audit trail.
   */
  private acceptRemote(fm: FirstMessage, s: MuxStream, m: RemoteMessage): void {
    const g = this.grant!;
    const connId = m.connId ?? nextConnId();
    const audit = (outcome: { code: number; reason: string } | null) => {
      this.host.log.info(outcome === null ? "remote access" : "remote access refused", {
        session: this.id,
        conn: connId,
        peer: this.peer,
        token: g.name,
        operator: this.agent,
        agent: m.agent,
        kind: m.kind,
        path: m.path ?? null,
        command: m.command ?? null,
        size: m.size ?? null,
        offset: m.offset ?? null,
        ...(outcome === null ? {} : { code: outcome.code, error: errorCodeForTunnel(outcome.code), reason: outcome.reason }),
      });
    };
    const refuse = (code: number, reason: string) => {
      audit({ code, reason });
      // Counted like every failed open to its kind's series; the hub counts the ones that get that far.
      this.host.stats.serviceFailed(this.host.stats.serviceSlot(remoteStatsName(m.kind)), errorCodeForTunnel(code));
      this.refuseStream(s, code, reason, connId);
    };
    if (!this.roles.includes("operator")) return refuse(TunnelErrorCode.ROLE_DENIED, `token '${g.name}' did not open this session with the operator role`);
    if (!g.allowsAgent(m.agent)) {
      return refuse(TunnelErrorCode.AGENT_DENIED, `agent '${m.agent}' is not allowed for token '${g.name}' (agents: ${g.agents.join(", ") || "none"})`);
    }
    // What the agent gets: the checked request, stamped with who asked (a client's own `operator` is overwritten).
    const remote: RemoteMessage = { ...m, operator: g.name, connId };
    const req: OpenRequest = { service: agentRoute(m.agent), proto: "tcp", client: this.peer, server: formatPeer(this.conn.localAddress, this.conn.localPort), proxy: "none", connId, remote };
    this.host.hub.open(req, this.host.sessionConfig.openTimeoutMs).then(
      (dest) => {
        audit(null);
        this.startSourceRelay(fm, s, dest, remoteStatsName(m.kind), connId);
      },
      (e: ProxyError) => {
        const code = tunnelCodeFor(e.code);
        audit({ code, reason: e.message });
        this.refuseStream(s, code, e.message, connId);
      },
    );
  }

  private startSourceRelay(fm: FirstMessage, s: MuxStream, dest: Conn, service: string, connId: string): void {
    if (s.isClosed || this.stage === Stage.Done) {
      dest.close();
      return;
    }
    s.write(encodeTunnelMessage({ type: "ok" }, OPEN_MAX_MESSAGE));
    const src = handOver(fm);
    const st = new SourceStream(this, service, connId);
    const relay = new Relay(src, dest, st);
    st.relay = relay;
    this.streams.add(st);
    relay.start([]);
    src.resume();
  }

  private refuseStream(s: MuxStream, code: number, reason: string, connId: string | null = null): void {
    this.host.log.info("tunnel stream refused", { session: this.id, agent: this.agent, conn: connId, code, error: errorCodeForTunnel(code), reason });
    this.host.stats.error(this.host.listenerSlot, errorCodeForTunnel(code));
    if (s.isClosed) return;
    s.write(encodeTunnelMessage({ type: "error", code, message: reason.slice(0, 1000) }, OPEN_MAX_MESSAGE));
    s.end();
  }

  countBytes(up: number, down: number): void {
    this.bytesUp += up;
    this.bytesDown += down;
    this.host.stats.bytes(this.host.listenerSlot, up, down);
  }

  streamEnded(st: SourceStream): void {
    this.streams.delete(st);
    if (st.error !== null) this.host.stats.error(this.host.listenerSlot, st.error);
    if (this.host.logConnections) {
      this.host.log.info("tunnel stream", {
        listener: this.host.sessionConfig.name,
        session: this.id,
        conn: st.connId,
        agent: this.agent,
        service: st.service,
        bytes_in: st.relay?.bytesToUpstream ?? 0,
        bytes_out: st.relay?.bytesToClient ?? 0,
        duration_ms: Math.round(monotonicMs() - st.startedAt),
        error: st.error,
      });
    }
  }

  // ---------------------------------------------------------------- endings

  private onMuxClosed(err?: ProxyError): void {
    if (this.stage === Stage.Done) return;
    if (err && this.errorCode === null && this.stage !== Stage.Closing) {
      this.errorCode = err.code;
      this.reason = err.message;
      if (err.code === "MUX_PROTOCOL" || err.code === "TUNNEL_PROTOCOL") {
        this.host.log.info("tunnel session protocol error", { session: this.id, peer: this.peer, agent: this.agent || null, error: err.code, reason: err.message });
      }
    }
    this.finish(this.errorCode, this.reason);
  }

  private leaveReady(): void {
    if (this.stage === Stage.Ready && !this.servicesRemoved) {
      if (this.services.size > 0) this.host.hub.removeServices(this, [...this.services.keys()]);
      if (this.roles.includes("destination")) this.host.hub.removeServices(this, [agentRoute(this.agent)]);
    }
    this.servicesRemoved = true;
  }

  private finish(code: ErrorCode | null, reason: string | null): void {
    if (this.stage === Stage.Done) return;
    this.leaveReady();
    this.stage = Stage.Done;
    this.errorCode = code;
    this.reason = reason;
    for (const fm of this.pendingOpens) fm.cancel();
    this.pendingOpens.clear();
    for (const st of [...this.streams]) st.relay?.abort(code ?? "DOWNSTREAM_RESET");
    if (this.slotHeld) {
      this.host.counters!.release(this.sessionSlot);
      this.slotHeld = false;
    }
    if (this.mux !== null && !this.mux.closed) this.mux.close();
    else this.conn.close();
    if (this.listed) this.host.hub.sessionDown(this.id);
    this.host.agentSessionEnded(this);
  }

  private leavingIdle = false;

  /** The agent left gracefully: end the session when no stream is left. */
  private closeWhenIdle(): void {
    this.leavingIdle = true;
    if (this.mux !== null && this.mux.numStreams === 0) this.mux.close();
  }

  /** Sweeper: handshake deadline, refusal linger, idle streams. */
  sweep(nowMs: number): void {
    const cfg = this.host.sessionConfig;
    switch (this.stage) {
      case Stage.Head:
      case Stage.Hello:
        if (nowMs - this.stageStartedMs >= cfg.handshakeTimeoutMs) {
          if (this.stage === Stage.Head) {
            this.logRefusal(TunnelErrorCode.HELLO_TIMEOUT, `no upgrade request within ${cfg.handshakeTimeoutMs} ms`);
            this.finish(this.errorCode, this.reason);
          } else this.refuseSession(TunnelErrorCode.HELLO_TIMEOUT, `no hello within ${cfg.handshakeTimeoutMs} ms`);
        }
        return;
      case Stage.Closing:
        if (nowMs - this.stageStartedMs >= LINGER_MS) this.finish(this.errorCode, this.reason);
        return;
      case Stage.Ready:
        if (this.leavingIdle) this.closeWhenIdle();
        if (cfg.idleTimeoutMs > 0) {
          for (const st of this.streams) if (st.relay && idleExpired(nowMs, st.relay.lastActiveMs, cfg.idleTimeoutMs)) st.relay.abort("IDLE_TIMEOUT");
        }
        return;
    }
  }

  abort(code: ErrorCode): void {
    this.finish(this.errorCode ?? code, this.reason ?? "closed by the drain deadline");
  }

  get isReady(): boolean {
    return this.stage === Stage.Ready;
  }

  /** ReportingSession: the services it exposes now. */
  get serviceNames(): string[] {
    return [...this.services.keys()];
  }

  /** ReportingSession: streams both ways (the control stream not counted as open), wire bytes. */
  counts(): TunnelSessionCounts {
    const m = this.mux?.stats();
    return {
      streams: this.streamsTotal,
      activeStreams: Math.max(0, (this.mux?.numStreams ?? 0) - (this.control !== null && !this.control.isClosed ? 1 : 0)),
      bytesIn: m?.bytesIn ?? 0,
      bytesOut: m?.bytesOut ?? 0,
    };
  }

  outcome() {
    const m = this.mux?.stats();
    return {
      session: this.id,
      peer: this.peer,
      agent: this.agent || null,
      token: this.grant?.name ?? null,
      transport: this.transport || null,
      roles: this.roles,
      services: [...this.services.keys()],
      streams: this.streamsTotal,
      bytesIn: m?.bytesIn ?? 0,
      bytesOut: m?.bytesOut ?? 0,
      seconds: (monotonicMs() - this.startedAt) / 1000,
      error: this.errorCode,
      reason: this.reason,
    };
  }
}
