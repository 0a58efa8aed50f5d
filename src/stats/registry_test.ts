import { describe, expect, test } from "bun:test";
import { createSlab, DURATION_BUCKETS, HANDSHAKE_BUCKETS, MAX_CAPACITY, OVERFLOW_NAME } from "./layout.ts";
import { createLimits, held, release, tryAcquire } from "./limits.ts";
import { StatsRegistry } from "./registry.ts";
import { StatsWriter } from "./writer.ts";

describe("StatsRegistry slots", () => {
  test("listeners first in config order, then routes by name; names keep their slots across reloads", () => {
    const reg = new StatsRegistry(8);
    const first = reg.assign(["tls", "alt"], ["zeta", "alpha", "mid"]);
    expect(first).toEqual({ listeners: { tls: 0, alt: 1 }, routes: { alpha: 2, mid: 3, zeta: 4 } });

    // Reload: "mid" removed, "beta" added, order shuffled. Old names keep their slots, new ones append.
    const second = reg.assign(["alt", "tls"], ["beta", "zeta", "alpha"]);
    expect(second).toEqual({ listeners: { alt: 1, tls: 0 }, routes: { alpha: 2, beta: 5, zeta: 4 } });

    // A listener and a route may share a name; they are different slots.
    expect(reg.slotFor("route", "tls")).toBe(6);
    expect(reg.slotFor("listener", "tls")).toBe(0);
  });

  test("names beyond capacity share the overflow slot of their kind, reported as _other", () => {
    const reg = new StatsRegistry(2);
    const map = reg.assign(["l"], ["r1", "r2", "r3"]);
    expect(map.listeners.l).toBe(0);
    expect(map.routes.r1).toBe(1);
    expect(map.routes.r2).toBe(3); // capacity + 1: the route overflow slot
    expect(map.routes.r3).toBe(3);
    expect(reg.slotFor("listener", "late")).toBe(2); // capacity: the listener overflow slot

    const slab = reg.createSlab();
    const w = new StatsWriter(slab);
    w.opened(map.routes.r2!);
    w.opened(map.routes.r3!);
    w.opened(map.routes.r1!);
    const snap = reg.snapshot([slab]);
    expect(snap.routes.map((r) => [r.name, r.accepted])).toEqual([["r1", 1], [OVERFLOW_NAME, 2]]);
    expect(snap.listeners.map((l) => l.name)).toEqual(["l", OVERFLOW_NAME]);
  });

  test("capacity is validated", () => {
    expect(() => new StatsRegistry(-1)).toThrow(RangeError);
    expect(() => new StatsRegistry(1.5)).toThrow(RangeError);
    expect(() => new StatsRegistry(MAX_CAPACITY + 1)).toThrow(RangeError);
    const reg = new StatsRegistry(4);
    expect(() => reg.snapshot([createSlab(5)])).toThrow(/capacity 5, registry has 4/);
    expect(() => reg.snapshot([new SharedArrayBuffer(1024)])).toThrow(/layout/);
  });
});

describe("StatsWriter + snapshot", () => {
  test("three workers' slabs sum per listener, per route and in totals", () => {
    const reg = new StatsRegistry(4);
    const { listeners, routes } = reg.assign(["web"], ["a", "b"]);
    const L = listeners.web!;
    const slabs = [reg.createSlab(), reg.createSlab(), reg.createSlab()];
    const writers = slabs.map((s, i) => new StatsWriter(s, 10 + i));

    writers.forEach((w, i) => {
      for (let n = 0; n <= i; n++) {
        // worker i handles i+1 connections to route a, all closed, and one still open to b
        w.opened(L);
        w.handshake(L, 0.002);
        w.opened(routes.a!);
        w.bytes(L, 100, 1000);
        w.bytes(routes.a!, 100, 1000);
        w.closed(routes.a!);
        w.duration(routes.a!, 0.5);
        w.closed(L);
        w.duration(L, 0.5);
      }
      w.opened(L);
      w.opened(routes.b!);
      w.refused(L);
      w.error(L, "LISTENER_FULL");
      w.heartbeat(1_000_000 + i);
    });

    const snap = reg.snapshot(slabs, { nowMs: 1_000_010, staleAfterMs: 100 });
    const web = snap.listeners.find((l) => l.name === "web")!;
    expect(web).toMatchObject({ accepted: 9, active: 3, closed: 6, refused: 3, bytesIn: 600, bytesOut: 6000, errorsTotal: 3 });
    expect(web.errors).toEqual({ LISTENER_FULL: 3 });
    expect(web.handshake.count).toBe(6);
    expect(web.handshake.sum).toBeCloseTo(0.012, 12);

    const a = snap.routes.find((r) => r.name === "a")!;
    const b = snap.routes.find((r) => r.name === "b")!;
    expect(a).toMatchObject({ accepted: 6, active: 0, closed: 6, bytesIn: 600, bytesOut: 6000, errorsTotal: 0 });
    expect(a.errors).toEqual({});
    expect(a.duration.count).toBe(6);
    expect(a.duration.sum).toBe(3);
    expect(b).toMatchObject({ accepted: 3, active: 3, closed: 0 });

    expect(snap.totals).toMatchObject({ accepted: 9, active: 3, closed: 6, refused: 3, bytesIn: 600, errorsTotal: 3 });
    expect(snap.totals.errors).toEqual({ LISTENER_FULL: 3 });

    expect(snap.workers).toEqual([
      { id: 0, threadId: 10, generation: 0, heartbeatMs: 1_000_000, heartbeatAgeMs: 10, fresh: true, startedMs: 1_000_000, activeConnections: 1 },
      { id: 1, threadId: 11, generation: 0, heartbeatMs: 1_000_001, heartbeatAgeMs: 9, fresh: true, startedMs: 1_000_001, activeConnections: 1 },
      { id: 2, threadId: 12, generation: 0, heartbeatMs: 1_000_002, heartbeatAgeMs: 8, fresh: true, startedMs: 1_000_002, activeConnections: 1 },
    ]);
    expect(reg.snapshot(slabs, { nowMs: 1_000_200, staleAfterMs: 100 }).workers.every((w) => !w.fresh)).toBe(true);
  });

  test("histogram buckets use le semantics and stay cumulative; bad observations are clamped", () => {
    const reg = new StatsRegistry(1);
    const slot = reg.slotFor("listener", "x");
    const slab = reg.createSlab();
    const w = new StatsWriter(slab);
    w.handshake(slot, 0.0005); // exactly on the first bound: counts in it
    w.handshake(slot, 0.00051); // just above: next bucket
    w.handshake(slot, 10); // last bound
    w.handshake(slot, 11); // +Inf only
    w.handshake(slot, Number.NaN); // → 0, first bucket
    w.handshake(slot, -3); // → 0, first bucket
    w.duration(slot, Infinity); // clamped, +Inf bucket, finite sum

    const h = reg.snapshot([slab]).listeners[0]!.handshake;
    expect(h.bounds).toEqual(HANDSHAKE_BUCKETS);
    expect(h.buckets.length).toBe(HANDSHAKE_BUCKETS.length + 1);
    expect(h.buckets[0]).toBe(3);
    expect(h.buckets[1]).toBe(4);
    expect(h.buckets[HANDSHAKE_BUCKETS.length - 2]).toBe(4);
    expect(h.buckets[HANDSHAKE_BUCKETS.length - 1]).toBe(5);
    expect(h.buckets[HANDSHAKE_BUCKETS.length]).toBe(6);
    expect(h.count).toBe(6);
    expect(h.sum).toBeCloseTo(0.0005 + 0.00051 + 10 + 11, 9);
    for (let i = 1; i < h.buckets.length; i++) expect(h.buckets[i]!).toBeGreaterThanOrEqual(h.buckets[i - 1]!);

    const d = reg.snapshot([slab]).listeners[0]!.duration;
    expect(d.buckets[DURATION_BUCKETS.length - 1]).toBe(0);
    expect(d.count).toBe(1);
    expect(Number.isFinite(d.sum)).toBe(true);
  });

  test("every error code has its own counter", () => {
    const reg = new StatsRegistry(1);
    const slot = reg.slotFor("route", "r");
    const slab = reg.createSlab();
    const w = new StatsWriter(slab);
    w.error(slot, "TLS_DECODE");
    w.error(slot, "INTERNAL");
    w.error(slot, "INTERNAL");
    const r = reg.snapshot([slab]).routes[0]!;
    expect(r.errors).toEqual({ TLS_DECODE: 1, INTERNAL: 2 });
    // Error cells do not spill into the histograms next to them.
    expect(r.handshake.count).toBe(0);
    expect(r.accepted).toBe(0);
  });
});

describe("resetGauges", () => {
  test("keeps counters, zeroes gauges and heartbeat, bumps generation, returns permits", () => {
    const reg = new StatsRegistry(3);
    const { listeners, routes } = reg.assign(["l"], ["r"]);
    const limits = reg.createLimits();
    const slab = reg.createSlab();
    const other = reg.createSlab();
    const w = new StatsWriter(slab, 7);
    const w2 = new StatsWriter(other, 8);
    for (let i = 0; i < 5; i++) {
      expect(tryAcquire(limits, listeners.l!, 10)).toBe(true);
      w.opened(listeners.l!);
      w.opened(routes.r!);
    }
    expect(tryAcquire(limits, listeners.l!, 10)).toBe(true);
    w2.opened(listeners.l!); // another worker's connection: its permit must survive
    w.closed(listeners.l!);
    release(limits, listeners.l!);
    w.closed(routes.r!);
    w.bytes(routes.r!, 1, 2);
    w.heartbeat(5000);
    expect(held(limits, listeners.l!)).toBe(5);

    // The worker owning `slab` dies with 4 listener connections open.
    reg.resetGauges(slab, limits);
    expect(held(limits, listeners.l!)).toBe(1); // only the other worker's permit is left

    const snap = reg.snapshot([slab, other], { nowMs: 6000 });
    const [w0, w1] = snap.workers;
    expect(w0).toMatchObject({ generation: 1, heartbeatMs: 0, heartbeatAgeMs: null, fresh: false, threadId: 0, activeConnections: 0 });
    expect(w1).toMatchObject({ generation: 0, activeConnections: 1 });
    expect(snap.listeners[0]).toMatchObject({ accepted: 6, active: 1, closed: 1 });
    expect(snap.routes[0]).toMatchObject({ accepted: 5, active: 0, closed: 1, bytesIn: 1, bytesOut: 2 });

    // The replacement writes on top: counters keep growing from where they were.
    const replacement = new StatsWriter(slab, 9);
    replacement.opened(listeners.l!);
    replacement.heartbeat(7000);
    const after = reg.snapshot([slab, other], { nowMs: 7000 });
    expect(after.listeners[0]).toMatchObject({ accepted: 7, active: 2 });
    expect(after.workers[0]).toMatchObject({ generation: 1, threadId: 9, startedMs: 7000, fresh: true });
  });
});

test("createLimits has one cell per slot", () => {
  const reg = new StatsRegistry(3);
  expect(reg.createLimits().length).toBe(5);
  expect(createLimits(0).length).toBe(2);
});

test("peer resets are kept by code but not counted as errors", () => {
  const reg = new StatsRegistry(4);
  const slab = reg.createSlab();
  const slots = reg.assign(["l"], []);
  const w = new StatsWriter(slab, 1);
  w.error(slots.listeners.l!, "DOWNSTREAM_RESET");
  w.error(slots.listeners.l!, "UPSTREAM_RESET");
  w.error(slots.listeners.l!, "NO_ROUTE");
  const s = reg.snapshot([slab]).listeners[0]!;
  expect(s.errors).toEqual({ NO_ROUTE: 1, DOWNSTREAM_RESET: 1, UPSTREAM_RESET: 1 });
  expect(s.errorsTotal).toBe(1);
});
