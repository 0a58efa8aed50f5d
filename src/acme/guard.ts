/**
 * The issuance guard: which names may be sent to the CA, and when. Issuance
 * on first use is triggered by a client's SNI, which anyone can choose, so:
 *
 * - only names the supplied predicate allows (the http listener passes
 *   "matches a configured route"), never arbitrary SNI;
 * - at most `maxConcurrent` orders at once;
 * - at most `newNamesPerHour` names without a certificate started per sliding
 *   hour (renewals of names we hold do not count);
 * - a failed name is not tried again before its back-off ends, so repeated
 *   SNI for a failing name does not hammer the CA.
 *
 * Pure bookkeeping: the caller passes `now`.
 */
import { backoffMs, DEFAULT_POLICY, type RenewalPolicy } from "./scheduler.ts";

export interface GuardOptions {
  allow(name: string): boolean;
  /** Default 2. */
  maxConcurrent?: number;
  /** Default 10. */
  newNamesPerHour?: number;
  /** Back-off after failures (the scheduler's policy). */
  policy?: RenewalPolicy;
  /** Failure records kept at most (oldest dropped first). Default 4096. */
  maxFailureRecords?: number;
}

export type GuardVerdict =
  | { ok: true }
  | { ok: false; reason: "not-allowed" | "in-flight" | "busy" | "rate-limited" | "backoff"; retryAt?: number };

const HOUR = 3_600_000;

export class IssuanceGuard {
  private readonly inFlight = new Set<string>();
  /** Start times of new-name orders within the last hour, oldest first (at most newNamesPerHour). */
  private readonly newStarts: number[] = [];
  private readonly failures = new Map<string, { count: number; retryAt: number }>();
  private readonly maxConcurrent: number;
  private readonly newNamesPerHour: number;
  private readonly policy: RenewalPolicy;
  private readonly maxFailureRecords: number;

  constructor(private readonly opts: GuardOptions) {
    this.maxConcurrent = opts.maxConcurrent ?? 2;
    this.newNamesPerHour = opts.newNamesPerHour ?? 10;
    this.policy = opts.policy ?? DEFAULT_POLICY;
    this.maxFailureRecords = opts.maxFailureRecords ?? 4096;
  }

  check(name: string, now: number, isNew: boolean): GuardVerdict {
    if (!this.opts.allow(name)) return { ok: false, reason: "not-allowed" };
    if (this.inFlight.has(name)) return { ok: false, reason: "in-flight" };
    const f = this.failures.get(name);
    if (f && now < f.retryAt) return { ok: false, reason: "backoff", retryAt: f.retryAt };
    if (this.inFlight.size >= this.maxConcurrent) return { ok: false, reason: "busy" };
    if (isNew) {
      while (this.newStarts.length > 0 && this.newStarts[0]! <= now - HOUR) this.newStarts.shift();
      if (this.newStarts.length >= this.newNamesPerHour) return { ok: false, reason: "rate-limited", retryAt: this.newStarts[0]! + HOUR };
    }
    return { ok: true };
  }

  /** Records the start of an order that `check` allowed. */
  begin(name: string, now: number, isNew: boolean): void {
    this.inFlight.add(name);
    if (isNew) this.newStarts.push(now);
  }

  /** Records the end of an order; a failure sets the name's back-off. `jitter` in [0, 1). */
  finish(name: string, now: number, ok: boolean, jitter = 0): void {
    this.inFlight.delete(name);
    if (ok) {
      this.failures.delete(name);
      return;
    }
    const count = (this.failures.get(name)?.count ?? 0) + 1;
    this.failures.delete(name); // re-insert: Map order is then oldest-failure first
    this.failures.set(name, { count, retryAt: now + backoffMs(count, this.policy, jitter) });
    while (this.failures.size > this.maxFailureRecords) this.failures.delete(this.failures.keys().next().value!);
  }

  failure(name: string): { count: number; retryAt: number } | null {
    return this.failures.get(name) ?? null;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }
}
