/**
 * Cluster registry cases against a real redis-server, written once and run
 * on Bun (test/cluster_redis_test.ts) and on Deno (test/cluster_redis_deno.ts):
 * the runtime's Redis client, and two registries ("edges") sharing one Redis.
 * The caller starts Redis and passes its addresses.
 */
import { ClusterRegistry, type ClusterRegistryOptions } from "../src/cluster/mod.ts";
import { ClusterUnavailableError } from "../src/cluster/errors.ts";
import { parseRedisUrl } from "../src/config/validate_cluster.ts";
import { readFileSync } from "node:fs";
import { connectRedis, RedisReplyError, type RedisTarget } from "../src/runtime/mod.ts";

export interface RedisUnderTest {
  /** redis://127.0.0.1:PORT */
  tcpUrl: string;
  /** unix:/path/redis.sock */
  unixUrl: string;
  /** A second Redis serving TLS only: rediss://localhost:PORT, and the CA that signed its certificate. */
  tls?: { url: string; caPath: string };
}

export function target(url: string): RedisTarget {
  const r = parseRedisUrl(url);
  if ("error" in r) throw new Error(r.error);
  return r.address;
}

export function assertEq(got: unknown, want: unknown, what: string): void {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`);
}

/** Polls `check` until it returns a truthy value, or fails after `timeoutMs`. */
export async function waitUntil<T>(check: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let clusters = 0;
/** A cluster name no other case uses, so cases sharing one Redis stay apart. */
export function freshCluster(): string {
  return `t${Date.now().toString(36)}-${++clusters}-${Math.floor(Math.random() * 1e6)}`;
}

/** Registry options for tests: fast heartbeats, so expiry is seen within a second or two. */
export function edgeOptions(url: string, cluster: string, edgeId: string, more: Partial<ClusterRegistryOptions> = {}): ClusterRegistryOptions {
  return { redis: target(url), cluster, edgeId, advertise: `${edgeId}.test:7444`, heartbeatMs: 150, ttlMs: 1_000, ...more };
}

export const redisCases: Record<string, (r: RedisUnderTest) => Promise<void>> = {
  async "client: the commands the registry uses, over TCP and a unix socket"(r) {
    for (const url of [r.tcpUrl, r.unixUrl]) {
      const c = await connectRedis({ target: target(url), timeoutMs: 2_000 });
      try {
        const k = `case:${freshCluster()}`;
        assertEq(await c.send("PING", []), "PONG", "PING");
        assertEq(await c.send("SET", [k, "v", "PX", 5_000, "NX"]), "OK", "SET PX NX");
        assertEq(await c.send("SET", [k, "w", "PX", 5_000, "NX"]), null, "SET NX on an existing key");
        assertEq(await c.send("GET", [k]), "v", "GET");
        assertEq(await c.send("PEXPIRE", [k, 60_000]), 1, "PEXPIRE");
        assertEq(await c.send("EXPIRE", [k, 60]), 1, "EXPIRE");
        assertEq(await c.send("DEL", [k]), 1, "DEL");
        assertEq(await c.send("HSET", [k, "a", "1", "b", "2"]), 2, "HSET");
        assertEq(await c.send("HGETALL", [k]), { a: "1", b: "2" }, "HGETALL (a RESP3 map)");
        assertEq(await c.send("HDEL", [k, "a"]), 1, "HDEL");
        assertEq(await c.send("HGETALL", [`${k}:none`]), {}, "HGETALL of no key");
        assertEq(await c.send("SADD", [`${k}:s`, "x", "y"]), 2, "SADD");
        assertEq(((await c.send("SMEMBERS", [`${k}:s`])) as string[]).sort(), ["x", "y"], "SMEMBERS");
        assertEq(await c.send("SREM", [`${k}:s`, "x"]), 1, "SREM");
        assertEq(await c.send("INCRBY", [`${k}:n`, 5]), 5, "INCRBY");
        assertEq(await c.send("DECRBY", [`${k}:n`, 2]), 3, "DECRBY");
        assertEq(await c.send("EVAL", ["return {1, 'a', {2}, false}", 0]), [1, "a", [2], null], "EVAL reply shapes");
        let err: unknown = null;
        try {
          await c.send("EVALSHA", ["0000000000000000000000000000000000000000", 0]);
        } catch (e) {
          err = e;
        }
        if (!(err instanceof RedisReplyError) || err.prefix !== "NOSCRIPT") throw new Error(`EVALSHA of an unknown script: want RedisReplyError NOSCRIPT, got ${String(err)}`);
        assertEq(c.connected, true, "still connected after an error reply");
        await c.send("DEL", [`${k}`, `${k}:s`, `${k}:n`]);
      } finally {
        c.close();
      }
    }
  },

  async "client: /db (TCP) and ?db= (unix) select the database"(r) {
    for (const url of [`${r.tcpUrl}/2`, `${r.unixUrl}?db=2`]) {
      const k = `case:${freshCluster()}`;
      const db2 = await connectRedis({ target: target(url), timeoutMs: 2_000 });
      const db0 = await connectRedis({ target: target(r.tcpUrl), timeoutMs: 2_000 });
      try {
        await db2.send("SET", [k, "in-2", "PX", 5_000]);
        assertEq(await db0.send("GET", [k]), null, `${url}: db 0 does not see db 2's key`);
        assertEq(await db2.send("GET", [k]), "in-2", `${url}: db 2`);
      } finally {
        db2.close();
        db0.close();
      }
    }
  },

  async "client: a refused connect fails, a killed connection reports onClose once"(r) {
    const dead = target(r.tcpUrl);
    if (dead.kind !== "tcp") throw new Error("tcpUrl must be TCP");
    let refused: unknown = null;
    try {
      (await connectRedis({ target: { ...dead, port: 1 }, timeoutMs: 2_000 })).close();
    } catch (e) {
      refused = e;
    }
    if (refused === null) throw new Error("connecting to port 1 did not fail");

    const victim = await connectRedis({ target: target(r.tcpUrl), timeoutMs: 2_000 });
    const admin = await connectRedis({ target: target(r.tcpUrl), timeoutMs: 2_000 });
    try {
      let closes = 0;
      victim.onClose(() => closes++);
      await victim.send("CLIENT", ["SETNAME", "victim"]);
      const id = await victim.send("CLIENT", ["ID"]);
      await admin.send("CLIENT", ["KILL", "ID", Number(id)]);
      await waitUntil(() => closes === 1, "onClose after CLIENT KILL");
      assertEq(victim.connected, false, "connected after the kill");
      let failed = false;
      await victim.send("PING", []).catch(() => (failed = true));
      assertEq(failed, true, "a command on a lost connection rejects");
      assertEq(closes, 1, "onClose calls");
    } finally {
      victim.close();
      admin.close();
    }
  },

  async "client and registry over rediss:// with a private CA"(r) {
    if (r.tls === undefined) throw new Error("no TLS Redis was started");
    const ca = readFileSync(r.tls.caPath, "utf8");
    const c = await connectRedis({ target: target(`${r.tls.url}/1`), timeoutMs: 2_000, ca });
    try {
      assertEq(await c.send("PING", []), "PONG", "PING over TLS");
    } finally {
      c.close();
    }
    let refused = false;
    await connectRedis({ target: target(r.tls.url), timeoutMs: 2_000 }).then((x) => x.close(), () => (refused = true));
    assertEq(refused, true, "a certificate the system's CAs do not sign is refused");

    const cluster = freshCluster();
    const a = new ClusterRegistry(edgeOptions(r.tls.url, cluster, "edge-a", { redisCa: ca }));
    const b = new ClusterRegistry(edgeOptions(r.tcpUrl, cluster, "edge-b"));
    try {
      await a.registerEdge();
      a.sessionUp({ id: "s1", agent: "x" }, ["svc"]);
      await waitUntil(async () => (await a.whoHolds("svc")).length === 1, "svc over TLS");
      await b.registerEdge(); // another Redis: another registry, it sees nothing of a's
      assertEq(await b.whoHolds("svc"), [], "a separate Redis");
    } finally {
      await a.unregisterEdge();
      await b.unregisterEdge();
    }
  },

  async "registry: two edges see each other's services and sessions"(r) {
    const cluster = freshCluster();
    const a = new ClusterRegistry(edgeOptions(r.tcpUrl, cluster, "edge-a"));
    const b = new ClusterRegistry(edgeOptions(r.unixUrl, cluster, "edge-b"));
    try {
      await Promise.all([a.registerEdge(), b.registerEdge()]);
      a.sessionUp({ id: "s1", agent: "db-agent" }, ["db", "web"]);
      b.sessionUp({ id: "s2", agent: "web-agent" }, ["web"]);
      await waitUntil(async () => (await b.whoHolds("web")).length === 2, "both web holders");
      assertEq(await b.whoHolds("db"), [{ edgeId: "edge-a", advertise: "edge-a.test:7444", sessionId: "s1" }], "db seen from edge b");
      const web = (await a.whoHolds("web")).map((h) => `${h.edgeId}/${h.sessionId}`).sort();
      assertEq(web, ["edge-a/s1", "edge-b/s2"], "web seen from edge a");
      const edges = await a.liveEdges();
      assertEq(edges.map((e) => [e.edgeId, e.advertise, e.sessions]), [["edge-a", "edge-a.test:7444", 1], ["edge-b", "edge-b.test:7444", 1]], "live edges");

      a.servicesChanged("s1", ["db"]);
      await waitUntil(async () => (await b.whoHolds("web")).length === 1, "web dropped by s1");
      a.sessionUp({ id: "s3", agent: "db-agent-2" }, ["db"]);
      await waitUntil(async () => (await b.whoHolds("db")).length === 2, "a second db session");
      a.sessionDown("s1");
      await waitUntil(async () => (await b.whoHolds("db")).map((h) => h.sessionId).join() === "s3", "s1 gone");
      assertEq(await b.whoHolds("nothing"), [], "an unknown service");
      assertEq(a.stats().state, "ready", "state");
    } finally {
      await a.unregisterEdge();
      await b.unregisterEdge();
    }
  },

  async "registry: max_sessions holds across two edges and is given back on release"(r) {
    const cluster = freshCluster();
    const a = new ClusterRegistry(edgeOptions(r.tcpUrl, cluster, "edge-a"));
    const b = new ClusterRegistry(edgeOptions(r.tcpUrl, cluster, "edge-b"));
    try {
      await Promise.all([a.registerEdge(), b.registerEdge()]);
      assertEq(await a.acquireSession("tok", 3), true, "1st on a");
      assertEq(await b.acquireSession("tok", 3), true, "2nd on b");
      assertEq(await a.acquireSession("tok", 3), true, "3rd on a");
      assertEq(await b.acquireSession("tok", 3), false, "4th on b: over max");
      assertEq(await a.acquireSession("tok", 3), false, "4th on a: over max");
      assertEq(await b.acquireSession("other", 1), true, "another token has its own count");
      assertEq(await b.acquireSession("free", 0), true, "max 0 = no limit");
      a.releaseSession("tok");
      await waitUntil(() => b.acquireSession("tok", 3), "a released session taken on b");
      assertEq(await a.acquireSession("tok", 3), false, "full again");
    } finally {
      await a.unregisterEdge();
      await b.unregisterEdge();
    }
  },

  async "registry: an unregistered edge is gone at once"(r) {
    const cluster = freshCluster();
    const a = new ClusterRegistry(edgeOptions(r.tcpUrl, cluster, "edge-a"));
    const b = new ClusterRegistry(edgeOptions(r.tcpUrl, cluster, "edge-b"));
    try {
      await Promise.all([a.registerEdge(), b.registerEdge()]);
      a.sessionUp({ id: "s1", agent: "x" }, ["svc"]);
      await waitUntil(async () => (await b.whoHolds("svc")).length === 1, "svc on a");
      await a.unregisterEdge();
      assertEq(await b.whoHolds("svc"), [], "svc after a unregistered");
      assertEq((await b.liveEdges()).map((e) => e.edgeId), ["edge-b"], "live edges");
      let err: unknown = null;
      await a.whoHolds("svc").catch((e) => (err = e));
      if (!(err instanceof ClusterUnavailableError)) throw new Error(`a closed registry's lookup: want ClusterUnavailableError, got ${String(err)}`);
    } finally {
      await a.unregisterEdge();
      await b.unregisterEdge();
    }
  },
};
