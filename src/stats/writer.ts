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
 * - at close: `closed(slot)` and `duration(slot, s)` for each slot opened;
 * - once the upstream is connected: `connect(slot, s)` on the listener slot
 *   and the route slot (dial start → connected, failover included);
 * - per route target (backend slots, from the supervisor's assignment): each
 *   connect attempt ends in `backendConnected` or `backendFailed`, and a
 *   connected one in `backendClosed` when it ends;
 * - per tunnel service (service slots, this worker's own table): a stream
 *   opened to it `serviceOpened` then `serviceClosed` with its bytes, an open
 *   that failed `serviceFailed`.
 */

import { ERROR_CODE_INDEX, type ErrorCode } from "../errors/mod.ts";
import {
  B_ACTIVE,
  B_CONNECT,
  B_CONNECTIONS,
  B_DOWN_UNTIL_MS,
  B_FAILURES,
  B_LAST_ERROR,
  B_LAST_FAIL_MS,
  B_LAST_OK_MS,
  BACKEND_STRIDE,
  backendBase,
  CONNECT_BUCKETS,
  DURATION_BUCKETS,
  H_HEARTBEAT_MS,
  H_STARTED_MS,
  H_THREAD_ID,
  HANDSHAKE_BUCKETS,
  HEADER_CELLS,
  HTTP_DURATION_BUCKETS,
  S_HTTP_DURATION,
  S_HTTP_REQUESTS,
  S_ACCEPTED,
  S_ACTIVE,
  S_BYTES_IN,
  S_BYTES_OUT,
  S_CLOSED,
  S_CONNECT,
  S_DURATION,
  S_ERRORS,
  S_HANDSHAKE,
  S_REFUSED,
  SERVICE_NAME_BYTES,
  SERVICE_STRIDE,
  serviceBase,
  serviceNameOffset,
  SLOT_STRIDE,
  slabCapacity,
  slabExtra,
  V_ACTIVE,
  V_BYTES_IN,
  V_BYTES_OUT,
  V_FAILURES,
  V_STREAMS,
  readServiceName,
} from "./layout.ts";

/** Observations are clamped to [0, MAX_OBSERVATION] so one bad clock reading cannot poison a sum with NaN or Infinity. */
const MAX_OBSERVATION = 1e9;

const HANDSHAKE_BOUNDS = Float64Array.from(HANDSHAKE_BUCKETS);
const DURATION_BOUNDS = Float64Array.from(DURATION_BUCKETS);
const CONNECT_BOUNDS = Float64Array.from(CONNECT_BUCKETS);
const HTTP_DURATION_BOUNDS = Float64Array.from(HTTP_DURATION_BUCKETS);

export class StatsWriter {
  /** The slab's cells. Only this writer stores into them (besides resetGauges on a dead owner). */
  private readonly cells: Float64Array;
  /** Named slots in the slab (overflow slots follow them). */
  readonly capacity: number;
  /** Backend slots; index `backends` is the overflow one. */
  readonly backends: number;
  /** Service slots; index `services` is the overflow one. */
  readonly services: number;
  private readonly backendStart: number;
  private readonly serviceStart: number;
  private readonly nameBytes: Uint8Array;
  private readonly nameStart: number;
  /** This worker's service name → slot (also in the slab's name table, for the reader). */
  private readonly serviceSlots = new Map<string, number>();

  constructor(slab: SharedArrayBuffer, threadId = 0) {
    this.capacity = slabCapacity(slab);
    const extra = slabExtra(slab);
    this.backends = extra.backends;
    this.services = extra.services;
    this.backendStart = backendBase(this.capacity, 0);
    this.serviceStart = serviceBase(this.capacity, extra, 0);
    this.nameStart = serviceNameOffset(this.capacity, extra, 0);
    this.cells = new Float64Array(slab);
    this.nameBytes = new Uint8Array(slab);
    this.cells[H_THREAD_ID] = threadId;
    // A replacement worker keeps its predecessor's service slots (the counters stay monotonic).
    for (let v = 0; v < this.services; v++) {
      const name = readServiceName(this.nameBytes, this.nameStart + v * SERVICE_NAME_BYTES);
      if (name === null) break;
      this.serviceSlots.set(name, v);
    }
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

  /** Dial start → upstream connected, in seconds. */
  connect(slot: number, seconds: number): void {
    observe(this.cells, HEADER_CELLS + slot * SLOT_STRIDE + S_CONNECT, CONNECT_BOUNDS, seconds);
  }

  /** An http request on a route slot answered with `status` (100..599) after `seconds` (first byte → response complete). */
  httpRequest(slot: number, status: number, seconds: number): void {
    const base = HEADER_CELLS + slot * SLOT_STRIDE;
    const cls = Math.min(5, Math.max(1, Math.floor(status / 100)));
    this.cells[base + S_HTTP_REQUESTS + cls - 1] += 1;
    observe(this.cells, base + S_HTTP_DURATION, HTTP_DURATION_BOUNDS, seconds);
  }

  // ---- route targets (backend slots) ----

  /** A connect to backend `b` succeeded after `seconds`; `nowMs` is wall-clock (coarse is fine). It is open until `backendClosed(b)`. */
  backendConnected(b: number, seconds: number, nowMs: number): void {
    const base = this.backendStart + b * BACKEND_STRIDE;
    const c = this.cells;
    c[base + B_CONNECTIONS] += 1;
    c[base + B_ACTIVE] += 1;
    c[base + B_LAST_OK_MS] = nowMs;
    c[base + B_DOWN_UNTIL_MS] = 0;
    observe(c, base + B_CONNECT, CONNECT_BOUNDS, seconds);
  }

  /** A connect to backend `b` failed with `code`; the balancer skips it until `downUntilMs` (wall-clock). */
  backendFailed(b: number, code: ErrorCode, nowMs: number, downUntilMs: number): void {
    const base = this.backendStart + b * BACKEND_STRIDE;
    const c = this.cells;
    const i = ERROR_CODE_INDEX[code];
    c[base + B_FAILURES + i] += 1;
    c[base + B_LAST_FAIL_MS] = nowMs;
    c[base + B_LAST_ERROR] = i + 1;
    c[base + B_DOWN_UNTIL_MS] = downUntilMs;
  }

  /** A connection `backendConnected` counted has ended. */
  backendClosed(b: number): void {
    this.cells[this.backendStart + b * BACKEND_STRIDE + B_ACTIVE] -= 1;
  }

  // ---- tunnel services (service slots) ----

  /**
   * The slot of a service name on this worker, taking the next free one for
   * a name not seen before (the overflow slot once they are used up). Give
   * it only names that exist (announced by an agent, or reached): a name a
   * client made up would take a slot for nothing (use `serviceSlotIfKnown`).
   * Allocation: a name's first sight only.
   */
  serviceSlot(name: string): number {
    const known = this.serviceSlots.get(name);
    if (known !== undefined) return known;
    const v = this.serviceSlots.size;
    if (v >= this.services || name.length === 0 || name.length >= SERVICE_NAME_BYTES) return this.services;
    const at = this.nameStart + v * SERVICE_NAME_BYTES;
    const b = this.nameBytes;
    for (let k = 0; k < name.length; k++) b[at + 1 + k] = name.charCodeAt(k) & 0x7f;
    // Published last: the reader takes a name once its length is non-zero.
    Atomics.store(b, at, name.length);
    this.serviceSlots.set(name, v);
    return v;
  }

  /** The slot of a name seen before on this worker, else the overflow slot. */
  serviceSlotIfKnown(name: string): number {
    return this.serviceSlots.get(name) ?? this.services;
  }

  /** A stream to service slot `v` opened; open until `serviceClosed(v, ...)`. */
  serviceOpened(v: number): void {
    const base = this.serviceStart + v * SERVICE_STRIDE;
    const c = this.cells;
    c[base + V_STREAMS] += 1;
    c[base + V_ACTIVE] += 1;
  }

  /** That stream ended, having moved `inBytes` client → service and `outBytes` service → client. */
  serviceClosed(v: number, inBytes: number, outBytes: number): void {
    const base = this.serviceStart + v * SERVICE_STRIDE;
    const c = this.cells;
    c[base + V_ACTIVE] -= 1;
    c[base + V_BYTES_IN] += inBytes;
    c[base + V_BYTES_OUT] += outBytes;
  }

  /** An open to service slot `v` failed with `code`. */
  serviceFailed(v: number, code: ErrorCode): void {
    this.cells[this.serviceStart + v * SERVICE_STRIDE + V_FAILURES + ERROR_CODE_INDEX[code]] += 1;
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
