/**
 * The supervisor (main thread): validates the config, spawns the workers,
 * restarts a crashed one, reloads on SIGHUP, drains on SIGTERM/SIGINT, and
 * serves the admin API from the stats slabs. It never touches traffic.
 *
 * Port 0: worker 0 binds first and reports the ports the kernel chose; the
 * other workers then bind those same ports with reusePort.
 */
import { wallMs } from "../runtime/mod.ts";
import type { Config } from "../config/types.ts";
import { formatAddress, loadConfigFile, loadDefaultConfig, reloadProblems, type ConfigFlags } from "../config/mod.ts";
import { formatHostPort } from "../proto/mod.ts";
import { ProxyError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { HttpServer, Runtime, WorkerHandle } from "../runtime/types.ts";
import { MAX_BACKEND_CAPACITY, overflowSlot, StatsRegistry } from "../stats/mod.ts";
import { routeTargets } from "../admin/mod.ts";
import type { FromWorker, SlotAssignment, ToWorker } from "../worker/mod.ts";
import { VERSION } from "../version.ts";
import { createSessionCells, releaseWorkerSessions } from "../stats/mod.ts";
import type { TunnelSessionCounts, TunnelSessionInfo } from "../tunnel/edge/mod.ts";
import { adoptPassedSockets, type PassedSocket } from "./inherit.ts";
import { AcmeService } from "./acme.ts";
import { CertificateWatch } from "./cert_watch.ts";

/** A worker that dies sooner than this after starting counts as a crash loop: back off. */
const RESTART_BACKOFF_MIN_MS = 100;
const RESTART_BACKOFF_MAX_MS = 10_000;

export interface WorkerSlot {
  id: number;
  handle: WorkerHandle | null;
  slab: SharedArrayBuffer;
  up: boolean;
  restarts: number;
  startedAt: number;
  backoffMs: number;
  lastExitReason: string | null;
  /** Agent sessions admitted on this worker, by session id (its tunnel-up/-down messages), with its latest counts (tunnel-report). */
  agents: Map<string, TunnelSessionInfo & { counts?: TunnelSessionCounts }>;
}

export interface SupervisorOptions {
  runtime: Runtime;
  log: Logger;
  config: Config;
  /** The file to re-read on reload; null = built-in default config. */
  configPath: string | null;
  flags: ConfigFlags;
  workerUrl: URL;
  /** Listening sockets passed by systemd or inetd (inherit.ts); adopted by the listener they match. */
  inherited?: PassedSocket[];
}

export class Supervisor {
  config: Config;
  readonly registry: StatsRegistry;
  readonly limits: Int32Array;
  readonly workers: WorkerSlot[] = [];
  readonly startedAt = wallMs();
  /** Listener name → bound address, once worker 0 is up. */
  readonly bound: Record<string, { hostname: string; port: number }> = {};
  /** Every tunnel service name an agent exposed since start: /status keeps listing it once its agent is gone. */
  readonly knownServices = new Set<string>();
  private slots: SlotAssignment;
  /** Tunnel max_sessions cells (one row per worker), made once the worker count is known. */
  private tunnelSessions: SharedArrayBuffer | null = null;
  private ports: Record<string, number> = {};
  private admin: HttpServer | null = null;
  private draining = false;
  private reloadSeq = 0;
  private readyResolve!: () => void;
  private readyReject!: (e: Error) => void;
  private readyPending = 0;
  private drainedPending = 0;
  private drainDone: (() => void) | null = null;
  /** [acme]: the one ACME client (supervisor/acme.ts); null without [acme]. */
  acme: AcmeService | null = null;
  /** Re-reads the config when an http listener's certificate file changes. */
  private certWatch: CertificateWatch | null = null;
  /** Worker threads ended on an operator's request (POST /workers/N/restart): their exit is no crash. */
  private readonly operatorRestarts = new WeakSet<WorkerHandle>();

  constructor(private readonly opts: SupervisorOptions) {
    this.config = opts.config;
    this.registry = new StatsRegistry(opts.config.listeners.length + opts.config.stats.maxRoutes, statsSizes(opts.config));
    this.limits = this.registry.createLimits();
    this.slots = this.assignSlots(opts.config);
  }

  get log(): Logger {
    return this.opts.log;
  }
  get runtime(): Runtime {
    return this.opts.runtime;
  }

  private assignSlots(config: Config): SlotAssignment {
    const map = this.registry.assign(config.listeners.map((l) => l.name), config.routes.map((r) => r.name), backendTargets(config));
    return {
      ...map,
      overflowListener: overflowSlot(this.registry.capacity, "listener"),
      overflowRoute: overflowSlot(this.registry.capacity, "route"),
    };
  }

  workerCount(): number {
    return this.config.workers > 0 ? this.config.workers : Math.max(1, this.runtime.cpuCount());
  }

  /** Spawn the workers; resolves when every worker is listening. */
  async start(): Promise<void> {
    // Socket activation: workers accept on the inherited sockets; a listener with port 0 takes the socket's port.
    for (const a of adoptPassedSockets(this.runtime, this.config, this.opts.inherited ?? [], this.log)) {
      if (a.port !== 0) this.ports[a.listener] = a.port;
    }
    if (this.config.acme !== null) {
      // EDGEMUX_ACME_CLOCK_OFFSET_MS (tests): the ACME clock runs ahead, so a renewal comes due now.
      const offset = Number(this.runtime.env("EDGEMUX_ACME_CLOCK_OFFSET_MS") ?? 0);
      const acme = new AcmeService(this.config.acme, this.config, this.log, (m) => {
        for (const w of this.workers) w.handle?.postMessage(m);
      }, Number.isFinite(offset) ? offset : 0);
      // Loads the account and stored certificates only: a CA that is down delays issuance, never the start.
      await acme.start();
      this.acme = acme;
    }
    this.certWatch = new CertificateWatch(() => this.config, (file) => {
      this.log.info("certificate file changed; reloading", { file });
      this.reload();
    });
    const n = this.workerCount();
    this.tunnelSessions = createSessionCells(n);
    for (let id = 0; id < n; id++) {
      this.workers.push({
        id,
        handle: null,
        slab: this.registry.createSlab(),
        up: false,
        restarts: 0,
        startedAt: 0,
        backoffMs: RESTART_BACKOFF_MIN_MS,
        lastExitReason: null,
        agents: new Map(),
      });
    }
    const ready = new Promise<void>((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    // Worker 0 first, so listeners with port 0 get a port the others can share.
    this.readyPending = n;
    this.spawn(this.workers[0]!);
    await ready;
  }

  private spawn(w: WorkerSlot): void {
    const handle = this.runtime.spawnWorker(this.opts.workerUrl, `edgemux-worker-${w.id}`);
    w.handle = handle;
    w.startedAt = wallMs();
    handle.onMessage((m) => this.onWorkerMessage(w, m as FromWorker));
    handle.onExit((reason) => this.onWorkerExit(w, handle, reason));
    const msg: ToWorker = {
      type: "start",
      workerId: w.id,
      config: forWorkers(this.config),
      slots: this.slots,
      slab: w.slab,
      limits: this.limits.buffer as SharedArrayBuffer,
      ports: this.ports,
      tunnelSessions: this.tunnelSessions ?? undefined,
    };
    handle.postMessage(msg);
    // Its [acme] certificates and pending challenges: after start, so the worker has its state to put them in.
    this.acme?.replay((m) => handle.postMessage(m));
    this.pairTunnelHubs(w);
  }

  /**
   * Gives worker `w` and every other live worker one MessageChannel between
   * their tunnel hubs (worker/peer_link.ts): an agent's session lives on one
   * worker, its clients may arrive on any. A restarted worker gets fresh pairs.
   */
  private pairTunnelHubs(w: WorkerSlot): void {
    for (const v of this.workers) {
      if (v === w || !v.handle || !w.handle) continue;
      const ch = new MessageChannel();
      w.handle.postMessage({ type: "peer", workerId: v.id, port: ch.port1 } satisfies ToWorker, [ch.port1 as unknown as ArrayBuffer]);
      v.handle.postMessage({ type: "peer", workerId: w.id, port: ch.port2 } satisfies ToWorker, [ch.port2 as unknown as ArrayBuffer]);
    }
  }

  private onWorkerMessage(w: WorkerSlot, m: FromWorker): void {
    switch (m.type) {
      case "ready": {
        w.up = true;
        if (w.id === 0 && Object.keys(this.bound).length === 0) {
          for (const [name, addr] of Object.entries(m.listeners)) {
            this.bound[name] = addr;
            this.ports[name] = addr.port;
          }
          for (const other of this.workers) if (other.id !== 0 && !other.handle) this.spawn(other);
        }
        if (this.readyPending > 0 && --this.readyPending === 0) this.readyResolve();
        if (w.restarts > 0) this.log.info("worker restarted", { worker: w.id, restarts: w.restarts });
        return;
      }
      case "start-failed": {
        const err = ProxyError.fromRecord(m.error);
        this.log.error("worker failed to start", { worker: w.id, error: err.code, reason: err.message });
        if (this.readyPending > 0) {
          this.readyPending = -1;
          this.readyReject(err);
        }
        return;
      }
      case "reloaded":
        this.log.debug("worker reloaded", { worker: w.id, seq: m.seq });
        return;
      case "reload-failed":
        this.log.error("worker refused reload", { worker: w.id, reason: m.error.message });
        return;
      case "tunnel-up":
        w.agents.set(m.session.id, m.session);
        for (const name of m.session.services) this.knownServices.add(name);
        return;
      case "tunnel-report":
        for (const r of m.sessions) {
          const s = w.agents.get(r.id);
          if (s === undefined) continue;
          w.agents.set(r.id, { ...s, services: r.services, counts: r.counts });
          for (const name of r.services) this.knownServices.add(name);
        }
        return;
      case "tunnel-down":
        w.agents.delete(m.id);
        return;
      case "drained":
        this.log.info("worker drained", { worker: w.id, closed_at_deadline: m.closedAtDeadline });
        w.handle?.terminate();
        if (--this.drainedPending === 0) this.drainDone?.();
        return;
    }
  }

  private onWorkerExit(w: WorkerSlot, handle: WorkerHandle, reason: string): void {
    if (w.handle !== handle) return; // an older incarnation
    w.up = false;
    w.handle = null;
    if (this.draining) return;
    if (this.readyPending > 0) {
      // Still starting: a worker that cannot even load (a missing entry file, a crash at bind) fails the start instead of restarting forever.
      this.readyPending = -1;
      this.readyReject(new ProxyError("INTERNAL", "internal", `worker ${w.id} exited before it was ready: ${reason}`));
      return;
    }
    const byOperator = this.operatorRestarts.has(handle);
    w.lastExitReason = byOperator ? "restarted by operator" : reason;
    if (byOperator) this.log.info("worker restarted by operator", { worker: w.id });
    else this.log.error("worker exited; restarting", { worker: w.id, reason });
    // Its connections died with it: give back their gauges and max_connections permits.
    this.registry.resetGauges(w.slab, this.limits);
    // And its tunnel sessions: their max_sessions counts, and the services peers routed to it.
    if (this.tunnelSessions) releaseWorkerSessions(this.tunnelSessions, w.id);
    w.agents.clear();
    for (const v of this.workers) v.handle?.postMessage({ type: "peer-gone", workerId: w.id } satisfies ToWorker);
    // A requested restart is not a crash loop: it neither waits out nor grows the back-off.
    const lived = wallMs() - w.startedAt;
    if (!byOperator) w.backoffMs = lived > 30_000 ? RESTART_BACKOFF_MIN_MS : Math.min(RESTART_BACKOFF_MAX_MS, w.backoffMs * 2);
    setTimeout(() => {
      if (this.draining || w.handle) return;
      w.restarts++;
      this.spawn(w);
    }, byOperator || lived > 30_000 ? RESTART_BACKOFF_MIN_MS : w.backoffMs);
  }

  /**
   * Terminate one worker (admin API, POST /workers/N/restart); the supervisor
   * replaces it as it would a crashed one, but logs it at info, without back-off.
   */
  restartWorker(id: number): boolean {
    const w = this.workers[id];
    if (!w?.handle) return false;
    this.operatorRestarts.add(w.handle);
    w.handle.terminate();
    return true;
  }

  /** Re-read the config (SIGHUP). An invalid config is refused and the old one stays. */
  reload(): { ok: boolean; error?: string } {
    let next: Config;
    try {
      next = this.opts.configPath ? loadConfigFile(this.opts.configPath, this.opts.flags) : loadDefaultConfig(this.opts.flags);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.log.error("reload refused: invalid config; the running config stays", { reason: message });
      return { ok: false, error: message };
    }
    const problems = reloadProblems(this.config, next);
    if (problems.length > 0) {
      const message = problems.join("; ");
      this.log.error("reload refused: needs a restart; the running config stays", { reason: message });
      return { ok: false, error: message };
    }
    this.config = next;
    this.acme?.reload(next);
    this.certWatch?.rescan();
    this.slots = this.assignSlots(next);
    this.log.configure(next.log.level, next.log.format);
    const seq = ++this.reloadSeq;
    for (const w of this.workers) w.handle?.postMessage({ type: "reload", config: forWorkers(next), slots: this.slots, seq } satisfies ToWorker);
    this.log.info("config reloaded", { seq, routes: next.routes.length });
    return { ok: true };
  }

  /** Stop accepting everywhere, let connections finish up to drain_timeout, then stop. */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.certWatch?.stop();
    void this.acme?.stop(); // no new orders; one in flight ends on its own bounds
    const timeoutMs = this.config.drainTimeoutMs;
    this.log.info("draining", { timeout_ms: timeoutMs });
    const live = this.workers.filter((w) => w.handle);
    this.drainedPending = live.length;
    const done = new Promise<void>((resolve) => {
      this.drainDone = resolve;
      if (live.length === 0) resolve();
    });
    for (const w of live) w.handle!.postMessage({ type: "drain", timeoutMs } satisfies ToWorker);
    // A worker that cannot answer (stuck) is terminated shortly after the deadline.
    const hardStop = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs + 2000));
    await Promise.race([done, hardStop]);
    for (const w of this.workers) w.handle?.terminate();
    await this.admin?.close();
  }

  setAdmin(server: HttpServer): void {
    this.admin = server;
  }

  addresses(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const l of this.config.listeners) {
      const b = this.bound[l.name];
      out[l.name] = l.address.kind === "unix" ? formatAddress(l.address) : b ? formatHostPort(b.hostname, b.port) : formatAddress(l.address);
    }
    return out;
  }

  get version(): string {
    return VERSION;
  }
}

/** Backend slots: room for twice the first config's route targets (reloads add more), at least 256; service slots: 256 per worker. */
function statsSizes(config: Config): { backends: number; services: number } {
  const targets = Object.values(backendTargets(config)).reduce((n, t) => n + t.length, 0);
  return { backends: Math.min(MAX_BACKEND_CAPACITY, Math.max(256, 2 * targets)), services: 256 };
}

/** Route name → its fixed targets as /status spells them (routes with a directory or a tunnel target have none). */
function backendTargets(config: Config): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const r of config.routes) if (r.directory === null && r.tunnel === undefined && r.targets.length > 0) out[r.name] = routeTargets(r);
  return out;
}

/** The config a worker gets: the admin API's tokens and TLS key stay with the supervisor, which alone serves it. */
function forWorkers(config: Config): Config {
  return { ...config, admin: { ...config.admin, tokens: [], tls: null } };
}
