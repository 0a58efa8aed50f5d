/**
 * The small Redis client contract the cluster registry needs (src/cluster/).
 * `redis_bun.ts` implements it with Bun's built-in `RedisClient`,
 * `redis_deno.ts` with the npm client `@redis/client` (node-redis) from
 * node_modules; `redis_connect.ts` picks one. Both speak RESP3, so replies
 * have one shape on both runtimes.
 *
 * A connection is one socket: commands are pipelined in the order `send` is
 * called and answered in that order. It never reconnects by itself and never
 * queues a command while it is down; the owner (cluster/registry.ts) makes a
 * new one and decides what to send again.
 */

/** Where Redis is: the parsed `[cluster] redis` URL (config/validate_cluster.ts makes it). */
export type RedisTarget =
  | { kind: "tcp"; hostname: string; port: number; tls: boolean; db: number; username: string | null; password: string | null }
  | { kind: "unix"; path: string; db: number; username: string | null; password: string | null };

/**
 * A reply in RESP3 shape: bulk and simple strings as string, integers as
 * number, nil as null, arrays as arrays, maps (HGETALL) as plain objects.
 * A Lua `false` is nil; a Lua table is an array.
 */
export type RedisReply = null | string | number | boolean | RedisReply[] | { [field: string]: RedisReply };

export interface RedisConnectOptions {
  target: RedisTarget;
  /** Give up connecting after this long. */
  timeoutMs: number;
  /** `rediss://`: PEM bundle of CAs that sign the server's certificate; absent = the system's. */
  ca?: string;
}

export interface RedisConnection {
  /**
   * One command (`send("SET", ["k", "v", "PX", 5000, "NX"])`). Rejects with
   * a RedisReplyError when Redis answered with an error reply (the command
   * reached Redis), with another Error when the connection failed (it may or
   * may not have).
   */
  send(command: string, args: readonly (string | number)[]): Promise<RedisReply>;
  /** False once the socket is gone; `send` then rejects at once. */
  readonly connected: boolean;
  /** Called once when the connection is lost (not after `close()`). */
  onClose(fn: (err: Error) => void): void;
  /** Closes the socket; pending commands reject. */
  close(): void;
}

/** Redis answered with an error reply: `-NOSCRIPT ...`, `-WRONGTYPE ...`, an error a script raised. */
export class RedisReplyError extends Error {
  override readonly name = "RedisReplyError";
  /** The reply's first word: NOSCRIPT, ERR, WRONGTYPE, ... */
  readonly prefix: string;
  constructor(message: string) {
    super(message);
    this.prefix = /^[A-Z]+/.exec(message)?.[0] ?? "ERR";
  }
}

/** The target as text for logs and /status, the password left out. */
export function formatRedisTarget(t: RedisTarget): string {
  const user = t.username !== null ? `${encodeURIComponent(t.username)}${t.password !== null ? ":***" : ""}@` : t.password !== null ? ":***@" : "";
  if (t.kind === "unix") return `unix:${t.path}${t.db !== 0 ? `?db=${t.db}` : ""}`;
  const host = t.hostname.includes(":") ? `[${t.hostname}]` : t.hostname;
  return `${t.tls ? "rediss" : "redis"}://${user}${host}:${t.port}${t.db !== 0 ? `/${t.db}` : ""}`;
}
