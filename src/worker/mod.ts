export { DataPlane, SWEEP_INTERVAL_MS, type WorkerPort } from "./worker.ts";
export type { FromWorker, SlotAssignment, ToWorker } from "./messages.ts";
export { createListener, type DataPlaneListener, type ListenerDeps, type ListenerSettings } from "./listeners.ts";
