/**
 * The admin API's contract with the supervisor. The supervisor implements
 * AdminSource; the admin app only calls it and never imports the data plane.
 * Everything here is plain JSON-able data; the /status keys are snake_case,
 * like the config file and the log fields.
 */

import type { ErrorCode } from "../errors/mod.ts";

export interface WorkerStatus {
  id: number;
  /** The worker thread's id as the runtime reports it. */
  thread_id: number;
  /** The thread is running (the supervisor saw no exit since it started). */
  up: boolean;
  /** Times this worker slot was restarted after its thread ended. */
  restarts: number;
  /** Since the worker's last heartbeat; null before its first. */
  heartbeat_age_ms: number | null;
  active_connections: number;
}

/** Non-zero counts by error code; codes never seen are left out. */
export type ErrorCounts = Partial<Record<ErrorCode, number>>;

export interface ListenerStatus {
  name: string;
  kind: string;
  /** "host:port", "[v6]:port" or "unix:/path". */
  address: string;
  /** Open-connection limit across workers; 0 = unlimited. */
  max_connections: number;
  accepted: number;
  active: number;
  closed: number;
  refused: number;
  bytes_in: number;
  bytes_out: number;
  /** All error codes together (the sum of `errors`). */
  errors_total: number;
  /** Errors by code, like `edgemux_listener_errors_total{code}`. */
  errors: ErrorCounts;
  /** Peer resets by side (DOWNSTREAM_RESET, UPSTREAM_RESET): not errors, like `edgemux_listener_aborts_total{code}`. */
  aborts: ErrorCounts;
}

export interface RouteStatus {
  name: string;
  /** Hostname, "*.suffix" or "*"; "" for the "_other" overflow entry. */
  match: string;
  /** Backend addresses, formatted like ListenerStatus.address; directory routes show "dir:/path". */
  targets: string[];
  /** Connections routed here since start. */
  connections: number;
  active: number;
  bytes_in: number;
  bytes_out: number;
  /** All error codes together (the sum of `errors`). */
  errors_total: number;
  /** Errors after the route was chosen, by code. */
  errors: ErrorCounts;
  /** Peer resets by side. */
  aborts: ErrorCounts;
}

export interface TotalsStatus {
  accepted: number;
  active: number;
  closed: number;
  refused: number;
  bytes_in: number;
  bytes_out: number;
  errors_total: number;
  /** Every listener's errors by code. */
  errors: ErrorCounts;
  aborts: ErrorCounts;
}

/** An agent session held by a tunnel listener. */
export interface TunnelSessionStatus {
  id: string;
  listener: string;
  worker: number;
  /** The name the agent gave. */
  agent: string;
  /** The [[tokens]] entry that admitted it. */
  token: string;
  /** The agent's address as the edge sees it, "ip:port". */
  peer: string;
  transport: "smux" | "websocket";
  roles: string[];
  services: string[];
  /** ISO 8601 time the session was admitted. */
  since: string;
  /** Streams opened on the session, both ways (to its services and from it as a source), as of the worker's last report. */
  streams: number;
  /** Streams open on it now (as of the worker's last report, about every second). */
  active_streams: number;
  /** Bytes the edge received from the agent / sent to it on this session (mux framing included). */
  bytes_in: number;
  bytes_out: number;
}

/** One target of a route with fixed targets (host:port, unix:/path, hbone://host:port). */
export interface BackendStatus {
  route: string;
  /** Spelled like RouteStatus.targets. */
  target: string;
  /**
   * up: the latest connect to it (on any worker) succeeded; cooling_down: it
   * failed and is skipped by the balancer for now; failing: it failed and its
   * cool-down is over (the next connection tries it again); unknown: never tried.
   */
  state: "up" | "failing" | "cooling_down" | "unknown";
  /** Connections to it open now. */
  active: number;
  /** Connections it accepted since start. */
  connections: number;
  /** Failed connects since start. */
  failures: number;
  /** Estimated from the connect histogram (edgemux_backend_connect_seconds); null before the first connection. */
  connect_p50_ms: number | null;
  connect_p99_ms: number | null;
  /** The latest failed connect: its code and ISO 8601 time; null before any. */
  last_error: { code: string; at: string } | null;
}

/** A tunnel service: named by a route (`tunnel:NAME`) or exposed by an agent at some point since start. */
export interface ServiceStatus {
  name: string;
  /** An agent exposing it is connected now. */
  online: boolean;
  /** The agent sessions exposing it now. */
  agents: { session_id: string; agent: string; worker: number }[];
  /** Streams opened to it since start (the agent answered ok). */
  streams: number;
  /** Streams to it open now. */
  active_streams: number;
  /** Client → service and service → client bytes of its ended streams. */
  bytes_in: number;
  bytes_out: number;
  /** Streams to it that could not be opened (no agent, the agent refused, no answer). */
  open_failures: number;
}

export interface TunnelsStatus {
  /** Agent sessions open now, on every worker. */
  sessions: number;
  /** The sessions, oldest first; at most STATUS_MAX_TUNNEL_SESSIONS of them (see `sessions` for the count). */
  list: TunnelSessionStatus[];
}

export interface StatusJson {
  version: string;
  /** e.g. "bun 1.4.5". */
  runtime: string;
  uptime_seconds: number;
  pid: number;
  /** ISO 8601 time the process started. */
  started_at: string;
  workers: WorkerStatus[];
  listeners: ListenerStatus[];
  routes: RouteStatus[];
  totals: TotalsStatus;
  tunnels: TunnelsStatus;
  /** Every target of the current routes with fixed targets, route by route. */
  backends: BackendStatus[];
  /** Tunnel services by name. */
  services: ServiceStatus[];
}

export interface ReloadResult {
  ok: boolean;
  /** What was wrong with the new config; the old one stays in force. */
  error?: string;
}

/** What the supervisor gives the admin app. Every call must be cheap: no calls into workers. */
export interface AdminSource {
  status(): StatusJson;
  /** Prometheus text exposition (stats/renderPrometheus). */
  metrics(): string;
  workers(): WorkerStatus[];
  /** Terminate worker `id` and let the supervisor replace it; false when there is no such worker. */
  restartWorker?(id: number): boolean;
  /** Same as SIGHUP: reload routes and tokens from the config file. */
  reload?(): ReloadResult | Promise<ReloadResult>;
}
