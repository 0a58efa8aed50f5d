/**
 * One interval per worker that drives `tick(nowMs)` on every live session, so
 * sessions and streams own no timers (keepalive, keepalive timeout and the
 * FIN-wait bound are all checked from here). Tests call `session.tick(now)`
 * directly instead.
 */

export interface Tickable {
  tick(nowMs: number): void;
}

export class MuxTicker {
  private readonly sessions = new Set<Tickable>();
  private timer: ReturnType<typeof setInterval> | null = null;

  /** `intervalMs` is the granularity of keepalive and timeouts; 1 s suits the 10 s / 30 s defaults. */
  constructor(readonly intervalMs = 1000, private readonly now: () => number = Date.now) {}

  add(s: Tickable): void {
    this.sessions.add(s);
    if (this.timer === null) {
      this.timer = setInterval(() => this.tickAll(), this.intervalMs);
      // Do not keep the process alive just for keepalives (Bun and Node timers have unref).
      (this.timer as { unref?: () => void }).unref?.();
    }
  }

  remove(s: Tickable): void {
    this.sessions.delete(s);
    if (this.sessions.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  get size(): number {
    return this.sessions.size;
  }

  tickAll(): void {
    const now = this.now();
    for (const s of this.sessions) s.tick(now);
  }
}
