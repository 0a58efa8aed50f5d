/**
 * The admin API (hono), served by the supervisor on its own address:
 * `runtime.serveHttp({ hostname, port, tls, fetch: createAdminApp(source, { tokens }).fetch })`.
 * The supervisor implements AdminSource; buildStatus turns its config, a
 * stats snapshot and its worker table into the /status document.
 */

export { type AdminOptions, createAdminApp, healthProblems } from "./app.ts";
export { type AdminAccess, AdminAuth, requiredScope, WWW_AUTHENTICATE } from "./auth.ts";
export { History, type HistoryJson, type HistoryOptions, type HistorySeriesJson } from "./history.ts";
export {
  buildStatus,
  quantileMs,
  routeTargets,
  STATUS_MAX_TUNNEL_SESSIONS,
  type StatusInput,
  type SupervisorWorker,
  type TunnelSessionCounts,
  type TunnelSessionFact,
} from "./status.ts";
export type {
  AdminSource,
  BackendStatus,
  ErrorCounts,
  ListenerStatus,
  ReloadResult,
  RouteStatus,
  ServiceStatus,
  StatusJson,
  TotalsStatus,
  TunnelSessionStatus,
  TunnelsStatus,
  WorkerStatus,
} from "./types.ts";
