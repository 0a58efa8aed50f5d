/**
 * What the edge and the agent share to carry a tunnel session (DESIGN.md
 * "Tunnel session"): the HTTP/1.1 upgrade both ways, the WebSocket carrier,
 * the stream-open first message, and the frame size both send.
 */
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

/**
 * Largest PSH payload we send: the u16 maximum (Go smux reads any length up to it, whatever its
 * own MaxFrameSize). Twice Go's default 32 KiB halves the per-frame work on bulk streams.
 */
export const TUNNEL_MAX_FRAME = 65535;
