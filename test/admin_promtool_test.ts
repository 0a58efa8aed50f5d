/**
 * The /metrics text checked by a real Prometheus parser and linter:
 * `promtool check metrics` from Debian's prometheus package (CI installs it).
 * promtool parses the exposition and lints names (counters end in _total,
 * units as suffixes, ...); it exits 0 only when both are clean.
 */

import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { buildStatus, createAdminApp, type AdminSource, type StatusJson } from "../src/admin/mod.ts";
import type { ListenerConfig, RouteConfig } from "../src/config/types.ts";
import { ERROR_CODES } from "../src/errors/mod.ts";
import { type ProcessInfo, renderPrometheus, StatsRegistry, StatsWriter } from "../src/stats/mod.ts";

const PROMTOOL = "/usr/bin/promtool";

function promtool(text: string): { status: number | null; output: string } {
  const r = spawnSync(PROMTOOL, ["check", "metrics"], { input: text, encoding: "utf8", timeout: 20_000 });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const listeners: ListenerConfig[] = [
  {
    name: "public-tls",
    kind: "sni",
    address: { kind: "tcp", hostname: "0.0.0.0", port: 443 },
    acceptProxy: "none",
    handshakeTimeoutMs: 10_000,
    idleTimeoutMs: 300_000,
    maxClientHello: 16_384,
    maxConnections: 10_000,
  },
  {
    name: "behind-lb",
    kind: "sni",
    address: { kind: "unix", path: "/run/edgemux/lb.sock" },
    acceptProxy: "v2",
    handshakeTimeoutMs: 5_000,
    idleTimeoutMs: 0,
    maxClientHello: 16_384,
    maxConnections: 0,
  },
];

const routeNames = ["api.example.com", "*.apps.example.com", "*", 'odd "name" with \\ and\nnewline', "zeta.example.org"];
const routes: RouteConfig[] = routeNames.map((name, i) => ({
  name,
  match: name.includes("\n") ? "odd.example" : name,
  alpn: i === 0 ? ["h2", "http/1.1"] : [],
  listeners: [],
  targets: [{ kind: "tcp", hostname: `10.0.0.${i + 1}`, port: 8443 }],
  balance: "round_robin",
  connectTimeoutMs: 5000,
  proxyProtocol: i % 2 === 0 ? "none" : "v2",
  directory: null,
}));

const PROC: ProcessInfo = {
  version: "0.1.0",
  runtime: "bun 1.4.5",
  startTimeSeconds: 1_767_225_600.25,
  residentMemoryBytes: 73_400_320,
  cpuSecondsTotal: 12.375,
  openFds: 731,
  maxFds: 65_536,
};

/** Three workers' worth of traffic, one restart, routes overflowing the stats capacity. */
function realisticWorld(nowMs: number) {
  const reg = new StatsRegistry(listeners.length + 4); // 5 routes, room for 4: one goes to _other
  const slots = reg.assign(listeners.map((l) => l.name), routeNames, { [routeNames[0]!]: ["10.0.0.5:443", "unix:/run/b.sock"] });
  const slabs = [reg.createSlab(), reg.createSlab(), reg.createSlab()];
  slabs.forEach((slab, w) => {
    const writer = new StatsWriter(slab, w + 1);
    let seed = 7 + w;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 500; i++) {
      const l = slots.listeners[listeners[i % 2]!.name]!;
      if (rand() < 0.05) {
        writer.refused(l);
        writer.error(l, "LISTENER_FULL");
        continue;
      }
      writer.opened(l);
      writer.handshake(l, rand() * rand() * 0.2);
      if (rand() < 0.1) {
        writer.error(l, rand() < 0.5 ? "NO_ROUTE" : "TLS_DECODE");
        writer.closed(l);
        writer.duration(l, rand() * 0.01);
        continue;
      }
      const r = slots.routes[routeNames[Math.floor(rand() * routeNames.length)]!]!;
      writer.opened(r);
      const inB = Math.floor(rand() * 5000);
      const outB = Math.floor(rand() * 500_000);
      writer.bytes(l, inB, outB);
      writer.bytes(r, inB, outB);
      if (rand() < 0.05) {
        writer.error(l, "UPSTREAM_CONNECT_REFUSED");
        writer.error(r, "UPSTREAM_CONNECT_REFUSED");
      } else if (rand() < 0.1) {
        // a peer reset: counted as an abort, not an error
        writer.error(l, "DOWNSTREAM_RESET");
        writer.error(r, "DOWNSTREAM_RESET");
      }
      if (i % 10 !== 0) {
        const d = rand() * 120;
        writer.closed(r);
        writer.duration(r, d);
        writer.closed(l);
        writer.duration(l, d);
      }
    }
    // Route targets (one up, one refusing) and a tunnel service.
    const [up, down] = slots.backends[routeNames[0]!]!;
    writer.backendConnected(up!, rand() * 0.002, nowMs - 1000);
    writer.backendFailed(down!, "UPSTREAM_CONNECT_REFUSED", nowMs - 500, nowMs + 1500);
    writer.connect(slots.listeners[listeners[0]!.name]!, rand() * 0.002);
    writer.connect(slots.routes[routeNames[0]!]!, rand() * 0.002);
    // An http route: requests by status class and their latency.
    writer.httpRequest(slots.routes[routeNames[0]!]!, [200, 304, 404, 502][Math.floor(rand() * 4)]!, rand() * 0.3);
    const web = writer.serviceSlot("web");
    writer.serviceOpened(web);
    writer.serviceClosed(web, 100 * w, 2000 * w);
    writer.serviceFailed(web, "SERVICE_OFFLINE");
    writer.heartbeat(nowMs - 200 * w);
  });
  // Worker 2 crashed once and its replacement took the slab over.
  reg.resetGauges(slabs[2]!, reg.createLimits());
  new StatsWriter(slabs[2]!, 9).heartbeat(nowMs - 50);
  return { reg, slabs };
}

describe("promtool check metrics", () => {
  test("promtool is installed (apt-get install prometheus)", () => {
    expect(existsSync(PROMTOOL)).toBe(true);
  });

  test("the harness sees promtool's complaints (a counter without _total fails)", () => {
    const bad = "# HELP edgemux_thing A counter.\n# TYPE edgemux_thing counter\nedgemux_thing 1\n";
    const r = promtool(bad);
    expect(r.status).not.toBe(0);
    expect(r.output).toContain("_total");
    expect(promtool("edgemux_x{a=\"unterminated} 1\n").status).not.toBe(0);
  });

  test("a realistic snapshot renders to text promtool accepts", () => {
    const now = Date.now();
    const { reg, slabs } = realisticWorld(now);
    const snap = reg.snapshot(slabs, { nowMs: now });
    const text = renderPrometheus(snap, PROC);
    // Every family has samples, so the linter sees every name.
    for (const family of text.matchAll(/^# TYPE (\S+) /gm)) {
      expect(text).toMatch(new RegExp(`^${family[1]}(_bucket|_sum|_count)?[{ ]`, "m"));
    }
    expect(text).toContain('route="odd \\"name\\" with \\\\ and\\nnewline"');
    expect(text).toContain('route="_other"');
    expect(text).toContain('edgemux_worker_restarts_total{worker="2"} 1');
    for (const f of ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds"]) {
      expect(text).toContain(`\n# TYPE ${f} `);
    }
    // Every family, process_* with the descriptor counts included, is in the README's table.
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    for (const m of text.matchAll(/^# TYPE (\S+) /gm)) expect(readme).toContain(`| \`${m[1]}\` |`);
    const r = promtool(text);
    expect(r.output).toBe("");
    expect(r.status).toBe(0);
  });

  test("an empty world (no traffic, no workers yet) is valid too", () => {
    const reg = new StatsRegistry(4);
    reg.assign(["only"], []);
    const r = promtool(renderPrometheus(reg.snapshot([]), PROC));
    expect(r.output).toBe("");
    expect(r.status).toBe(0);
  });

  test("the live app's /metrics and /status, backed by real slabs", async () => {
    const now = Date.now();
    const { reg, slabs } = realisticWorld(now);
    const table = slabs.map((_, id) => ({ id, threadId: id + 1, up: true, restarts: id === 2 ? 1 : 0 }));
    const source: AdminSource = {
      status: (): StatusJson =>
        buildStatus({
          version: PROC.version,
          runtime: PROC.runtime,
          pid: 1234,
          startedMs: now - 60_000,
          listeners,
          routes,
          snapshot: reg.snapshot(slabs),
          workers: table,
        }),
      metrics: () =>
        renderPrometheus(reg.snapshot(slabs), PROC, table, [
          { listener: "tunnel", token: "dest", sessions: 3 },
          { listener: "tunnel", token: 'odd"name', sessions: 0 },
        ]),
      workers: () => source.status().workers,
    };
    const app = createAdminApp(source);

    const metrics = await app.request("/metrics");
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const r = promtool(await metrics.text());
    expect(r.output).toBe("");
    expect(r.status).toBe(0);

    const status = await app.request("/status");
    expect(status.status).toBe(200);
    const body = (await status.json()) as StatusJson;
    expect(Object.keys(body).sort()).toEqual(
      ["backends", "listeners", "pid", "routes", "runtime", "services", "started_at", "totals", "tunnels", "uptime_seconds", "version", "workers"],
    );
    expect(body.uptime_seconds).toBeGreaterThanOrEqual(60);
    expect(body.workers).toHaveLength(3);
    expect(body.listeners.map((l) => [l.name, l.address])).toEqual([
      ["public-tls", "0.0.0.0:443"],
      ["behind-lb", "unix:/run/edgemux/lb.sock"],
    ]);
    expect(body.routes.map((r) => r.name)).toEqual([...routeNames, "_other"]);
    const sumAccepted = body.listeners.reduce((n, l) => n + l.accepted, 0);
    expect(body.totals.accepted).toBe(sumAccepted);
    expect(body.totals.accepted + body.totals.refused).toBe(1500);
    const codes = new Set<string>(ERROR_CODES);
    for (const r of body.routes) for (const c of Object.keys(r.errors)) expect(codes.has(c)).toBe(true);
    // Each listener's errors by code are the ones /metrics reports for it, and sum to its errors_total.
    const metricsText = await (await app.request("/metrics")).text();
    for (const l of body.listeners) {
      expect(Object.values(l.errors).reduce((a, b) => a + b, 0)).toBe(l.errors_total);
      const fromMetrics: Record<string, number> = {};
      const re = new RegExp(`^edgemux_listener_errors_total\\{listener="${l.name}",code="([A-Z_]+)"\\} (\\d+)$`, "gm");
      for (const m of metricsText.matchAll(re)) if (m[2] !== "0") fromMetrics[m[1]!] = Number(m[2]);
      expect(l.errors).toEqual(fromMetrics);
      expect(Object.keys(l.errors).length).toBeGreaterThan(0);
      expect(Object.keys(l.aborts)).toEqual(["DOWNSTREAM_RESET"]);
    }

    const health = await app.request("/healthz");
    expect(health.status).toBe(200);
  });
});
