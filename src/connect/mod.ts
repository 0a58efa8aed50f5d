export { ConnectListener, type TunnelRecord } from "./listener.ts";
export { HboneSession } from "./hbone_server.ts";
