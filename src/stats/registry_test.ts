import { describe, expect, test } from "bun:test";
import { createSlab, DURATION_BUCKETS, HANDSHAKE_BUCKETS, MAX_CAPACITY, OVERFLOW_NAME } from "./layout.ts";
import { createLimits, held, release, tryAcquire } from "./limits.ts";
import { StatsRegistry } from "./registry.ts";
import { StatsWriter } from "./writer.ts";

describe("StatsRegistry slots", () => {
  test("listeners first in config order, then routes by name; names keep their slots across reloads", () => {
    const reg = new StatsRegistry(8);
    const first = reg.assign(["tls", "alt"], ["zeta", "alpha", "mid"]);
    expect(first).toEqual({ listeners: { tls: 0, alt: 1 }, routes: { alpha: 2, mid: 3, zeta: 4 }, backends: {} });

    // Reload: "mid" removed, "beta" added, order shuffled. Old names keep their slots, new ones append.
    const second = reg.assign(["alt", "tls"], ["beta", "zeta", "alpha"]);
    expect(second).toEqual({ listeners: { alt: 1, tls: 0 }, routes: { alpha: 2, beta: 5, zeta: 4 }, backends: {} });

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
  test("http requests per route: status classes and the duration histogram sum over workers; a route without any has none", () => {
    const reg = new StatsRegistry(4);
    const { routes } = reg.assign(["web"], ["api", "idle"]);
    const slabs = [reg.createSlab(), reg.createSlab()];
    const [w0, w1] = slabs.map((s) => new StatsWriter(s));
    w0!.httpRequest(routes.api!, 200, 0.004);
    w1!.httpRequest(routes.api!, 204, 0.02);
    w1!.httpRequest(routes.api!, 502, 3);
    w0!.httpRequest(routes.api!, 101, 120); // an upgrade that lived two minutes: past the last bound
    const snap = reg.snapshot(slabs);
    const api = snap.routes.find((r) => r.name === "api")!;
    expect(api.httpRequests).toEqual([1, 2, 0, 0, 1]);
    expect(api.httpDuration.count).toBe(4);
    expect(api.httpDuration.sum).toBeCloseTo(123.024);
    expect(api.httpDuration.buckets[api.httpDuration.bounds.indexOf(0.005)]).toBe(1);
    expect(api.httpDuration.buckets[api.httpDuration.bounds.indexOf(5)]).toBe(3);
    expect(snap.routes.find((r) => r.name === "idle")!.httpDuration.count).toBe(0);
  });

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

describe("connect times, route targets and tunnel services", () => {
  test("connect(): a histogram on every slot, summed over workers", () => {
    const reg = new StatsRegistry(4);
    const slots = reg.assign(["l"], ["r"]);
    const slabs = [reg.createSlab(), reg.createSlab()];
    new StatsWriter(slabs[0]!).connect(slots.routes.r!, 0.0003);
    new StatsWriter(slabs[1]!).connect(slots.routes.r!, 20);
    const r = reg.snapshot(slabs).routes[0]!;
    expect(r.connect.count).toBe(2);
    expect(r.connect.sum).toBeCloseTo(20.0003);
    expect(r.connect.buckets[2]).toBe(1); // le 0.0005
    expect(r.connect.buckets.at(-1)).toBe(2);
  });

  test("backend slots: by route and target, stable across reloads, overflow past capacity", () => {
    const reg = new StatsRegistry(4, { backends: 3, services: 2 });
    const a = reg.assign([], ["r1", "r2"], { r1: ["10.0.0.1:80", "10.0.0.2:80"], r2: ["10.0.0.1:80"] });
    expect(a.backends).toEqual({ r1: [0, 1], r2: [2] });
    const b = reg.assign([], ["r1"], { r1: ["10.0.0.2:80", "10.0.0.3:80"] });
    expect(b.backends).toEqual({ r1: [1, 3] }); // 3 = the overflow slot
    const snap = reg.snapshot([reg.createSlab()]);
    expect(snap.backends.map((x) => [x.route, x.target, x.current, x.overflow])).toEqual([
      ["r1", "10.0.0.1:80", false, false],
      ["r1", "10.0.0.2:80", true, false],
      ["r2", "10.0.0.1:80", false, false],
      ["_other", "_other", false, true],
    ]);
  });

  test("backend counters and state: unknown, up, cooling_down, failing; the latest attempt on any worker decides", () => {
    const reg = new StatsRegistry(2, { backends: 4, services: 2 });
    const { backends } = reg.assign([], ["r"], { r: ["a:1", "b:2"] });
    const [a, b] = backends.r!;
    const slabs = [reg.createSlab(), reg.createSlab()];
    const [w0, w1] = slabs.map((s) => new StatsWriter(s));
    const at = (nowMs: number) => reg.snapshot(slabs, { nowMs }).backends;
    expect(at(1000).map((x) => x.state)).toEqual(["unknown", "unknown"]);

    w0!.backendConnected(a!, 0.002, 1000);
    w1!.backendConnected(a!, 0.004, 1001);
    w0!.backendFailed(b!, "UPSTREAM_CONNECT_REFUSED", 1000, 3000);
    w1!.backendFailed(b!, "UPSTREAM_CONNECT_TIMEOUT", 1500, 3500);
    let [sa, sb] = at(2000);
    expect(sa).toMatchObject({ state: "up", connections: 2, active: 2, failures: 0, lastOkMs: 1001, lastError: null });
    expect(sa!.connect.count).toBe(2);
    expect(sb).toMatchObject({
      state: "cooling_down",
      connections: 0,
      failures: 2,
      failuresByCode: { UPSTREAM_CONNECT_REFUSED: 1, UPSTREAM_CONNECT_TIMEOUT: 1 },
      lastFailMs: 1500,
      lastError: "UPSTREAM_CONNECT_TIMEOUT",
    });
    expect(at(4000)[1]!.state).toBe("failing"); // cool-down over, not tried since
    w0!.backendConnected(b!, 0.001, 5000);
    expect(at(5000)[1]!.state).toBe("up");

    w0!.backendClosed(a!);
    expect(at(6000)[0]!.active).toBe(1);
    reg.resetGauges(slabs[1]!); // worker 1 died with its connection
    expect(at(6000)[0]!.active).toBe(0);
  });

  test("services: each worker names its own slots, the reader sums by name; unknown names go to _other", () => {
    const reg = new StatsRegistry(2, { backends: 2, services: 2 });
    reg.assign([], []);
    const slabs = [reg.createSlab(), reg.createSlab()];
    const [w0, w1] = slabs.map((s) => new StatsWriter(s));
    expect(reg.snapshot(slabs).services).toEqual([]);
    const web0 = w0!.serviceSlot("web");
    expect(w0!.serviceSlot("web")).toBe(web0);
    const db1 = w1!.serviceSlot("db");
    const web1 = w1!.serviceSlot("web");
    expect(w1!.serviceSlot("third")).toBe(2); // past capacity: the overflow slot
    expect(w0!.serviceSlotIfKnown("nope")).toBe(2);
    w0!.serviceOpened(web0);
    w0!.serviceClosed(web0, 100, 2000);
    w1!.serviceOpened(web1);
    w1!.serviceOpened(db1);
    w1!.serviceFailed(web1, "SERVICE_UNREACHABLE");
    w0!.serviceFailed(w0!.serviceSlotIfKnown("nope"), "SERVICE_UNKNOWN");
    const snap = reg.snapshot(slabs).services;
    expect(snap).toEqual([
      { name: "db", overflow: false, streams: 1, active: 1, bytesIn: 0, bytesOut: 0, failures: 0, failuresByCode: {} },
      { name: "web", overflow: false, streams: 2, active: 1, bytesIn: 100, bytesOut: 2000, failures: 1, failuresByCode: { SERVICE_UNREACHABLE: 1 } },
      { name: "_other", overflow: true, streams: 0, active: 0, bytesIn: 0, bytesOut: 0, failures: 1, failuresByCode: { SERVICE_UNKNOWN: 1 } },
    ]);

    // A replacement worker keeps the names (and slots) of the slab it takes over; its gauges start at 0.
    reg.resetGauges(slabs[1]!);
    const again = new StatsWriter(slabs[1]!);
    expect(again.serviceSlotIfKnown("web")).toBe(web1);
    expect(again.serviceSlotIfKnown("db")).toBe(db1);
    expect(reg.snapshot(slabs).services.find((s) => s.name === "db")!.active).toBe(0);
  });

  test("slab sizes: backends and services are part of the layout check", () => {
    const reg = new StatsRegistry(2, { backends: 5, services: 3 });
    expect(() => reg.snapshot([new StatsRegistry(2, { backends: 6, services: 3 }).createSlab()])).toThrow();
    expect(() => new StatsRegistry(2, { backends: -1 })).toThrow(/backends/);
    expect(() => new StatsRegistry(2, { services: 1e6 })).toThrow(/services/);
  });
});
