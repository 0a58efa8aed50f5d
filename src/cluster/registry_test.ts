/** The registry without Redis: what an edge does while Redis cannot be reached (test/cluster_redis_test.ts runs it against redis-server). */
import { describe, expect, test } from "bun:test";
import { formatRedisTarget, type RedisConnectOptions, type RedisTarget } from "../runtime/mod.ts";
import { bunRedisUrl } from "../runtime/redis_bun.ts";
import { parseConfig } from "../config/mod.ts";
import { ClusterRegistry, ClusterUnavailableError, registryOptions } from "./mod.ts";
import { SCRIPTS } from "./scripts.ts";

const TCP: RedisTarget = { kind: "tcp", hostname: "10.0.0.5", port: 6379, tls: false, db: 0, username: null, password: null };

function unreachable(): { attempts: RedisConnectOptions[]; connect: (o: RedisConnectOptions) => Promise<never> } {
  const attempts: RedisConnectOptions[] = [];
  return {
    attempts,
    connect: (o) => {
      attempts.push(o);
      return Promise.reject(new Error("connect ECONNREFUSED 10.0.0.5:6379"));
    },
  };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}

describe("ClusterRegistry while Redis is unreachable", () => {
  test("ttl must be more than twice the heartbeat", () => {
    expect(() => new ClusterRegistry({ redis: TCP, cluster: "c", edgeId: "e", advertise: "e:1", heartbeatMs: 100, ttlMs: 200 })).toThrow(
      "cluster ttl (200 ms) must be more than twice the heartbeat (100 ms)",
    );
  });

  test("lookups fail at once with CLUSTER_UNAVAILABLE; local sessions and token counts go on; it keeps retrying", async () => {
    const fake = unreachable();
    const r = new ClusterRegistry({ redis: TCP, cluster: "prod", edgeId: "e1", advertise: "e1:7444", heartbeatMs: 100, ttlMs: 300, connect: fake.connect });
    const ready = r.registerEdge();
    try {
      await until(() => r.state === "down");
      const err = await r.whoHolds("db").catch((e) => e);
      expect(err).toBeInstanceOf(ClusterUnavailableError);
      expect(err.code).toBe("CLUSTER_UNAVAILABLE");
      expect(err.message).toBe(
        "Cannot look up service 'db' in cluster 'prod': Redis at redis://10.0.0.5:6379 is unreachable (connect: connect ECONNREFUSED 10.0.0.5:6379); agents on this edge keep serving its own clients",
      );
      expect(await r.liveEdges().catch((e) => e)).toBeInstanceOf(ClusterUnavailableError);

      r.sessionUp({ id: "s1", agent: "a" }, ["db"]);
      expect(r.stats().sessions).toBe(1);
      // Token sessions are counted against this edge alone.
      expect(await r.acquireSession("t", 2)).toBe(true);
      expect(await r.acquireSession("t", 2)).toBe(true);
      expect(await r.acquireSession("t", 2)).toBe(false);
      r.releaseSession("t");
      expect(await r.acquireSession("t", 2)).toBe(true);
      expect(await r.acquireSession("u", 0)).toBe(true);
      r.sessionDown("s1");
      expect(r.stats().sessions).toBe(0);

      await until(() => fake.attempts.length >= 3);
      expect(r.stats().redisErrors).toBeGreaterThanOrEqual(3);
      expect(r.stats().lastError).toBe("connect: connect ECONNREFUSED 10.0.0.5:6379");
    } finally {
      r.close();
    }
    expect(await ready.catch((e) => (e as Error).message)).toBe("the cluster registry is closed");
    const n = fake.attempts.length;
    await new Promise((res) => setTimeout(res, 250));
    expect(fake.attempts.length).toBe(n); // closed: no more attempts
    expect(r.state).toBe("closed");
  });

  test("scripts have distinct names and SHA-1s", () => {
    expect(new Set(SCRIPTS.map((s) => s.name)).size).toBe(SCRIPTS.length);
    for (const s of SCRIPTS) expect(s.sha).toMatch(/^[0-9a-f]{40}$/);
  });
});

describe("registryOptions", () => {
  test("from a validated [cluster] section", () => {
    const pki = new URL("../config/testdata/pki/", import.meta.url).pathname;
    const c = parseConfig(
      `[[listeners]]\nkind = "sni"\naddress = "127.0.0.1:0"\n[cluster]\nredis = "rediss://r.example:6380/2"\nredis_ca = "${pki}ca.crt"\nname = "prod"\nedge_id = "e1"\n` +
        `advertise = "[2001:db8::1]:7444"\nheartbeat = "2s"\n[cluster.tls]\ncert = "${pki}server.crt"\nkey = "${pki}server.key"\nca = "${pki}ca.crt"\n`,
    ).cluster!;
    const o = registryOptions(c);
    expect(o).toMatchObject({ cluster: "prod", edgeId: "e1", advertise: "[2001:db8::1]:7444", heartbeatMs: 2_000, ttlMs: 15_000 });
    expect(o.redis).toEqual({ kind: "tcp", hostname: "r.example", port: 6380, tls: true, db: 2, username: null, password: null });
    expect(o.redisCa).toContain("BEGIN CERTIFICATE");
  });
});

describe("Redis targets", () => {
  test("shown without the password", () => {
    expect(formatRedisTarget(TCP)).toBe("redis://10.0.0.5:6379");
    expect(formatRedisTarget({ ...TCP, hostname: "::1", tls: true, db: 2, username: "bob", password: "x" })).toBe("rediss://bob:***@[::1]:6379/2");
    expect(formatRedisTarget({ ...TCP, password: "x" })).toBe("redis://:***@10.0.0.5:6379");
    expect(formatRedisTarget({ kind: "unix", path: "/run/r.sock", db: 1, username: null, password: null })).toBe("unix:/run/r.sock?db=1");
  });

  test("Bun's URL forms", () => {
    expect(bunRedisUrl(TCP)).toBe("redis://10.0.0.5:6379/0");
    expect(bunRedisUrl({ ...TCP, tls: true, hostname: "::1", username: "u", password: "p@ss" })).toBe("rediss://u:p%40ss@[::1]:6379/0");
    expect(bunRedisUrl({ kind: "unix", path: "/run/r.sock", db: 0, username: null, password: null })).toBe("redis+unix:///run/r.sock");
  });
});
