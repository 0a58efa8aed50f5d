export { formatHost, Supervisor, type SupervisorOptions, type WorkerSlot } from "./supervisor.ts";
export { startAdmin } from "./admin.ts";

/** The worker thread entry file (workers/data_plane.ts), relative to this module. */
export function workerEntryUrl(): URL {
  return new URL("../../workers/data_plane.ts", import.meta.url);
}
