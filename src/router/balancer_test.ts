import { describe, expect, test } from "bun:test";
import type { Address } from "../config/types.ts";
import { Balancer } from "./balancer.ts";

const tcp = (port: number): Address => ({ kind: "tcp", hostname: "127.0.0.1", port });
const targets = (n: number) => Array.from({ length: n }, (_, i) => tcp(9000 + i));

describe("round robin", () => {
  test("rotates the first choice and spreads evenly", () => {
    const b = new Balancer(targets(3), "round_robin");
    const firsts = Array.from({ length: 9 }, () => b.order(0)[0]);
    expect(firsts).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2]);
  });

  test("failover order continues along the ring and covers every target once", () => {
    const b = new Balancer(targets(4), "round_robin");
    b.order(0);
    const o = b.order(0);
    expect(o).toEqual([1, 2, 3, 0]);
    expect(new Set(o).size).toBe(4);
  });

  test("single target: always [0], no allocation", () => {
    const b = new Balancer(targets(1), "round_robin");
    const a = b.order(0);
    expect(a).toEqual([0]);
    expect(b.order(0)).toBe(a);
    b.markFailed(0, 0);
    expect(b.order(1)).toEqual([0]); // all cooling: try anyway
  });

  test("no cooling target: the returned order is a shared precomputed rotation", () => {
    const b = new Balancer(targets(3), "round_robin");
    const first = b.order(0);
    b.order(0);
    b.order(0);
    expect(b.order(0)).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
  });

  test("more targets than precomputed rotations still rotate", () => {
    const b = new Balancer(targets(100), "round_robin");
    for (let k = 0; k < 150; k++) {
      const o = b.order(0);
      expect(o[0]).toBe(k % 100);
      expect(o.length).toBe(100);
    }
  });
});

describe("least_conn", () => {
  test("picks the target with the fewest active connections", () => {
    const b = new Balancer(targets(3), "least_conn");
    b.acquire(0);
    b.acquire(0);
    b.acquire(1);
    expect(b.order(0)[0]).toBe(2);
    b.acquire(2);
    b.acquire(2);
    expect(b.order(0)[0]).toBe(1);
    b.release(0);
    b.release(0);
    expect(b.order(0)[0]).toBe(0);
    expect(b.activeCount(0)).toBe(0);
    b.release(0); // extra release never goes negative
    expect(b.activeCount(0)).toBe(0);
  });

  test("ties go round robin", () => {
    const b = new Balancer(targets(3), "least_conn");
    expect([b.order(0)[0], b.order(0)[0], b.order(0)[0], b.order(0)[0]]).toEqual([0, 1, 2, 0]);
  });

  test("acquire on each pick keeps the load balanced", () => {
    const b = new Balancer(targets(4), "least_conn");
    for (let k = 0; k < 40; k++) b.acquire(b.order(0)[0]!);
    for (let i = 0; i < 4; i++) expect(b.activeCount(i)).toBe(10);
    // Target 3 finishes its connections: the next picks all go to it.
    for (let k = 0; k < 10; k++) b.release(3);
    for (let k = 0; k < 10; k++) {
      const i = b.order(0)[0]!;
      expect(i).toBe(3);
      b.acquire(i);
    }
  });

  test("skips cooling targets even when they are idle", () => {
    const b = new Balancer(targets(3), "least_conn");
    b.acquire(1);
    b.acquire(2);
    b.markFailed(0, 1000);
    const o = b.order(1500);
    expect(o[0]).not.toBe(0);
    expect(o[2]).toBe(0);
  });
});

describe("passive health", () => {
  test("a refused target goes last for cooldownMs, then returns", () => {
    const b = new Balancer(targets(3), "round_robin", { cooldownMs: 2000 });
    b.markFailed(1, 10_000);
    expect(b.isCoolingDown(1, 10_000)).toBe(true);
    const seen: number[][] = [];
    for (let k = 0; k < 4; k++) seen.push([...b.order(10_500)]);
    for (const o of seen) {
      expect(o[2]).toBe(1); // cooling target is tried only after the healthy ones
      expect(new Set(o).size).toBe(3);
    }
    // The healthy ones still alternate as first choice.
    expect(seen.map((o) => o[0])).toEqual([0, 2, 0, 2]);
    // After the cooldown it is a normal target again.
    expect(b.isCoolingDown(1, 12_000)).toBe(false);
    const firsts = new Set<number>();
    for (let k = 0; k < 3; k++) firsts.add(b.order(12_000)[0]!);
    expect(firsts).toEqual(new Set([0, 1, 2]));
  });

  test("markOk ends the cooldown at once", () => {
    const b = new Balancer(targets(2), "round_robin");
    b.markFailed(0, 0);
    expect(b.order(1)).toEqual([1, 0]);
    expect(b.order(1)).toEqual([1, 0]);
    b.markOk(0);
    const firsts = [b.order(1)[0], b.order(1)[0]];
    expect(firsts.sort()).toEqual([0, 1]);
  });

  test("all cooling: try them anyway in ring order", () => {
    const b = new Balancer(targets(3), "round_robin");
    for (let i = 0; i < 3; i++) b.markFailed(i, 100);
    const o = b.order(200);
    expect(o.length).toBe(3);
    expect(new Set(o).size).toBe(3);
    expect(b.order(200)[0]).toBe((o[0]! + 1) % 3);
  });

  test("failover walk: the caller tries each target once and marks failures", () => {
    const b = new Balancer(targets(3), "round_robin");
    const refuses = new Set([0, 1]);
    const tried: number[] = [];
    let connected = -1;
    const now = 5000;
    const order = b.order(now);
    for (let a = 0; a < order.length; a++) {
      const i = order[a]!;
      tried.push(i);
      b.acquire(i);
      if (refuses.has(i)) {
        b.release(i);
        b.markFailed(i, now);
        continue;
      }
      b.markOk(i);
      connected = i;
      break;
    }
    expect(tried).toEqual([0, 1, 2]);
    expect(connected).toBe(2);
    expect(b.activeCount(2)).toBe(1);
    // The next connection starts with the healthy target.
    expect(b.order(now + 1)).toEqual([2, 0, 1]);
  });
});

test("a balancer needs targets", () => {
  expect(() => new Balancer([], "round_robin")).toThrow(RangeError);
});
