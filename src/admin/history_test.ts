import { describe, expect, test } from "bun:test";
import { HANDSHAKE_BUCKETS, type HistogramSnapshot, StatsRegistry, type StatsSnapshot, StatsWriter } from "../stats/mod.ts";
import { History, HISTORY_OTHER } from "./history.ts";

/** A registry with one slab and a writer, and snapshots at chosen times. */
function stats(listeners: string[], routes: string[], capacity = 16) {
  const reg = new StatsRegistry(capacity);
  const slots = reg.assign(listeners, routes);
  const slab = reg.createSlab();
  const w = new StatsWriter(slab);
  return { reg, slots, w, snap: (nowMs: number): StatsSnapshot => reg.snapshot([slab], { nowMs }) };
}

describe("History", () => {
  test("rates are counter differences over the time between samples", () => {
    const { slots, w, snap } = stats(["sni"], ["app"]);
    const h = new History({ intervalMs: 5000, windowMs: 60_000 });
    h.sample(snap(1000)); // baseline only
    expect(h.toJSON().t).toEqual([]);
    for (let i = 0; i < 10; i++) {
      w.opened(slots.listeners.sni!);
      w.opened(slots.routes.app!);
    }
    w.bytes(slots.routes.app!, 5000, 50_000);
    w.bytes(slots.listeners.sni!, 5000, 50_000);
    w.error(slots.listeners.sni!, "NO_ROUTE");
    w.error(slots.listeners.sni!, "NO_ROUTE");
    w.error(slots.listeners.sni!, "DOWNSTREAM_RESET"); // an abort: not an error
    for (let i = 0; i < 9; i++) w.handshake(slots.listeners.sni!, 0.0004);
    w.handshake(slots.listeners.sni!, 0.2);
    h.sample(snap(6000));
    const j = h.toJSON();
    expect(j.t).toEqual([6000]);
    expect(j.interval_s).toBe(5);
    const sni = j.listeners.find((s) => s.name === "sni")!;
    expect(sni.current).toBe(true);
    expect(sni.conn_per_s).toEqual([2]);
    expect(sni.active).toEqual([10]);
    expect(sni.bytes_in_per_s).toEqual([1000]);
    expect(sni.bytes_out_per_s).toEqual([10_000]);
    expect(sni.errors_per_s).toEqual([0.4]);
    expect(sni.errors_by_code).toEqual({ NO_ROUTE: [0.4] });
    expect(sni.handshake_p50_ms[0]).toBeGreaterThan(0);
    expect(sni.handshake_p50_ms[0]).toBeLessThanOrEqual(0.5);
    expect(sni.handshake_p99_ms[0]).toBeGreaterThan(100);
    expect(sni.handshake_p99_ms[0]).toBeLessThanOrEqual(250);
    expect(j.routes.map((r) => r.name)).toEqual(["app"]);
    expect(j.routes[0]!.conn_per_s).toEqual([2]);
    // No dial in the connect histogram: no point.
    expect(j.routes[0]!.connect_p50_ms).toEqual([null]);
    expect(j.total.conn_per_s).toEqual([2]);
    expect(j.total.bytes_out_per_s).toEqual([10_000]);

    // Nothing happens: rates drop to 0 and latencies have no point.
    h.sample(snap(11_000));
    const k = h.toJSON();
    expect(k.t).toEqual([6000, 11_000]);
    const sni2 = k.listeners.find((s) => s.name === "sni")!;
    expect(sni2.conn_per_s).toEqual([2, 0]);
    expect(sni2.handshake_p50_ms[1]).toBeNull();
    expect(sni2.errors_by_code).toEqual({ NO_ROUTE: [0.4, 0] });
  });

  test("latency percentiles come from the histogram change, not its whole life", () => {
    const { slots, w, snap } = stats(["sni"], []);
    const h = new History();
    for (let i = 0; i < 100; i++) w.handshake(slots.listeners.sni!, 5); // old and slow
    h.sample(snap(0));
    for (let i = 0; i < 100; i++) w.handshake(slots.listeners.sni!, 0.0002);
    h.sample(snap(5000));
    const sni = h.toJSON().listeners[0]!;
    expect(sni.handshake_p99_ms[0]).toBeLessThanOrEqual(HANDSHAKE_BUCKETS[0]! * 1000);
  });

  test("connect percentiles interpolate inside the bucket, like histogram_quantile", () => {
    const { snap } = stats(["tcp"], ["r"]);
    const bounds = [0.001, 0.01, 0.1];
    const withConnect = (s: StatsSnapshot, cum: number[]): StatsSnapshot => {
      const connect: HistogramSnapshot = { bounds, buckets: cum, sum: 0, count: cum[cum.length - 1]! };
      return { ...s, routes: s.routes.map((r) => ({ ...r, connect })) };
    };
    const h = new History();
    h.sample(withConnect(snap(0), [0, 0, 0, 0]));
    h.sample(withConnect(snap(5000), [0, 10, 10, 10]));
    const r = h.toJSON().routes[0]!;
    expect(r.connect_p50_ms[0]!).toBeCloseTo(5.5, 2);
    expect(r.connect_p99_ms[0]!).toBeCloseTo(9.91, 2);
  });

  test("the ring keeps the window and no more; ?window cuts it shorter", () => {
    const { slots, w, snap } = stats(["sni"], []);
    const h = new History({ intervalMs: 1000, windowMs: 5000 });
    expect(h.capacity).toBe(5);
    h.sample(snap(0));
    for (let i = 1; i <= 12; i++) {
      for (let k = 0; k < i; k++) w.opened(slots.listeners.sni!);
      h.sample(snap(i * 1000));
    }
    const j = h.toJSON();
    expect(j.t).toEqual([8000, 9000, 10_000, 11_000, 12_000]);
    expect(j.listeners[0]!.conn_per_s).toEqual([8, 9, 10, 11, 12]);
    expect(j.window_s).toBe(5);
    const short = h.toJSON(2);
    expect(short.t).toEqual([11_000, 12_000]);
    expect(short.listeners[0]!.conn_per_s).toEqual([11, 12]);
    expect(h.toJSON(0).t).toEqual([]);
  });

  test("a sample not newer than the last is ignored", () => {
    const { snap } = stats(["sni"], []);
    const h = new History();
    h.sample(snap(1000));
    h.sample(snap(6000));
    h.sample(snap(6000));
    h.sample(snap(5000));
    expect(h.toJSON().t).toEqual([6000]);
  });

  test("series are capped: names beyond the cap add up under _other", () => {
    const routes = ["a", "b", "c", "d"];
    const { slots, w, snap } = stats(["l"], routes);
    const h = new History({ maxRoutes: 2 });
    h.sample(snap(0));
    for (const r of routes) w.opened(slots.routes[r]!);
    h.sample(snap(5000));
    const j = h.toJSON();
    expect(h.seriesCount).toBe(3);
    expect(j.routes.map((r) => r.name)).toEqual(["a", "b", HISTORY_OTHER]);
    expect(j.routes[2]!.conn_per_s).toEqual([0.4]);
  });

  test("a series created later has no points before it existed", () => {
    const reg = new StatsRegistry(8);
    reg.assign(["l"], ["a"]);
    const slab = reg.createSlab();
    const h = new History();
    h.sample(reg.snapshot([slab], { nowMs: 0 }));
    h.sample(reg.snapshot([slab], { nowMs: 5000 }));
    const slots = reg.assign(["l"], ["a", "b"]); // a reload adds route b
    const w = new StatsWriter(slab);
    w.opened(slots.routes.b!);
    h.sample(reg.snapshot([slab], { nowMs: 10_000 }));
    h.sample(reg.snapshot([slab], { nowMs: 15_000 }));
    const b = h.toJSON().routes.find((r) => r.name === "b")!;
    // Its first sample only sets the baseline: the connection before it is not a rate.
    expect(b.conn_per_s).toEqual([null, 0, 0]);
    expect(b.active).toEqual([null, 1, 1]);
  });

  test("error codes: a few slots each, the rest under _other, idle slots reused", () => {
    const { slots, w, snap } = stats(["l"], []);
    const h = new History({ intervalMs: 1000, windowMs: 3000, codeSlots: 2 });
    const l = slots.listeners.l!;
    h.sample(snap(0));
    w.error(l, "NO_ROUTE");
    w.error(l, "NO_ROUTE");
    w.error(l, "TLS_DECODE");
    w.error(l, "AUTH_DENIED");
    h.sample(snap(1000));
    let codes = h.toJSON().listeners[0]!.errors_by_code;
    expect(Object.keys(codes).sort()).toEqual([HISTORY_OTHER, "NO_ROUTE", expect.any(String)].sort() as string[]);
    expect(codes.NO_ROUTE).toEqual([2]);
    expect(h.toJSON().listeners[0]!.errors_per_s).toEqual([4]);
    // Three quiet samples push those codes out of the window; a new code takes a freed slot.
    for (const t of [2000, 3000, 4000]) h.sample(snap(t));
    w.error(l, "UPSTREAM_CONNECT_REFUSED");
    h.sample(snap(5000));
    codes = h.toJSON().listeners[0]!.errors_by_code;
    expect(codes).toEqual({ UPSTREAM_CONNECT_REFUSED: [0, 0, 1] });
  });

  test("memory is fixed by the options: rings do not grow with samples", () => {
    const { slots, w, snap } = stats(["l"], ["r"]);
    const h = new History({ intervalMs: 1000, windowMs: 10_000 });
    for (let i = 0; i < 1000; i++) {
      w.opened(slots.routes.r!);
      h.sample(snap(i * 1000));
    }
    const j = h.toJSON();
    expect(j.t).toHaveLength(10);
    expect(j.routes[0]!.conn_per_s).toEqual(new Array(10).fill(1));
    expect(h.toJSON(3600).t).toHaveLength(10);
  });

  test("a route a reload removed loses its series once its window is idle", () => {
    const reg = new StatsRegistry(8);
    let slots = reg.assign(["l"], ["a", "gone"]);
    const slab = reg.createSlab();
    const w = new StatsWriter(slab);
    const h = new History({ intervalMs: 1000, windowMs: 3000 });
    let t = 0;
    const tick = () => h.sample(reg.snapshot([slab], { nowMs: (t += 1000) }));
    tick();
    w.opened(slots.routes.gone!);
    w.closed(slots.routes.gone!);
    tick();
    slots = reg.assign(["l"], ["a"]);
    tick();
    expect(h.toJSON().routes.map((r) => r.name)).toEqual(["a", "gone"]);
    for (let i = 0; i < 3; i++) tick();
    expect(h.toJSON().routes.map((r) => r.name)).toEqual(["a"]);
  });
});
