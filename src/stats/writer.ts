/**
 * The worker's side of a stats slab. Every method is a few plain stores into
 * the worker's own Float64Array: no Atomics, no messages, no allocation.
 * This is on the per-connection path (bytes() on the per-chunk path);
 * bench/micro/stats_bench.ts measures it.
 *
 * Slot indexes come from the supervisor's StatsRegistry (sent to the worker
 * with its config) and are not range-checked per call. An index the registry
 * did not hand out writes into some other slot's cells.
 *
 * Contract with the data plane, so the numbers add up (see the README's Metrics section):
 * - a connection the listener admits: `opened(listenerSlot)`; one it turns
 *   away (max_connections, access lists, draining): `refused(listenerSlot)`;
 * - once a route is chosen: `handshake(listenerSlot, s)` and `opened(routeSlot)`;
 * - bytes and errors are recorded on the listener slot, and on the route slot
 *   as well once there is one;
 * - at close: `closed(slot)` and `duration(slot, s)` for each slot opened.
 */

import { ERROR_CODE_INDEX, type ErrorCode } from "../errors/mod.ts";
import {
  DURATION_BUCKETS,
  H_HEARTBEAT_MS,
  H_STARTED_MS,
  H_THREAD_ID,
  HANDSHAKE_BUCKETS,
  HEADER_CELLS,
  S_ACCEPTED,
  S_ACTIVE,
  S_BYTES_IN,
  S_BYTES_OUT,
  S_CLOSED,
  S_DURATION,
  S_ERRORS,
  S_HANDSHAKE,
  S_REFUSED,
  SLOT_STRIDE,
  slabCapacity,
} from "./layout.ts";

/** Observations are clamped to [0, MAX_OBSERVATION] so one bad clock reading cannot poison a sum with NaN or Infinity. */
const MAX_OBSERVATION = 1e9;

const HANDSHAKE_BOUNDS = Float64Array.from(HANDSHAKE_BUCKETS);
const DURATION_BOUNDS = Float64Array.from(DURATION_BUCKETS);

export class StatsWriter {
  /** The slab's cells. Only this writer stores into them (besides resetGauges on a dead owner). */
  private readonly cells: Float64Array;
  /** Named slots in the slab (overflow slots follow them). */
  readonly capacity: number;

  constructor(slab: SharedArrayBuffer, threadId = 0) {
    this.capacity = slabCapacity(slab);
    this.cells = new Float64Array(slab);
    this.cells[H_THREAD_ID] = threadId;
  }

  /** Liveness: call on a timer (the supervisor calls a slab stale after a few missed beats). */
  heartbeat(nowMs: number): void {
    const c = this.cells;
    if (c[H_STARTED_MS] === 0) c[H_STARTED_MS] = nowMs;
    c[H_HEARTBEAT_MS] = nowMs;
  }

  /** A connection admitted: counted, and open until `closed(slot)`. */
  opened(slot: number): void {
    const base = HEADER_CELLS + slot * SLOT_STRIDE;
    const c = this.cells;
    c[base + S_ACCEPTED] += 1;
    c[base + S_ACTIVE] += 1;
  }

  /** A connection turned away at accept time. It was never `opened`. */
  refused(slot: number): void {
    this.cells[HEADER_CELLS + slot * SLOT_STRIDE + S_REFUSED] += 1;
  }

  /** An opened connection is gone. */
  closed(slot: number): void {
    const base = HEADER_CELLS + slot * SLOT_STRIDE;
    const c = this.cells;
    c[base + S_ACTIVE] -= 1;
    c[base + S_CLOSED] += 1;
  }

  /** Bytes moved: `inBytes` client → backend, `outBytes` backend → client. */
  bytes(slot: number, inBytes: number, outBytes: number): void {
    const base = HEADER_CELLS + slot * SLOT_STRIDE;
    const c = this.cells;
    c[base + S_BYTES_IN] += inBytes;
    c[base + S_BYTES_OUT] += outBytes;
  }

  error(slot: number, code: ErrorCode): void {
    this.cells[HEADER_CELLS + slot * SLOT_STRIDE + S_ERRORS + ERROR_CODE_INDEX[code]] += 1;
  }

  /** First byte → route chosen, in seconds. */
  handshake(slot: number, seconds: number): void {
    observe(this.cells, HEADER_CELLS + slot * SLOT_STRIDE + S_HANDSHAKE, HANDSHAKE_BOUNDS, seconds);
  }

  /** Connection lifetime, in seconds. */
  duration(slot: number, seconds: number): void {
    observe(this.cells, HEADER_CELLS + slot * SLOT_STRIDE + S_DURATION, DURATION_BOUNDS, seconds);
  }
}

/**
 * One histogram observation: bucket i counts values in (bounds[i-1], bounds[i]]
 * (Prometheus `le` semantics), bucket bounds.length counts the rest (+Inf).
 * A linear scan: 11-14 bounds, and typical values stop in the first few.
 */
function observe(c: Float64Array, base: number, bounds: Float64Array, seconds: number): void {
  if (!(seconds >= 0)) seconds = 0; // NaN and negative (a clock step) count as 0
  else if (seconds > MAX_OBSERVATION) seconds = MAX_OBSERVATION;
  const n = bounds.length;
  let i = 0;
  while (i < n && seconds > bounds[i]) i++;
  c[base + i] += 1;
  c[base + n + 1] += seconds;
}
