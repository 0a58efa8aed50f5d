/**
 * What reaching a target needs and returns, for every listener kind alike.
 */
import type { Conn, Runtime } from "../runtime/types.ts";
import type { StatsWriter } from "../stats/mod.ts";
import type { HbonePool } from "./hbone_pool.ts";

/** The part of the worker's tunnel hub that upstream uses: a stream to the agent exposing a service. */
export interface TunnelOpener {
  open(req: TunnelOpen, timeoutMs: number): Promise<Conn>;
}

export interface TunnelOpen {
  service: string;
  proto: "tcp" | "udp";
  /** Original client "ip:port" ("[v6]:port"), "" when unknown. */
  client: string;
  /** The address the client connected to, "" when unknown. */
  server: string;
  /** PROXY header the destination agent writes before the bytes to its service. */
  proxy: "none" | "v1" | "v2";
  /** The client connection's id, sent to the agent (open.conn) so both logs carry it. */
  connId?: string;
}

/** One worker's ways out, shared by its listeners. */
export interface UpstreamContext {
  readonly runtime: Runtime;
  /** Null when the process runs no tunnel hub. */
  readonly tunnels: TunnelOpener | null;
  /** Pooled HBONE connections, made on first use. */
  hbone(): HbonePool;
  /** The worker's stats slab, for the per-target counters; null in tests that count nothing. */
  readonly stats: StatsWriter | null;
  /**
   * Route name → the backend stats slot of each of its targets, in target
   * order (the supervisor's assignment; replaced on reload). A route missing
   * here counts no per-target stats.
   */
  backendSlots: Readonly<Record<string, readonly number[]>>;
}

/** A connection to a target, already delivering events to the handler the dial was given. */
export interface Dialed {
  readonly conn: Conn;
  /** What was reached, for logs: "10.0.0.5:443", "unix:/run/x.sock", "tunnel:web", "[::1]:8080". */
  readonly label: string;
  /** The PROXY header to send first ("none" for tunnel targets: the agent writes it). */
  readonly proxyProtocol: "none" | "v1" | "v2";
  /** Gives back what the dial holds (a least_conn slot); call once when the connection ends. */
  release(): void;
}

/** The two ends of the client's connection, as the listener saw them (after an inbound PROXY header). */
export interface Endpoints {
  clientAddress: string;
  clientPort: number;
  localAddress: string;
  localPort: number;
}
