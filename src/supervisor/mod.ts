export { Supervisor, type SupervisorOptions, type WorkerSlot } from "./supervisor.ts";
export { startAdmin } from "./admin.ts";
export { type Adoption, adoptPassedSockets, type PassedSocket, passedSockets } from "./inherit.ts";

/** Where this module sits in the source tree, relative to the tree's root. */
const SELF = "src/supervisor/mod.ts";
/** The worker thread entry, relative to the root of the source tree. */
const WORKER_ENTRY = "workers/data_plane.ts";

/**
 * The worker thread entry file. Run from the sources (and in `deno compile`,
 * which keeps the tree's layout), this module is `<root>/src/supervisor/mod.ts`.
 * In a `bun build --compile` binary every entry point is bundled into one file
 * at the root of the embedded tree (`/$bunfs/root/edgemux`) and the worker,
 * given to the build as a second entry point, sits at
 * `/$bunfs/root/workers/data_plane.js`, which Bun finds by the `.ts` name too
 * (scripts/build.ts).
 */
export function workerEntryUrl(moduleUrl: string = import.meta.url): URL {
  const root = moduleUrl.endsWith(`/${SELF}`) ? new URL("../../", moduleUrl) : new URL("./", moduleUrl);
  return new URL(WORKER_ENTRY, root);
}
