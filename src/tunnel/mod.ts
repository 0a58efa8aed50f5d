/**
 * Reverse tunnels, edge side (DESIGN.md "Tunnel session (edge ⇄ agent)"):
 * the tunnel listener and its agent sessions, token policy, the per-worker
 * hub that finds a service's destination agent (on this worker or another),
 * and the transports (HTTP/1.1 upgrade to raw smux, or WebSocket) that the
 * agent (src/agent/) shares.
 */
export { TunnelListenerState, type TunnelListenerDeps } from "./listener.ts";
export { EdgeSession, formatPeer, REFUSAL_LINGER_MS, TUNNEL_MAX_FRAME, type TunnelSessionConfig, type TunnelSessionHost } from "./session.ts";
export { type DestinationSession, type HubOptions, TunnelHub, tunnelError } from "./hub.ts";
export {
  certificateIdentity,
  createSessionCells,
  releaseWorkerSessions,
  SESSION_SLOTS,
  SessionCounters,
  sha256,
  type TokenEntry,
  TokenTable,
  type TunnelAuthority,
  TunnelGrant,
} from "./policy.ts";
export { type LinkMsg, PeerLink, PortConn, type PortLike, XWORKER_WINDOW } from "./xworker.ts";
export { DRAIN_ON_CLOSE_MS, FirstMessage, handOver, StreamConn } from "./first_message.ts";
export {
  checkUpgradeRequest,
  checkUpgradeResponse,
  httpStatusForTunnelError,
  refusalResponse,
  SMUX_UPGRADE,
  switchingProtocols,
  TUNNEL_PATH,
  upgradeRequest,
  upgradeRequestParser,
  upgradeResponseParser,
  type UpgradeOutcome,
  type UpgradeTransport,
  WS_SUBPROTOCOL,
  wsAccept,
} from "./http_upgrade.ts";
export { WsConn } from "./websocket.ts";
/** The frame codec lives in proto/; re-exported so importers of tunnel/ keep working. */
export { encodeWsClose, encodeWsFrame, WsFrameDecoder, WsOpcode, WsProtocolError } from "../proto/mod.ts";
export type { HubStats, OpenRequest, TunnelSessionEvent, TunnelSessionInfo } from "./types.ts";
