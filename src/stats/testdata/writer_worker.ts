/**
 * Test fixture: a worker thread that writes one connection's worth of stats
 * per iteration into its slab until the main thread sets the stop flag (or a
 * hard bound), then reports how many iterations it did.
 */

import { StatsWriter } from "../writer.ts";

interface Job {
  slab: SharedArrayBuffer;
  /** Int32 cells: [0] stop flag set by the main thread. */
  control: SharedArrayBuffer;
  listenerSlot: number;
  routeSlot: number;
  maxIterations: number;
}

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<Job>) => void) | null;
  postMessage(msg: unknown): void;
};

scope.onmessage = (e) => {
  const job = e.data;
  const control = new Int32Array(job.control);
  const w = new StatsWriter(job.slab, 1);
  w.heartbeat(Date.now());
  let n = 0;
  while (n < job.maxIterations && Atomics.load(control, 0) === 0) {
    w.opened(job.listenerSlot);
    w.handshake(job.listenerSlot, 0.001);
    w.opened(job.routeSlot);
    w.bytes(job.listenerSlot, 3, 5);
    w.bytes(job.routeSlot, 3, 5);
    if (n % 10 === 0) w.error(job.routeSlot, "UPSTREAM_RESET");
    w.closed(job.routeSlot);
    w.duration(job.routeSlot, 2);
    w.closed(job.listenerSlot);
    n++;
  }
  w.heartbeat(Date.now());
  scope.postMessage({ iterations: n });
};
