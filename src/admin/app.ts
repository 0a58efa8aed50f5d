/**
 * The admin API: a hono app served by the supervisor on its own address
 * (never by a worker, so a slow scrape adds no latency to traffic). It reads
 * everything through AdminSource and never imports the data plane. Serving
 * is the runtime adapter's job: `runtime.serveHttp({ hostname, port, fetch: app.fetch })`.
 *
 *   GET  /                      live dashboard (HTML, polls /status and /history)
 *   GET  /healthz               200 "ok" | 503 with the reason
 *   GET  /status                StatusJson
 *   GET  /metrics               Prometheus text format 0.0.4
 *   GET  /history?window=900    the last N seconds of per-listener and per-route rates (history.ts)
 *   POST /reload                like SIGHUP
 *   POST /workers/:id/restart   terminate a worker; the supervisor replaces it
 *
 * With `[[admin.tokens]]` every path but /healthz needs a token (auth.ts):
 * 401 with a Basic challenge without a valid one, 403 when its scope is short.
 */

import { Hono } from "hono";
import { DEFAULT_STALE_AFTER_MS, PROMETHEUS_CONTENT_TYPE } from "../stats/mod.ts";
import { DASHBOARD_HTML } from "./dashboard.ts";
import type { AdminTokenConfig } from "../config/types.ts";
import { AdminAuth, requiredScope, WWW_AUTHENTICATE } from "./auth.ts";
import type { HistoryJson } from "./history.ts";
import type { AdminSource, WorkerStatus } from "./types.ts";

export interface AdminOptions {
  /** A worker whose heartbeat is older than this is unhealthy. Default DEFAULT_STALE_AFTER_MS. */
  heartbeatStaleMs?: number;
  /**
   * The `[[admin.tokens]]` in force, asked on every request so a reload
   * applies to the next one (a new array is compiled once). Absent or empty:
   * the API is open.
   */
  tokens?: () => readonly AdminTokenConfig[];
  /**
   * The dashboard's time series for the last `windowSeconds` (History.toJSON);
   * without it GET /history answers 501.
   */
  history?: (windowSeconds: number | undefined) => HistoryJson;
}

const TEXT_PLAIN = { "content-type": "text/plain; charset=utf-8" } as const;

/** Paths and the methods they answer; anything else on them is 405. */
const ALLOWED: ReadonlyArray<readonly [string, string]> = [
  ["/", "GET, HEAD"],
  ["/healthz", "GET, HEAD"],
  ["/status", "GET, HEAD"],
  ["/metrics", "GET, HEAD"],
  ["/history", "GET, HEAD"],
  ["/reload", "POST"],
  ["/workers/:id/restart", "POST"],
];

export function createAdminApp(source: AdminSource, opts: AdminOptions = {}): Hono {
  const staleMs = opts.heartbeatStaleMs ?? DEFAULT_STALE_AFTER_MS;
  const app = new Hono();

  // Numbers change on every request; no cache may keep them.
  app.use("*", async (c, next) => {
    await next();
    c.header("cache-control", "no-store");
  });

  // Credentials before any endpoint runs; /healthz stays open (auth.ts requiredScope).
  let tokens: readonly AdminTokenConfig[] = [];
  let auth = new AdminAuth(tokens);
  app.use("*", async (c, next) => {
    const now = opts.tokens?.() ?? [];
    if (now !== tokens) auth = new AdminAuth((tokens = now));
    const access = auth.check(c.req.header("authorization") ?? null, requiredScope(c.req.method, c.req.path));
    if (access.ok) return await next();
    if (access.status === 403) return c.json({ error: access.error }, 403);
    return c.json({ error: access.error }, 401, { "www-authenticate": WWW_AUTHENTICATE });
  });

  // The mutating endpoints must not be reachable from another site's page in
  // an operator's browser (a form POST needs no CORS preflight). Tools like
  // curl send neither header; browsers send at least one of them.
  app.use("*", async (c, next) => {
    if (c.req.method === "POST" && !sameOrigin(c.req.header("origin"), c.req.header("sec-fetch-site"), c.req.header("host"))) {
      return c.json({ error: "cross-origin request refused" }, 403);
    }
    await next();
  });

  app.get("/", (c) => c.html(DASHBOARD_HTML));

  // Explicit content type: with c.text() alone (and the cache-control middleware above)
  // the answer carried no content-type at all.
  app.get("/healthz", (c) => {
    const problems = healthProblems(source.workers(), staleMs);
    if (problems.length === 0) return c.text("ok\n", 200, TEXT_PLAIN);
    return c.text(`unhealthy: ${problems.join("; ")}\n`, 503, TEXT_PLAIN);
  });

  app.get("/status", (c) => c.json(source.status()));

  app.get("/metrics", (c) => c.body(source.metrics(), 200, { "content-type": PROMETHEUS_CONTENT_TYPE }));

  app.get("/history", (c) => {
    if (!opts.history) return c.json({ error: "history is not available" }, 501);
    const raw = c.req.query("window");
    if (raw !== undefined && !/^[0-9]{1,7}$/.test(raw)) return c.json({ error: `window must be a number of seconds, got '${raw}'` }, 400);
    return c.json(opts.history(raw === undefined ? undefined : Number(raw)));
  });

  app.post("/reload", async (c) => {
    if (!source.reload) return c.json({ ok: false, error: "reload is not available" }, 501);
    const result = await source.reload();
    return c.json(result, result.ok ? 200 : 500);
  });

  app.post("/workers/:id/restart", (c) => {
    const raw = c.req.param("id");
    if (!/^[0-9]{1,6}$/.test(raw)) return c.json({ error: `worker id must be a non-negative integer, got '${raw}'` }, 400);
    if (!source.restartWorker) return c.json({ error: "restart is not available" }, 501);
    const id = Number(raw);
    if (!source.restartWorker(id)) return c.json({ error: `no worker ${id}` }, 404);
    return c.json({ ok: true, worker: id }, 202);
  });

  for (const [path, allow] of ALLOWED) {
    app.all(path, (c) => c.json({ error: `method ${c.req.method} not allowed`, allow }, 405, { allow }));
  }

  app.notFound((c) => c.json({ error: "not found", path: new URL(c.req.url).pathname }, 404));

  app.onError((err, c) => c.json({ error: "internal error", message: err instanceof Error ? err.message : String(err) }, 500));

  return app;
}

/** Why the process is unhealthy; empty when every worker is up with a fresh heartbeat. */
export function healthProblems(workers: readonly WorkerStatus[], staleMs: number): string[] {
  if (workers.length === 0) return ["no workers"];
  const problems: string[] = [];
  for (const w of workers) {
    if (!w.up) problems.push(`worker ${w.id} is down`);
    else if (w.heartbeat_age_ms === null) problems.push(`worker ${w.id} has not sent a heartbeat yet`);
    else if (w.heartbeat_age_ms > staleMs) problems.push(`worker ${w.id} heartbeat is ${Math.round(w.heartbeat_age_ms)} ms old`);
  }
  return problems;
}

function sameOrigin(origin: string | undefined, fetchSite: string | undefined, host: string | undefined): boolean {
  if (fetchSite !== undefined && fetchSite !== "same-origin" && fetchSite !== "none") return false;
  if (origin === undefined) return true;
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}
