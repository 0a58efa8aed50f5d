/**
 * Stats hot path: what a worker pays per connection and per chunk to keep its
 * counters (StatsWriter on a SharedArrayBuffer slab), next to the same stores
 * into a private Float64Array as the floor, and Atomics for the
 * max_connections cell. Then the supervisor side: summing slabs and
 * rendering /metrics (off the hot path, but a scrape should stay cheap).
 *
 *   bun bench/micro/stats_bench.ts            # table
 *   bun bench/micro/stats_bench.ts --json     # machine-readable (mitata JSON)
 *   deno run -A bench/micro/stats_bench.ts
 */

import process from "node:process";
import { bench, do_not_optimize, group, run, summary } from "mitata";
import {
  createLimits,
  type ProcessInfo,
  release,
  renderPrometheus,
  StatsRegistry,
  StatsWriter,
  tryAcquire,
} from "../../src/stats/mod.ts";

const WORKERS = 4;
const LISTENERS = 4;
const ROUTES = 60;

const reg = new StatsRegistry(LISTENERS + ROUTES);
const slots = reg.assign(
  Array.from({ length: LISTENERS }, (_, i) => `listener-${i}`),
  Array.from({ length: ROUTES }, (_, i) => `route-${i}.example.com`),
);
const slabs = Array.from({ length: WORKERS }, () => reg.createSlab());
const w = new StatsWriter(slabs[0]!, 1);
const L = slots.listeners["listener-0"]!;
const R = slots.routes["route-7.example.com"]!;

// The floor: the same cells in memory no other thread can see.
const local = new Float64Array(4096);
const limits = createLimits(reg.capacity);

summary(() => {
  group("per connection (worker)", () => {
    bench("StatsWriter: connection lifecycle (listener + route)", () => {
      w.opened(L);
      w.handshake(L, 0.0008);
      w.opened(R);
      w.closed(R);
      w.duration(R, 3.2);
      w.closed(L);
      w.duration(L, 3.2);
    });
    bench("private Float64Array: same 7 updates (floor)", () => {
      local[10] += 1;
      local[11] += 1;
      local[40] += 1;
      local[41] += 0.0008;
      local[100] += 1;
      local[101] -= 1;
      local[160] += 3.2;
    });
    bench("tryAcquire + release (Atomics, max_connections)", () => {
      if (tryAcquire(limits, L, 10_000)) release(limits, L);
    });
  });
});

summary(() => {
  group("per chunk / per event (worker)", () => {
    bench("bytes(listener) + bytes(route)", () => {
      w.bytes(L, 16_384, 0);
      w.bytes(R, 16_384, 0);
    });
    bench("error(code)", () => w.error(L, "UPSTREAM_RESET"));
    bench("handshake: typical (first bucket)", () => w.handshake(L, 0.0004));
    bench("handshake: slow (+Inf bucket, full scan)", () => w.handshake(L, 30));
    bench("heartbeat", () => w.heartbeat(1_700_000_000_000));
  });
});

// Fill every slab so the supervisor side sums real numbers.
for (const slab of slabs) {
  const sw = new StatsWriter(slab);
  for (const name of Object.keys(slots.routes)) {
    const r = slots.routes[name]!;
    sw.opened(r);
    sw.bytes(r, 1000, 100_000);
    sw.duration(r, 12);
    sw.error(r, "UPSTREAM_CONNECT_REFUSED");
  }
  for (const l of Object.values(slots.listeners)) {
    sw.opened(l);
    sw.handshake(l, 0.002);
  }
  sw.heartbeat(Date.now());
}
const PROC: ProcessInfo = { version: "bench", runtime: "bench", startTimeSeconds: 1, residentMemoryBytes: 1, cpuSecondsTotal: 1 };
const snap = reg.snapshot(slabs);

group(`scrape (supervisor): ${WORKERS} slabs × ${LISTENERS + ROUTES} slots`, () => {
  bench("snapshot", () => do_not_optimize(reg.snapshot(slabs)));
  bench("renderPrometheus(snapshot)", () => do_not_optimize(renderPrometheus(snap, PROC)));
});

await run({ format: process.argv.includes("--json") ? "json" : "mitata" });
