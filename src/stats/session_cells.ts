/**
 * Tunnel `max_sessions` counted across workers: shared-memory cells keyed by
 * token name (every shared-memory cell lives in stats/).
 */

/** Token names that can hold a max_sessions cell; a name past this many gets no limit enforcement (logged). */
export const SESSION_SLOTS = 1024;

/**
 * max_sessions across workers, in one SharedArrayBuffer the supervisor makes:
 *
 *   Int32[SESSION_SLOTS]                name hashes (open addressing, claimed with compareExchange)
 *   Int32[SESSION_SLOTS]                sessions per slot, all workers (what the limit checks)
 *   Int32[SESSION_SLOTS] × workers      sessions per slot held by each worker
 *
 * A slot is found by the token name's hash, so it stays the same across
 * reloads and workers without anyone assigning it. Taking a session is the
 * wait-free take-or-give-back of stats/limits.ts on the total; the worker's
 * own row lets the supervisor give back a crashed worker's sessions
 * (`releaseWorkerSessions`).
 */
export function createSessionCells(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer((2 + workers) * SESSION_SLOTS * 4);
}

export function releaseWorkerSessions(sab: SharedArrayBuffer, workerId: number): void {
  const cells = new Int32Array(sab);
  const row = (2 + workerId) * SESSION_SLOTS;
  if (row + SESSION_SLOTS > cells.length) return;
  for (let i = 0; i < SESSION_SLOTS; i++) {
    const n = Atomics.exchange(cells, row + i, 0);
    if (n !== 0) Atomics.sub(cells, SESSION_SLOTS + i, n);
  }
}

function nameHash(name: string): number {
  // FNV-1a over UTF-16 code units; 0 marks a free cell, so it is never a hash.
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h === 0 ? 1 : h;
}

export class SessionCounters {
  private readonly cells: Int32Array;
  private readonly row: number;

  constructor(sab: SharedArrayBuffer, readonly workerId: number) {
    this.cells = new Int32Array(sab);
    this.row = (2 + workerId) * SESSION_SLOTS;
    if (this.row + SESSION_SLOTS > this.cells.length) throw new RangeError(`session cells have no row for worker ${workerId}`);
  }

  /** The slot of a token name (claimed on first use), or -1 when the table is full. */
  slotFor(name: string): number {
    const h = nameHash(name);
    const c = this.cells;
    for (let k = 0; k < SESSION_SLOTS; k++) {
      const i = ((h >>> 0) + k) % SESSION_SLOTS;
      const cur = Atomics.load(c, i);
      if (cur === h) return i;
      if (cur === 0) {
        const prev = Atomics.compareExchange(c, i, 0, h);
        if (prev === 0 || prev === h) return i;
      }
    }
    return -1;
  }

  tryAcquire(slot: number, max: number): boolean {
    if (slot < 0) return true;
    const c = this.cells;
    const before = Atomics.add(c, SESSION_SLOTS + slot, 1);
    if (max > 0 && before >= max) {
      Atomics.sub(c, SESSION_SLOTS + slot, 1);
      return false;
    }
    Atomics.add(c, this.row + slot, 1);
    return true;
  }

  release(slot: number): void {
    if (slot < 0) return;
    Atomics.sub(this.cells, this.row + slot, 1);
    Atomics.sub(this.cells, SESSION_SLOTS + slot, 1);
  }

  /** Sessions of a slot across all workers. */
  held(slot: number): number {
    return slot < 0 ? 0 : Atomics.load(this.cells, SESSION_SLOTS + slot);
  }
}
