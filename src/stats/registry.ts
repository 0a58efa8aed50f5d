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
 *
 * Backend slots (route targets) are handed out the same way, keyed by route
 * and target; service slots are each worker's own (see layout.ts), matched
 * here by name.
 */

import { wallMs } from "../runtime/mod.ts";
import { ABORT_CODES, ERROR_CODES, type ErrorCode } from "../errors/mod.ts";
import {
  B_ACTIVE,
  B_CONNECT,
  B_CONNECTIONS,
  B_DOWN_UNTIL_MS,
  B_FAILURES,
  B_LAST_ERROR,
  B_LAST_FAIL_MS,
  B_LAST_OK_MS,
  backendBase,
  CONNECT_BUCKETS,
  HTTP_DURATION_BUCKETS,
  S_HTTP_DURATION,
  S_HTTP_REQUESTS,
  createSlab,
  DEFAULT_BACKEND_CAPACITY,
  DEFAULT_SERVICE_CAPACITY,
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
  S_CONNECT,
  S_DURATION,
  S_ERRORS,
  S_HANDSHAKE,
  S_REFUSED,
  readServiceName,
  SERVICE_NAME_BYTES,
  serviceBase,
  serviceNameOffset,
  type SlabExtra,
  slabCapacity,
  slabExtra,
  slotBase,
  type SlotKind,
  V_ACTIVE,
  V_BYTES_IN,
  V_BYTES_OUT,
  V_FAILURES,
  V_STREAMS,
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
  /** Dial start → upstream connected (failover included); listener slots count every kind, route slots their own dials. */
  connect: HistogramSnapshot;
  /** http routes: requests answered by status class, [1xx, 2xx, 3xx, 4xx, 5xx]. */
  httpRequests: number[];
  /** http routes: request first byte → response complete. */
  httpDuration: HistogramSnapshot;
}

/** Health of a route target, from the workers' last connect attempts. */
export type BackendState = "up" | "failing" | "cooling_down" | "unknown";

/** One route target (host:port, unix:/path, hbone://...) summed over the workers. */
export interface BackendSnapshot {
  route: string;
  target: string;
  /** Backend slot index; the overflow slot has route and target "_other". */
  slot: number;
  /** In the latest `assign`. */
  current: boolean;
  overflow: boolean;
  /** Connections the target accepted. */
  connections: number;
  /** Connections to it open now. */
  active: number;
  /** Failed connects (every code). */
  failures: number;
  /** Failed connects by code; non-zero only. */
  failuresByCode: Partial<Record<ErrorCode, number>>;
  connect: HistogramSnapshot;
  /**
   * unknown: no worker tried it yet; up: the latest attempt (on any worker)
   * succeeded; cooling_down: it failed and that worker's balancer skips it
   * for now; failing: it failed and its cool-down is over (the next
   * connection will try it again).
   */
  state: BackendState;
  /** Wall ms of the latest success / failure on any worker; 0 = never. */
  lastOkMs: number;
  lastFailMs: number;
  /** The code of the latest failure, null before any. */
  lastError: ErrorCode | null;
}

/** One tunnel service summed over the workers that counted it. */
export interface ServiceSnapshot {
  /** "_other" for the overflow slot. */
  name: string;
  overflow: boolean;
  /** Streams opened to it (the agent answered ok). */
  streams: number;
  /** Streams open now. */
  active: number;
  /** Client → service, service → client (counted as streams end). */
  bytesIn: number;
  bytesOut: number;
  /** Opens that failed (every code). */
  failures: number;
  failuresByCode: Partial<Record<ErrorCode, number>>;
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
  /** Route targets, in slot order; the overflow entry last when used. */
  backends: BackendSnapshot[];
  /** Tunnel services any worker counted, by name; the overflow entry last when used. */
  services: ServiceSnapshot[];
}

/** Slot indexes for the names in the current config, posted to workers. */
export interface SlotMap {
  listeners: Record<string, number>;
  routes: Record<string, number>;
  /** Route name → backend slot of each of its targets, in the route's target order (the overflow slot past capacity). */
  backends: Record<string, number[]>;
}

export interface RegistryOptions {
  /** Backend (route target) slots; default DEFAULT_BACKEND_CAPACITY. */
  backends?: number;
  /** Service slots per worker; default DEFAULT_SERVICE_CAPACITY. */
  services?: number;
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
  readonly extra: SlabExtra;
  /** "route\ntarget" → backend slot, and slot → [route, target]. */
  private readonly backendSlots = new Map<string, number>();
  private readonly backendOwners: Array<[string, string]> = [];
  private backendOverflowUsed = false;
  private currentBackends = new Set<string>();

  constructor(capacity: number, opts: RegistryOptions = {}) {
    this.extra = { backends: opts.backends ?? DEFAULT_BACKEND_CAPACITY, services: opts.services ?? DEFAULT_SERVICE_CAPACITY };
    createSlab(capacity, this.extra); // validates the sizes the same way slabs will
    this.capacity = capacity;
  }

  /** A zeroed slab for one worker. Keep it when the worker is replaced (see resetGauges). */
  createSlab(): SharedArrayBuffer {
    return createSlab(this.capacity, this.extra);
  }

  /** The backend slot of a route target, handing out the next free one for a new pair. */
  backendSlotFor(route: string, target: string): number {
    const key = `${route}\n${target}`;
    const known = this.backendSlots.get(key);
    if (known !== undefined) return known;
    if (this.backendOwners.length >= this.extra.backends) {
      this.backendOverflowUsed = true;
      return this.extra.backends;
    }
    const slot = this.backendOwners.length;
    this.backendSlots.set(key, slot);
    this.backendOwners.push([route, target]);
    return slot;
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
  assign(listeners: readonly string[], routes: readonly string[], targets: Readonly<Record<string, readonly string[]>> = {}): SlotMap {
    const map: SlotMap = { listeners: {}, routes: {}, backends: {} };
    for (const name of listeners) map.listeners[name] = this.slotFor("listener", name);
    for (const name of [...routes].sort()) map.routes[name] = this.slotFor("route", name);
    this.current = { listener: new Set(listeners), route: new Set(routes) };
    this.currentBackends = new Set();
    for (const route of Object.keys(targets).sort()) {
      map.backends[route] = targets[route]!.map((t) => {
        this.currentBackends.add(`${route}\n${t}`);
        return this.backendSlotFor(route, t);
      });
    }
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
    // Its backend connections and service streams died too; its balancer's cool-downs with it.
    for (let b = 0; b <= this.extra.backends; b++) {
      const base = backendBase(this.capacity, b);
      c[base + B_ACTIVE] = 0;
      c[base + B_DOWN_UNTIL_MS] = 0;
    }
    for (let v = 0; v <= this.extra.services; v++) c[serviceBase(this.capacity, this.extra, v) + V_ACTIVE] = 0;
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

    const backends: BackendSnapshot[] = [];
    for (let b = 0; b < this.backendOwners.length; b++) {
      const [route, target] = this.backendOwners[b]!;
      backends.push(this.readBackend(views, b, route, target, this.currentBackends.has(`${route}\n${target}`), false, nowMs));
    }
    if (this.backendOverflowUsed) backends.push(this.readBackend(views, this.extra.backends, OVERFLOW_NAME, OVERFLOW_NAME, false, true, nowMs));

    return { takenAtMs: nowMs, listeners, routes, totals, workers, backends, services: this.readServices(slabs, views) };
  }

  private readBackend(
    views: readonly Float64Array[],
    b: number,
    route: string,
    target: string,
    current: boolean,
    overflow: boolean,
    nowMs: number,
  ): BackendSnapshot {
    const base = backendBase(this.capacity, b);
    const sum = (cell: number): number => {
      let total = 0;
      for (const c of views) total += c[base + cell]!;
      return total;
    };
    const { byCode, total } = readCodes(sum, B_FAILURES);
    // The latest attempt on any worker decides the state.
    let lastOkMs = 0;
    let lastFailMs = 0;
    let lastErrorIndex = 0;
    let downUntilMs = 0;
    for (const c of views) {
      if (c[base + B_LAST_OK_MS]! > lastOkMs) lastOkMs = c[base + B_LAST_OK_MS]!;
      if (c[base + B_LAST_FAIL_MS]! > lastFailMs) {
        lastFailMs = c[base + B_LAST_FAIL_MS]!;
        lastErrorIndex = c[base + B_LAST_ERROR]!;
        downUntilMs = c[base + B_DOWN_UNTIL_MS]!;
      }
    }
    let state: BackendState;
    if (lastOkMs === 0 && lastFailMs === 0) state = "unknown";
    else if (lastOkMs >= lastFailMs) state = "up";
    else state = downUntilMs > nowMs ? "cooling_down" : "failing";
    return {
      route,
      target,
      slot: b,
      current,
      overflow,
      connections: sum(B_CONNECTIONS),
      active: sum(B_ACTIVE),
      failures: total,
      failuresByCode: byCode,
      connect: readHistogram(sum, B_CONNECT, CONNECT_BUCKETS),
      state,
      lastOkMs,
      lastFailMs,
      lastError: lastErrorIndex > 0 ? (ERROR_CODES[lastErrorIndex - 1] ?? null) : null,
    };
  }

  /** Each slab's published service names, summed by name; the overflow slots together as "_other" when used. */
  private readServices(slabs: readonly SharedArrayBuffer[], views: readonly Float64Array[]): ServiceSnapshot[] {
    const byName = new Map<string, ServiceSnapshot>();
    const other = emptyService(OVERFLOW_NAME, true);
    const n = this.extra.services;
    for (let w = 0; w < slabs.length; w++) {
      const bytes = new Uint8Array(slabs[w]!);
      const c = views[w]!;
      const add = (into: ServiceSnapshot, v: number) => {
        const base = serviceBase(this.capacity, this.extra, v);
        into.streams += c[base + V_STREAMS]!;
        into.active += c[base + V_ACTIVE]!;
        into.bytesIn += c[base + V_BYTES_IN]!;
        into.bytesOut += c[base + V_BYTES_OUT]!;
        for (let i = 0; i < ERROR_CODES.length; i++) {
          const k = c[base + V_FAILURES + i]!;
          if (k === 0) continue;
          into.failures += k;
          const code = ERROR_CODES[i]!;
          into.failuresByCode[code] = (into.failuresByCode[code] ?? 0) + k;
        }
      };
      for (let v = 0; v < n; v++) {
        const name = readServiceName(bytes, serviceNameOffset(this.capacity, this.extra, 0) + v * SERVICE_NAME_BYTES);
        if (name === null) break;
        let s = byName.get(name);
        if (s === undefined) byName.set(name, (s = emptyService(name, false)));
        add(s, v);
      }
      add(other, n);
    }
    const out = [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (other.streams > 0 || other.active !== 0 || other.failures > 0) out.push(other);
    return out;
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
    const extra = slabExtra(slab);
    if (extra.backends !== this.extra.backends || extra.services !== this.extra.services) {
      throw new RangeError(
        `stats slab: ${extra.backends} backend and ${extra.services} service slots, registry has ${this.extra.backends} and ${this.extra.services}`,
      );
    }
  }
}

function emptyService(name: string, overflow: boolean): ServiceSnapshot {
  return { name, overflow, streams: 0, active: 0, bytesIn: 0, bytesOut: 0, failures: 0, failuresByCode: {} };
}

/** Non-zero counts of the ERROR_CODES cells starting at `at`, and their total. */
function readCodes(sum: (cell: number) => number, at: number): { byCode: Partial<Record<ErrorCode, number>>; total: number } {
  const byCode: Partial<Record<ErrorCode, number>> = {};
  let total = 0;
  for (let i = 0; i < ERROR_CODES.length; i++) {
    const n = sum(at + i);
    if (n !== 0) {
      byCode[ERROR_CODES[i]!] = n;
      total += n;
    }
  }
  return { byCode, total };
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
    connect: readHistogram(sum, S_CONNECT, CONNECT_BUCKETS),
    httpRequests: [0, 1, 2, 3, 4].map((i) => sum(S_HTTP_REQUESTS + i)),
    httpDuration: readHistogram(sum, S_HTTP_DURATION, HTTP_DURATION_BUCKETS),
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
