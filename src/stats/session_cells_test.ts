import { describe, expect, test } from "bun:test";
import { createSessionCells, releaseWorkerSessions, SESSION_SLOTS, SessionCounters } from "./session_cells.ts";

describe("max_sessions across workers", () => {
  test("slots are found by name, stable across instances; the limit holds across workers", () => {
    const sab = createSessionCells(2);
    const w0 = new SessionCounters(sab, 0);
    const w1 = new SessionCounters(sab, 1);
    const slot = w0.slotFor("team-a");
    expect(w1.slotFor("team-a")).toBe(slot);
    expect(w0.slotFor("team-b")).not.toBe(slot);
    expect(w0.tryAcquire(slot, 2)).toBe(true);
    expect(w1.tryAcquire(slot, 2)).toBe(true);
    expect(w0.tryAcquire(slot, 2)).toBe(false);
    expect(w1.held(slot)).toBe(2);
    w0.release(slot);
    expect(w1.tryAcquire(slot, 2)).toBe(true);
    expect(w0.tryAcquire(slot, 0)).toBe(true); // 0 = unlimited
  });

  test("a crashed worker's sessions are given back", () => {
    const sab = createSessionCells(2);
    const w0 = new SessionCounters(sab, 0);
    const w1 = new SessionCounters(sab, 1);
    const slot = w0.slotFor("t");
    w1.tryAcquire(slot, 3);
    w1.tryAcquire(slot, 3);
    w0.tryAcquire(slot, 3);
    expect(w0.tryAcquire(slot, 3)).toBe(false);
    releaseWorkerSessions(sab, 1);
    expect(w0.held(slot)).toBe(1);
    expect(w0.tryAcquire(slot, 3)).toBe(true);
  });

  test("the table fills up to SESSION_SLOTS names, then reports -1", () => {
    const c = new SessionCounters(createSessionCells(1), 0);
    const slots = new Set<number>();
    for (let i = 0; i < SESSION_SLOTS; i++) slots.add(c.slotFor(`token-${i}`));
    expect(slots.size).toBe(SESSION_SLOTS);
    expect(c.slotFor("one-too-many")).toBe(-1);
    expect(c.tryAcquire(-1, 1)).toBe(true);
  });
});
