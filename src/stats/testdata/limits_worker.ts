/**
 * Test fixture: a worker thread that takes and gives back max_connections
 * permits at random (holding up to `hold` at once) and checks, through a second
 * shared counter of actual holders, that no more than `max` are ever held.
 */

import { release, tryAcquire } from "../limits.ts";

interface Job {
  limits: Int32Array;
  /** Int32 cells: [0] holders right now (all threads), [1] start flag. */
  control: SharedArrayBuffer;
  index: number;
  max: number;
  iterations: number;
  seed: number;
  /** Most permits this thread holds at once. */
  hold: number;
}

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<Job>) => void) | null;
  postMessage(msg: unknown): void;
};

scope.onmessage = (e) => {
  const job = e.data;
  const control = new Int32Array(job.control);
  // Test-only: start together so the two threads contend. (An I/O worker never waits.)
  Atomics.wait(control, 1, 0, 2000);
  let rng = job.seed >>> 0;
  let mine = 0;
  let acquired = 0;
  let refused = 0;
  let violations = 0;
  for (let i = 0; i < job.iterations; i++) {
    rng = (Math.imul(rng, 1664525) + 1013904223) >>> 0; // LCG, modular; its low bits cycle, use the top one
    if (mine < job.hold && (rng >>> 31) === 0) {
      if (tryAcquire(job.limits, job.index, job.max)) {
        if (Atomics.add(control, 0, 1) + 1 > job.max) violations++;
        mine++;
        acquired++;
      } else {
        refused++;
      }
    } else if (mine > 0) {
      Atomics.sub(control, 0, 1);
      release(job.limits, job.index);
      mine--;
    }
  }
  while (mine > 0) {
    Atomics.sub(control, 0, 1);
    release(job.limits, job.index);
    mine--;
  }
  scope.postMessage({ acquired, refused, violations });
};
