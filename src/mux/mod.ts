/**
 * Stream multiplexers: HTTP/2 (h2_connection.ts, for HBONE both ways and the http listener's HTTP/2 server) and one wire-compatible with Go's github.com/xtaci/smux v1 and v2
 * (DESIGN.md "Multiplexer"). A `MuxSession` runs over any runtime `Conn`; each
 * `MuxStream` is itself a `Conn`, so pipe code joins sockets and streams alike.
 */
export { MuxSession, type MuxSessionOptions, type MuxSessionStats } from "./session.ts";
export { MuxStream } from "./stream.ts";
export { MUX_DEFAULTS, type MuxOptions, resolveMuxOptions, type ResolvedMuxOptions } from "./config.ts";
export { MuxTicker, type Tickable } from "./ticker.ts";
export { CONN_WINDOW, H2Connection, type H2ConnectionOptions, type H2ConnectionOwner, STREAM_WINDOW } from "./h2_connection.ts";
export { H2Stream } from "./h2_stream.ts";
