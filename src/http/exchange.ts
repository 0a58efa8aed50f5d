/**
 * One request and its response on an http connection (connection.ts): what
 * was asked, where it went, what came back. When it ends, `recordExchange`
 * writes its access-log line and counts it on the route's stats slot
 * (connection-style counters, requests by status class, the latency
 * histogram).
 */
import type { ErrorCode } from "../errors/mod.ts";
import type { Http1ResponseParser, HttpRequestHead, HttpResponseHead } from "../proto/mod.ts";
import type { RouteMatch } from "../router/mod.ts";
import { monotonicMs } from "../runtime/mod.ts";
import type { Dialed } from "../upstream/mod.ts";
import type { BodyFramer } from "./body.ts";
import type { HttpListener } from "./listener.ts";

/** One request and its response. */
export class Exchange {
  readonly startedAt = monotonicMs();
  route: RouteMatch | null = null;
  host: string | null = null;
  /** The Host as the client sent it (with its port), for the forwarded fields and redirects. */
  hostText: string | null = null;
  origin = "";
  path = "";
  upgrade: string | null = null;
  keepAlive = true;
  body!: BodyFramer;
  up: Dialed | null = null;
  /** What was reached, for the log ("127.0.0.1:8080", "tunnel:web"). */
  upstreamLabel: string | null = null;
  reused = false;
  retried = false;
  /** Coarse ms the request was complete upstream; request_timeout runs from here until the response head. */
  sentAtMs = 0;
  upstreamStart = 0;
  upstreamMs = -1;
  responseParser: Http1ResponseParser | null = null;
  response: HttpResponseHead | null = null;
  responseBody: BodyFramer | null = null;
  /** Response bytes written to the client (head excluded). */
  bytesOut = 0;
  status = 0;
  /** The upstream connection may serve another request once this response is complete. */
  reusable = true;
  error: ErrorCode | null = null;
  /** The request came on an HTTP/2 stream (h2_server.ts), not an HTTP/1.x connection. */
  h2 = false;

  constructor(readonly head: HttpRequestHead) {}
}

/** The access-log line (with log.connections) and the route's counters of a finished exchange. */
export function recordExchange(l: HttpListener, ex: Exchange, connId: string, clientText: string): void {
  const seconds = (monotonicMs() - ex.startedAt) / 1000;
  if (ex.route !== null) {
    const slot = l.routeSlot(ex.route.route.name);
    const st = l.stats;
    st.opened(slot);
    st.closed(slot);
    st.duration(slot, seconds);
    // Answered requests only: one cut short before any status has its error code instead.
    if (ex.status > 0) st.httpRequest(slot, ex.status, seconds);
    if (ex.error !== null) st.error(slot, ex.error);
  }
  if (ex.error !== null) l.stats.error(l.listenerSlot, ex.error);
  if (!l.logConnections) return;
  l.log.info("request", {
    listener: l.name,
    conn: connId,
    client: clientText,
    proto: ex.h2 ? "h2" : ex.head.minorVersion === 0 ? "http/1.0" : "http/1.1",
    method: ex.head.method,
    host: ex.hostText,
    path: ex.origin.length > 512 ? `${ex.origin.slice(0, 512)}...` : ex.origin,
    status: ex.status || null,
    route: ex.route?.route.name ?? null,
    upstream: ex.upstreamLabel,
    bytes_in: ex.body?.bytes ?? 0,
    bytes_out: ex.bytesOut,
    upstream_ms: ex.upstreamMs >= 0 ? Math.round(ex.upstreamMs) : null,
    duration_ms: Math.round(seconds * 1000),
    error: ex.error,
  });
}
