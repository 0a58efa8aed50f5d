import { expect, test } from "bun:test";
import { renderIdleRss, renderMarkdown, renderSvg, renderTargets } from "./report.ts";
import { bestPeer, computeRatios, computeTargets, type Results, type Sample, type ScenarioResult, summarise } from "./results.ts";
import { PLANS, type ScenarioId } from "./scenarios.ts";

function sample(entry: string, round: number, value: number, extra: Partial<Sample> = {}): Sample {
  return { round, entry, value, p50Ms: 1, p99Ms: 2, work: value, errors: 0, proxyCpuS: 1, perCpuS: value, peakRssKb: 1000, detail: {}, ...extra };
}

function scenario(id: ScenarioId, values: Record<string, number[]>, higherIsBetter = true): ScenarioResult {
  const samples = Object.entries(values).flatMap(([entry, vs]) => vs.map((v, i) => sample(entry, i + 1, v)));
  return {
    id,
    title: id,
    profile: "conn",
    routing: id.startsWith("tcp_") ? "tcp" : id.startsWith("http_") ? "http" : "sni",
    metric: { name: "x", unit: higherIsBetter ? "req/s" : "B/conn", higherIsBetter },
    workUnit: "requests",
    entries: Object.keys(values).map((name) => ({ name, settings: {}, sniCheck: "ok" })),
    samples,
    summary: summarise(samples),
  };
}

test("summarise takes medians and leaves failed samples out", () => {
  const s = summarise([sample("a", 1, 10), sample("a", 2, 30), sample("a", 3, 20), sample("a", 4, Number.NaN, { error: "boom", errors: 2 })]);
  expect(s.a!.median).toBe(20);
  expect(s.a!.n).toBe(3);
  expect(s.a!.errors).toBe(2);
  expect(s.a!.min).toBe(10);
});

test("targets are medians of per-round ratios with pass/miss", () => {
  const newconn = scenario("newconn", { direct: [100, 100, 100], edgemux: [120, 90, 115], haproxy: [100, 100, 100], nginx: [110, 100, 100], sniproxy: [50, 50, 50] });
  const idle = scenario("idle", { edgemux: [2000, 2100, 1900], haproxy: [3300, 3300, 3300] }, false);
  const bulk1 = scenario("bulk1", { direct: [10, 10, 10], edgemux: [7, 7, 7], haproxy: [5, 5, 5], nginx: [8, 8, 8], sniproxy: [1, 1, 1] });
  const t = computeTargets([newconn, idle, bulk1], ["edgemux"], 1500);
  const get = (id: string) => t.find((x) => x.id === id)!;
  expect(get("newconn_vs_haproxy").value).toBeCloseTo(1.15); // ratios 1.2, 0.9, 1.15
  expect(get("newconn_vs_haproxy").pass).toBe(true);
  expect(get("newconn_vs_nginx").value).toBeCloseTo(1.09, 2);
  expect(get("idle_rss_vs_haproxy").value).toBeCloseTo(2000 / 3300);
  expect(get("idle_rss_vs_haproxy").pass).toBe(true);
  expect(get("bulk1_vs_best").against).toBe("nginx");
  expect(get("bulk1_vs_best").pass).toBe(false);
  expect(get("bulk1_vs_direct").pass).toBe(true);
  expect(get("keepalive_vs_haproxy").pass).toBeNull(); // scenario not run
  expect(get("clienthello_parse").value).toBeCloseTo(1.5);
  expect(get("clienthello_parse").pass).toBe(true);
  expect(bestPeer(idle)).toBe("haproxy");
});

test("markdown and SVG show every target with its verdict", () => {
  const newconn = scenario("newconn", { direct: [100, 100, 100], edgemux: [80, 80, 80], haproxy: [100, 100, 100] });
  const r: Results = {
    version: 1,
    startedAt: "2026-01-01T00:00:00.000Z",
    finishedAt: "2026-01-01T00:05:00.000Z",
    mode: "quick",
    plan: PLANS.quick,
    machine: { cpus: 2, cpuModel: "test", kernel: "Linux", bun: "bun", fdLimit: "20000", loadAvgAtStart: "0", loadAvgAtEnd: "0" },
    notes: ["a note"],
    peers: [{ name: "edgemux", kind: "proxy", version: "x", unavailable: null }],
    scenarios: [newconn],
    micro: [],
    microFailures: [],
    targets: computeTargets([newconn], ["edgemux", "naive_bun"], null),
    ratios: computeRatios([newconn]),
  };
  const md = renderMarkdown(r);
  expect(md).toContain("| new-connection rate vs HAProxy | ≥ 1.1× | 0.80× | **miss** |");
  expect(md).toContain("### newconn");
  expect(md).toContain("a note");
  const svg = renderSvg(r);
  expect(svg.startsWith("<svg")).toBe(true);
  expect(svg).toContain("edgemux 0.80×");
  expect(svg.trim().endsWith("</svg>")).toBe(true);
});

test("issue 12's targets divide work per CPU-second, and the naive forwarder is not judged against itself", () => {
  const nc = scenario("newconn", { edgemux: [100, 100, 100], haproxy: [100, 100, 100], naive_bun: [100, 100, 100] });
  for (const s of nc.samples) s.perCpuS = s.entry === "edgemux" ? 30 : s.entry === "haproxy" ? 20 : 40;
  const t = computeTargets([nc], ["edgemux", "naive_bun"], null);
  const one = (id: string, subject: string) => t.find((x) => x.id === id && x.subject === subject);
  expect(one("newconn_cpu_vs_haproxy", "edgemux")!.value).toBeCloseTo(1.5);
  expect(one("newconn_cpu_vs_haproxy", "edgemux")!.pass).toBe(true);
  expect(one("newconn_cpu_vs_naive", "edgemux")!.value).toBeCloseTo(0.75);
  expect(one("newconn_cpu_vs_naive", "edgemux")!.pass).toBe(false);
  expect(one("newconn_cpu_vs_naive", "naive_bun")).toBeUndefined();
  expect(renderTargets(t)).toContain("| new connections per CPU-s vs HAProxy | ≥ 1× | 1.50× per CPU-s | **pass** |");
});

test("tcp and before/after tables: rate and per-CPU-second ratios, medians of rounds", () => {
  const tcp = scenario("tcp_newconn", { direct: [200, 200, 200], edgemux: [90, 110, 100], haproxy: [100, 100, 100], nginx: [50, 50, 50] });
  // perCpuS differs from the rate: edgemux does 2× HAProxy's work per CPU-second in every round.
  for (const s of tcp.samples) if (s.entry === "edgemux") s.perCpuS = 20;
  for (const s of tcp.samples) if (s.entry === "haproxy") s.perCpuS = 10;
  const sni = scenario("keepalive", { edgemux: [80, 80, 80], "edgemux-before": [100, 100, 100], haproxy: [100, 100, 100] });
  const sniNoBaseline = scenario("bulk1", { edgemux: [1, 1, 1], haproxy: [1, 1, 1] });
  const rows = computeRatios([tcp, sni, sniNoBaseline]);
  const get = (scenario: string, subject: string, against: string) => rows.find((r) => r.scenario === scenario && r.subject === subject && r.against === against);
  expect(get("tcp_newconn", "edgemux", "haproxy")!.rate).toBeCloseTo(1.0);
  expect(get("tcp_newconn", "edgemux", "haproxy")!.perCpu).toBeCloseTo(2.0);
  expect(get("tcp_newconn", "edgemux", "nginx")!.rate).toBeCloseTo(2.0);
  expect(get("tcp_newconn", "edgemux", "direct")!.rate).toBeCloseTo(0.5);
  expect(get("tcp_newconn", "naive_bun", "haproxy")).toBeUndefined(); // did not run
  expect(get("keepalive", "edgemux-before", "haproxy")!.rate).toBeCloseTo(1.0);
  expect(get("keepalive", "edgemux", "haproxy")!.rate).toBeCloseTo(0.8);
  expect(get("keepalive", "edgemux", "edgemux-before")!.rate).toBeCloseTo(0.8);
  expect(rows.some((r) => r.scenario === "bulk1" && r.table === "before_after")).toBe(false); // no edgemux-before there
  expect(get("bulk1", "edgemux", "haproxy")!.table).toBe("sni"); // but every SNI scenario has its ratio table
  const r: Results = {
    version: 1,
    startedAt: "2026-01-01T00:00:00.000Z",
    finishedAt: "2026-01-01T00:05:00.000Z",
    mode: "quick",
    plan: PLANS.quick,
    machine: { cpus: 2, cpuModel: "test", kernel: "Linux", bun: "bun", fdLimit: "20000", loadAvgAtStart: "0", loadAvgAtEnd: "0" },
    notes: [],
    peers: [{ name: "edgemux", kind: "proxy", version: "x", unavailable: null }],
    scenarios: [tcp, sni],
    micro: [],
    microFailures: [],
    targets: [],
    ratios: rows,
    baseline: { dir: "/tmp/before", version: "0.1.0 (130d0ec)" },
  };
  const md = renderMarkdown(r);
  expect(md).toContain("| tcp_newconn | edgemux | 1.00× | 2.00× | 2.00× | 0.40× | 0.50× |");
  expect(md).toContain("## SNI section: every ratio");
  expect(md).toContain("| keepalive | edgemux | 0.80× |");
  expect(md).toContain("No scenario with a target ran");
  expect(md).toContain("| keepalive | 1.00× | 1.00× | 0.80× | 0.80× | 0.80× | 0.80× |");
});

test("renderIdleRss: medians, spread and the agent's target; a failed measurement says why", () => {
  const md = renderIdleRss({
    edgeMb: 60,
    agentMb: 34.5,
    bareMb: 23.3,
    runs: [{ edgeMb: 59, agentMb: 34, bareMb: 23 }, { edgeMb: 60, agentMb: 34.5, bareMb: 23.3 }, { edgeMb: 61, agentMb: 36, bareMb: 23.5 }],
    settleMs: 2000,
    subject: "bun 1.4.5, source",
  });
  expect(md).toContain("| agent, 1 idle session | 34.5 | 34.0 – 36.0 | ≤ 35: **pass** |");
  expect(md).toContain("| edge, 1 worker, 1 idle session | 60.0 | 59.0 – 61.0 | – |");
  expect(renderIdleRss({ error: "scripts/idle_rss.ts exited 1\nmore" })).toBe("Measurement failed: scripts/idle_rss.ts exited 1");
});

test("http section: ratios against nginx and HAProxy, and issue 13's target against the better of them", () => {
  const ka = scenario("http_keepalive", {
    direct: [400, 400, 400],
    edgemux: [110, 90, 100],
    nginx: [100, 100, 100],
    haproxy: [120, 120, 120],
  });
  // Work per CPU-second: edgemux 2× nginx's, 1.5× HAProxy's in every round.
  for (const s of ka.samples) s.perCpuS = s.entry === "edgemux" ? 60 : s.entry === "nginx" ? 30 : s.entry === "haproxy" ? 40 : null;
  const nc = scenario("http_newconn", { direct: [10, 10, 10], edgemux: [8, 8, 8], nginx: [9, 9, 9], haproxy: [5, 5, 5] });
  const rows = computeRatios([ka, nc]);
  const get = (scenario: string, against: string) => rows.find((r) => r.scenario === scenario && r.subject === "edgemux" && r.against === against)!;
  expect(get("http_keepalive", "nginx").table).toBe("http");
  expect(get("http_keepalive", "nginx").rate).toBeCloseTo(1.0);
  expect(get("http_keepalive", "nginx").perCpu).toBeCloseTo(2.0);
  expect(get("http_keepalive", "haproxy").perCpu).toBeCloseTo(1.5);
  expect(get("http_keepalive", "direct").rate).toBeCloseTo(0.25);
  expect(get("http_newconn", "haproxy").rate).toBeCloseTo(1.6);
  expect(rows.some((r) => r.subject === "naive_bun")).toBe(false);

  expect(bestPeer(ka)).toBe("haproxy");
  const t = computeTargets([ka, nc], ["edgemux", "naive_bun"], null);
  const http = t.filter((x) => x.id === "http_keepalive_vs_best");
  expect(http.length).toBe(1); // edgemux only: the naive forwarder has no HTTP
  expect(http[0]!.against).toBe("haproxy");
  expect(http[0]!.value).toBeCloseTo(100 / 120);
  expect(http[0]!.pass).toBe(false);
  expect(renderTargets(t)).toContain("| HTTPS keep-alive requests/s vs the better of nginx and HAProxy (issue 13) (haproxy) | ≥ 1× | 0.83× | **miss** | – | – |");

  const r: Results = {
    version: 1,
    startedAt: "2026-01-01T00:00:00.000Z",
    finishedAt: "2026-01-01T00:05:00.000Z",
    mode: "quick",
    plan: PLANS.quick,
    machine: { cpus: 2, cpuModel: "test", kernel: "Linux", bun: "bun", fdLimit: "20000", loadAvgAtStart: "0", loadAvgAtEnd: "0" },
    notes: [],
    peers: [{ name: "edgemux", kind: "proxy", version: "x", unavailable: null }],
    scenarios: [ka, nc],
    micro: [],
    microFailures: [],
    targets: t,
    ratios: rows,
  };
  const md = renderMarkdown(r);
  expect(md).toContain("## http section: HTTPS reverse proxy, routing by Host");
  expect(md).toContain("| scenario | subject | ÷ nginx, rate | ÷ nginx, per CPU-s | ÷ haproxy, rate | ÷ haproxy, per CPU-s | vs direct, rate |");
  expect(md).toContain("| http_keepalive | edgemux | 1.00× | 2.00× | 0.83× | 1.50× | 0.25× |");
  expect(md).toContain("| http_newconn | edgemux | 0.89× | 0.89× | 1.60× | 1.60× | 0.80× |");
  expect(md).toContain("Host routing check: ok");
  expect(md).not.toContain("## SNI section");
});
