export { ConnectListenerState } from "./listener.ts";
export { ProxyListener, type ProxyListenerDeps, type ProxyListenerSettings, type ProxySession, type TunnelRecord } from "./proxy_listener.ts";
export { ANONYMOUS, type Principal, ProxyPolicy } from "./policy.ts";
export { H2Connection, type H2ConnectionOptions, type H2ConnectionOwner, CONN_WINDOW, STREAM_WINDOW } from "./h2_connection.ts";
export { H2Stream } from "./h2_stream.ts";
export { h2StatusFor, HboneSession } from "./hbone_server.ts";
export { forwardedFor, type HboneDial, hboneAuthority, HbonePool, POOL_IDLE_MS } from "./hbone_client.ts";
