/**
 * Reverse tunnels, edge side (DESIGN.md "Tunnel session (edge ⇄ agent)"):
 * the tunnel listener and its agent sessions, token policy, and the
 * per-worker hub that finds a service's destination agent (on this worker or,
 * over a peer link, another).
 */
export { TunnelListenerState, type TunnelListenerDeps } from "./listener.ts";
export { EdgeSession, type TunnelSessionConfig, type TunnelSessionHost } from "./session.ts";
export { agentRoute, type DestinationSession, type HubOptions, type PeerRoute, remoteStatsName, TunnelHub, tunnelError } from "./hub.ts";
export type {
  HubStats,
  OpenRequest,
  TunnelAuthority,
  TunnelSessionCounts,
  TunnelSessionEvent,
  TunnelSessionInfo,
  TunnelSessionReport,
} from "./types.ts";
