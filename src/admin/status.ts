/**
 * Builds the /status document from what the supervisor has at hand: the
 * config in force, a stats snapshot and its own view of the workers. Pure:
 * the supervisor's AdminSource.status() can be `() => buildStatus({...})`.
 */

import { wallMs } from "../runtime/mod.ts";
import type { ListenerConfig, RouteConfig } from "../config/types.ts";
import { formatAddress } from "../config/mod.ts";
import { ABORT_CODES, type ErrorCode } from "../errors/mod.ts";
import { type BackendSnapshot, type CounterSet, type HistogramSnapshot, OVERFLOW_NAME, type SlotSnapshot, type StatsSnapshot } from "../stats/mod.ts";
import type {
  BackendStatus,
  ErrorCounts,
  ListenerStatus,
  RouteStatus,
  ServiceStatus,
  StatusJson,
  TunnelSessionStatus,
  TunnelsStatus,
  WorkerStatus,
} from "./types.ts";

/** /status lists at most this many tunnel sessions (the count is always whole). */
export const STATUS_MAX_TUNNEL_SESSIONS = 1000;

/** An agent session as a worker reported it: the /status record with the admission time as a number. */
export type TunnelSessionFact = Omit<TunnelSessionStatus, "since" | "roles" | "services" | "streams" | "active_streams" | "bytes_in" | "bytes_out"> & {
  roles: readonly string[];
  services: readonly string[];
  sinceMs: number;
  /** The worker's latest periodic counts for the session; absent before its first report. */
  counts?: TunnelSessionCounts;
};

/** A session's stream and byte counts, as its worker last reported them. */
export interface TunnelSessionCounts {
  streams: number;
  activeStreams: number;
  bytesIn: number;
  bytesOut: number;
}

/** What only the supervisor knows about a worker (the rest comes from its slab). */
export interface SupervisorWorker {
  id: number;
  threadId: number;
  up: boolean;
  restarts: number;
}

export interface StatusInput {
  version: string;
  runtime: string;
  pid: number;
  /** Wall-clock ms the process started. */
  startedMs: number;
  nowMs?: number;
  listeners: readonly ListenerConfig[];
  routes: readonly RouteConfig[];
  snapshot: StatsSnapshot;
  /** Indexed like the slabs given to StatsRegistry.snapshot. */
  workers: readonly SupervisorWorker[];
  /** Agent sessions open on the tunnel listeners. */
  tunnels?: readonly TunnelSessionFact[];
  /** Service names seen since start (announced by agents); listed even once offline. */
  knownServices?: Iterable<string>;
}

export function buildStatus(input: StatusInput): StatusJson {
  const nowMs = input.nowMs ?? wallMs();
  const snap = input.snapshot;
  const listenerStats = new Map(snap.listeners.filter((s) => !s.overflow).map((s) => [s.name, s]));
  const routeStats = new Map(snap.routes.filter((s) => !s.overflow).map((s) => [s.name, s]));

  const workers: WorkerStatus[] = input.workers.map((w) => {
    const slab = snap.workers[w.id];
    return {
      id: w.id,
      thread_id: w.threadId,
      up: w.up,
      restarts: w.restarts,
      heartbeat_age_ms: slab?.heartbeatAgeMs ?? null,
      active_connections: slab?.activeConnections ?? 0,
    };
  });

  const listeners: ListenerStatus[] = input.listeners.map((l) => {
    const s = listenerStats.get(l.name);
    return {
      name: l.name,
      kind: l.kind,
      address: formatAddress(l.address),
      max_connections: l.maxConnections,
      accepted: s?.accepted ?? 0,
      active: s?.active ?? 0,
      closed: s?.closed ?? 0,
      refused: s?.refused ?? 0,
      bytes_in: s?.bytesIn ?? 0,
      bytes_out: s?.bytesOut ?? 0,
      ...errorFields(s),
    };
  });

  const routes: RouteStatus[] = input.routes.map((r) => routeStatus(r.name, r.match, routeTargets(r), routeStats.get(r.name)));
  // Routes beyond the stats capacity count together under "_other" (their own entries show 0).
  const other = snap.routes.find((s) => s.overflow);
  if (other) routes.push(routeStatus(OVERFLOW_NAME, "", [], other));

  const t = snap.totals;
  return {
    version: input.version,
    runtime: input.runtime,
    uptime_seconds: Math.max(0, Math.floor((nowMs - input.startedMs) / 1000)),
    pid: input.pid,
    started_at: new Date(input.startedMs).toISOString(),
    workers,
    listeners,
    routes,
    totals: {
      accepted: t.accepted,
      active: t.active,
      closed: t.closed,
      refused: t.refused,
      bytes_in: t.bytesIn,
      bytes_out: t.bytesOut,
      ...errorFields(t),
    },
    tunnels: tunnelsStatus(input.tunnels ?? []),
    backends: backendsStatus(snap.backends),
    services: servicesStatus(input),
  };
}

/** The current routes' targets (and the "_other" overflow entry when used), in slot order. */
function backendsStatus(backends: readonly BackendSnapshot[]): BackendStatus[] {
  return backends.filter((b) => b.current || b.overflow).map((b) => ({
    route: b.route,
    target: b.target,
    state: b.state,
    active: b.active,
    connections: b.connections,
    failures: b.failures,
    connect_p50_ms: quantileMs(b.connect, 0.5),
    connect_p99_ms: quantileMs(b.connect, 0.99),
    last_error: b.lastError !== null && b.lastFailMs > 0 ? { code: b.lastError, at: new Date(b.lastFailMs).toISOString() } : null,
  }));
}

/**
 * A quantile of a histogram in milliseconds, interpolated linearly inside its
 * bucket as Prometheus' histogram_quantile does (the first bucket from 0; a
 * quantile in the +Inf bucket is the largest bound). Null with no observations.
 */
export function quantileMs(h: HistogramSnapshot, q: number): number | null {
  if (h.count === 0) return null;
  const rank = q * h.count;
  for (let i = 0; i < h.bounds.length; i++) {
    if (h.buckets[i]! >= rank) {
      const lo = i === 0 ? 0 : h.bounds[i - 1]!;
      const below = i === 0 ? 0 : h.buckets[i - 1]!;
      const inBucket = h.buckets[i]! - below;
      const s = inBucket > 0 ? lo + (h.bounds[i]! - lo) * ((rank - below) / inBucket) : h.bounds[i]!;
      return Math.round(s * 1e6) / 1e3;
    }
  }
  return h.bounds.length > 0 ? h.bounds[h.bounds.length - 1]! * 1000 : null;
}

/**
 * Every service this process knows: named by a current route (`tunnel:NAME`),
 * exposed by an agent since start, or counted by a worker. Online when a
 * connected agent exposes it now.
 */
function servicesStatus(input: StatusInput): ServiceStatus[] {
  const agents = new Map<string, ServiceStatus["agents"]>();
  for (const f of input.tunnels ?? []) {
    for (const name of f.services) {
      let list = agents.get(name);
      if (list === undefined) agents.set(name, (list = []));
      list.push({ session_id: f.id, agent: f.agent, worker: f.worker });
    }
  }
  const counted = new Map(input.snapshot.services.map((s) => [s.name, s]));
  const names = new Set<string>();
  for (const r of input.routes) if (r.tunnel !== undefined) names.add(r.tunnel);
  for (const n of input.knownServices ?? []) names.add(n);
  for (const n of agents.keys()) names.add(n);
  for (const s of input.snapshot.services) if (!s.overflow) names.add(s.name);
  const out: ServiceStatus[] = [...names].sort().map((name) => {
    const s = counted.get(name);
    const a = agents.get(name) ?? [];
    return {
      name,
      online: a.length > 0,
      agents: a,
      streams: s?.streams ?? 0,
      active_streams: s?.active ?? 0,
      bytes_in: s?.bytesIn ?? 0,
      bytes_out: s?.bytesOut ?? 0,
      open_failures: s?.failures ?? 0,
    };
  });
  // Streams to names past the workers' service tables, and opens to names no agent ever exposed.
  const other = input.snapshot.services.find((s) => s.overflow);
  if (other) {
    out.push({
      name: OVERFLOW_NAME,
      online: false,
      agents: [],
      streams: other.streams,
      active_streams: other.active,
      bytes_in: other.bytesIn,
      bytes_out: other.bytesOut,
      open_failures: other.failures,
    });
  }
  return out;
}

function tunnelsStatus(facts: readonly TunnelSessionFact[]): TunnelsStatus {
  const list: TunnelSessionStatus[] = [...facts]
    .sort((a, b) => a.sinceMs - b.sinceMs || a.id.localeCompare(b.id))
    .slice(0, STATUS_MAX_TUNNEL_SESSIONS)
    .map((f) => ({
      id: f.id,
      listener: f.listener,
      worker: f.worker,
      agent: f.agent,
      token: f.token,
      peer: f.peer,
      transport: f.transport,
      roles: [...f.roles],
      services: [...f.services],
      since: new Date(f.sinceMs).toISOString(),
      streams: f.counts?.streams ?? 0,
      active_streams: f.counts?.activeStreams ?? 0,
      bytes_in: f.counts?.bytesIn ?? 0,
      bytes_out: f.counts?.bytesOut ?? 0,
    }));
  return { sessions: facts.length, list };
}

function routeStatus(name: string, match: string, targets: string[], s: SlotSnapshot | undefined): RouteStatus {
  return {
    name,
    match,
    targets,
    connections: s?.accepted ?? 0,
    active: s?.active ?? 0,
    bytes_in: s?.bytesIn ?? 0,
    bytes_out: s?.bytesOut ?? 0,
    ...errorFields(s),
  };
}

/**
 * A slot's error counts split as /metrics splits them: `errors` (codes, summing
 * to `errors_total`) and `aborts` (peer resets, ABORT_CODES). Non-zero codes only.
 */
function errorFields(s: CounterSet | undefined): { errors_total: number; errors: ErrorCounts; aborts: ErrorCounts } {
  const errors: ErrorCounts = {};
  const aborts: ErrorCounts = {};
  for (const [code, n] of Object.entries(s?.errors ?? {}) as [ErrorCode, number][]) {
    if (n > 0) (ABORT_CODES.has(code) ? aborts : errors)[code] = n;
  }
  return { errors_total: s?.errorsTotal ?? 0, errors, aborts };
}

/** A route's targets as the config file spells them: "host:port", "hbone://host:port", "tunnel:NAME" or "dir:/path". */
export function routeTargets(r: RouteConfig): string[] {
  if (r.directory !== null) return [`dir:${r.directory}`];
  if (r.tunnel !== undefined) return [`tunnel:${r.tunnel}`];
  if (r.hbone !== undefined) return r.targets.map((a) => `hbone://${formatAddress(a)}`);
  return r.targets.map(formatAddress);
}

