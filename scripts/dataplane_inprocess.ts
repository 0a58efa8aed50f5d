/**
 * One data plane on the main thread, no supervisor and no worker: the same
 * listener code, profilable with `bun --cpu-prof` (profiles cover the main
 * thread only). Prints the same "ready" line as `edgemux serve`.
 *
 *   bun --cpu-prof scripts/dataplane_inprocess.ts CONFIG.toml
 */
import { loadConfigFile } from "../src/config/mod.ts";
import { detectRuntime } from "../src/runtime/mod.ts";
import { StatsRegistry } from "../src/stats/mod.ts";
import { DataPlane, type FromWorker, type ToWorker } from "../src/worker/mod.ts";
import { overflowSlot } from "../src/stats/mod.ts";

const runtime = detectRuntime();

const config = loadConfigFile(runtime.args[0]!);
const reg = new StatsRegistry(config.listeners.length + config.stats.maxRoutes);
const map = reg.assign(config.listeners.map((l) => l.name), config.routes.map((r) => r.name));
let deliver!: (m: ToWorker) => void;
new DataPlane(runtime, {
  post(msg: FromWorker) {
    if (msg.type === "ready") {
      const listeners = Object.fromEntries(Object.entries(msg.listeners).map(([k, v]) => [k, `${v.hostname}:${v.port}`]));
      console.log(JSON.stringify({ level: "info", msg: "ready", listeners }));
    }
    if (msg.type === "drained") runtime.exit(0);
  },
  onMessage(fn) {
    deliver = fn;
  },
});
deliver({
  type: "start",
  workerId: 0,
  config,
  slots: { ...map, overflowListener: overflowSlot(reg.capacity, "listener"), overflowRoute: overflowSlot(reg.capacity, "route") },
  slab: reg.createSlab(),
  limits: reg.createLimits().buffer as SharedArrayBuffer,
  ports: {},
});
runtime.onSignal("SIGTERM", () => deliver({ type: "drain", timeoutMs: 1000 }));
