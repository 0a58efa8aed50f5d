export { SniListenerState, type SniListenerDeps, type SniListenerSettings } from "./listener.ts";
export { LINGER_MS, SniSession } from "./session.ts";
