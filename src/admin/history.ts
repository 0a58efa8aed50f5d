/**
 * The dashboard's history: the last 15 minutes of per-listener and per-route
 * rates at 5 s resolution, kept by the supervisor from its own stats
 * snapshots (no worker is asked anything). Pure: the caller hands in a
 * StatsSnapshot every interval (`sample`), and reads JSON back (`toJSON`).
 *
 * Memory is bounded up front: one ring of `capacity` Float32 points per metric
 * per series, at most `maxListeners` + `maxRoutes` series (names beyond the cap
 * count together under "_other") plus one for the totals, and per series at
 * most `codeSlots` error codes of their own (the rest under "_other"). A code
 * slot whose ring is all zero is handed to the next new code. The only state
 * that grows with the config is one small baseline (last cumulative counters)
 * per stats slot, which the stats registry itself already bounds.
 *
 * Rates are differences of the cumulative counters between two samples,
 * divided by the time between them. Latency percentiles come from the
 * difference of the cumulative histograms between two samples, interpolated
 * inside the bucket as Prometheus' histogram_quantile does.
 */

import { ABORT_CODES, ERROR_CODES, type ErrorCode } from "../errors/mod.ts";
import type { SlotSnapshot, StatsSnapshot } from "../stats/mod.ts";
import { quantileMs } from "./status.ts";

export const HISTORY_INTERVAL_MS = 5000;
export const HISTORY_WINDOW_MS = 15 * 60_000;
export const HISTORY_MAX_LISTENERS = 32;
export const HISTORY_MAX_ROUTES = 64;
/** Error codes with a series of their own per listener or route; the rest add up under "_other". */
export const HISTORY_CODE_SLOTS = 4;
/** The name of the series that collects names beyond the cap, and codes beyond the code slots. */
export const HISTORY_OTHER = "_other";

export interface HistoryOptions {
  intervalMs?: number;
  windowMs?: number;
  maxListeners?: number;
  maxRoutes?: number;
  codeSlots?: number;
}

/** One point per sample, oldest first; null where there was nothing to measure (no connection finished its handshake, or the series did not exist yet). */
export type Points = (number | null)[];

export interface HistorySeriesJson {
  name: string;
  /** In the config in force (false for a name a reload removed, for "_other" and for the totals). */
  current: boolean;
  conn_per_s: Points;
  /** Open connections at the sample (a gauge, not a rate). */
  active: Points;
  bytes_in_per_s: Points;
  bytes_out_per_s: Points;
  /** All error codes together, aborts (peer resets) left out as in /status. */
  errors_per_s: Points;
  /** The codes seen in the window, each with its own points; codes beyond the slots add up under "_other". */
  errors_by_code: Record<string, Points>;
  handshake_p50_ms: Points;
  handshake_p99_ms: Points;
  connect_p50_ms: Points;
  connect_p99_ms: Points;
}

export interface HistoryJson {
  interval_s: number;
  /** The window answered (at most the kept one). */
  window_s: number;
  /** Sample times, wall-clock ms, oldest first; every series has one point per entry. */
  t: number[];
  total: HistorySeriesJson;
  listeners: HistorySeriesJson[];
  routes: HistorySeriesJson[];
}

// Metric rings, in this order, in every series.
const CONN = 0;
const ACTIVE = 1;
const BYTES_IN = 2;
const BYTES_OUT = 3;
const ERRORS = 4;
const HS_P50 = 5;
const HS_P99 = 6;
const CN_P50 = 7;
const CN_P99 = 8;
const METRICS = 9;
const METRIC_KEYS = [
  "conn_per_s",
  "active",
  "bytes_in_per_s",
  "bytes_out_per_s",
  "errors_per_s",
  "handshake_p50_ms",
  "handshake_p99_ms",
  "connect_p50_ms",
  "connect_p99_ms",
] as const;

const CODE_INDEX = new Map<ErrorCode, number>(ERROR_CODES.map((c, i) => [c, i]));

/** The last cumulative counters of one stats slot. */
interface Baseline {
  accepted: number;
  bytesIn: number;
  bytesOut: number;
  errors: Float64Array;
  handshake: Float64Array;
  connect: Float64Array;
}

/** What one sample adds to one series: deltas summed over the slots that feed it. */
class Tick {
  fed = false;
  conn = 0;
  active = 0;
  bytesIn = 0;
  bytesOut = 0;
  errors = 0;
  readonly codes = new Float64Array(ERROR_CODES.length);
  handshake: Float64Array | null = null;
  handshakeBounds: readonly number[] = [];
  connect: Float64Array | null = null;
  connectBounds: readonly number[] = [];

  reset(): void {
    this.fed = false;
    this.conn = this.active = this.bytesIn = this.bytesOut = this.errors = 0;
    this.codes.fill(0);
    this.handshake?.fill(0);
    this.connect?.fill(0);
  }
}

class Series {
  readonly rings: Float32Array[] = [];
  /** The code each code ring holds (null: free); ring `codeSlots` is "_other". */
  readonly codeNames: (ErrorCode | null)[];
  readonly codeRings: Float32Array[] = [];
  readonly tick = new Tick();
  current = false;

  constructor(readonly name: string, capacity: number, codeSlots: number) {
    for (let i = 0; i < METRICS; i++) this.rings.push(new Float32Array(capacity).fill(NaN));
    this.codeNames = new Array<ErrorCode | null>(codeSlots).fill(null);
    for (let i = 0; i <= codeSlots; i++) this.codeRings.push(new Float32Array(capacity).fill(NaN));
  }

  /** True when the ring holds no traffic at all (zero or missing everywhere). */
  idle(): boolean {
    for (const r of [this.rings[CONN]!, this.rings[ACTIVE]!, this.rings[BYTES_IN]!, this.rings[BYTES_OUT]!, this.rings[ERRORS]!]) {
      for (let i = 0; i < r.length; i++) if (r[i]! > 0) return false;
    }
    return true;
  }
}

export class History {
  readonly intervalMs: number;
  readonly capacity: number;
  private readonly maxListeners: number;
  private readonly maxRoutes: number;
  private readonly codeSlots: number;
  private readonly times: Float64Array;
  /** The next ring index to write, and how many are filled. */
  private head = 0;
  private size = 0;
  private lastMs: number | null = null;
  private readonly baselines = new Map<string, Baseline>();
  private readonly series = { listener: new Map<string, Series>(), route: new Map<string, Series>() };
  private readonly others: { listener: Series; route: Series };
  /** Whether a name beyond the cap (or the stats' own overflow slot) fed "_other": only then is it shown. */
  private readonly othersUsed = { listener: false, route: false };
  private readonly total: Series;

  constructor(opts: HistoryOptions = {}) {
    this.intervalMs = opts.intervalMs ?? HISTORY_INTERVAL_MS;
    const windowMs = opts.windowMs ?? HISTORY_WINDOW_MS;
    if (!(this.intervalMs > 0) || !(windowMs >= this.intervalMs)) {
      throw new RangeError(`history: interval ${this.intervalMs} ms and window ${windowMs} ms must be positive, window >= interval`);
    }
    this.capacity = Math.ceil(windowMs / this.intervalMs);
    this.maxListeners = opts.maxListeners ?? HISTORY_MAX_LISTENERS;
    this.maxRoutes = opts.maxRoutes ?? HISTORY_MAX_ROUTES;
    this.codeSlots = opts.codeSlots ?? HISTORY_CODE_SLOTS;
    this.times = new Float64Array(this.capacity);
    this.others = { listener: this.newSeries(HISTORY_OTHER), route: this.newSeries(HISTORY_OTHER) };
    this.total = this.newSeries("total");
  }

  /** Series kept now (listeners + routes, "_other" and the totals not counted). */
  get seriesCount(): number {
    return this.series.listener.size + this.series.route.size;
  }

  /**
   * Takes one snapshot. The first only sets the baselines; each later one
   * writes one point per series, for the time since the previous one.
   * A snapshot not newer than the previous one is ignored.
   */
  sample(snap: StatsSnapshot): void {
    const now = snap.takenAtMs;
    if (this.lastMs !== null && now <= this.lastMs) return;
    const dtS = this.lastMs === null ? 0 : (now - this.lastMs) / 1000;
    this.lastMs = now;

    for (const kind of ["listener", "route"] as const) {
      for (const s of this.series[kind].values()) s.tick.reset();
      this.others[kind].tick.reset();
    }
    this.total.tick.reset();

    for (const s of snap.listeners) this.feed("listener", s, true);
    for (const s of snap.routes) this.feed("route", s, false);
    if (dtS === 0) return;

    const at = this.head;
    this.times[at] = now;
    this.head = (this.head + 1) % this.capacity;
    if (this.size < this.capacity) this.size++;
    for (const kind of ["listener", "route"] as const) {
      for (const s of this.series[kind].values()) this.write(s, at, dtS);
      this.write(this.others[kind], at, dtS);
    }
    this.write(this.total, at, dtS);
    this.evictIdle();
  }

  /** The last `windowS` seconds (default and at most the whole ring) as JSON. */
  toJSON(windowS?: number): HistoryJson {
    const want = windowS === undefined ? this.size : Math.min(this.size, Math.ceil((windowS * 1000) / this.intervalMs));
    const n = Math.max(0, want);
    const idx: number[] = [];
    for (let i = this.size - n; i < this.size; i++) idx.push((this.head - this.size + i + this.capacity) % this.capacity);
    const json = (s: Series): HistorySeriesJson => seriesJson(s, idx);
    const listeners = [...this.series.listener.values()].map(json);
    const routes = [...this.series.route.values()].map(json);
    if (this.othersUsed.listener) listeners.push(json(this.others.listener));
    if (this.othersUsed.route) routes.push(json(this.others.route));
    return {
      interval_s: this.intervalMs / 1000,
      window_s: Math.round((n * this.intervalMs) / 1000),
      t: idx.map((i) => this.times[i]!),
      total: json(this.total),
      listeners,
      routes,
    };
  }

  private newSeries(name: string): Series {
    return new Series(name, this.capacity, this.codeSlots);
  }

  /** The series a stats slot feeds: its own, a new one while under the cap, else "_other". */
  private seriesFor(kind: "listener" | "route", s: SlotSnapshot): Series {
    const map = this.series[kind];
    if (s.overflow) {
      this.othersUsed[kind] = true;
      return this.others[kind];
    }
    let series = map.get(s.name);
    if (series === undefined) {
      const cap = kind === "listener" ? this.maxListeners : this.maxRoutes;
      // A name a reload removed takes a series only if it still has connections.
      if (map.size >= cap || (!s.current && s.active <= 0)) {
        if (map.size >= cap) this.othersUsed[kind] = true;
        return this.others[kind];
      }
      map.set(s.name, (series = this.newSeries(s.name)));
    }
    series.current = s.current;
    return series;
  }

  private feed(kind: "listener" | "route", s: SlotSnapshot, intoTotal: boolean): void {
    const key = `${kind}\n${s.overflow ? "\0" : s.name}`;
    let base = this.baselines.get(key);
    const series = this.seriesFor(kind, s);
    const targets = intoTotal ? [series.tick, this.total.tick] : [series.tick];
    for (const t of targets) {
      t.active += s.active;
      t.fed = true;
    }
    if (base === undefined) {
      this.baselines.set(key, {
        accepted: s.accepted,
        bytesIn: s.bytesIn,
        bytesOut: s.bytesOut,
        errors: codeCounts(s),
        handshake: Float64Array.from(s.handshake.buckets),
        connect: Float64Array.from(s.connect.buckets),
      });
      return;
    }
    const conn = delta(s.accepted, base.accepted);
    const bytesIn = delta(s.bytesIn, base.bytesIn);
    const bytesOut = delta(s.bytesOut, base.bytesOut);
    base.accepted = s.accepted;
    base.bytesIn = s.bytesIn;
    base.bytesOut = s.bytesOut;
    const codes = codeCounts(s);
    for (const t of targets) {
      t.conn += conn;
      t.bytesIn += bytesIn;
      t.bytesOut += bytesOut;
      for (let i = 0; i < codes.length; i++) {
        const d = delta(codes[i]!, base.errors[i]!);
        if (d === 0) continue;
        t.codes[i] += d;
        if (!ABORT_CODES.has(ERROR_CODES[i]!)) t.errors += d;
      }
      t.handshake = addHistogram(t.handshake, s.handshake.buckets, base.handshake);
      t.handshakeBounds = s.handshake.bounds;
      t.connect = addHistogram(t.connect, s.connect.buckets, base.connect);
      t.connectBounds = s.connect.bounds;
    }
    base.errors = codes;
    base.handshake = Float64Array.from(s.handshake.buckets);
    base.connect = Float64Array.from(s.connect.buckets);
  }

  private write(s: Series, at: number, dtS: number): void {
    const t = s.tick;
    const r = s.rings;
    if (!t.fed) {
      for (const ring of r) ring[at] = NaN;
      for (const ring of s.codeRings) ring[at] = NaN;
      return;
    }
    r[CONN]![at] = t.conn / dtS;
    r[ACTIVE]![at] = t.active;
    r[BYTES_IN]![at] = t.bytesIn / dtS;
    r[BYTES_OUT]![at] = t.bytesOut / dtS;
    r[ERRORS]![at] = t.errors / dtS;
    r[HS_P50]![at] = quantile(t.handshakeBounds, t.handshake, 0.5);
    r[HS_P99]![at] = quantile(t.handshakeBounds, t.handshake, 0.99);
    r[CN_P50]![at] = quantile(t.connectBounds, t.connect, 0.5);
    r[CN_P99]![at] = quantile(t.connectBounds, t.connect, 0.99);
    this.writeCodes(s, at, dtS);
  }

  /** Each code with errors this tick into its slot, a free slot, or "_other", largest first. */
  private writeCodes(s: Series, at: number, dtS: number): void {
    const other = this.codeSlots;
    for (const ring of s.codeRings) ring[at] = 0;
    const seen: number[] = [];
    for (let i = 0; i < ERROR_CODES.length; i++) if (s.tick.codes[i]! > 0 && !ABORT_CODES.has(ERROR_CODES[i]!)) seen.push(i);
    seen.sort((a, b) => s.tick.codes[b]! - s.tick.codes[a]!);
    for (const i of seen) {
      const code = ERROR_CODES[i]!;
      let slot = s.codeNames.indexOf(code);
      if (slot < 0) slot = this.claimCodeSlot(s, code);
      s.codeRings[slot < 0 ? other : slot]![at]! += s.tick.codes[i]! / dtS;
    }
  }

  /** A free slot, or one whose code had no error in the whole window (this sample's point included); -1 if none. */
  private claimCodeSlot(s: Series, code: ErrorCode): number {
    for (let slot = 0; slot < this.codeSlots; slot++) {
      if (s.codeNames[slot] !== null && !ringIdle(s.codeRings[slot]!)) continue;
      // A reclaimed slot's earlier points are all zero: as true for the new code as for the old.
      s.codeNames[slot] = code;
      return slot;
    }
    return -1;
  }

  /** A name a reload removed loses its series once the whole window shows nothing. */
  private evictIdle(): void {
    if (this.size < this.capacity) return;
    for (const kind of ["listener", "route"] as const) {
      for (const [name, s] of this.series[kind]) if (!s.current && s.idle()) this.series[kind].delete(name);
    }
  }
}

/** The q-quantile in ms of one sample's histogram change (status.ts quantileMs, as /status uses for backends); NaN when empty. */
function quantile(bounds: readonly number[], cumulative: Float64Array | null, q: number): number {
  if (cumulative === null || cumulative.length === 0) return NaN;
  const buckets = Array.from(cumulative);
  return quantileMs({ bounds, buckets, sum: 0, count: buckets[buckets.length - 1]! }, q) ?? NaN;
}

/** A counter's increase; a counter that went back (it never should) restarts from its new value. */
function delta(now: number, before: number): number {
  return now >= before ? now - before : now;
}

function codeCounts(s: SlotSnapshot): Float64Array {
  const out = new Float64Array(ERROR_CODES.length);
  for (const [code, n] of Object.entries(s.errors) as [ErrorCode, number][]) {
    const i = CODE_INDEX.get(code);
    if (i !== undefined) out[i] = n;
  }
  return out;
}

/** Adds (now - before), bucket by bucket, into `into` (made on first use). */
function addHistogram(into: Float64Array | null, now: readonly number[], before: Float64Array): Float64Array {
  const out = into !== null && into.length === now.length ? into : new Float64Array(now.length);
  const comparable = before.length === now.length;
  for (let i = 0; i < now.length; i++) out[i] += comparable ? delta(now[i]!, before[i]!) : 0;
  return out;
}

function ringIdle(ring: Float32Array): boolean {
  for (let i = 0; i < ring.length; i++) if (ring[i]! > 0) return false;
  return true;
}

/** Rates to 3 decimals: Float32 storage leaves noise like 0.20000000298 behind. */
function point(v: number): number | null {
  return Number.isFinite(v) ? Math.round(v * 1000) / 1000 : null;
}

function seriesJson(s: Series, idx: readonly number[]): HistorySeriesJson {
  const pts = (ring: Float32Array): Points => idx.map((i) => point(ring[i]!));
  const out = { name: s.name, current: s.current, errors_by_code: {} } as HistorySeriesJson;
  for (let m = 0; m < METRICS; m++) out[METRIC_KEYS[m]!] = pts(s.rings[m]!);
  const other = s.codeRings.length - 1;
  for (let slot = 0; slot <= other; slot++) {
    const ring = s.codeRings[slot]!;
    if (!idx.some((i) => ring[i]! > 0)) continue;
    out.errors_by_code[slot === other ? HISTORY_OTHER : s.codeNames[slot]!] = pts(ring);
  }
  return out;
}
