/**
 * Route lookup with 10,000 routes: ns per `RouteTable.lookup`.
 *
 *   bun bench/micro/route_lookup_bench.ts [--json out.json]
 *
 * Table: 6,000 exact names, 3,999 wildcards, one default. Each case cycles
 * through 1,024 distinct names so the branch predictor and caches see a
 * realistic mix. Names from a pool have their string hash cached after the
 * first lookup; the "fresh" pair decodes a new string from bytes each time,
 * as the SNI parser does, and the difference between the two is the lookup
 * on an unhashed string.
 *
 * A baseline wildcard lookup that slices the name at each dot (one substring
 * allocation per label) runs beside the hash probe used by RouteTable.
 *
 * Two measures per case: mitata's wall-clock samples, and the best user-CPU
 * time per call over a few fixed runs (steadier when the machine is shared).
 */

import { writeFileSync } from "node:fs";
import { bench, do_not_optimize, group, run, summary } from "mitata";
import type { RouteConfig } from "../../src/config/types.ts";
import { compileRouteTable } from "../../src/router/mod.ts";

function route(match: string): RouteConfig {
  return {
    name: match,
    match,
    alpn: [],
    listeners: [],
    targets: [{ kind: "tcp", hostname: "127.0.0.1", port: 443 }],
    balance: "round_robin",
    connectTimeoutMs: 1000,
    proxyProtocol: "none",
    directory: null,
  };
}

const routes: RouteConfig[] = [];
for (let i = 0; i < 6000; i++) routes.push(route(`svc${i}.zone${i % 97}.example.com`));
for (let i = 0; i < 3999; i++) routes.push(route(`*.tenant${i}.apps.example.net`));
routes.push(route("*"));
if (routes.length !== 10_000) throw new Error("expected 10,000 routes");

const table = compileRouteTable(routes, "bench");
const noDefault = compileRouteTable(routes.slice(0, -1), "bench");

const POOL = 1024;
const MASK = POOL - 1;
const pool = (f: (i: number) => string) => Array.from({ length: POOL }, (_, k) => f((k * 7919) % 3999));
const exactNames = pool((i) => `svc${i}.zone${i % 97}.example.com`);
const wildNames = pool((i) => `pod-${i}.ns.tenant${i}.apps.example.net`);
const unknownNames = pool((i) => `host${i}.unknown-${i}.example.org`);
const noAlpn: readonly string[] = [];

// Sanity: each pool lands where its name says, or the numbers mean nothing.
for (const [names, t, want] of [
  [exactNames, table, (n: string) => n],
  [wildNames, table, (n: string) => `*.${n.split(".").slice(2).join(".")}`],
  [unknownNames, table, () => "*"],
] as const) {
  for (const n of names) {
    const got = t.lookup(n, noAlpn)?.route.match;
    if (got !== want(n)) throw new Error(`bench setup: ${n} -> ${got}`);
  }
}
if (noDefault.lookup(unknownNames[0]!, noAlpn) !== null) throw new Error("bench setup: miss expected");

/** The obvious alternative: the exact Map, then slice at each dot, longest suffix first. */
const exactByName = new Map<string, RouteConfig>();
const wildBySuffix = new Map<string, RouteConfig>();
for (const r of routes) {
  if (r.match.startsWith("*.")) wildBySuffix.set(r.match.slice(2), r);
  else if (r.match !== "*") exactByName.set(r.match, r);
}
function sliceLookup(name: string): RouteConfig | null {
  const exact = exactByName.get(name);
  if (exact !== undefined) return exact;
  for (let dot = name.indexOf("."); dot > 0; dot = name.indexOf(".", dot + 1)) {
    const r = wildBySuffix.get(name.slice(dot + 1));
    if (r !== undefined) return r;
  }
  return null;
}

const latin1 = new TextDecoder("latin1");
const wildBytes = wildNames.map((n) => new TextEncoder().encode(n));

let k = 0;
const cases: [group: string, name: string, fn: () => unknown][] = [
  ["lookup, 10,000 routes", "exact hit", () => table.lookup(exactNames[k++ & MASK]!, noAlpn)],
  ["lookup, 10,000 routes", "wildcard hit (2 labels under *.tenantN.apps.example.net)", () => table.lookup(wildNames[k++ & MASK]!, noAlpn)],
  ["lookup, 10,000 routes", "default (unknown name)", () => table.lookup(unknownNames[k++ & MASK]!, noAlpn)],
  ["lookup, 10,000 routes", "default (no SNI)", () => table.lookup(null, noAlpn)],
  ["lookup, 10,000 routes", "miss (no default route)", () => noDefault.lookup(unknownNames[k++ & MASK]!, noAlpn)],
  ["wildcard probe: hash walk vs slicing", "baseline: exact Map, then slice + Map.get per dot", () => sliceLookup(wildNames[k++ & MASK]!)],
  ["fresh strings (decoded per lookup)", "decode only", () => latin1.decode(wildBytes[k++ & MASK]!)],
  ["fresh strings (decoded per lookup)", "decode + wildcard lookup", () => table.lookup(latin1.decode(wildBytes[k++ & MASK]!), noAlpn)],
  ["fresh strings (decoded per lookup)", "decode + slice baseline", () => sliceLookup(latin1.decode(wildBytes[k++ & MASK]!))],
];

for (const g of new Set(cases.map((c) => c[0]))) {
  group(g, () => {
    summary(() => {
      for (const [cg, name, fn] of cases) if (cg === g) bench(name, () => do_not_optimize(fn()));
    });
  });
}

const result = await run();

/**
 * CPU time per call (user time, best of 7 runs of 200,000 calls). On a shared
 * machine wall-clock samples include time the process was not scheduled;
 * user CPU time does not, so this column is the steadier one to compare.
 */
function cpuNs(fn: () => unknown): number {
  const n = 200_000;
  let best = Infinity;
  for (let r = 0; r < 7; r++) {
    const t0 = process.cpuUsage().user;
    for (let i = 0; i < n; i++) do_not_optimize(fn());
    best = Math.min(best, ((process.cpuUsage().user - t0) * 1000) / n);
  }
  return best;
}

const stats = new Map(result.benchmarks.flatMap((b) => b.runs.filter((r) => r.stats !== undefined).map((r) => [r.name, r.stats!] as const)));
const rows = cases.map(([, name, fn]) => {
  const st = stats.get(name);
  return { name, avgNs: st?.avg ?? NaN, p50Ns: st?.p50 ?? NaN, p99Ns: st?.p99 ?? NaN, cpuNs: cpuNs(fn) };
});
console.log("\nns/lookup          wall avg   wall p50   wall p99   cpu (best)");
for (const r of rows) {
  const f = (x: number) => x.toFixed(1).padStart(10);
  console.log(`  ${r.name.padEnd(58)}${f(r.avgNs)}${f(r.p50Ns)}${f(r.p99Ns)}${f(r.cpuNs)}`);
}

const jsonAt = process.argv.indexOf("--json");
if (jsonAt >= 0 && process.argv[jsonAt + 1]) {
  writeFileSync(process.argv[jsonAt + 1]!, JSON.stringify({ bench: "route_lookup", routes: routes.length, results: rows }, null, 2) + "\n");
}
