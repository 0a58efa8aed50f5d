/**
 * The Redis contract (redis_types.ts) on Deno: the npm client `@redis/client`
 * (node-redis, the client the Redis project maintains), loaded from
 * node_modules (deno.json `nodeModulesDir: "manual"`), over Deno's node:net
 * and node:tls. Deno has no Redis client of its own; this one runs unchanged.
 * Its reconnect strategy and offline queue are turned off: a lost connection
 * is reported once through `onClose`, and the registry makes a new one.
 */
import { isIP } from "node:net";
import { createClient, ErrorReply } from "@redis/client";
import type { RedisConnection, RedisConnectOptions, RedisReply } from "./redis_types.ts";
import { RedisReplyError } from "./redis_types.ts";

/** What this adapter uses of the client (its own generic type is wider than needed here). */
interface Client {
  readonly isReady: boolean;
  on(event: "error", fn: (err: Error) => void): unknown;
  on(event: "end" | "terminated", fn: () => void): unknown;
  sendCommand(args: string[]): Promise<unknown>;
  connect(): Promise<unknown>;
  destroy(): void;
}

class NodeRedisConnection implements RedisConnection {
  private closeFn: ((err: Error) => void) | null = null;
  private closedByUs = false;
  private told = false;
  private lastError: Error | null = null;

  constructor(private readonly client: Client) {
    client.on("error", (err: Error) => {
      this.lastError = err;
    });
    // With no reconnect strategy a lost socket ends in "terminated" (the client is unusable from then on);
    // "end" follows a close of ours, or covers a client version that ends that way.
    client.on("terminated", () => this.lost());
    client.on("end", () => this.lost());
  }

  get connected(): boolean {
    return this.client.isReady;
  }

  async send(command: string, args: readonly (string | number)[]): Promise<RedisReply> {
    try {
      return (await this.client.sendCommand([command, ...args.map(String)])) as RedisReply;
    } catch (err) {
      if (err instanceof ErrorReply) throw new RedisReplyError(err.message);
      throw err;
    }
  }

  onClose(fn: (err: Error) => void): void {
    this.closeFn = fn;
  }

  close(): void {
    this.closedByUs = true;
    this.client.destroy();
  }

  private lost(): void {
    if (this.closedByUs || this.told) return;
    this.told = true;
    this.closeFn?.(this.lastError ?? new Error("Redis connection closed"));
  }
}

export async function connectRedisDeno(opts: RedisConnectOptions): Promise<RedisConnection> {
  const t = opts.target;
  const common = { connectTimeout: opts.timeoutMs, reconnectStrategy: false as const };
  const socket = t.kind === "unix"
    ? { ...common, path: t.path, tls: false as const }
    : t.tls
    ? { ...common, host: t.hostname, port: t.port, tls: true as const, ...(isIP(t.hostname) === 0 ? { servername: t.hostname } : {}), ...(opts.ca !== undefined ? { ca: opts.ca } : {}) }
    : { ...common, host: t.hostname, port: t.port };
  const client: Client = createClient({
    socket,
    database: t.db,
    disableOfflineQueue: true,
    RESP: 3,
    ...(t.username !== null ? { username: t.username } : {}),
    ...(t.password !== null ? { password: t.password } : {}),
  });
  const conn = new NodeRedisConnection(client);
  try {
    await client.connect();
  } catch (err) {
    client.destroy();
    throw err;
  }
  return conn;
}
