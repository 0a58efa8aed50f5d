/**
 * The admin API (hono), served by the supervisor on its own address:
 * `runtime.serveHttp({ hostname, port, tls, fetch: createAdminApp(source, { tokens }).fetch })`.
 * The supervisor implements AdminSource; buildStatus turns its config, a
 * stats snapshot and its worker table into the /status document.
 */

export { type AdminOptions, createAdminApp, healthProblems } from "./app.ts";
export { type AdminAccess, AdminAuth, requiredScope, WWW_AUTHENTICATE } from "./auth.ts";
export {
  buildStatus,
  STATUS_MAX_TUNNEL_SESSIONS,
  type StatusInput,
  type SupervisorWorker,
  type TunnelSessionFact,
} from "./status.ts";
export type {
  AdminSource,
  ErrorCounts,
  ListenerStatus,
  ReloadResult,
  RouteStatus,
  StatusJson,
  TotalsStatus,
  TunnelSessionStatus,
  TunnelsStatus,
  WorkerStatus,
} from "./types.ts";
