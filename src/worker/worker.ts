/**
 * The data plane of one worker thread: binds every listener with
 * reusePort, runs the sessions, writes its own stats slab, and answers the
 * supervisor's start / reload / drain messages. Nothing on the hot path
 * talks to the supervisor.
 */
import type { Config } from "../config/types.ts";
import { asProxyError, ProxyError } from "../errors/mod.ts";
import type { KernelPromotion } from "../relay/mod.ts";
import { Logger, setConnIdTag } from "../log/mod.ts";
import { createRouteBackends } from "../router/mod.ts";
import { compileAccessList } from "../auth/mod.ts";
import type { Runtime } from "../runtime/types.ts";
import { StatsWriter } from "../stats/mod.ts";
import { COARSE_TICK_MS, tickClock, wallMs } from "../runtime/mod.ts";
import { SessionCounters } from "../stats/mod.ts";
import { TunnelHub } from "../tunnel/edge/mod.ts";
import { PeerLink } from "./peer_link.ts";
import { AcmeState } from "../http/mod.ts";
import { createUpstream, type UpstreamContext } from "../upstream/mod.ts";
import { createListener, type DataPlaneListener, type ListenerDeps, type ListenerSettings } from "./listeners.ts";
import type { FromWorker, SlotAssignment, ToWorker } from "./messages.ts";

/** How often deadlines are checked and the heartbeat is written. */
/** The sweep ticks the coarse clock: one constant, so idle deadlines know how stale it may be. */
export const SWEEP_INTERVAL_MS = COARSE_TICK_MS;

export interface WorkerPort {
  post(msg: FromWorker): void;
  onMessage(fn: (msg: ToWorker) => void): void;
}

export class DataPlane {
  private listeners: DataPlaneListener[] = [];
  private stats!: StatsWriter;
  private log!: Logger;
  private workerId = -1;
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  private draining = false;
  /** Which tunnel services this worker and its peers hold; the cross-worker stream path. */
  private hub: TunnelHub | null = null;
  /** The worker's ways out; its per-target stats slots change on reload. */
  private upstream: UpstreamContext | null = null;
  private sweeps = 0;
  /** [acme] certificates and challenges from the supervisor, read by http listeners. */
  private readonly acme = new AcmeState();

  constructor(private readonly runtime: Runtime, private readonly port: WorkerPort) {
    port.onMessage((msg) => this.handle(msg));
  }

  private handle(msg: ToWorker): void {
    switch (msg.type) {
      case "start":
        return void this.start(msg);
      case "reload":
        return this.reload(msg.config, msg.slots, msg.seq);
      case "drain":
        return this.drain(msg.timeoutMs);
      case "peer":
        return this.hub?.attachPeer(msg.workerId, new PeerLink(this.workerId, msg.workerId, msg.port, this.hub));
      case "peer-gone":
        return this.hub?.detachPeer(msg.workerId);
      case "acme-certificate":
        return this.acme.setCertificate({ name: msg.name, cert: msg.cert, key: msg.key, notAfter: msg.notAfter });
      case "acme-challenge":
        return this.acme.applyChallenge(msg.event);
    }
  }

  private async start(msg: Extract<ToWorker, { type: "start" }>): Promise<void> {
    const { config, slots } = msg;
    this.workerId = msg.workerId;
    setConnIdTag(`w${msg.workerId}`);
    this.log = new Logger(config.log.level, config.log.format, { worker: msg.workerId });
    this.stats = new StatsWriter(msg.slab, msg.workerId + 1);
    const counters = msg.tunnelSessions ? new SessionCounters(msg.tunnelSessions, msg.workerId) : null;
    this.hub = new TunnelHub({ workerId: msg.workerId, log: this.log, counters, stats: this.stats, onSession: (e) => this.port.post({ ...e, workerId: msg.workerId }) });
    const upstream = createUpstream(this.runtime, this.hub, this.stats);
    upstream.backendSlots = slots.backends ?? {};
    this.upstream = upstream;
    const relay = kernelPromotion(this.runtime, config, this.log, msg.workerId);
    if (typeof relay === "string") {
      this.port.post({ type: "start-failed", workerId: this.workerId, error: new ProxyError("CONFIG", "internal", relay).toRecord() });
      return;
    }
    const deps: ListenerDeps = { runtime: this.runtime, stats: this.stats, limits: new Int32Array(msg.limits), log: this.log, upstream, tunnels: this.hub, relay, acme: this.acme };
    const bound: Record<string, { hostname: string; port: number }> = {};
    try {
      for (const settings of this.settingsFor(config, slots)) {
        const l = createListener(settings, deps);
        this.listeners.push(l);
        const a = settings.listener.address;
        const port = a.kind === "tcp" ? (msg.ports[l.name] ?? a.port) : 0;
        const bind = await l.start(a.kind === "tcp" ? a.hostname : "", port);
        bound[l.name] = { hostname: bind.hostname, port: bind.port };
      }
    } catch (err) {
      for (const l of this.listeners) l.stopAccepting();
      this.port.post({ type: "start-failed", workerId: this.workerId, error: asProxyError(err, "CONFIG").toRecord() });
      return;
    }
    const now = wallMs();
    tickClock(now);
    this.stats.heartbeat(now);
    this.sweepTimer = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.port.post({ type: "ready", workerId: this.workerId, listeners: bound });
  }

  /** Compiles what all listeners share once, and pairs it with each listener's own config. */
  private settingsFor(config: Config, slots: SlotAssignment): ListenerSettings[] {
    const access = compileAccessList(config.access);
    const backends = createRouteBackends(config.routes);
    // Services the config names get their stats slots up front, so failed opens while their agent is away count under their name.
    for (const r of config.routes) if (r.tunnel !== undefined) this.stats.serviceSlot(r.tunnel);
    return config.listeners.map((listener) => ({ config, listener, access, backends, slots }));
  }

  private sweep(): void {
    const now = wallMs();
    tickClock(now);
    this.stats.heartbeat(now);
    for (const l of this.listeners) l.sweep(now);
    // Every other sweep (about once a second): the tunnel sessions' counts, for /status.
    if ((this.sweeps = (this.sweeps + 1) & 1) === 0) this.hub?.reportSessions();
  }

  private reload(config: Config, slots: SlotAssignment, seq: number): void {
    try {
      const byName = new Map(this.settingsFor(config, slots).map((s) => [s.listener.name, s]));
      // The level first: listeners decide from it whether connection records are built at all.
      this.log.configure(config.log.level, config.log.format);
      for (const l of this.listeners) {
        const s = byName.get(l.name);
        if (s) l.update(s); // the supervisor refuses listener removal; keep serving
      }
      if (this.upstream !== null) this.upstream.backendSlots = slots.backends ?? {};
      this.port.post({ type: "reloaded", workerId: this.workerId, seq });
    } catch (err) {
      this.port.post({ type: "reload-failed", workerId: this.workerId, seq, error: asProxyError(err, "CONFIG").toRecord() });
    }
  }

  /** Stop accepting; report when every session ended or the deadline passed. */
  private drain(timeoutMs: number): void {
    if (this.draining) return;
    this.draining = true;
    for (const l of this.listeners) l.stopAccepting();
    this.log.info("stopped accepting", { open: this.listeners.reduce((n, l) => n + l.open, 0) });
    const deadline = wallMs() + timeoutMs;
    const check = () => {
      const open = this.listeners.reduce((n, l) => n + l.open, 0);
      if (open === 0) return this.finishDrain(0);
      if (wallMs() >= deadline) {
        for (const l of this.listeners) l.abortAll();
        return this.finishDrain(open);
      }
      setTimeout(check, 50);
    };
    check();
  }

  private finishDrain(closedAtDeadline: number): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.port.post({ type: "drained", workerId: this.workerId, closedAtDeadline });
  }
}

/**
 * The kernel relay as `[relay]` asks for it: null = every relay stays in
 * JavaScript; a string = why a `mode = "kernel"` worker cannot start. Its
 * state goes to the log once per worker.
 */
function kernelPromotion(runtime: Runtime, config: Config, log: Logger, workerId: number): KernelPromotion | null | string {
  const { mode, maxPipes, promoteAfter } = config.relay;
  if (mode === "js") return null;
  const kernel = runtime.kernelRelay;
  const why = kernel === undefined ? `the ${runtime.name} runtime has no kernel relay` : kernel.start({ maxPipes });
  if (why === null) {
    if (workerId === 0) log.info("kernel relay on", { max_pipes: maxPipes, promote_after: promoteAfter });
    return { kernel: kernel!, promoteAfter };
  }
  if (mode === "kernel") return `relay.mode = "kernel", but ${why}`;
  if (workerId === 0) log.info("kernel relay off, relaying in JavaScript", { reason: why });
  return null;
}
