/**
 * The admin API's contract with the supervisor. The supervisor implements
 * AdminSource; the admin app only calls it and never imports the data plane.
 * Everything here is plain JSON-able data.
 */

import type { ErrorCode } from "../errors/mod.ts";

export interface WorkerStatus {
  id: number;
  /** The worker thread's id as the runtime reports it. */
  threadId: number;
  /** The thread is running (the supervisor saw no exit since it started). */
  up: boolean;
  /** Times this worker slot was restarted after its thread ended. */
  restarts: number;
  /** Since the worker's last heartbeat; null before its first. */
  heartbeatAgeMs: number | null;
  activeConnections: number;
}

export interface ListenerStatus {
  name: string;
  kind: string;
  /** "host:port", "[v6]:port" or "unix:/path". */
  address: string;
  /** Open-connection limit across workers; 0 = unlimited. */
  maxConnections: number;
  accepted: number;
  active: number;
  closed: number;
  refused: number;
  bytesIn: number;
  bytesOut: number;
  /** All error codes together; see /metrics for the split. */
  errors: number;
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
  bytesIn: number;
  bytesOut: number;
  errors: number;
  /** Non-zero codes only. */
  errorsByCode: Partial<Record<ErrorCode, number>>;
}

export interface TotalsStatus {
  accepted: number;
  active: number;
  closed: number;
  refused: number;
  bytesIn: number;
  bytesOut: number;
  errors: number;
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
  uptimeSeconds: number;
  pid: number;
  /** ISO 8601 time the process started. */
  startedAt: string;
  workers: WorkerStatus[];
  listeners: ListenerStatus[];
  routes: RouteStatus[];
  totals: TotalsStatus;
  tunnels: TunnelsStatus;
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
