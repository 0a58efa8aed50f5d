export { SniListenerState, type SniListenerDeps } from "./listener.ts";
export { LINGER_MS, SniSession } from "./session.ts";
