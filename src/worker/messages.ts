/**
 * Messages between the supervisor and a worker (postMessage, structured
 * clone). Plain records only: errors travel as ErrorRecord, never as Error.
 */
import type { ChallengeEvent } from "../acme/mod.ts";
import type { Config } from "../config/types.ts";
import type { ErrorRecord } from "../errors/mod.ts";
import type { SlotMap } from "../stats/mod.ts";
import type { TunnelSessionInfo, TunnelSessionReport } from "../tunnel/edge/mod.ts";

export interface SlotAssignment extends SlotMap {
  overflowListener: number;
  overflowRoute: number;
}

export type ToWorker =
  | {
    type: "start";
    workerId: number;
    config: Config;
    slots: SlotAssignment;
    slab: SharedArrayBuffer;
    limits: SharedArrayBuffer;
    /** Ports already bound by worker 0 for listeners configured with port 0. */
    ports: Record<string, number>;
    /** Tunnel max_sessions counters shared by all workers (stats/session_cells.ts). */
    tunnelSessions?: SharedArrayBuffer;
  }
  /** A MessageChannel port to another worker's tunnel hub (sent after start, and again when that worker restarts). */
  | { type: "peer"; workerId: number; port: MessagePort }
  /** That worker exited: its tunnel services are gone, its cross-worker streams fail. */
  | { type: "peer-gone"; workerId: number }
  | { type: "reload"; config: Config; slots: SlotAssignment; seq: number }
  | { type: "drain"; timeoutMs: number }
  /** [acme]: a certificate issued or renewed by the supervisor (also every held one right after start). */
  | { type: "acme-certificate"; name: string; cert: string; key: string; notAfter: number }
  /** [acme]: a challenge to answer (HTTP-01 on plain http listeners) appears or goes. */
  | { type: "acme-challenge"; event: ChallengeEvent };

export type FromWorker =
  | { type: "ready"; workerId: number; listeners: Record<string, { hostname: string; port: number }> }
  | { type: "start-failed"; workerId: number; error: ErrorRecord }
  | { type: "reloaded"; workerId: number; seq: number }
  | { type: "reload-failed"; workerId: number; seq: number; error: ErrorRecord }
  | { type: "drained"; workerId: number; closedAtDeadline: number }
  /** An agent session was admitted on this worker / has ended (for /status and /metrics). */
  | { type: "tunnel-up"; workerId: number; session: TunnelSessionInfo }
  | { type: "tunnel-down"; workerId: number; id: string }
  /** About once a second while it holds sessions: their stream and byte counts and current services. */
  | { type: "tunnel-report"; workerId: number; sessions: TunnelSessionReport[] };
