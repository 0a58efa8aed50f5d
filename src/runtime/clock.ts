/**
 * Time, from one place (DESIGN.md: never `Date.now()` scattered through the code):
 *
 * - `coarseClock.now`: wall-clock ms for idle bookkeeping on the hot path;
 *   reading it is a property load, not a syscall. Each thread has its own
 *   (this module is per thread); the worker's sweeper calls `tickClock()`
 *   about twice a second.
 * - `wallMs()`: wall-clock ms now (deadlines that must not fire early, log times).
 * - `monotonicMs()`: a monotonic ms clock for durations and histograms.
 *
 * The runtimes expose the same functions as `Runtime.clock`.
 */
export const coarseClock = { now: Date.now() };

export function tickClock(nowMs: number = Date.now()): void {
  coarseClock.now = nowMs;
}

export function wallMs(): number {
  return Date.now();
}

export function monotonicMs(): number {
  return performance.now();
}

/** The clock every runtime offers (Runtime.clock). */
export interface Clock {
  wallMs(): number;
  monotonicMs(): number;
}

export const systemClock: Clock = { wallMs, monotonicMs };
