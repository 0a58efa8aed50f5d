/**
 * The front door (DESIGN.md "Layers"): one listener base that admits
 * connections, and one front-session state machine (inbound PROXY header →
 * preamble → policy → dial → relay → linger → one outcome record) that every
 * single-tunnel listener kind runs. A kind supplies a `Preamble`: its sans-I/O
 * parser, its policy hook, and its refusal encoder.
 */
export { FrontListener } from "./listener.ts";
export { EARLY_BYTES, type FrontHost, FrontSession, LINGER_MS, Phase } from "./session.ts";
export type { DataPlaneListener, FrontConnection, ListenerDeps, ListenerSettings, Preamble, Slots } from "./types.ts";
export { dialMatch, ProxyPreamble, type ProxyHost, type RouteHost, RoutePreamble } from "./dial.ts";
