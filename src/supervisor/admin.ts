/**
 * The supervisor's side of the admin API: an AdminSource that reads the
 * stats slabs (never calling into a worker) and the hono app served on the
 * admin address by the runtime's HTTP server.
 */
import { type AdminSource, buildStatus, createAdminApp, History, type TunnelSessionFact } from "../admin/mod.ts";
import type { HostPort } from "../config/types.ts";
import type { HttpServer } from "../runtime/types.ts";
import { type CertificateExpiry, renderCertificateExpiry, renderPrometheus, type TunnelSessionCount } from "../stats/mod.ts";
import { ProcessMetrics } from "./process_metrics.ts";
import type { Supervisor } from "./supervisor.ts";

export function adminSource(sup: Supervisor): AdminSource {
  const rt = sup.runtime;
  const proc = new ProcessMetrics({
    startTimeSeconds: sup.startedAt / 1000,
    residentMemoryBytes: () => rt.rss(),
    cpuSecondsTotal: () => rt.cpuUsageMicros() / 1e6,
  });
  const snapshot = () => sup.registry.snapshot(sup.workers.map((w) => w.slab));
  const workerFacts = () => sup.workers.map((w) => ({ id: w.id, threadId: w.handle?.threadId ?? 0, up: w.up, restarts: w.restarts }));
  const tunnelFacts = (): TunnelSessionFact[] => sup.workers.flatMap((w) => [...w.agents.values()].map((s) => ({ ...s, worker: w.id })));
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
      tunnels: tunnelFacts(),
      knownServices: sup.knownServices,
    });
  return {
    status,
    workers: () => status().workers,
    metrics: () =>
      renderPrometheus(
        snapshot(),
        { version: sup.version, runtime: `${rt.name} ${rt.version}`, ...proc.read() },
        sup.workers.map((w) => ({ id: w.id, up: w.up, restarts: w.restarts })),
        tunnelCounts(sup),
      ) + renderCertificateExpiry(certificateExpiries(sup)),
    restartWorker: (id) => sup.restartWorker(id),
    reload: () => sup.reload(),
  };
}

/**
 * The certificates http listeners serve, by name: each file certificate's
 * names (the first file naming a name, as the handshake picks it), then
 * [acme] certificates for names no file serves.
 */
function certificateExpiries(sup: Supervisor): CertificateExpiry[] {
  const byName = new Map<string, number>();
  for (const l of sup.config.listeners) {
    if (l.kind !== "http" || l.tls === null) continue;
    for (const f of l.tls.certificates) for (const n of f.names) if (!byName.has(n)) byName.set(n, f.notAfter);
  }
  for (const e of sup.acme?.expiries() ?? []) if (!byName.has(e.name)) byName.set(e.name, e.notAfter);
  return [...byName].map(([name, notAfter]) => ({ name, notAfter })).sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * Sessions per tunnel listener and token, with a 0 for every pair the config allows
 * (tunnel listeners × tokens with an agent role), so an alert on "== 0" has a series.
 */
function tunnelCounts(sup: Supervisor): TunnelSessionCount[] {
  const counts = new Map<string, TunnelSessionCount>();
  const entry = (listener: string, token: string) => {
    const key = `${listener}\n${token}`;
    let c = counts.get(key);
    if (c === undefined) counts.set(key, (c = { listener, token, sessions: 0 }));
    return c;
  };
  const agentTokens = sup.config.tokens.filter((t) => t.roles.includes("source") || t.roles.includes("destination"));
  for (const l of sup.config.listeners) {
    if (l.kind === "tunnel") for (const t of agentTokens) entry(l.name, t.name);
  }
  for (const w of sup.workers) for (const s of w.agents.values()) entry(s.listener, s.token).sessions++;
  return [...counts.values()];
}

/**
 * Serves the admin API on `address`, over TLS with `[admin.tls]`. Its tokens
 * are read from the supervisor's config on each request, so SIGHUP (which
 * swaps `sup.config`) changes them; the address and TLS files are bound here once.
 */
export async function startAdmin(sup: Supervisor, address: HostPort): Promise<HttpServer> {
  // The dashboard's history: a snapshot of the slabs every interval, here on the supervisor.
  const history = new History();
  const sample = () => history.sample(sup.registry.snapshot(sup.workers.map((w) => w.slab)));
  const app = createAdminApp(adminSource(sup), { tokens: () => sup.config.admin.tokens, history: (w) => history.toJSON(w) });
  const tls = sup.config.admin.tls;
  const server = await sup.runtime.serveHttp({
    hostname: address.hostname,
    port: address.port,
    // reusePort: during an upgrade the new process binds the same admin address while the old one drains.
    reusePort: true,
    ...(tls ? { tls: { cert: tls.cert, key: tls.key } } : {}),
    fetch: (req) => app.fetch(req),
  });
  sample();
  const timer = setInterval(sample, history.intervalMs);
  (timer as { unref?: () => void }).unref?.(); // never what keeps the process alive
  return {
    hostname: server.hostname,
    port: server.port,
    close: () => {
      clearInterval(timer);
      return server.close();
    },
  };
}
