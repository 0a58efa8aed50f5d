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
 *
 * Every slot has the same stride and fields; a slot is a listener slot or a
 * route slot only by the registry's assignment (see registry.ts). Each
 * histogram keeps one non-cumulative count per bucket (the last is +Inf) and
 * a sum; its total count is the sum of its buckets.
 */

import { ERROR_CODES } from "../errors/mod.ts";

/** Bumped whenever the layout changes; written into every slab's header. */
export const LAYOUT_VERSION = 1;

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
/** Header size in cells: 64 bytes, so slot 0 starts on a cache line. */
export const HEADER_CELLS = 8;

// ---- histogram buckets (upper bounds, seconds) -----------------------------
/** First byte → route chosen. Most ClientHellos arrive in one segment: sub-ms. */
export const HANDSHAKE_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);
/** Accept → close. Proxied connections live from milliseconds to hours. */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600,
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
/** Cells per slot, rounded up to a multiple of 8 (64 bytes). */
export const SLOT_STRIDE = Math.ceil((S_DURATION + DURATION_CELLS) / 8) * 8;

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

/** Bytes needed for a slab with `capacity` named slots. */
export function slabBytes(capacity: number): number {
  return (HEADER_CELLS + (capacity + OVERFLOW_SLOTS) * SLOT_STRIDE) * 8;
}

/**
 * Allocates one worker's slab, zeroed, with its header stamped. `capacity`
 * is the number of named slots (listeners + routes); two overflow slots are
 * added after them.
 */
export function createSlab(capacity: number): SharedArrayBuffer {
  if (!Number.isInteger(capacity) || capacity < 0 || capacity > MAX_CAPACITY) {
    throw new RangeError(`stats slab capacity: must be an integer 0..${MAX_CAPACITY}, got ${capacity}`);
  }
  const sab = new SharedArrayBuffer(slabBytes(capacity));
  const cells = new Float64Array(sab);
  cells[H_LAYOUT] = LAYOUT_VERSION;
  cells[H_CAPACITY] = capacity;
  return sab;
}

/** Named slot capacity of a slab, after checking it is one of ours. */
export function slabCapacity(sab: SharedArrayBuffer): number {
  if (sab.byteLength < HEADER_CELLS * 8) throw new RangeError("stats slab: too small");
  const cells = new Float64Array(sab, 0, HEADER_CELLS);
  if (cells[H_LAYOUT] !== LAYOUT_VERSION) {
    throw new RangeError(`stats slab: layout ${cells[H_LAYOUT]}, expected ${LAYOUT_VERSION}`);
  }
  const capacity = cells[H_CAPACITY];
  if (!Number.isInteger(capacity) || capacity < 0 || sab.byteLength !== slabBytes(capacity)) {
    throw new RangeError(`stats slab: ${sab.byteLength} bytes does not match capacity ${capacity}`);
  }
  return capacity;
}
