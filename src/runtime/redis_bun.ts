/**
 * The Redis contract (redis_types.ts) on Bun's built-in `RedisClient`
 * (RESP3, written in Zig inside Bun). Its own reconnect and offline queue are
 * turned off: a lost connection is reported once through `onClose`, and the
 * registry makes a new one.
 */
import { type RedisConnection, type RedisConnectOptions, type RedisReply, RedisReplyError, type RedisTarget } from "./redis_types.ts";

/** `Bun`, reached through globalThis so `deno check` can type-check this file too. */
// deno-lint-ignore no-explicit-any
const Bun: any = (globalThis as any).Bun;

/** Bun's client takes a URL: redis://, rediss://, redis+unix:///path (its forms; `unix:/path` is ours). */
export function bunRedisUrl(t: RedisTarget): string {
  const cred = t.password !== null ? `${encodeURIComponent(t.username ?? "")}:${encodeURIComponent(t.password)}@` : t.username !== null ? `${encodeURIComponent(t.username)}@` : "";
  // With credentials Bun wants a host before the path (it is not used): redis+unix://:pw@localhost/path.
  // Its unix form takes no database: connectRedisBun sends SELECT.
  if (t.kind === "unix") return `redis+unix://${cred}${cred !== "" ? "localhost" : ""}${t.path}`;
  const host = t.hostname.includes(":") ? `[${t.hostname}]` : t.hostname;
  return `${t.tls ? "rediss" : "redis"}://${cred}${host}:${t.port}/${t.db}`;
}

class BunRedisConnection implements RedisConnection {
  private closeFn: ((err: Error) => void) | null = null;
  private closedByUs = false;
  private told = false;

  // deno-lint-ignore no-explicit-any
  constructor(private readonly client: any) {
    client.onclose = (err: Error | undefined) => this.lost(err ?? new Error("Redis connection closed"));
  }

  get connected(): boolean {
    return this.client.connected === true;
  }

  async send(command: string, args: readonly (string | number)[]): Promise<RedisReply> {
    try {
      return (await this.client.send(command, args.map(String))) as RedisReply;
    } catch (err) {
      // Bun marks an error reply from the server with this code; anything else is the connection.
      if ((err as { code?: string }).code === "ERR_REDIS_SERVER_ERROR") throw new RedisReplyError((err as Error).message);
      throw err;
    }
  }

  onClose(fn: (err: Error) => void): void {
    this.closeFn = fn;
  }

  close(): void {
    this.closedByUs = true;
    this.client.close();
  }

  private lost(err: Error): void {
    if (this.closedByUs || this.told) return;
    this.told = true;
    this.closeFn?.(err);
  }
}

export async function connectRedisBun(opts: RedisConnectOptions): Promise<RedisConnection> {
  const tls = opts.target.kind === "tcp" && opts.target.tls ? (opts.ca !== undefined ? { ca: opts.ca } : true) : undefined;
  const client = new Bun.RedisClient(bunRedisUrl(opts.target), {
    autoReconnect: false,
    enableOfflineQueue: false,
    connectionTimeout: opts.timeoutMs,
    enableAutoPipelining: true,
    ...(tls !== undefined ? { tls } : {}),
  });
  const conn = new BunRedisConnection(client);
  try {
    await client.connect();
  } catch (err) {
    conn.close();
    throw err;
  }
  if (opts.target.kind === "unix" && opts.target.db !== 0) {
    try {
      await conn.send("SELECT", [opts.target.db]);
    } catch (err) {
      conn.close();
      throw err;
    }
  }
  return conn;
}
