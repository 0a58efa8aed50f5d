/**
 * The cluster registry: which agent sessions on which edge hold which
 * services, each live edge's edge-to-edge address, and token session counts
 * summed over the cluster, kept in Redis (an existing store; snocat keeps its
 * tunnel registry there too). No stream byte goes through it.
 *
 * Key layout, P = `edgemux:{<cluster name>}` (the braces are a Redis Cluster
 * hash tag: one cluster's keys share a slot, so its scripts may touch many):
 *
 *   P:edge:<edge_id>        hash {instance, advertise, started, version}   TTL = ttl
 *   P:edge:<edge_id>:sess   hash session_id → {"agent", "services", "since"} TTL = ttl
 *   P:edge:<edge_id>:svc    hash service → "session_id session_id ..."      TTL = ttl
 *   P:edge:<edge_id>:tok    hash token → sessions held on this edge          TTL = ttl
 *   P:edges                 set of edge_ids                  (index, no TTL)
 *   P:svc:<service>         set of edge_ids holding service  (index, no TTL)
 *
 * Everything an edge owns lives in its four `P:edge:<id>*` keys, renewed
 * together by one heartbeat script: when an edge dies they expire within
 * `ttl` on their own — its services, its sessions and its share of every
 * token's count at once (a Redis hash field cannot expire, a key can). The
 * two index sets only point at edges; a reader that finds a member whose
 * edge key is gone removes it (scripts.ts WHO_HOLDS, LIVE_EDGES, ACQUIRE).
 *
 * Write load: per agent session, one script call when it comes up, one per
 * change of its services, one when it ends, and one each to take and give
 * back a token session: nothing at steady state, whatever the number of
 * agents. Per edge, one heartbeat script (four PEXPIREs) per `heartbeat`:
 * 12 a minute at the default 5s. 10,000 agents that reconnect once an hour
 * are about 4 calls/s; a lookup (`whoHolds`) is one read script.
 *
 * This edge's own state is the truth, Redis a copy of it: the registry keeps
 * its sessions and token counts in memory and writes each change through;
 * when a write fails, Redis restarts empty, or the connection comes back, it
 * writes the whole state again in one REGISTER script. While Redis is down
 * the edge's own agents keep working (writes are skipped; token sessions are
 * counted against this edge alone) and cluster lookups fail at once with
 * ClusterUnavailableError.
 */
import { connectRedis, formatRedisTarget, type RedisConnection, type RedisConnectOptions, type RedisReply, RedisReplyError, type RedisTarget, wallMs } from "../runtime/mod.ts";
import type { ClusterConfig } from "../config/mod.ts";
import { VERSION } from "../version.ts";
import { ClusterUnavailableError } from "./errors.ts";
import { ACQUIRE, HEARTBEAT, LIVE_EDGES, REGISTER, RELEASE, type Script, SCRIPTS, SESSION, UNREGISTER, WHO_HOLDS } from "./scripts.ts";

export interface RegistryLog {
  info(msg: string, fields?: Record<string, string | number | boolean>): void;
  warn(msg: string, fields?: Record<string, string | number | boolean>): void;
}

export interface ClusterRegistryOptions {
  redis: RedisTarget;
  /** `rediss://`: CA bundle (PEM) for Redis's certificate; absent = the system's. */
  redisCa?: string;
  /** The cluster's name: every key is under `edgemux:{name}`. */
  cluster: string;
  edgeId: string;
  /** host:port other edges dial for edge-to-edge streams. */
  advertise: string;
  heartbeatMs: number;
  /** Lifetime of this edge's keys without a heartbeat; > 2 × heartbeatMs. */
  ttlMs: number;
  /** A command (or a connect) not answered within this fails, and the connection is replaced. Default: heartbeat, 500 ms..2 s. */
  commandTimeoutMs?: number;
  version?: string;
  log?: RegistryLog;
  /** Makes a Redis connection; default: the runtime's (runtime/redis_connect.ts). */
  connect?: (opts: RedisConnectOptions) => Promise<RedisConnection>;
}

/** One agent session that holds a service, and where. */
export interface Holder {
  edgeId: string;
  /** The holding edge's edge-to-edge address. */
  advertise: string;
  sessionId: string;
}

export interface EdgeInfo {
  edgeId: string;
  advertise: string;
  /** Wall-clock ms the edge started. */
  started: number;
  version: string;
  /** Agent sessions it holds. */
  sessions: number;
}

/**
 * idle: not started. connecting: (re)connecting and registering. ready:
 * registered. down: Redis unreachable, retrying. conflict: another live
 * process holds this edge_id (retried every heartbeat). closed.
 */
export type RegistryState = "idle" | "connecting" | "ready" | "down" | "conflict" | "closed";

export interface RegistryStats {
  state: RegistryState;
  /** Failed connects, lost connections, timed-out and failed commands (`/metrics`). */
  redisErrors: number;
  /** Connections made after the first. */
  reconnects: number;
  /** Full registrations written (the first, and after every reconnect or loss). */
  registrations: number;
  scriptCalls: number;
  lastError: string | null;
  /** Sessions this edge holds (in memory). */
  sessions: number;
}

interface LocalSession {
  agent: string;
  services: string[];
  since: number;
}

/** Reconnect delays start here and double up to the heartbeat. */
const RECONNECT_FIRST_MS = 50;

export class ClusterRegistry {
  readonly prefix: string;
  private readonly instance = crypto.randomUUID();
  private readonly started = wallMs();
  private readonly sessions = new Map<string, LocalSession>();
  private readonly tokens = new Map<string, number>();
  private readonly connectFn: (opts: RedisConnectOptions) => Promise<RedisConnection>;
  private readonly timeoutMs: number;
  private conn: RedisConnection | null = null;
  private stateNow: RegistryState = "idle";
  /** Redis may differ from the local state: the next heartbeat writes it all again. */
  private dirty = false;
  private heartbeatBusy = false;
  private hbTimer: ReturnType<typeof setInterval> | null = null;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private backoff = 0;
  private connects = 0;
  private waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private lastErr: string | null = null;
  private errors = 0;
  private registrations = 0;
  private scriptCalls = 0;

  constructor(private readonly opts: ClusterRegistryOptions) {
    if (!(opts.ttlMs > 2 * opts.heartbeatMs)) throw new RangeError(`cluster ttl (${opts.ttlMs} ms) must be more than twice the heartbeat (${opts.heartbeatMs} ms)`);
    this.prefix = `edgemux:{${opts.cluster}}`;
    this.connectFn = opts.connect ?? connectRedis;
    this.timeoutMs = opts.commandTimeoutMs ?? Math.min(2_000, Math.max(500, opts.heartbeatMs));
  }

  get state(): RegistryState {
    return this.stateNow;
  }

  get edgeId(): string {
    return this.opts.edgeId;
  }

  // ---------------------------------------------------------------- edge

  /**
   * Starts connecting, registering and heartbeating; resolves once this edge
   * is registered (which, while Redis is down, waits for it). The edge serves
   * its own agents meanwhile: callers need not wait.
   */
  registerEdge(): Promise<void> {
    if (this.stateNow === "closed") return Promise.reject(new Error("the cluster registry is closed"));
    if (this.stateNow === "idle") {
      this.stateNow = "connecting";
      this.hbTimer = setInterval(() => void this.heartbeat(), this.opts.heartbeatMs);
      void this.connectNow();
    }
    if (this.stateNow === "ready") return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /**
   * Renews this edge's keys (the timer calls it every `heartbeat`); writes
   * everything again when they were gone or a write failed; retries a
   * registration refused for a conflict.
   */
  async heartbeat(): Promise<void> {
    const conn = this.conn;
    if (conn === null || this.heartbeatBusy || this.stateNow === "connecting") return;
    this.heartbeatBusy = true;
    try {
      if (this.stateNow !== "ready" || this.dirty) {
        await this.register(conn);
        return;
      }
      const r = await this.evalScript(conn, HEARTBEAT, this.edgeArgs([]));
      if (r === 0) {
        this.opts.log?.warn("cluster registration was gone from Redis (restarted, or the keys expired): registering again", { edge: this.opts.edgeId });
        await this.register(conn);
      } else if (r === -1) this.conflict();
    } catch (err) {
      this.commandFailed(conn, "heartbeat", err);
    } finally {
      this.heartbeatBusy = false;
    }
  }

  /** Removes this edge from the registry (a clean shutdown), then closes. */
  async unregisterEdge(): Promise<void> {
    const conn = this.conn;
    if (conn !== null && this.stateNow === "ready") {
      try {
        await this.evalScript(conn, UNREGISTER, this.edgeArgs([]));
      } catch (err) {
        this.commandFailed(conn, "unregister", err);
      }
    }
    this.close();
  }

  /** Stops heartbeats and closes the connection, leaving this edge's keys to expire within ttl (as a crash would). */
  close(): void {
    if (this.stateNow === "closed") return;
    this.stateNow = "closed";
    if (this.hbTimer !== null) clearInterval(this.hbTimer);
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.hbTimer = this.reconnectTimer = null;
    const conn = this.conn;
    this.conn = null;
    conn?.close();
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w.reject(new Error("the cluster registry is closed"));
  }

  // ---------------------------------------------------------------- sessions

  /** An agent session on this edge now holds `services`. */
  sessionUp(session: { id: string; agent: string }, services: readonly string[]): void {
    const old = this.sessions.get(session.id);
    const rec: LocalSession = { agent: session.agent, services: [...services], since: old?.since ?? wallMs() };
    this.sessions.set(session.id, rec);
    this.writeSession(session.id, rec, old?.services ?? []);
  }

  /** A session's services changed (an agent added or dropped one). */
  servicesChanged(sessionId: string, services: readonly string[]): void {
    const old = this.sessions.get(sessionId);
    if (old === undefined) return;
    const rec: LocalSession = { ...old, services: [...services] };
    this.sessions.set(sessionId, rec);
    this.writeSession(sessionId, rec, old.services);
  }

  sessionDown(sessionId: string): void {
    const old = this.sessions.get(sessionId);
    if (old === undefined) return;
    this.sessions.delete(sessionId);
    this.writeSession(sessionId, null, old.services);
  }

  private writeSession(id: string, rec: LocalSession | null, oldServices: readonly string[]): void {
    // Not connected: the next connection registers the whole state. Connected (even while
    // registering): the write goes after whatever was sent before on the same pipeline.
    const conn = this.conn;
    if (conn === null) return;
    const json = rec === null ? "" : JSON.stringify({ agent: rec.agent, services: rec.services, since: rec.since });
    const args = this.edgeArgs([id, json, rec === null ? "" : rec.services.join(" "), oldServices.join(" ")]);
    this.evalScript(conn, SESSION, args).then(
      (r) => this.checkOwner(r),
      (err) => this.commandFailed(conn, "session", err),
    );
  }

  // ---------------------------------------------------------------- lookups

  /**
   * The sessions that hold `service`, on every live edge (this one
   * included). Throws ClusterUnavailableError at once when Redis cannot be asked.
   */
  async whoHolds(service: string): Promise<Holder[]> {
    const r = await this.read(WHO_HOLDS, [this.prefix, service], `look up service '${service}'`);
    const out: Holder[] = [];
    const a = Array.isArray(r) ? r : [];
    for (let i = 0; i + 2 < a.length; i += 3) {
      const edgeId = String(a[i]);
      const advertise = String(a[i + 1]);
      for (const sessionId of String(a[i + 2]).split(" ")) if (sessionId !== "") out.push({ edgeId, advertise, sessionId });
    }
    return out;
  }

  /** Every live edge (this one included). Throws ClusterUnavailableError at once when Redis cannot be asked. */
  async liveEdges(): Promise<EdgeInfo[]> {
    const r = await this.read(LIVE_EDGES, [this.prefix], "list the cluster's edges");
    const out: EdgeInfo[] = [];
    const a = Array.isArray(r) ? r : [];
    for (let i = 0; i + 4 < a.length; i += 5) {
      out.push({ edgeId: String(a[i]), advertise: String(a[i + 1]), started: Number(a[i + 2]) || 0, version: String(a[i + 3]), sessions: Number(a[i + 4]) });
    }
    return out.sort((x, y) => (x.edgeId < y.edgeId ? -1 : x.edgeId > y.edgeId ? 1 : 0));
  }

  private async read(s: Script, argv: (string | number)[], what: string): Promise<RedisReply> {
    const conn = this.conn;
    if (conn === null || this.stateNow !== "ready") throw this.unavailable(what);
    try {
      return await this.evalScript(conn, s, argv);
    } catch (err) {
      this.commandFailed(conn, s.name, err);
      throw this.unavailable(what, err);
    }
  }

  private unavailable(what: string, cause?: unknown): ClusterUnavailableError {
    const where = formatRedisTarget(this.opts.redis);
    const why = this.stateNow === "conflict"
      ? `edge_id '${this.opts.edgeId}' is held by another live edge`
      : cause !== undefined
      ? `Redis at ${where} failed: ${(cause as Error).message}`
      : this.stateNow === "ready"
      ? `Redis at ${where} is not connected`
      : `Redis at ${where} is ${this.stateNow === "connecting" ? "not connected yet" : "unreachable"}${this.lastErr !== null ? ` (${this.lastErr})` : ""}`;
    return new ClusterUnavailableError(`Cannot ${what} in cluster '${this.opts.cluster}': ${why}; agents on this edge keep serving its own clients`, { cause });
  }

  // ---------------------------------------------------------------- token sessions

  /**
   * Takes one session of `token` if fewer than `max` (0 = no limit) are held
   * across the live edges. While Redis is unreachable, counts against this
   * edge's own sessions only (the edge keeps admitting its agents); those are
   * written to Redis when it returns.
   */
  async acquireSession(token: string, max: number): Promise<boolean> {
    const conn = this.conn;
    if (conn !== null && this.stateNow === "ready") {
      try {
        const r = await this.evalScript(conn, ACQUIRE, this.edgeArgs([token, max]));
        if (r === 1) {
          this.tokens.set(token, (this.tokens.get(token) ?? 0) + 1);
          return true;
        }
        if (r === 2) return false;
        this.checkOwner(r);
      } catch (err) {
        // It may have been counted before the failure: commandFailed marks the state to be written again in full.
        this.commandFailed(conn, "acquire", err);
      }
    }
    const held = this.tokens.get(token) ?? 0;
    if (max > 0 && held >= max) return false;
    this.tokens.set(token, held + 1);
    return true;
  }

  /** Gives back a session `acquireSession` took. */
  releaseSession(token: string): void {
    const held = this.tokens.get(token) ?? 0;
    if (held <= 0) return;
    if (held === 1) this.tokens.delete(token);
    else this.tokens.set(token, held - 1);
    const conn = this.conn;
    if (conn === null) return;
    this.evalScript(conn, RELEASE, this.edgeArgs([token])).then(
      (r) => this.checkOwner(r),
      (err) => this.commandFailed(conn, "release", err),
    );
  }

  stats(): RegistryStats {
    return {
      state: this.stateNow,
      redisErrors: this.errors,
      reconnects: Math.max(0, this.connects - 1),
      registrations: this.registrations,
      scriptCalls: this.scriptCalls,
      lastError: this.lastErr,
      sessions: this.sessions.size,
    };
  }

  // ---------------------------------------------------------------- connection

  private async connectNow(): Promise<void> {
    this.reconnectTimer = null;
    if (this.stateNow === "closed") return;
    if (this.stateNow !== "conflict") this.stateNow = "connecting";
    let conn: RedisConnection;
    const pending = this.connectFn({ target: this.opts.redis, timeoutMs: this.timeoutMs, ...(this.opts.redisCa !== undefined ? { ca: this.opts.redisCa } : {}) });
    try {
      conn = await this.withTimeout(pending, null);
    } catch (err) {
      pending.then((late) => late.close(), () => {}); // one that connects after the timeout is not kept
      this.failed("connect", err);
      this.retryLater();
      return;
    }
    if ((this.stateNow as RegistryState) === "closed") {
      conn.close();
      return;
    }
    this.connects++;
    this.conn = conn;
    conn.onClose((err) => this.lost(conn, err));
    try {
      // All loads go out at once, before any script call can be queued behind them.
      const shas = await Promise.all(SCRIPTS.map((s) => this.withTimeout(conn.send("SCRIPT", ["LOAD", s.body]), conn)));
      SCRIPTS.forEach((s, i) => {
        if (shas[i] !== s.sha) throw new Error(`SCRIPT LOAD of ${s.name} answered ${String(shas[i])}, expected ${s.sha}`);
      });
      await this.register(conn);
      this.backoff = 0;
    } catch (err) {
      this.commandFailed(conn, "register", err);
      // A reply error keeps the connection: the heartbeat registers again.
      if (this.conn === conn && this.stateNow === "connecting") this.stateNow = "down";
    }
  }

  /** Writes this edge's whole state (REGISTER). */
  private async register(conn: RedisConnection): Promise<void> {
    const s: [string, string, string][] = [];
    for (const [id, rec] of this.sessions) s.push([id, JSON.stringify({ agent: rec.agent, services: rec.services, since: rec.since }), rec.services.join(" ")]);
    const t = [...this.tokens].filter(([, n]) => n > 0);
    const state = JSON.stringify({ s, t });
    const r = await this.evalScript(conn, REGISTER, this.edgeArgs([this.opts.advertise, this.started, this.opts.version ?? VERSION, state]));
    if (conn !== this.conn || this.stateNow === "closed") return;
    if (r === -1) {
      this.conflict();
      return;
    }
    this.dirty = false;
    this.registrations++;
    const was = this.stateNow;
    this.stateNow = "ready";
    if (was !== "ready") {
      this.opts.log?.info("cluster edge registered", { cluster: this.opts.cluster, edge: this.opts.edgeId, redis: formatRedisTarget(this.opts.redis), sessions: this.sessions.size });
    }
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w.resolve();
  }

  private conflict(): void {
    if (this.stateNow !== "conflict") {
      this.opts.log?.warn("cluster edge_id is held by another live edge: not registered; retrying every heartbeat", { cluster: this.opts.cluster, edge: this.opts.edgeId });
    }
    this.stateNow = "conflict";
  }

  /** A script's answer about this edge's registration: 0 = gone (write it all again), -1 = another instance holds the id. */
  private checkOwner(r: RedisReply): void {
    if (r === 0) this.dirty = true;
    else if (r === -1) this.conflict();
  }

  private edgeArgs(extra: (string | number)[]): (string | number)[] {
    return [this.prefix, this.opts.edgeId, this.instance, this.opts.ttlMs, ...extra];
  }

  /** EVALSHA, falling back to EVAL when Redis lost the script (SCRIPT FLUSH): order may then differ, so all is written again. */
  private async evalScript(conn: RedisConnection, s: Script, argv: (string | number)[]): Promise<RedisReply> {
    this.scriptCalls++;
    try {
      return await this.withTimeout(conn.send("EVALSHA", [s.sha, 0, ...argv]), conn);
    } catch (err) {
      if (!(err instanceof RedisReplyError) || err.prefix !== "NOSCRIPT") throw err;
      this.dirty = true;
      return await this.withTimeout(conn.send("EVAL", [s.body, 0, ...argv]), conn);
    }
  }

  /** Rejects after the command timeout; a connection that timed out is replaced (its replies can no longer be trusted to be in step). */
  private withTimeout<T>(p: Promise<T>, conn: RedisConnection | null): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`Redis did not answer within ${this.timeoutMs} ms`));
        if (conn !== null) this.drop(conn);
      }, this.timeoutMs);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }

  /** A command failed: counted; a reply error keeps the connection (and marks the state for rewriting), anything else replaces it. */
  private commandFailed(conn: RedisConnection, what: string, err: unknown): void {
    this.failed(what, err);
    this.dirty = true;
    if (!(err instanceof RedisReplyError)) this.drop(conn);
  }

  private failed(what: string, err: unknown): void {
    this.errors++;
    const msg = `${what}: ${(err as Error)?.message ?? String(err)}`;
    if (this.lastErr === null || this.stateNow === "ready") this.opts.log?.warn("cluster registry: Redis failed", { edge: this.opts.edgeId, error: msg });
    this.lastErr = msg;
  }

  private drop(conn: RedisConnection): void {
    if (conn !== this.conn) return;
    this.conn = null;
    conn.close();
    this.down();
  }

  private lost(conn: RedisConnection, err: Error): void {
    if (conn !== this.conn) return;
    this.conn = null;
    this.failed("connection lost", err);
    this.down();
  }

  private down(): void {
    if (this.stateNow === "closed") return;
    if (this.stateNow === "ready") this.opts.log?.warn("cluster registry: Redis unreachable; local agents keep serving, cluster lookups fail until it returns", { edge: this.opts.edgeId });
    if (this.stateNow !== "conflict") this.stateNow = "down";
    this.retryLater();
  }

  private retryLater(): void {
    if (this.stateNow === "closed" || this.reconnectTimer !== null || this.conn !== null) return;
    if (this.stateNow !== "conflict") this.stateNow = "down";
    const delay = Math.min(this.opts.heartbeatMs, RECONNECT_FIRST_MS * 2 ** this.backoff);
    this.backoff = Math.min(this.backoff + 1, 20);
    this.reconnectTimer = setTimeout(() => void this.connectNow(), delay);
  }
}

/** The registry's options for a validated `[cluster]` section. */
export function registryOptions(c: ClusterConfig, log?: RegistryLog): ClusterRegistryOptions {
  const host = c.advertise.hostname.includes(":") ? `[${c.advertise.hostname}]` : c.advertise.hostname;
  return {
    redis: c.redis,
    ...(c.redisCa !== null ? { redisCa: c.redisCa } : {}),
    cluster: c.name,
    edgeId: c.edgeId,
    advertise: `${host}:${c.advertise.port}`,
    heartbeatMs: c.heartbeatMs,
    ttlMs: c.ttlMs,
    ...(log !== undefined ? { log } : {}),
  };
}
