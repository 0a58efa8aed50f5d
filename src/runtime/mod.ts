/**
 * The runtime layer's public face: the contract (types.ts), the in-memory
 * pair for unit tests, the clock, and `detectRuntime()`, which entry points
 * call once. Importing this module does nothing by itself.
 */
import { bunRuntime } from "./bun.ts";
import { denoRuntime } from "./deno.ts";
import type { Runtime } from "./types.ts";

export type * from "./types.ts";
export type * from "./quic_types.ts";
export { memoryPair, MemoryConn } from "./memory.ts";
export { LayeredConn } from "./layered.ts";
export { type Clock, COARSE_TICK_MS, coarseClock, idleExpired, monotonicMs, systemClock, tickClock, wallMs } from "./clock.ts";
export { NULL_HANDLER } from "./common.ts";
export { type FetchFn, fetchWithCa } from "./fetch_ca.ts";
export { formatRedisTarget, type RedisConnection, type RedisConnectOptions, type RedisReply, RedisReplyError, type RedisTarget } from "./redis_types.ts";
export { connectRedis } from "./redis_connect.ts";

/** The runtime this process runs on: Bun or Deno (anything else is refused with the reason). */
export function detectRuntime(): Runtime {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return bunRuntime;
  if (g.Deno !== undefined) return denoRuntime;
  throw new Error("edgemux runs on Bun or Deno; this runtime is neither");
}
