/**
 * `connectRedis`: a Redis connection on whichever runtime this is. Each
 * adapter is imported on first use, so Bun never loads the npm client and
 * Deno never touches `Bun.RedisClient`.
 */
import type { RedisConnection, RedisConnectOptions } from "./redis_types.ts";

export async function connectRedis(opts: RedisConnectOptions): Promise<RedisConnection> {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return (await import("./redis_bun.ts")).connectRedisBun(opts);
  if (g.Deno !== undefined) return (await import("./redis_deno.ts")).connectRedisDeno(opts);
  throw new Error("edgemux's Redis client runs on Bun or Deno; this runtime is neither");
}
