/**
 * The worker's tunnel hub: which destination agents hold which services (on
 * this worker and, by the peers' announcements, on the others), and the one
 * call every client of a service makes — `open(req)` → a Conn joined to the
 * destination's local service.
 *
 * Routing: a session on this worker first (round-robin among them), else a
 * worker that announced the service (round-robin), over its PeerLink.
 * Several agents may expose one name: they share the load, and an agent can
 * be replaced without a gap.
 */
import { asProxyError, ProxyError } from "../../errors/mod.ts";
import type { Logger } from "../../log/mod.ts";
import { Relay, type RelayOwner } from "../../relay/mod.ts";
import type { ErrorCode } from "../../errors/mod.ts";
import type { Conn } from "../../runtime/types.ts";
import { idleExpired } from "../../runtime/mod.ts";
import type { SessionCounters, StatsWriter } from "../../stats/mod.ts";
import type { HubStats, OpenRequest, TunnelSessionCounts, TunnelSessionEvent, TunnelSessionInfo } from "./types.ts";

/** What the hub reads of a live session for its periodic report (EdgeSession implements it). */
export interface ReportingSession {
  readonly serviceNames: string[];
  counts(): TunnelSessionCounts;
}

/**
 * A link to another worker's hub (worker/peer_link.ts makes them): it tells
 * the peer this worker's services and opens streams to the peer's. The hub
 * in turn serves the peer's opens (`openForPeer`, `relayForPeer`) and hears
 * its services (`peerServices`).
 */
export interface PeerRoute {
  announce(names: string[]): void;
  open(req: OpenRequest, timeoutMs: number): Promise<Conn>;
  close(reason: string): void;
  readonly isClosed: boolean;
  readonly streams: number;
  readonly bytesOut: number;
  readonly bytesIn: number;
  readonly messagesOut: number;
}

/** What the hub needs from a destination session (EdgeSession implements it). */
export interface DestinationSession {
  readonly id: string;
  readonly agent: string;
  /** Opens a stream to the agent and runs the open exchange; resolves with the stream (bytes ready to relay). */
  openService(req: OpenRequest, timeoutMs: number): Promise<Conn>;
  /** Not accepting new streams (go-away sent or closing). */
  readonly draining: boolean;
}

export interface HubOptions {
  workerId: number;
  log: Logger;
  /** max_sessions cells shared by all workers (null: no limit is enforced across workers). */
  counters: SessionCounters | null;
  /** Sessions admitted and ended on this worker (the worker tells the supervisor, for /status). */
  onSession?: (e: TunnelSessionEvent) => void;
  /** The worker's stats slab: services get slots when announced, failed opens are counted per service. */
  stats?: StatsWriter;
}

/**
 * The hub key under which a destination agent can be reached for operator
 * streams (remote access). `@` is outside the service-name grammar, so no
 * service, route or source agent can name it; such keys take no stats slot.
 */
export function agentRoute(agent: string): string {
  return `@agent:${agent}`;
}

/** The tunnel-service stats series operator streams are counted under, one per kind (`@remote:shell`, `@remote:put`, ...). */
export function remoteStatsName(kind: string): string {
  return `@remote:${kind}`;
}

/** A failed open: its code is all a peer needs (errors/ maps it to the tunnel wire code, a TLS alert, an HTTP status). */
export function tunnelError(code: ErrorCode, message: string): ProxyError {
  return new ProxyError(code, "upstream", message);
}

export class TunnelHub implements RelayOwner {
  private readonly local = new Map<string, DestinationSession[]>();
  private readonly rr = new Map<string, number>();
  private readonly remote = new Map<string, Set<number>>();
  private readonly peers = new Map<number, PeerRoute>();
  private announceScheduled = false;
  /** Relays this worker runs for peers' streams (destination side). */
  private readonly peerRelays = new Set<Relay>();
  crossBytes = 0;
  /** Sessions sessionUp listed and sessionDown has not ended, for reportSessions. */
  private readonly listed = new Map<string, ReportingSession>();
  /** The last report was empty: the next empty one is not sent. */
  private reportedEmpty = true;

  constructor(private readonly opts: HubOptions) {}

  get workerId(): number {
    return this.opts.workerId;
  }
  get counters(): SessionCounters | null {
    return this.opts.counters;
  }
  get log(): Logger {
    return this.opts.log;
  }

  // ---------------------------------------------------------------- registry

  /** An agent session on this worker was admitted. */
  sessionUp(info: TunnelSessionInfo, source?: ReportingSession): void {
    if (source !== undefined) this.listed.set(info.id, source);
    this.opts.onSession?.({ type: "tunnel-up", session: info });
  }

  /** A session sessionUp announced has ended. */
  sessionDown(id: string): void {
    this.listed.delete(id);
    this.opts.onSession?.({ type: "tunnel-down", id });
  }

  /** The live sessions' counts and services, for /status (the worker calls this about once a second). */
  reportSessions(): void {
    if (this.listed.size === 0 && this.reportedEmpty) return;
    this.reportedEmpty = this.listed.size === 0;
    const sessions = [...this.listed].map(([id, s]) => ({ id, services: s.serviceNames, counts: s.counts() }));
    this.opts.onSession?.({ type: "tunnel-report", sessions });
  }

  /** A destination session on this worker now holds `names`. */
  addServices(s: DestinationSession, names: readonly string[]): void {
    for (const n of names) {
      if (!n.startsWith("@")) this.opts.stats?.serviceSlot(n);
      const list = this.local.get(n);
      if (list === undefined) this.local.set(n, [s]);
      else if (!list.includes(s)) list.push(s);
    }
    this.scheduleAnnounce();
  }

  removeServices(s: DestinationSession, names: readonly string[]): void {
    for (const n of names) {
      const list = this.local.get(n);
      if (!list) continue;
      const i = list.indexOf(s);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.local.delete(n);
    }
    this.scheduleAnnounce();
  }

  /** Whether anyone (here or on a peer) holds the service. */
  has(service: string): boolean {
    return this.local.has(service) || (this.remote.get(service)?.size ?? 0) > 0;
  }

  /** Services held on this worker, with how many sessions hold each (agents' operator routes left out). */
  localServices(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [n, l] of this.local) if (!n.startsWith("@")) out[n] = l.length;
    return out;
  }

  private scheduleAnnounce(): void {
    if (this.announceScheduled) return;
    this.announceScheduled = true;
    queueMicrotask(() => {
      this.announceScheduled = false;
      const names = [...this.local.keys()];
      for (const p of this.peers.values()) p.announce(names);
    });
  }

  peerServices(workerId: number, names: string[]): void {
    for (const set of this.remote.values()) set.delete(workerId);
    for (const n of names) {
      if (!n.startsWith("@")) this.opts.stats?.serviceSlot(n);
      let set = this.remote.get(n);
      if (!set) this.remote.set(n, (set = new Set()));
      set.add(workerId);
    }
    for (const [n, set] of this.remote) if (set.size === 0) this.remote.delete(n);
  }

  // ---------------------------------------------------------------- peers

  /** The supervisor paired this worker with `workerId` (it started, or restarted); `link` reaches it. */
  attachPeer(workerId: number, link: PeerRoute): void {
    this.peers.get(workerId)?.close(`worker ${workerId} was replaced`);
    this.peers.set(workerId, link);
    link.announce([...this.local.keys()]);
  }

  /** The peer worker exited: its services are gone and its streams fail. */
  detachPeer(workerId: number): void {
    const link = this.peers.get(workerId);
    this.peers.delete(workerId);
    this.peerServices(workerId, []);
    link?.close(`worker ${workerId} exited`);
  }

  // ---------------------------------------------------------------- opening

  /**
   * A Conn to `req.service`, after the destination agent answered ok. The
   * Conn is ready for a relay: it starts delivering once its handler is set.
   * Rejects with a ProxyError whose code says why (SERVICE_UNKNOWN, SERVICE_OFFLINE, ...).
   */
  async open(req: OpenRequest, timeoutMs: number): Promise<Conn> {
    // Opens that succeed are counted where the stream is made (EdgeSession.openService, maybe on a
    // peer worker); every failure comes back here, so it is counted here, once.
    try {
      const session = this.pickLocal(req.service);
      if (session !== null) return await session.openService(req, timeoutMs);
      const link = this.pickPeer(req.service);
      if (link !== null) return await link.open(req, timeoutMs);
      if (req.remote !== undefined) throw tunnelError("AGENT_UNKNOWN", `Cannot reach agent '${req.remote.agent}': no agent of that name is connected with the destination role`);
      throw tunnelError("SERVICE_UNKNOWN", `Cannot open tunnel service '${req.service}': no agent exposing it is connected`);
    } catch (err) {
      const st = this.opts.stats;
      // Names never announced nor configured count under the overflow slot: a client's made-up name takes no slot.
      // Operator streams count under their kind's series (a fixed handful of names).
      const slot = st === undefined ? 0 : req.remote !== undefined ? st.serviceSlot(remoteStatsName(req.remote.kind)) : st.serviceSlotIfKnown(req.service);
      if (st !== undefined) st.serviceFailed(slot, asProxyError(err, "SERVICE_OFFLINE").code);
      throw err;
    }
  }

  private pickLocal(service: string): DestinationSession | null {
    const list = this.local.get(service);
    if (!list || list.length === 0) return null;
    const start = this.rr.get(service) ?? 0;
    // Prefer sessions that are not draining; fall back to a draining one (it still serves).
    for (let k = 0; k < list.length; k++) {
      const s = list[(start + k) % list.length]!;
      if (!s.draining) {
        this.rr.set(service, (start + k + 1) % list.length);
        return s;
      }
    }
    this.rr.set(service, (start + 1) % list.length);
    return list[start % list.length]!;
  }

  private pickPeer(service: string): PeerRoute | null {
    const set = this.remote.get(service);
    if (!set || set.size === 0) return null;
    const ids = [...set];
    const start = this.rr.get(`\0${service}`) ?? 0;
    this.rr.set(`\0${service}`, (start + 1) % ids.length);
    for (let k = 0; k < ids.length; k++) {
      const link = this.peers.get(ids[(start + k) % ids.length]!);
      if (link && !link.isClosed) return link;
    }
    return null;
  }

  // ---------------------------------------------------------------- serving peers (worker/peer_link.ts LinkHost)

  async openForPeer(req: OpenRequest, timeoutMs: number): Promise<Conn> {
    const session = this.pickLocal(req.service);
    if (session === null) {
      throw tunnelError("SERVICE_OFFLINE", `tunnel service '${req.service}' is no longer held by worker ${this.opts.workerId}`);
    }
    return await session.openService(req, timeoutMs);
  }

  relayForPeer(peerSide: Conn, local: Conn, _req: OpenRequest): void {
    const relay = new Relay(peerSide, local, this);
    this.peerRelays.add(relay);
    relay.start([]);
  }

  relayBytes(_r: Relay, toUpstream: number, toClient: number): void {
    this.crossBytes += toUpstream + toClient;
  }

  relayClosed(r: Relay): void {
    this.peerRelays.delete(r);
  }

  /** Idle deadline for the relays this worker runs on peers' behalf. */
  sweep(nowMs: number, idleTimeoutMs: number): void {
    if (idleTimeoutMs <= 0) return;
    for (const r of this.peerRelays) if (idleExpired(nowMs, r.lastActiveMs, idleTimeoutMs)) r.abort("IDLE_TIMEOUT");
  }

  /** Drain deadline / shutdown. */
  abortAll(): void {
    for (const r of [...this.peerRelays]) r.abort("DRAINING");
  }

  /** Relays this worker runs for peers' streams. */
  get peerStreams(): number {
    return this.peerRelays.size;
  }

  stats(): HubStats {
    let crossStreams = 0;
    let out = 0;
    let inn = 0;
    let msgs = 0;
    for (const l of this.peers.values()) {
      crossStreams += l.streams;
      out += l.bytesOut;
      inn += l.bytesIn;
      msgs += l.messagesOut;
    }
    let remoteServices = 0;
    for (const [n, s] of this.remote) if (!n.startsWith("@")) remoteServices += s.size;
    let localServices = 0;
    for (const n of this.local.keys()) if (!n.startsWith("@")) localServices++;
    return { localServices, remoteServices, peers: this.peers.size, crossStreams, crossBytesOut: out, crossBytesIn: inn, crossMessages: msgs };
  }
}
