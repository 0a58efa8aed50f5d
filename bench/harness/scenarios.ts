/**
 * The end-to-end scenarios: the SNI section of issue 3 (TLS passthrough routed
 * by the ClientHello), the tcp section (plain L4 forwarding: no ClientHello,
 * no SNI; edgemux `kind = "tcp"`, HAProxy `mode tcp`, nginx `stream`) and the
 * http section of issue 13 (HTTPS terminated by the proxy, each request routed
 * by Host to a plain-HTTP backend; edgemux `kind = "http"`, HAProxy `mode
 * http`, nginx `proxy_pass`). Each one
 * measures one entry (direct or a proxy) once; the runner (runner.ts)
 * interleaves entries, repeats rounds and wraps every measurement with the
 * proxy's CPU and memory readings.
 */
import { join } from "node:path";
import type { Backend } from "./backends.ts";
import type { RunningPeer, Profile } from "./peers.ts";
import type { ProcessRegistry } from "./procs.ts";
import { sampleTree } from "./proc_stats.ts";
import { runWrk } from "./wrk.ts";

export type ScenarioId =
  | "newconn"
  | "keepalive"
  | "bulk1"
  | "bulk4"
  | "idle"
  | "tcp_newconn"
  | "tcp_keepalive"
  | "tcp_bulk1"
  | "tcp_bulk4"
  | "http_keepalive"
  | "http_newconn";

/**
 * How a proxy is set up to reach the backend: "sni" routes by the
 * ClientHello's server_name (only "localhost" goes through); "tcp" forwards
 * every connection to the one target without reading anything first; "http"
 * terminates TLS and routes each request by its Host (only "localhost" has a
 * route, any other Host is answered 404 by the proxy).
 */
export type Routing = "sni" | "tcp" | "http";

/** The Host (and SNI) the http section's route takes; the certificate is for it too. */
export const HTTP_ROUTED_HOST = "localhost";

export const SNI_SCENARIO_IDS: readonly ScenarioId[] = ["newconn", "keepalive", "bulk1", "bulk4", "idle"];
export const TCP_SCENARIO_IDS: readonly ScenarioId[] = ["tcp_newconn", "tcp_keepalive", "tcp_bulk1", "tcp_bulk4"];
export const HTTP_SCENARIO_IDS: readonly ScenarioId[] = ["http_keepalive", "http_newconn"];

export interface Plan {
  mode: "quick" | "full";
  rounds: number;
  /** Length of one measurement. */
  seconds: number;
  /** Unrecorded run per entry before round 1 (JIT, caches, pools). */
  warmupSeconds: number;
  /** Idle connections held per proxy. */
  idleConns: number;
  wrkThreads: number;
  newconnConnections: number;
  keepaliveConnections: number;
  /** Whether bench/micro/*_bench.ts run (set from --no-micro). */
  micro: boolean;
}

export const PLANS: Record<"quick" | "full", Plan> = {
  quick: { mode: "quick", rounds: 3, seconds: 3, warmupSeconds: 1, idleConns: 9500, wrkThreads: 2, newconnConnections: 32, keepaliveConnections: 64, micro: true },
  full: { mode: "full", rounds: 5, seconds: 8, warmupSeconds: 2, idleConns: 9500, wrkThreads: 2, newconnConnections: 32, keepaliveConnections: 64, micro: true },
};

/** One measurement, before the runner adds CPU and memory. */
export interface Measured {
  value: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** What one CPU-second of the proxy buys: requests, bytes or connections. */
  work: number;
  errors: number;
  detail: Record<string, unknown>;
}

export interface MeasureArgs {
  reg: ProcessRegistry;
  repoRoot: string;
  dir: string;
  plan: Plan;
  entry: RunningPeer;
  backend: Backend;
  seconds: number;
}

export interface Scenario {
  id: ScenarioId;
  title: string;
  /** What the proxies' configurations are tuned for. */
  profile: Profile;
  routing: Routing;
  backend: Backend["kind"];
  metric: { name: string; unit: string; higherIsBetter: boolean };
  workUnit: "requests" | "bytes" | "connections";
  includesDirect: boolean;
  /** Start each proxy anew for every measurement (memory figures need a fresh process). */
  freshPeerPerRound: boolean;
  warmup: boolean;
  measure(a: MeasureArgs): Promise<Measured>;
}

/** `host`: a `Host` field to send (the http section routes by it); else wrk's own from the URL. */
async function wrkMeasure(a: MeasureArgs, close: boolean, tls: boolean, host?: string): Promise<Measured> {
  const r = await runWrk(a.reg, a.repoRoot, {
    port: a.entry.port,
    threads: a.plan.wrkThreads,
    connections: close ? a.plan.newconnConnections : a.plan.keepaliveConnections,
    seconds: a.seconds,
    close,
    tls,
    ...(host ? { host } : {}),
  });
  const errors = r.errors.connect + r.errors.read + r.errors.write + r.errors.status + r.errors.timeout;
  return {
    value: r.requests / (r.durationUs / 1e6),
    p50Ms: r.latencyUs.p50 / 1000,
    p99Ms: r.latencyUs.p99 / 1000,
    work: r.requests,
    errors,
    detail: { wrk: r },
  };
}

/** `hello`: "tls" opens each stream with a ClientHello naming localhost, "plain" with a short text line (tcp section). */
async function bulkMeasure(a: MeasureArgs, streams: number, hello: "tls" | "plain"): Promise<Measured> {
  const p = a.reg.spawn(
    "bulk_client",
    "bun",
    ["bench/tools/tcp_client.ts", "--mode", "bulk", "--port", String(a.entry.port), "--streams", String(streams), "--seconds", String(a.seconds), "--hello", hello],
    { cwd: a.repoRoot, logFile: join(a.dir, "bulk_client.log") },
  );
  const line = await p.waitForLine((l) => l.startsWith('{"ok"'), (a.seconds + 30) * 1000);
  await p.exited;
  const r = JSON.parse(line) as { ok: boolean; bytes: number; gbps: number; errors: string[]; streams: unknown[] };
  return { value: r.gbps, p50Ms: null, p99Ms: null, work: r.bytes, errors: r.errors.length, detail: { streams: r.streams, errors: r.errors } };
}

/** Opens idleConns connections through the proxy, each routed and answered, then reads the proxy's RSS. */
async function idleMeasure(a: MeasureArgs): Promise<Measured> {
  if (a.entry.pid === null) throw new Error("idle needs a proxy process");
  const before = sampleTree(a.entry.pid);
  const p = a.reg.spawn(
    "idle_client",
    "bun",
    ["bench/tools/tcp_client.ts", "--mode", "idle", "--port", String(a.entry.port), "--conns", String(a.plan.idleConns), "--hold-max", "180"],
    { cwd: a.repoRoot, stdin: true, logFile: join(a.dir, "idle_client.log") },
  );
  try {
    const line = await p.waitForLine((l) => l.startsWith('{"ready"'), 150_000);
    const r = JSON.parse(line) as { ready: number; failed: number; ms: number; p50Ms: number; p99Ms: number; errors: Record<string, number> };
    // Let the proxy finish what the last answers started (a benchmark settle, not a test wait).
    await new Promise((res) => setTimeout(res, 500));
    const after = sampleTree(a.entry.pid);
    const perConn = r.ready > 0 ? ((after.rssKb - before.rssKb) * 1024) / r.ready : Number.NaN;
    return {
      value: perConn,
      p50Ms: r.p50Ms,
      p99Ms: r.p99Ms,
      work: r.ready,
      errors: r.failed,
      detail: { rssBeforeKb: before.rssKb, rssAfterKb: after.rssKb, openMs: r.ms, failures: r.errors, processes: after.pids.length },
    };
  } finally {
    p.write("close\n");
    const t = setTimeout(() => p.signal("SIGKILL"), 20_000);
    await p.exited;
    clearTimeout(t);
  }
}

export const SCENARIOS: readonly Scenario[] = [
  {
    id: "newconn",
    title: "TLS passthrough by SNI, new connection per request (wrk, Connection: close)",
    profile: "conn",
    routing: "sni",
    backend: "tls",
    metric: { name: "requests/s", unit: "req/s", higherIsBetter: true },
    workUnit: "requests",
    includesDirect: true,
    freshPeerPerRound: false,
    warmup: true,
    measure: (a) => wrkMeasure(a, true, true),
  },
  {
    id: "keepalive",
    title: "TLS passthrough by SNI, keep-alive (wrk, many small requests per connection)",
    profile: "conn",
    routing: "sni",
    backend: "tls",
    metric: { name: "requests/s", unit: "req/s", higherIsBetter: true },
    workUnit: "requests",
    includesDirect: true,
    freshPeerPerRound: false,
    warmup: true,
    measure: (a) => wrkMeasure(a, false, true),
  },
  {
    id: "bulk1",
    title: "Bulk transfer through an SNI route, 1 stream (raw TCP after a ClientHello)",
    profile: "bulk",
    routing: "sni",
    backend: "bulk",
    metric: { name: "Gbit/s", unit: "Gbit/s", higherIsBetter: true },
    workUnit: "bytes",
    includesDirect: true,
    freshPeerPerRound: false,
    warmup: true,
    measure: (a) => bulkMeasure(a, 1, "tls"),
  },
  {
    id: "bulk4",
    title: "Bulk transfer through an SNI route, 4 streams in parallel",
    profile: "bulk",
    routing: "sni",
    backend: "bulk",
    metric: { name: "Gbit/s", unit: "Gbit/s", higherIsBetter: true },
    workUnit: "bytes",
    includesDirect: true,
    freshPeerPerRound: false,
    warmup: true,
    measure: (a) => bulkMeasure(a, 4, "tls"),
  },
  {
    id: "idle",
    title: "Idle proxied connections held open: RSS per connection",
    profile: "idle",
    routing: "sni",
    backend: "hold",
    metric: { name: "RSS bytes per connection", unit: "B/conn", higherIsBetter: false },
    workUnit: "connections",
    includesDirect: false,
    freshPeerPerRound: true,
    warmup: false,
    measure: idleMeasure,
  },
  // The tcp section: the same workloads as plain L4 forwarding. No TLS at the
  // ends of the request scenarios (plain HTTP/1.1 to an nginx backend), so a
  // new connection costs only TCP set-up and teardown at every hop, and the
  // proxies' differences are not buried under two TLS handshakes.
  {
    id: "tcp_newconn",
    title: "Plain TCP forwarding, new connection per request (wrk over plain HTTP, Connection: close)",
    profile: "conn",
    routing: "tcp",
    backend: "http",
    metric: { name: "requests/s", unit: "req/s", higherIsBetter: true },
    workUnit: "requests",
    includesDirect: true,
    freshPeerPerRound: false,
    warmup: true,
    measure: (a) => wrkMeasure(a, true, false),
  },
  {
    id: "tcp_keepalive",
    title: "Plain TCP forwarding, keep-alive (wrk over plain HTTP, many small requests per connection)",
    profile: "conn",
    routing: "tcp",
    backend: "http",
    metric: { name: "requests/s", unit: "req/s", higherIsBetter: true },
    workUnit: "requests",
    includesDirect: true,
    freshPeerPerRound: false,
    warmup: true,
    measure: (a) => wrkMeasure(a, false, false),
  },
  {
    id: "tcp_bulk1",
    title: "Plain TCP forwarding, bulk transfer, 1 stream",
    profile: "bulk",
    routing: "tcp",
    backend: "bulk",
    metric: { name: "Gbit/s", unit: "Gbit/s", higherIsBetter: true },
    workUnit: "bytes",
    includesDirect: true,
    freshPeerPerRound: false,
    warmup: true,
    measure: (a) => bulkMeasure(a, 1, "plain"),
  },
  {
    id: "tcp_bulk4",
    title: "Plain TCP forwarding, bulk transfer, 4 streams in parallel",
    profile: "bulk",
    routing: "tcp",
    backend: "bulk",
    metric: { name: "Gbit/s", unit: "Gbit/s", higherIsBetter: true },
    workUnit: "bytes",
    includesDirect: true,
    freshPeerPerRound: false,
    warmup: true,
    measure: (a) => bulkMeasure(a, 4, "plain"),
  },
  // The http section (issue 13): wrk speaks HTTPS to the proxy with SNI and
  // Host "localhost"; the proxy terminates TLS, routes the request by Host and
  // sends it over HTTP/1.1 to the plain nginx backend on a kept upstream
  // connection. "direct" is wrk over HTTPS to the same nginx's TLS port (the
  // backend terminating TLS itself, the same certificate).
  {
    id: "http_keepalive",
    title: "HTTPS reverse proxy, routing by Host, keep-alive (wrk, many small requests per connection)",
    profile: "conn",
    routing: "http",
    backend: "web",
    metric: { name: "requests/s", unit: "req/s", higherIsBetter: true },
    workUnit: "requests",
    includesDirect: true,
    freshPeerPerRound: false,
    warmup: true,
    measure: (a) => wrkMeasure(a, false, true, HTTP_ROUTED_HOST),
  },
  {
    id: "http_newconn",
    title: "HTTPS reverse proxy, routing by Host, new connection per request (wrk, Connection: close: a TLS handshake at the proxy per request)",
    profile: "conn",
    routing: "http",
    backend: "web",
    metric: { name: "requests/s", unit: "req/s", higherIsBetter: true },
    workUnit: "requests",
    includesDirect: true,
    freshPeerPerRound: false,
    warmup: true,
    measure: (a) => wrkMeasure(a, true, true, HTTP_ROUTED_HOST),
  },
];
