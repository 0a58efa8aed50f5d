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

/** How often a worker ticks its coarse clock (its sweep), so how stale a coarse time may be. */
export const COARSE_TICK_MS = 500;

/**
 * An idle deadline that never fires early: `lastActiveMs` came from the
 * coarse clock, which lags real time by up to one tick, so the deadline counts
 * from one tick later. With `nowMs` from a sweep it fires between `timeoutMs`
 * and `timeoutMs` + two ticks after the last byte.
 */
export function idleExpired(nowMs: number, lastActiveMs: number, timeoutMs: number): boolean {
  return timeoutMs > 0 && nowMs - lastActiveMs >= timeoutMs + COARSE_TICK_MS;
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
