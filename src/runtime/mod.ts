/**
 * The runtime the process is running on. Everything else imports `runtime`
 * from here and never names Bun.* or Deno.* itself.
 */
import { bunRuntime } from "./bun.ts";
import { denoRuntime } from "./deno.ts";
import type { Runtime } from "./types.ts";

export type * from "./types.ts";
export { memoryPair, MemoryConn } from "./memory.ts";

function detect(): Runtime {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return bunRuntime;
  if (g.Deno !== undefined) return denoRuntime;
  throw new Error("edgemux runs on Bun or Deno; this runtime is neither");
}

export const runtime: Runtime = detect();
export { LayeredConn } from "./layered.ts";
