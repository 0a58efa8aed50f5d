export { ConnectListener } from "./listener.ts";
export { HboneSession } from "./hbone_server.ts";
