/**
 * The memory layout of a stats slab: one SharedArrayBuffer per worker, viewed
 * as a Float64Array. The owning worker is the only writer of its slab (plain
 * `+=`, no Atomics); the supervisor reads every slab and sums.
 *
 * Why Float64 and plain stores:
 * - a double holds every integer up to 2^53 exactly: 9 PB of bytes, or a
 *   million connections a second for 285 years, before a counter goes inexact;
 * - one writer per slab means no lost updates, so no read-modify-write atomics;
 * - the reader may look at a cell while its owner is storing to it. ECMAScript
 *   only promises tear-free plain access for integer element types, but every
 *   64-bit engine we run on (V8, JavaScriptCore on x86-64 and arm64) stores an
 *   aligned Float64Array element with one 8-byte move, which those CPUs never
 *   tear. So a read sees the old value or the new one, never a mix. Values
 *   that must agree (a histogram's buckets and its count) are derived by the
 *   reader from one set of cells instead of being stored twice.
 *
 * Layout, in Float64 cells:
 *
 *   [ header: HEADER_CELLS ][ slot 0 ][ slot 1 ] ... [ slot capacity-1 ][ _other listener ][ _other route ]
 *   [ backend 0 ] ... [ backend backendCapacity-1 ][ _other backend ]
 *   [ service 0 ] ... [ service serviceCapacity-1 ][ _other service ]
 *   [ service names: SERVICE_NAME_BYTES per service slot, as bytes ]
 *
 * Every slot has the same stride and fields; a slot is a listener slot or a
 * route slot only by the registry's assignment (see registry.ts). Each
 * histogram keeps one non-cumulative count per bucket (the last is +Inf) and
 * a sum; its total count is the sum of its buckets.
 *
 * Backend slots (one per route target, "route\ntarget") are assigned by the
 * supervisor like route slots, the same index in every slab. Service slots
 * are assigned by each worker for itself (a name is first seen on a worker,
 * when an agent announces it or a stream to it opens): the worker writes the
 * name into its own slab's name table, then publishes it by storing its
 * length with Atomics.store; the reader matches names across slabs.
 */

import { ERROR_CODES } from "../errors/mod.ts";

/** Bumped whenever the layout changes; written into every slab's header. */
export const LAYOUT_VERSION = 3;

// ---- header cells ----------------------------------------------------------
/** LAYOUT_VERSION, written by createSlab. */
export const H_LAYOUT = 0;
/** Named slot capacity of this slab (overflow slots not included). */
export const H_CAPACITY = 1;
/** Wall-clock ms of the owner's last heartbeat; 0 until the first one. */
export const H_HEARTBEAT_MS = 2;
/** How many times a replacement worker took this slab over (bumped by resetGauges). */
export const H_GENERATION = 3;
/** Wall-clock ms when the current owner started (its first heartbeat). */
export const H_STARTED_MS = 4;
/** Thread id the owner reports of itself, when it knows one (else 0). */
export const H_THREAD_ID = 5;
/** Backend slots in this slab (overflow slot not included). */
export const H_BACKEND_CAPACITY = 6;
/** Service slots in this slab (overflow slot not included). */
export const H_SERVICE_CAPACITY = 7;
/** Header size in cells: 128 bytes, so slot 0 starts on a cache line. */
export const HEADER_CELLS = 16;

// ---- histogram buckets (upper bounds, seconds) -----------------------------
/** First byte → route chosen. Most ClientHellos arrive in one segment: sub-ms. */
export const HANDSHAKE_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);
/** Accept → close. Proxied connections live from milliseconds to hours. */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600,
]);
/** Dial start → upstream connected (failover included). Loopback is ~0.1 ms, a LAN ~1 ms, a timeout seconds. */
export const CONNECT_BUCKETS: readonly number[] = Object.freeze([
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);
export const CONNECT_CELLS = CONNECT_BUCKETS.length + 2;
/** http routes: a request's first byte → its response complete. An API call is milliseconds, a download minutes. */
export const HTTP_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
]);

// ---- slot cells (offsets inside a slot) ------------------------------------
/** Connections admitted (listener: accepted and not refused; route: routed here). */
export const S_ACCEPTED = 0;
/** Gauge: open right now (+1 on open, -1 on close). */
export const S_ACTIVE = 1;
/** Connections that were admitted and have since closed. */
export const S_CLOSED = 2;
/** Connections turned away at accept time (max_connections, access lists, draining). */
export const S_REFUSED = 3;
/** Bytes client → backend. */
export const S_BYTES_IN = 4;
/** Bytes backend → client. */
export const S_BYTES_OUT = 5;
/** One counter per ERROR_CODES entry, in that order. */
export const S_ERRORS = 6;
export const ERROR_CELLS = ERROR_CODES.length;
/** HANDSHAKE_BUCKETS.length + 1 bucket counts (last is +Inf), then the sum. */
export const S_HANDSHAKE = S_ERRORS + ERROR_CELLS;
export const HANDSHAKE_CELLS = HANDSHAKE_BUCKETS.length + 2;
/** DURATION_BUCKETS.length + 1 bucket counts (last is +Inf), then the sum. */
export const S_DURATION = S_HANDSHAKE + HANDSHAKE_CELLS;
export const DURATION_CELLS = DURATION_BUCKETS.length + 2;
/** CONNECT_BUCKETS.length + 1 bucket counts (last is +Inf), then the sum: dial start → upstream connected. */
export const S_CONNECT = S_DURATION + DURATION_CELLS;
/**
 * http routes (layout 3): requests answered, one counter per status class
 * 1xx..5xx, then HTTP_DURATION_BUCKETS.length + 1 bucket counts and the sum.
 * Every slot has them (a slot is a route only by assignment); 22 cells, so
 * at most ~1.4 MiB per slab at MAX_CAPACITY, ~0.7 MiB at the default 4096 routes.
 */
export const S_HTTP_REQUESTS = S_CONNECT + CONNECT_CELLS;
export const HTTP_CLASS_CELLS = 5;
export const S_HTTP_DURATION = S_HTTP_REQUESTS + HTTP_CLASS_CELLS;
export const HTTP_DURATION_CELLS = HTTP_DURATION_BUCKETS.length + 2;
/** Cells per slot, rounded up to a multiple of 8 (64 bytes). */
export const SLOT_STRIDE = Math.ceil((S_HTTP_DURATION + HTTP_DURATION_CELLS) / 8) * 8;

// ---- backend cells (offsets inside a backend slot: one route target) -------
/** Connections the target accepted. */
export const B_CONNECTIONS = 0;
/** Gauge: connections to the target open now (this worker). */
export const B_ACTIVE = 1;
/** Wall ms of this worker's last successful connect to the target; 0 = never. */
export const B_LAST_OK_MS = 2;
/** Wall ms of this worker's last failed connect; 0 = never. */
export const B_LAST_FAIL_MS = 3;
/** ERROR_CODES index + 1 of the last failure; 0 = none. */
export const B_LAST_ERROR = 4;
/** Wall ms until which this worker's balancer skips the target (cooling down); 0 = healthy. */
export const B_DOWN_UNTIL_MS = 5;
/** Connect histogram (CONNECT_BUCKETS), then one failure counter per ERROR_CODES entry. */
export const B_CONNECT = 6;
export const B_FAILURES = B_CONNECT + CONNECT_CELLS;
export const BACKEND_STRIDE = Math.ceil((B_FAILURES + ERROR_CELLS) / 8) * 8;

// ---- service cells (offsets inside a service slot: one tunnel service) -----
/** Streams opened to the service (the agent answered ok). */
export const V_STREAMS = 0;
/** Gauge: streams to the service open now (this worker). */
export const V_ACTIVE = 1;
/** Bytes client → service, and service → client, counted when a stream ends. */
export const V_BYTES_IN = 2;
export const V_BYTES_OUT = 3;
/** One open-failure counter per ERROR_CODES entry. */
export const V_FAILURES = 4;
export const SERVICE_STRIDE = Math.ceil((V_FAILURES + ERROR_CELLS) / 8) * 8;
/** Bytes per service name in the name table: a length byte, then up to 63 bytes (SERVICE_NAME is [a-z0-9_.-]{1,63}). */
export const SERVICE_NAME_BYTES = 64;

/** Default backend and service slot counts when a registry is not told (tests). */
export const DEFAULT_BACKEND_CAPACITY = 64;
export const DEFAULT_SERVICE_CAPACITY = 64;
/** Upper bound on backend and service slots per slab. */
export const MAX_BACKEND_CAPACITY = 8192;
export const MAX_SERVICE_CAPACITY = 4096;

/** Slots appended after the named ones for names beyond capacity. */
export const OVERFLOW_SLOTS = 2;
/** The label that overflow slots report under. */
export const OVERFLOW_NAME = "_other";

/** Upper bound on named slots per slab; keeps a slab under ~4 MiB. */
export const MAX_CAPACITY = 8192;

export type SlotKind = "listener" | "route";

/** Index of the overflow slot for a kind in a slab of `capacity` named slots. */
export function overflowSlot(capacity: number, kind: SlotKind): number {
  return kind === "listener" ? capacity : capacity + 1;
}

/** First cell of a slot. */
export function slotBase(slot: number): number {
  return HEADER_CELLS + slot * SLOT_STRIDE;
}

/** The slot counts of a slab beyond its listener/route capacity. */
export interface SlabExtra {
  backends: number;
  services: number;
}

const NO_EXTRA: SlabExtra = { backends: 0, services: 0 };

/** First cell of backend slot `b` (the overflow slot is `backends`). */
export function backendBase(capacity: number, b: number): number {
  return HEADER_CELLS + (capacity + OVERFLOW_SLOTS) * SLOT_STRIDE + b * BACKEND_STRIDE;
}

/** First cell of service slot `v` (the overflow slot is `services`). */
export function serviceBase(capacity: number, extra: SlabExtra, v: number): number {
  return backendBase(capacity, extra.backends + 1) + v * SERVICE_STRIDE;
}

/** Byte offset of service slot `v`'s name in the name table. */
export function serviceNameOffset(capacity: number, extra: SlabExtra, v: number): number {
  return serviceBase(capacity, extra, extra.services + 1) * 8 + v * SERVICE_NAME_BYTES;
}

/** Bytes needed for a slab with `capacity` named slots. */
export function slabBytes(capacity: number, extra: SlabExtra = NO_EXTRA): number {
  const names = extra.services * SERVICE_NAME_BYTES;
  return serviceBase(capacity, extra, extra.services + 1) * 8 + Math.ceil(names / 8) * 8;
}

/**
 * Allocates one worker's slab, zeroed, with its header stamped. `capacity`
 * is the number of named slots (listeners + routes); two overflow slots are
 * added after them.
 */
export function createSlab(capacity: number, extra: SlabExtra = NO_EXTRA): SharedArrayBuffer {
  if (!Number.isInteger(capacity) || capacity < 0 || capacity > MAX_CAPACITY) {
    throw new RangeError(`stats slab capacity: must be an integer 0..${MAX_CAPACITY}, got ${capacity}`);
  }
  if (!Number.isInteger(extra.backends) || extra.backends < 0 || extra.backends > MAX_BACKEND_CAPACITY) {
    throw new RangeError(`stats slab backends: must be an integer 0..${MAX_BACKEND_CAPACITY}, got ${extra.backends}`);
  }
  if (!Number.isInteger(extra.services) || extra.services < 0 || extra.services > MAX_SERVICE_CAPACITY) {
    throw new RangeError(`stats slab services: must be an integer 0..${MAX_SERVICE_CAPACITY}, got ${extra.services}`);
  }
  const sab = new SharedArrayBuffer(slabBytes(capacity, extra));
  const cells = new Float64Array(sab);
  cells[H_LAYOUT] = LAYOUT_VERSION;
  cells[H_CAPACITY] = capacity;
  cells[H_BACKEND_CAPACITY] = extra.backends;
  cells[H_SERVICE_CAPACITY] = extra.services;
  return sab;
}

/** Backend and service slot counts of a slab (after slabCapacity checked it). */
export function slabExtra(sab: SharedArrayBuffer): SlabExtra {
  const cells = new Float64Array(sab, 0, HEADER_CELLS);
  return { backends: cells[H_BACKEND_CAPACITY]!, services: cells[H_SERVICE_CAPACITY]! };
}

/** Named slot capacity of a slab, after checking it is one of ours. */
export function slabCapacity(sab: SharedArrayBuffer): number {
  if (sab.byteLength < HEADER_CELLS * 8) throw new RangeError("stats slab: too small");
  const cells = new Float64Array(sab, 0, HEADER_CELLS);
  if (cells[H_LAYOUT] !== LAYOUT_VERSION) {
    throw new RangeError(`stats slab: layout ${cells[H_LAYOUT]}, expected ${LAYOUT_VERSION}`);
  }
  const capacity = cells[H_CAPACITY]!;
  const extra = { backends: cells[H_BACKEND_CAPACITY]!, services: cells[H_SERVICE_CAPACITY]! };
  if (!Number.isInteger(capacity) || capacity < 0 || sab.byteLength !== slabBytes(capacity, extra)) {
    throw new RangeError(`stats slab: ${sab.byteLength} bytes does not match capacity ${capacity}`);
  }
  return capacity;
}

/** A service name from the name table at byte `at`, or null when that entry is not published yet. */
export function readServiceName(bytes: Uint8Array, at: number): string | null {
  const len = Atomics.load(bytes, at);
  if (len === 0) return null;
  let name = "";
  for (let k = 0; k < len; k++) name += String.fromCharCode(bytes[at + 1 + k]!);
  return name;
}
