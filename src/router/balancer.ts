/**
 * Backend choice for one route on one worker: the order in which a new
 * connection tries the route's targets.
 *
 * - `round_robin`: each connection starts one target further along the ring.
 * - `least_conn`: each connection starts at the target with the fewest active
 *   connections on this worker (`acquire`/`release`, kept by the caller); ties
 *   go round robin, so an idle route still spreads its load.
 * - Failover: after the first choice the order continues along the ring, and
 *   the caller tries the next candidate on a connect failure until every
 *   target was tried once.
 * - Passive health: a target that refused (`markFailed`) is cooling down for
 *   `cooldownMs` (default 2 s). Cooling targets move to the end of the order,
 *   after every healthy one, so they are only tried when the healthy ones
 *   failed too; when every target is cooling the order is the plain ring
 *   ("try them anyway"). A success (`markOk`) ends the cooldown at once.
 *
 * Counts are per worker: workers do not share them (the kernel already spreads
 * accepts evenly across workers), so least_conn is exact within a worker and
 * approximate across the process.
 *
 * Time enters as `nowMs`, so cooldowns are testable without waiting.
 *
 * Allocation: `order()` returns a precomputed frozen rotation when no target is
 * cooling (the common case, and always for a single target) and builds a new
 * array only while some target is cooling. Targets are referred to by index
 * into `targets`, so the per-connection state is a number.
 */

import type { Address, BalanceMode } from "../config/types.ts";

export const DEFAULT_COOLDOWN_MS = 2000;

/** Rotations are precomputed up to this many targets (n² indices of memory). */
const MAX_PRECOMPUTED = 64;

export interface BalancerOptions {
  /** How long a refused target is skipped; default 2000 ms. */
  cooldownMs?: number;
}

export class Balancer {
  readonly cooldownMs: number;
  private readonly n: number;
  private readonly active: Int32Array;
  /** Time until which each target is cooling down (ms; 0 = healthy). */
  private readonly downUntil: Float64Array;
  /** Max of `downUntil`: when `nowMs` is past it, no target is cooling. */
  private latestDownUntil = 0;
  /** Ring position where the next tie-break / round robin starts. */
  private cursor = 0;
  /** `rotations[s]` = [s, s+1, ..., s-1] (mod n), frozen; null past MAX_PRECOMPUTED. */
  private readonly rotations: (readonly number[])[] | null;

  constructor(
    readonly targets: readonly Address[],
    readonly mode: BalanceMode,
    options: BalancerOptions = {},
  ) {
    if (targets.length === 0) throw new RangeError("Balancer needs at least one target");
    this.n = targets.length;
    this.cooldownMs = options.cooldownMs ?? DEFAULT_COOLDOWN_MS;
    this.active = new Int32Array(this.n);
    this.downUntil = new Float64Array(this.n);
    if (this.n <= MAX_PRECOMPUTED) {
      this.rotations = [];
      for (let s = 0; s < this.n; s++) this.rotations.push(Object.freeze(this.ring(s)));
    } else {
      this.rotations = null;
    }
  }

  /**
   * The try order for one new connection: target indices, first choice first,
   * each target exactly once. The array may be shared: do not modify it.
   * Calling this advances the round-robin position.
   */
  order(nowMs: number): readonly number[] {
    const n = this.n;
    if (n === 1) return this.rotations![0]!;
    if (nowMs >= this.latestDownUntil) return this.rotation(this.choose(-1));
    let healthy = 0;
    for (let i = 0; i < n; i++) if (this.downUntil[i]! <= nowMs) healthy++;
    // Every target is cooling: try them anyway, in the usual order.
    if (healthy === 0) return this.rotation(this.choose(-1));
    const start = this.choose(nowMs);
    // Allocation: only while some target is cooling.
    const out = new Array<number>(n);
    let h = 0;
    let c = healthy;
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      if (this.downUntil[i]! <= nowMs) out[h++] = i;
      else out[c++] = i;
    }
    return out;
  }

  /** The target at index `i` (an entry of `order()`). */
  target(i: number): Address {
    return this.targets[i]!;
  }

  /** A connection to target `i` is being opened or is open. */
  acquire(i: number): void {
    this.active[i]!++;
  }

  /** That connection failed or closed. Call once per `acquire`. */
  release(i: number): void {
    if (this.active[i]! > 0) this.active[i]!--;
  }

  activeCount(i: number): number {
    return this.active[i]!;
  }

  /** Target `i` refused or timed out: skip it until `nowMs + cooldownMs`. */
  markFailed(i: number, nowMs: number): void {
    const until = nowMs + this.cooldownMs;
    this.downUntil[i] = until;
    if (until > this.latestDownUntil) this.latestDownUntil = until;
  }

  /** Target `i` accepted a connection: it is healthy again. */
  markOk(i: number): void {
    // `latestDownUntil` may stay ahead; it only decides whether to look closer.
    this.downUntil[i] = 0;
  }

  isCoolingDown(i: number, nowMs: number): boolean {
    return this.downUntil[i]! > nowMs;
  }

  /**
   * Picks the first target and advances the cursor past it. Only targets
   * healthy at `healthyAt` qualify (-1: all do).
   */
  private choose(healthyAt: number): number {
    const n = this.n;
    const from = this.cursor;
    let pick = -1;
    if (this.mode === "least_conn") {
      // Fewest active wins; the strict `<` keeps the first in ring order on a tie.
      let best = Infinity;
      for (let k = 0; k < n; k++) {
        const i = (from + k) % n;
        if (healthyAt >= 0 && this.downUntil[i]! > healthyAt) continue;
        if (this.active[i]! < best) {
          best = this.active[i]!;
          pick = i;
        }
      }
    } else {
      for (let k = 0; k < n; k++) {
        const i = (from + k) % n;
        if (healthyAt >= 0 && this.downUntil[i]! > healthyAt) continue;
        pick = i;
        break;
      }
    }
    // The callers guarantee one qualifies; `from` is a safe fallback.
    if (pick < 0) pick = from;
    this.cursor = (pick + 1) % n;
    return pick;
  }

  private rotation(start: number): readonly number[] {
    return this.rotations !== null ? this.rotations[start]! : this.ring(start);
  }

  private ring(start: number): number[] {
    const out = new Array<number>(this.n);
    for (let k = 0; k < this.n; k++) out[k] = (start + k) % this.n;
    return out;
  }
}
