/**
 * The supervisor's side of the admin API: an AdminSource that reads the
 * stats slabs (never calling into a worker) and the hono app served on the
 * admin address by the runtime's HTTP server.
 */
import { type AdminSource, buildStatus, createAdminApp } from "../admin/mod.ts";
import type { HostPort } from "../config/types.ts";
import type { HttpServer } from "../runtime/types.ts";
import { renderPrometheus } from "../stats/mod.ts";
import type { Supervisor } from "./supervisor.ts";

export function adminSource(sup: Supervisor): AdminSource {
  const rt = sup.runtime;
  const snapshot = () => sup.registry.snapshot(sup.workers.map((w) => w.slab));
  const workerFacts = () => sup.workers.map((w) => ({ id: w.id, threadId: w.handle?.threadId ?? 0, up: w.up, restarts: w.restarts }));
  const status = () =>
    buildStatus({
      version: sup.version,
      runtime: `${rt.name} ${rt.version}`,
      pid: rt.pid,
      startedMs: sup.startedAt,
      listeners: sup.config.listeners.map((l) => {
        // Show the port the kernel chose for listeners configured with port 0.
        const b = sup.bound[l.name];
        return b && l.address.kind === "tcp" ? { ...l, address: { ...l.address, port: b.port } } : l;
      }),
      routes: sup.config.routes,
      snapshot: snapshot(),
      workers: workerFacts(),
    });
  return {
    status,
    workers: () => status().workers,
    metrics: () =>
      renderPrometheus(
        snapshot(),
        {
          version: sup.version,
          runtime: `${rt.name} ${rt.version}`,
          startTimeSeconds: sup.startedAt / 1000,
          residentMemoryBytes: rt.rss(),
          cpuSecondsTotal: rt.cpuUsageMicros() / 1e6,
        },
        sup.workers.map((w) => ({ id: w.id, up: w.up, restarts: w.restarts })),
      ),
    restartWorker: (id) => sup.restartWorker(id),
    reload: () => sup.reload(),
  };
}

export async function startAdmin(sup: Supervisor, address: HostPort): Promise<HttpServer> {
  const app = createAdminApp(adminSource(sup));
  // reusePort: during an upgrade the new process binds the same admin address while the old one drains.
  return await sup.runtime.serveHttp({ hostname: address.hostname, port: address.port, reusePort: true, fetch: (req) => app.fetch(req) });
}
