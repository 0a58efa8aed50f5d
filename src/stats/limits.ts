/**
 * Global open-connection counts, one Int32 cell per listener, shared by every
 * worker, for `max_connections` across workers. Unlike the stats slabs these
 * cells have many writers, so every access is an Atomics read-modify-write.
 * Nothing here waits: Atomics.wait would stall a worker's event loop.
 *
 * The cell index of a listener is its stats slot (StatsRegistry.slotFor), so
 * the registry can hand back a dead worker's permits (resetGauges): each
 * worker's listener `active` gauge is exactly the permits it holds, provided
 * the data plane pairs `tryAcquire` with `opened(listenerSlot)` and
 * `closed(listenerSlot)` with `release`, each pair in one synchronous step.
 */

import { OVERFLOW_SLOTS } from "./layout.ts";

/** One cell per slot of a slab with `capacity` named slots (overflow included). */
export function createLimits(capacity: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer((capacity + OVERFLOW_SLOTS) * 4));
}

/**
 * Takes one permit unless `max` are held already; `max <= 0` means unlimited
 * (the count is still kept). Wait-free: each caller gets a distinct previous
 * value from Atomics.add, and only callers that saw fewer than `max` keep
 * their permit, so at most `max` are ever held. A losing caller's add is
 * visible to others for an instant and can make them lose too: a refusal
 * near the limit, never an admission over it.
 */
export function tryAcquire(limits: Int32Array, index: number, max: number): boolean {
  const before = Atomics.add(limits, index, 1);
  if (max <= 0 || before < max) return true;
  Atomics.sub(limits, index, 1);
  return false;
}

/** Gives back a permit taken by `tryAcquire`. */
export function release(limits: Int32Array, index: number): void {
  Atomics.sub(limits, index, 1);
}

/** Permits held right now, across all workers. */
export function held(limits: Int32Array, index: number): number {
  return Atomics.load(limits, index);
}
