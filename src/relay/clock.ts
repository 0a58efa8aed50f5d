/**
 * A coarse wall clock for idle bookkeeping on the hot path: reading it is a
 * property load, not a syscall. The worker's sweeper calls `tickClock()`
 * (about once a second); precise timings (handshake histograms) use
 * `performance.now()` instead.
 */
export const coarseClock = { now: Date.now() };

export function tickClock(nowMs: number = Date.now()): void {
  coarseClock.now = nowMs;
}
