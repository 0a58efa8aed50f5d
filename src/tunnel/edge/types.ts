/** Shapes shared by the edge's tunnel pieces (hub, sessions, cross-worker links). */
import type { TokenGrant } from "../../auth/mod.ts";
import type { ProxyWish, RemoteMessage, ServiceProto } from "../../proto/tunnel_control.ts";
import type { PeerCertificate } from "../../runtime/types.ts";

/**
 * What the tunnel listener asks of the token policy (auth/ TokenStore, built
 * from the [[tokens]] entries with a tunnel role; tests may fake it). The
 * global [access] lists run before any of this, at accept.
 */
export interface TunnelAuthority {
  /** The grant for a bearer token, or null when no entry has its digest. */
  byToken(token: string): TokenGrant | null;
  /** The grant for a verified client certificate (the entry named by its identity), or null. */
  byCertificate(cert: PeerCertificate): TokenGrant | null;
  /** Entries at all (none: every agent is refused). */
  readonly size: number;
}

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
  /** The connection's id (front session or source agent), passed on in open.conn. */
  connId?: string;
  /**
   * An operator stream (shell, files, reload) instead of a service: `service`
   * is then the agent's route (hub.ts agentRoute) and this message, already
   * checked and stamped with the operator's token name, is what the agent gets.
   */
  remote?: RemoteMessage;
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

/** An agent session the edge admitted, as /status lists it (crosses postMessage to the supervisor). */
export interface TunnelSessionInfo {
  id: string;
  listener: string;
  /** The name the agent gave in its hello. */
  agent: string;
  /** The [[tokens]] entry that admitted it. */
  token: string;
  /** The agent's "ip:port" as the edge sees it. */
  peer: string;
  transport: "smux" | "websocket";
  roles: string[];
  /** Services it exposes (destination role). */
  services: string[];
  /** Wall-clock ms it was admitted. */
  sinceMs: number;
}

/** A session's stream and byte counts (streams both ways; bytes on the wire, mux framing included). */
export interface TunnelSessionCounts {
  streams: number;
  activeStreams: number;
  /** Bytes received from the agent / sent to it. */
  bytesIn: number;
  bytesOut: number;
}

/** A live session's changing facts, reported about once a second (services change with announce). */
export interface TunnelSessionReport {
  id: string;
  services: string[];
  counts: TunnelSessionCounts;
}

/** A session admitted or ended, or the periodic report of the live ones; the hub passes these to HubOptions.onSession. */
export type TunnelSessionEvent =
  | { type: "tunnel-up"; session: TunnelSessionInfo }
  | { type: "tunnel-down"; id: string }
  | { type: "tunnel-report"; sessions: TunnelSessionReport[] };
