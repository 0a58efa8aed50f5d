/** Shapes shared by the edge's tunnel pieces (hub, sessions, cross-worker links). */
import type { ErrorCode } from "../errors/mod.ts";
import type { ProxyWish, ServiceProto } from "../proto/tunnel_control.ts";

/** What a client (public route or source agent) wants from a tunnel service. */
export interface OpenRequest {
  service: string;
  proto: ServiceProto;
  /** Original client "ip:port" ("[v6]:port"), "" when unknown. */
  client: string;
  /** The address the original client connected to, "" when unknown. */
  server: string;
  /** PROXY header the destination agent puts in front of the bytes to its service. */
  proxy: ProxyWish;
}

/** Plain record for a refused open (crosses postMessage). */
export interface OpenRefusal {
  code: ErrorCode;
  /** TunnelErrorCode, what a source agent is told. */
  tunnelCode: number;
  message: string;
}

/** Per-worker tunnel counters read by the status endpoint and tests. */
export interface HubStats {
  localServices: number;
  remoteServices: number;
  peers: number;
  crossStreams: number;
  crossBytesOut: number;
  crossBytesIn: number;
  crossMessages: number;
}
