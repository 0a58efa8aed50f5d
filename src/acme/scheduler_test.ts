import { describe, expect, test } from "bun:test";
import { backoffMs, DEFAULT_POLICY, planRenewals, renewAt } from "./scheduler.ts";
import { IssuanceGuard } from "./guard.ts";

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);

describe("renewAt", () => {
  test("two thirds of the lifetime: day 60 of a 90-day certificate", () => {
    expect(renewAt(T0, T0 + 90 * DAY)).toBe(T0 + 60 * DAY);
    expect(renewAt(T0, T0 + 6 * DAY)).toBe(T0 + 4 * DAY);
    expect(renewAt(T0, T0 - DAY)).toBe(T0); // nonsense validity: due at once
  });
});

describe("backoffMs", () => {
  test("doubles from the base and stops at the bound", () => {
    const p = { ...DEFAULT_POLICY, backoffBaseMs: 1_000, backoffMaxMs: 60_000 };
    expect([0, 1, 2, 3, 4, 5, 6, 7, 100].map((n) => backoffMs(n, p))).toEqual([0, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
  });
  test("jitter takes at most a quarter off", () => {
    const p = { ...DEFAULT_POLICY, backoffBaseMs: 1_000, backoffMaxMs: 60_000 };
    expect(backoffMs(1, p, 0.5)).toBe(875);
    expect(backoffMs(1, p, 0.9999)).toBeGreaterThanOrEqual(750);
  });
});

describe("planRenewals with a fake clock", () => {
  const cert = { notBefore: T0, notAfter: T0 + 90 * DAY };
  test("missing certificates are due now; held ones at two thirds", () => {
    const plan = planRenewals(T0 + DAY, [
      { name: "new.example", cert: null, failure: null },
      { name: "held.example", cert, failure: null },
    ]);
    expect(plan.due).toEqual(["new.example"]);
    expect(plan.nextWakeMs).toBe(T0 + 60 * DAY);
  });

  test("walking the clock: nothing due until day 60, then due", () => {
    const entries = [{ name: "a.example", cert, failure: null }];
    let now = T0;
    let wakes = 0;
    while (planRenewals(now, entries).due.length === 0) {
      now = planRenewals(now, entries).nextWakeMs;
      wakes++;
    }
    expect(wakes).toBe(1);
    expect(now).toBe(T0 + 60 * DAY);
  });

  test("no renewal loop: a certificate obtained just now waits minRenewIntervalMs even if already due", () => {
    const now = T0 + 80 * DAY;
    const entry = { name: "a.example", cert: { ...cert, obtainedAt: now }, failure: null };
    const plan = planRenewals(now, [entry]);
    expect(plan.due).toEqual([]);
    expect(plan.nextWakeMs).toBe(now + DEFAULT_POLICY.minRenewIntervalMs);
  });

  test("a failure's retry time wins, and retries back off", () => {
    const p = { ...DEFAULT_POLICY, backoffBaseMs: 60_000, backoffMaxMs: 3_600_000 };
    const guard = new IssuanceGuard({ allow: () => true, policy: p });
    let now = T0 + 61 * DAY;
    const retries: number[] = [];
    for (let i = 0; i < 8; i++) {
      const entry = { name: "a.example", cert, failure: guard.failure("a.example") };
      const plan = planRenewals(now, [entry], p);
      if (plan.due.length === 0) now = plan.nextWakeMs; // sleep until due
      expect(planRenewals(now, [{ ...entry }], p).due).toEqual(["a.example"]);
      guard.begin("a.example", now, false);
      guard.finish("a.example", now, false); // the CA is down
      retries.push(guard.failure("a.example")!.retryAt - now);
    }
    expect(retries).toEqual([60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000]);
    guard.begin("a.example", now, false);
    guard.finish("a.example", now, true);
    expect(guard.failure("a.example")).toBeNull();
  });
});

describe("IssuanceGuard", () => {
  test("only allowed names", () => {
    const g = new IssuanceGuard({ allow: (n) => n.endsWith(".example.com") });
    expect(g.check("a.example.com", T0, true)).toEqual({ ok: true });
    expect(g.check("evil.test", T0, true)).toEqual({ ok: false, reason: "not-allowed" });
  });

  test("concurrency bound and in-flight names", () => {
    const g = new IssuanceGuard({ allow: () => true, maxConcurrent: 2 });
    g.begin("a", T0, true);
    expect(g.check("a", T0, true).ok).toBe(false);
    g.begin("b", T0, true);
    expect(g.check("c", T0, true)).toEqual({ ok: false, reason: "busy" });
    g.finish("a", T0, true);
    expect(g.check("c", T0, true).ok).toBe(true);
  });

  test("new names per sliding hour; renewals do not count", () => {
    const g = new IssuanceGuard({ allow: () => true, maxConcurrent: 100, newNamesPerHour: 3 });
    for (const n of ["a", "b", "c"]) {
      g.begin(n, T0 + 1000, true);
      g.finish(n, T0 + 1000, true);
    }
    const v = g.check("d", T0 + 2000, true);
    expect(v).toEqual({ ok: false, reason: "rate-limited", retryAt: T0 + 1000 + 3_600_000 });
    expect(g.check("a", T0 + 2000, false).ok).toBe(true); // a renewal
    expect(g.check("d", T0 + 1000 + 3_600_000, true).ok).toBe(true); // the hour has passed
  });

  test("a failing name is refused until its back-off ends (repeated SNI does not hammer the CA)", () => {
    const g = new IssuanceGuard({ allow: () => true });
    g.begin("x", T0, true);
    g.finish("x", T0, false);
    const f = g.failure("x")!;
    expect(f.count).toBe(1);
    for (let t = T0; t < f.retryAt; t += 5_000) expect(g.check("x", t, true).ok).toBe(false);
    expect(g.check("x", f.retryAt, true).ok).toBe(true);
  });

  test("failure records are bounded", () => {
    const g = new IssuanceGuard({ allow: () => true, maxConcurrent: 1e9, maxFailureRecords: 10 });
    for (let i = 0; i < 50; i++) {
      g.begin(`n${i}`, T0, false);
      g.finish(`n${i}`, T0, false);
    }
    expect(g.failure("n0")).toBeNull();
    expect(g.failure("n49")).not.toBeNull();
  });
});
