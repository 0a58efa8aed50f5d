/**
 * When to renew, as pure functions of the clock (DESIGN.md: time enters as
 * an argument), so the whole policy is testable with a fake clock.
 *
 * A certificate is renewed once two thirds of its lifetime have passed (for
 * a 90-day certificate: 30 days before it expires, as Let's Encrypt advises).
 * A failed attempt is retried after an exponential back-off, bounded above.
 */

export interface RenewalPolicy {
  /** Fraction of the lifetime after which renewal starts. Default 2/3. */
  fraction: number;
  /** First retry delay after a failure. Default 1 minute. */
  backoffBaseMs: number;
  /** Longest retry delay. Default 6 hours. */
  backoffMaxMs: number;
  /**
   * No name is renewed again sooner than this after a certificate was
   * obtained for it, so a CA that hands out certificates already past two
   * thirds of their life (a skewed clock, a tiny lifetime) cannot start a
   * renewal loop. Default 1 hour.
   */
  minRenewIntervalMs: number;
}

export const DEFAULT_POLICY: RenewalPolicy = { fraction: 2 / 3, backoffBaseMs: 60_000, backoffMaxMs: 6 * 3_600_000, minRenewIntervalMs: 3_600_000 };

/** The moment renewal of a certificate valid [notBefore, notAfter] is due. */
export function renewAt(notBefore: number, notAfter: number, fraction = DEFAULT_POLICY.fraction): number {
  return notBefore + Math.max(0, notAfter - notBefore) * fraction;
}

/**
 * Delay before retry number `failures` (1 after the first failure):
 * base · 2^(failures-1), at most max. `jitter` in [0, 1) (a random draw, passed
 * in to keep this pure) takes up to a quarter off, so many names that failed
 * together do not retry in lockstep.
 */
export function backoffMs(failures: number, policy: RenewalPolicy = DEFAULT_POLICY, jitter = 0): number {
  if (failures <= 0) return 0;
  const raw = policy.backoffBaseMs * 2 ** Math.min(failures - 1, 40);
  const capped = Math.min(policy.backoffMaxMs, raw);
  return Math.round(capped * (1 - 0.25 * Math.min(Math.max(jitter, 0), 0.999)));
}

/** One name's state as the scheduler sees it. */
export interface RenewalEntry {
  name: string;
  /** The certificate held now, if any; `obtainedAt` when this process got it from the CA. */
  cert: { notBefore: number; notAfter: number; obtainedAt?: number } | null;
  /** After failures: how many in a row, and when the next try may start. */
  failure: { count: number; retryAt: number } | null;
}

export interface RenewalPlan {
  /** Names to (re)issue now. */
  due: string[];
  /** The next moment something becomes due (Infinity when nothing will). */
  nextWakeMs: number;
}

/**
 * Which names are due at `now` and when to look again. A name whose
 * certificate is missing counts as due (issuance on first use put it on the
 * list); a failure's retryAt always wins over the certificate's renewal time.
 */
export function planRenewals(now: number, entries: Iterable<RenewalEntry>, policy: RenewalPolicy = DEFAULT_POLICY): RenewalPlan {
  const due: string[] = [];
  let nextWakeMs = Infinity;
  for (const e of entries) {
    const at = e.failure
      ? e.failure.retryAt
      : e.cert
      ? Math.max(renewAt(e.cert.notBefore, e.cert.notAfter, policy.fraction), (e.cert.obtainedAt ?? -Infinity) + policy.minRenewIntervalMs)
      : now;
    if (at <= now) due.push(e.name);
    else nextWakeMs = Math.min(nextWakeMs, at);
  }
  return { due, nextWakeMs };
}
