/**
 * The supervisor's side of the stats: allocates one slab per worker, assigns
 * slot indexes to listener and route names, and sums every slab into a plain
 * snapshot. Reading never calls into a worker: it only loads from the shared
 * memory the workers write.
 *
 * Slots: a name keeps its slot for the life of the process (across reloads),
 * so counters stay monotonic; new names take the next free slot; once the
 * named slots are used up, further names of a kind share that kind's
 * overflow slot, reported as "_other". Size `capacity` to at least
 * listeners + config.stats.maxRoutes so listeners never overflow (their
 * slot is also their max_connections cell, see limits.ts).
 */

import { wallMs } from "../runtime/mod.ts";
import { ABORT_CODES, ERROR_CODES, type ErrorCode } from "../errors/mod.ts";
import {
  createSlab,
  DURATION_BUCKETS,
  H_GENERATION,
  H_HEARTBEAT_MS,
  H_STARTED_MS,
  H_THREAD_ID,
  HANDSHAKE_BUCKETS,
  OVERFLOW_NAME,
  OVERFLOW_SLOTS,
  overflowSlot,
  S_ACCEPTED,
  S_ACTIVE,
  S_BYTES_IN,
  S_BYTES_OUT,
  S_CLOSED,
  S_DURATION,
  S_ERRORS,
  S_HANDSHAKE,
  S_REFUSED,
  slabCapacity,
  slotBase,
  type SlotKind,
} from "./layout.ts";
import { createLimits } from "./limits.ts";

/** A heartbeat older than this (ms) makes a worker stale. Workers beat about once a second. */
export const DEFAULT_STALE_AFTER_MS = 5000;

export interface HistogramSnapshot {
  /** Upper bounds in seconds, without +Inf. */
  bounds: readonly number[];
  /** Cumulative counts, one per bound and a last one for +Inf (which equals `count`). */
  buckets: number[];
  sum: number;
  count: number;
}

export interface CounterSet {
  accepted: number;
  active: number;
  closed: number;
  refused: number;
  bytesIn: number;
  bytesOut: number;
  /** Non-zero error counts only. */
  /** Non-zero counts by code, aborts (peer resets, see ABORT_CODES) included. */
  errors: Partial<Record<ErrorCode, number>>;
  /** Sum of `errors` without the aborts. */
  errorsTotal: number;
}

export interface SlotSnapshot extends CounterSet {
  name: string;
  kind: SlotKind;
  slot: number;
  /** In the latest `assign` (false for names a reload removed, and for the overflow slot). */
  current: boolean;
  /** The shared slot of names beyond capacity (named "_other"). */
  overflow: boolean;
  handshake: HistogramSnapshot;
  duration: HistogramSnapshot;
}

export interface WorkerSlabSnapshot {
  /** Index of the slab in the array given to `snapshot`. */
  id: number;
  threadId: number;
  /** Times a replacement took this slab over (resetGauges): the worker's restarts. */
  generation: number;
  /** 0 until the first heartbeat. */
  heartbeatMs: number;
  /** now - heartbeatMs, or null before the first heartbeat. */
  heartbeatAgeMs: number | null;
  /** Heartbeat seen within staleAfterMs. */
  fresh: boolean;
  startedMs: number;
  /** Sum of this worker's listener `active` gauges. */
  activeConnections: number;
}

export interface StatsSnapshot {
  takenAtMs: number;
  listeners: SlotSnapshot[];
  routes: SlotSnapshot[];
  /** Sums over the listener slots: every connection passes exactly one listener. */
  totals: CounterSet;
  workers: WorkerSlabSnapshot[];
}

/** Slot indexes for the names in the current config, posted to workers. */
export interface SlotMap {
  listeners: Record<string, number>;
  routes: Record<string, number>;
}

export interface SnapshotOptions {
  nowMs?: number;
  staleAfterMs?: number;
}

export class StatsRegistry {
  readonly capacity: number;
  private next = 0;
  private readonly names: Record<SlotKind, Map<string, number>> = { listener: new Map(), route: new Map() };
  /** slot → [kind, name] for the named slots handed out, in slot order. */
  private readonly owners: Array<[SlotKind, string]> = [];
  private readonly overflowUsed: Record<SlotKind, boolean> = { listener: false, route: false };
  private current: Record<SlotKind, Set<string>> = { listener: new Set(), route: new Set() };

  constructor(capacity: number) {
    createSlab(capacity); // validates capacity the same way slabs will
    this.capacity = capacity;
  }

  /** A zeroed slab for one worker. Keep it when the worker is replaced (see resetGauges). */
  createSlab(): SharedArrayBuffer {
    return createSlab(this.capacity);
  }

  /** The max_connections cells, indexed by listener slot. */
  createLimits(): Int32Array {
    return createLimits(this.capacity);
  }

  /** The slot of a name, handing out the next free one for a new name. */
  slotFor(kind: SlotKind, name: string): number {
    const known = this.names[kind].get(name);
    if (known !== undefined) return known;
    if (this.next >= this.capacity) {
      this.overflowUsed[kind] = true;
      return overflowSlot(this.capacity, kind);
    }
    const slot = this.next++;
    this.names[kind].set(name, slot);
    this.owners.push([kind, name]);
    return slot;
  }

  /**
   * Slots for a (re)loaded config: listeners in the given order first, then
   * routes by name. Names seen before keep their slots.
   */
  assign(listeners: readonly string[], routes: readonly string[]): SlotMap {
    const map: SlotMap = { listeners: {}, routes: {} };
    for (const name of listeners) map.listeners[name] = this.slotFor("listener", name);
    for (const name of [...routes].sort()) map.routes[name] = this.slotFor("route", name);
    this.current = { listener: new Set(listeners), route: new Set(routes) };
    return map;
  }

  /**
   * Call as soon as a worker has exited, before its replacement gets the
   * slab: counters stay (so they remain monotonic), `active` gauges go to
   * 0 (its connections died with it), the heartbeat is cleared (the new
   * worker is not healthy until it beats) and the generation goes up by
   * one. With `limits`, the dead worker's max_connections permits (its
   * listener gauges) are handed back. No thread may own the slab meanwhile.
   */
  resetGauges(slab: SharedArrayBuffer, limits?: Int32Array): void {
    this.checkSlab(slab);
    const c = new Float64Array(slab);
    if (limits) {
      for (const slot of this.listenerSlots()) {
        const held = Math.round(c[slotBase(slot) + S_ACTIVE]);
        if (held > 0) Atomics.sub(limits, slot, held);
      }
    }
    for (let slot = 0; slot < this.capacity + OVERFLOW_SLOTS; slot++) c[slotBase(slot) + S_ACTIVE] = 0;
    c[H_GENERATION] += 1;
    c[H_HEARTBEAT_MS] = 0;
    c[H_STARTED_MS] = 0;
    c[H_THREAD_ID] = 0;
  }

  /** Sums all slabs (index = worker id) into plain data. */
  snapshot(slabs: readonly SharedArrayBuffer[], opts: SnapshotOptions = {}): StatsSnapshot {
    const nowMs = opts.nowMs ?? wallMs();
    const staleAfterMs = opts.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    const views = slabs.map((s) => {
      this.checkSlab(s);
      return new Float64Array(s);
    });

    const listeners: SlotSnapshot[] = [];
    const routes: SlotSnapshot[] = [];
    for (let slot = 0; slot < this.owners.length; slot++) {
      const [kind, name] = this.owners[slot]!;
      const snap = readSlot(views, slot, kind, name, this.current[kind].has(name), false);
      (kind === "listener" ? listeners : routes).push(snap);
    }
    for (const kind of ["listener", "route"] as const) {
      if (!this.overflowUsed[kind]) continue;
      const snap = readSlot(views, overflowSlot(this.capacity, kind), kind, OVERFLOW_NAME, false, true);
      (kind === "listener" ? listeners : routes).push(snap);
    }

    const totals = emptyCounters();
    for (const l of listeners) addCounters(totals, l);

    const listenerSlots = this.listenerSlots();
    const workers = views.map((c, id): WorkerSlabSnapshot => {
      const heartbeatMs = c[H_HEARTBEAT_MS];
      const heartbeatAgeMs = heartbeatMs > 0 ? Math.max(0, nowMs - heartbeatMs) : null;
      let activeConnections = 0;
      for (const slot of listenerSlots) activeConnections += c[slotBase(slot) + S_ACTIVE];
      return {
        id,
        threadId: c[H_THREAD_ID],
        generation: c[H_GENERATION],
        heartbeatMs,
        heartbeatAgeMs,
        fresh: heartbeatAgeMs !== null && heartbeatAgeMs <= staleAfterMs,
        startedMs: c[H_STARTED_MS],
        activeConnections,
      };
    });

    return { takenAtMs: nowMs, listeners, routes, totals, workers };
  }

  private listenerSlots(): number[] {
    const slots = [...this.names.listener.values()];
    if (this.overflowUsed.listener) slots.push(overflowSlot(this.capacity, "listener"));
    return slots;
  }

  private checkSlab(slab: SharedArrayBuffer): void {
    const capacity = slabCapacity(slab);
    if (capacity !== this.capacity) {
      throw new RangeError(`stats slab: capacity ${capacity}, registry has ${this.capacity}`);
    }
  }
}

function emptyCounters(): CounterSet {
  return { accepted: 0, active: 0, closed: 0, refused: 0, bytesIn: 0, bytesOut: 0, errors: {}, errorsTotal: 0 };
}

function addCounters(into: CounterSet, from: CounterSet): void {
  into.accepted += from.accepted;
  into.active += from.active;
  into.closed += from.closed;
  into.refused += from.refused;
  into.bytesIn += from.bytesIn;
  into.bytesOut += from.bytesOut;
  for (const code of Object.keys(from.errors) as ErrorCode[]) {
    into.errors[code] = (into.errors[code] ?? 0) + from.errors[code]!;
  }
  into.errorsTotal += from.errorsTotal;
}

function readSlot(
  views: readonly Float64Array[],
  slot: number,
  kind: SlotKind,
  name: string,
  current: boolean,
  overflow: boolean,
): SlotSnapshot {
  const base = slotBase(slot);
  const sum = (cell: number): number => {
    let total = 0;
    for (const c of views) total += c[base + cell];
    return total;
  };
  const errors: Partial<Record<ErrorCode, number>> = {};
  let errorsTotal = 0;
  for (let i = 0; i < ERROR_CODES.length; i++) {
    const n = sum(S_ERRORS + i);
    if (n !== 0) {
      errors[ERROR_CODES[i]!] = n;
      if (!ABORT_CODES.has(ERROR_CODES[i]!)) errorsTotal += n;
    }
  }
  return {
    name,
    kind,
    slot,
    current,
    overflow,
    accepted: sum(S_ACCEPTED),
    active: sum(S_ACTIVE),
    closed: sum(S_CLOSED),
    refused: sum(S_REFUSED),
    bytesIn: sum(S_BYTES_IN),
    bytesOut: sum(S_BYTES_OUT),
    errors,
    errorsTotal,
    handshake: readHistogram(sum, S_HANDSHAKE, HANDSHAKE_BUCKETS),
    duration: readHistogram(sum, S_DURATION, DURATION_BUCKETS),
  };
}

/** Turns stored per-bucket counts into cumulative ones; count is the +Inf bucket, so they always agree. */
function readHistogram(sum: (cell: number) => number, at: number, bounds: readonly number[]): HistogramSnapshot {
  const buckets: number[] = [];
  let running = 0;
  for (let i = 0; i <= bounds.length; i++) {
    running += sum(at + i);
    buckets.push(running);
  }
  return { bounds, buckets, sum: sum(at + bounds.length + 1), count: running };
}
