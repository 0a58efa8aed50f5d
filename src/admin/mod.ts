/**
 * The admin API (hono), served by the supervisor on its own address:
 * `runtime.serveHttp({ hostname, port, fetch: createAdminApp(source).fetch })`.
 * The supervisor implements AdminSource; buildStatus turns its config, a
 * stats snapshot and its worker table into the /status document.
 */

export { type AdminOptions, createAdminApp, healthProblems } from "./app.ts";
export { buildStatus, formatAddress, type StatusInput, type SupervisorWorker } from "./status.ts";
export type {
  AdminSource,
  ListenerStatus,
  ReloadResult,
  RouteStatus,
  StatusJson,
  TotalsStatus,
  WorkerStatus,
} from "./types.ts";
