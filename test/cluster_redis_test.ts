/**
 * The cluster registry against Debian's redis-server 7, started here on a
 * free 127.0.0.1 port and a unix socket (no persistence): the shared cases
 * (test/cluster_redis_cases.ts) on Bun and, in a `deno run` child, on Deno;
 * a second one serves TLS only (rediss://, a private CA); then what needs a hand on Redis or on an edge: a crashed edge's entries
 * and token sessions expire within ttl; Redis restarted mid-test, the
 * registry reconnects and registers again; a second edge with the same id;
 * scripts flushed; Redis stopped (SIGSTOP) answers nothing, lookups fail fast.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ClusterRegistry, ClusterUnavailableError } from "../src/cluster/mod.ts";
import { connectRedis } from "../src/runtime/mod.ts";
import { edgeOptions, freshCluster, redisCases, type RedisUnderTest, target, waitUntil } from "./cluster_redis_cases.ts";
import { ROOT, run, tempDir } from "./support/edgemux.ts";
import { deadPort } from "./support/net.ts";
import { testPki } from "./support/tls.ts";

const REDIS_SERVER = "/usr/bin/redis-server";
const haveRedis = existsSync(REDIS_SERVER);

class RedisServer {
  proc: ChildProcess | null = null;
  readonly dir = tempDir("edgemux-redis-");
  port = 0;
  /** Set: TLS only (no plain port, no unix socket), with this certificate. */
  constructor(private readonly tls: { certPath: string; keyPath: string; caPath: string } | null = null) {}
  get sock(): string {
    return join(this.dir, "redis.sock");
  }
  get urls(): RedisUnderTest {
    return { tcpUrl: `redis://127.0.0.1:${this.port}`, unixUrl: `unix:${this.sock}` };
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await deadPort();
    const listen = this.tls === null
      ? ["--port", String(this.port), "--unixsocket", this.sock]
      : ["--port", "0", "--tls-port", String(this.port), "--tls-cert-file", this.tls.certPath, "--tls-key-file", this.tls.keyPath, "--tls-ca-cert-file", this.tls.caPath, "--tls-auth-clients", "no"];
    const args = [...listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", this.dir, "--loglevel", "warning"];
    const proc = spawn(REDIS_SERVER, args, { stdio: ["ignore", "ignore", "pipe"] });
    this.proc = proc;
    let stderr = "";
    proc.stderr!.on("data", (d) => (stderr += d));
    await waitUntil(
      async () => {
        if (proc.exitCode !== null) throw new Error(`redis-server exited ${proc.exitCode}: ${stderr}`);
        try {
          const url = this.tls === null ? this.urls.tcpUrl : `rediss://localhost:${this.port}`;
          const c = await connectRedis({ target: target(url), timeoutMs: 500, ...(this.tls !== null ? { ca: readFileSync(this.tls.caPath, "utf8") } : {}) });
          c.close();
          return true;
        } catch {
          return false;
        }
      },
      "redis-server to answer",
    );
  }

  async kill(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (p === null || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once("exit", r));
    p.kill("SIGKILL");
    await exited;
  }
}

const redis = new RedisServer();
let tlsRedis: RedisServer | null = null;
/** Both servers' addresses, for the shared cases. */
let under: RedisUnderTest;

beforeAll(async () => {
  if (!haveRedis) return;
  const pki = testPki();
  const cert = pki.issue("localhost", ["localhost", "IP:127.0.0.1"]);
  tlsRedis = new RedisServer({ certPath: cert.certPath, keyPath: cert.keyPath, caPath: pki.caCertPath });
  await Promise.all([redis.start(), tlsRedis.start()]);
  under = { ...redis.urls, tls: { url: `rediss://localhost:${tlsRedis.port}`, caPath: pki.caCertPath } };
}, 30_000);

afterAll(async () => {
  for (const r of [redis, tlsRedis]) {
    if (r === null) continue;
    await r.kill();
    rmSync(r.dir, { recursive: true, force: true });
  }
});

describe.skipIf(!haveRedis)("cluster registry on Bun", () => {
  for (const [name, fn] of Object.entries(redisCases)) test(name, () => fn(under), 30_000);

  test("a crashed edge's services, sessions and token sessions expire within ttl", async () => {
    const cluster = freshCluster();
    const a = new ClusterRegistry(edgeOptions(redis.urls.tcpUrl, cluster, "edge-a"));
    const b = new ClusterRegistry(edgeOptions(redis.urls.unixUrl, cluster, "edge-b"));
    try {
      await Promise.all([a.registerEdge(), b.registerEdge()]);
      a.sessionUp({ id: "s1", agent: "x" }, ["svc"]);
      expect(await a.acquireSession("tok", 2)).toBe(true);
      expect(await a.acquireSession("tok", 2)).toBe(true);
      expect(await b.acquireSession("tok", 2)).toBe(false);
      await waitUntil(async () => (await b.whoHolds("svc")).length === 1, "svc on a");

      a.close(); // no unregister: as if the process died
      const t0 = Date.now();
      await waitUntil(async () => (await b.whoHolds("svc")).length === 0, "a's service to expire", 5_000);
      const gone = Date.now() - t0;
      expect(gone).toBeLessThan(1_000 + 1_000); // ttl, plus polling slack on a busy machine
      expect((await b.liveEdges()).map((e) => e.edgeId)).toEqual(["edge-b"]);
      // a's two sessions of "tok" went with it.
      expect(await b.acquireSession("tok", 2)).toBe(true);
      expect(await b.acquireSession("tok", 2)).toBe(true);
      expect(await b.acquireSession("tok", 2)).toBe(false);
      // Nothing of a's is left in Redis, indexes included.
      const c = await connectRedis({ target: target(redis.urls.tcpUrl), timeoutMs: 2_000 });
      try {
        const keys = ((await c.send("KEYS", [`edgemux:{${cluster}}:*`])) as string[]).sort();
        expect(keys).toEqual([`edgemux:{${cluster}}:edge:edge-b`, `edgemux:{${cluster}}:edge:edge-b:tok`, `edgemux:{${cluster}}:edges`]);
      } finally {
        c.close();
      }
    } finally {
      a.close();
      await b.unregisterEdge();
    }
  }, 30_000);

  test("Redis restarted mid-test: lookups fail fast while it is down, local work goes on, everything is registered again", async () => {
    const cluster = freshCluster();
    const a = new ClusterRegistry(edgeOptions(redis.urls.tcpUrl, cluster, "edge-a"));
    const b = new ClusterRegistry(edgeOptions(redis.urls.unixUrl, cluster, "edge-b"));
    try {
      await Promise.all([a.registerEdge(), b.registerEdge()]);
      a.sessionUp({ id: "s1", agent: "x" }, ["before"]);
      expect(await a.acquireSession("tok", 2)).toBe(true);
      await waitUntil(async () => (await b.whoHolds("before")).length === 1, "before on a");

      await redis.kill();
      await waitUntil(() => a.state === "down" && b.state === "down", "both registries to see Redis gone");
      const t0 = performance.now();
      const err = await b.whoHolds("before").catch((e) => e);
      expect(performance.now() - t0).toBeLessThan(50);
      expect(err).toBeInstanceOf(ClusterUnavailableError);
      expect((err as ClusterUnavailableError).code).toBe("CLUSTER_UNAVAILABLE");
      expect((err as Error).message).toContain(`Cannot look up service 'before' in cluster '${cluster}': Redis at unix:${redis.sock} is unreachable`);
      expect(await a.liveEdges().catch((e) => e)).toBeInstanceOf(ClusterUnavailableError);
      // This edge's own agents keep working: sessions come and go, tokens are counted against this edge.
      a.sessionUp({ id: "s2", agent: "y" }, ["during"]);
      expect(await a.acquireSession("tok", 2)).toBe(true);
      expect(await a.acquireSession("tok", 2)).toBe(false);
      expect(a.stats().redisErrors).toBeGreaterThan(0);
      const registrations = a.stats().registrations;

      await redis.start(); // empty: no persistence
      await waitUntil(() => a.state === "ready" && b.state === "ready", "both registries to register again");
      expect(a.stats().registrations).toBeGreaterThan(registrations);
      expect(a.stats().reconnects).toBeGreaterThanOrEqual(1);
      expect((await b.whoHolds("before")).map((h) => h.sessionId)).toEqual(["s1"]);
      expect((await b.whoHolds("during")).map((h) => h.sessionId)).toEqual(["s2"]);
      expect((await a.liveEdges()).map((e) => e.edgeId)).toEqual(["edge-a", "edge-b"]);
      // a's two token sessions were written again: b finds the token full.
      expect(await b.acquireSession("tok", 2)).toBe(false);
      a.releaseSession("tok");
      await waitUntil(() => b.acquireSession("tok", 2), "a released session taken on b");
    } finally {
      await a.unregisterEdge();
      await b.unregisterEdge();
    }
  }, 60_000);

  test("a second live edge with the same edge_id is not registered until the first is gone", async () => {
    const cluster = freshCluster();
    const first = new ClusterRegistry(edgeOptions(redis.urls.tcpUrl, cluster, "edge-a"));
    const twin = new ClusterRegistry(edgeOptions(redis.urls.tcpUrl, cluster, "edge-a", { advertise: "twin.test:7444" }));
    try {
      await first.registerEdge();
      first.sessionUp({ id: "s1", agent: "x" }, ["svc"]);
      const twinReady = twin.registerEdge();
      await waitUntil(() => twin.state === "conflict", "the twin to see the conflict");
      twin.sessionUp({ id: "t1", agent: "y" }, ["other"]);
      expect(await twin.whoHolds("svc").catch((e) => (e as Error).message)).toContain("edge_id 'edge-a' is held by another live edge");
      expect((await first.whoHolds("svc")).map((h) => h.advertise)).toEqual(["edge-a.test:7444"]);
      expect(await first.whoHolds("other")).toEqual([]);

      first.close(); // crashed: the twin takes the id once its keys expire
      await twinReady;
      expect(twin.state).toBe("ready");
      expect((await twin.whoHolds("other")).map((h) => `${h.advertise}/${h.sessionId}`)).toEqual(["twin.test:7444/t1"]);
      expect(await twin.whoHolds("svc")).toEqual([]);
    } finally {
      first.close();
      await twin.unregisterEdge();
    }
  }, 30_000);

  test("scripts flushed from Redis: calls fall back to EVAL and the state is written again", async () => {
    const cluster = freshCluster();
    const a = new ClusterRegistry(edgeOptions(redis.urls.tcpUrl, cluster, "edge-a"));
    const c = await connectRedis({ target: target(redis.urls.tcpUrl), timeoutMs: 2_000 });
    try {
      await a.registerEdge();
      await c.send("SCRIPT", ["FLUSH"]);
      const before = a.stats().registrations;
      a.sessionUp({ id: "s1", agent: "x" }, ["svc"]);
      await waitUntil(async () => (await a.whoHolds("svc")).length === 1, "svc after the flush");
      await waitUntil(() => a.stats().registrations > before, "a full registration after NOSCRIPT");
    } finally {
      c.close();
      await a.unregisterEdge();
    }
  }, 30_000);

  test("a Redis that stops answering: commands time out, lookups then fail at once, and it recovers", async () => {
    const cluster = freshCluster();
    const a = new ClusterRegistry(edgeOptions(redis.urls.tcpUrl, cluster, "edge-a", { commandTimeoutMs: 300 }));
    try {
      await a.registerEdge();
      a.sessionUp({ id: "s1", agent: "x" }, ["svc"]);
      redis.proc!.kill("SIGSTOP");
      try {
        const t0 = performance.now();
        expect(await a.whoHolds("svc").catch((e) => e)).toBeInstanceOf(ClusterUnavailableError);
        expect(performance.now() - t0).toBeLessThan(2_000);
        await waitUntil(() => a.state !== "ready", "the registry to leave ready");
        const t1 = performance.now();
        expect(await a.whoHolds("svc").catch((e) => e)).toBeInstanceOf(ClusterUnavailableError);
        expect(performance.now() - t1).toBeLessThan(50);
      } finally {
        redis.proc!.kill("SIGCONT");
      }
      await waitUntil(() => a.state === "ready", "ready again after SIGCONT");
      expect((await a.whoHolds("svc")).map((h) => h.sessionId)).toEqual(["s1"]);
    } finally {
      await a.unregisterEdge();
    }
  }, 30_000);
});

describe.skipIf(!haveRedis)("cluster registry on Deno (npm @redis/client)", () => {
  test("passes the same cases", async () => {
    const args = [under.tcpUrl, under.unixUrl, under.tls!.url, under.tls!.caPath];
    const r = await run("deno", ["run", "--allow-all", join(ROOT, "test/cluster_redis_deno.ts"), ...args], { timeoutMs: 90_000 });
    const results = r.stdout.split("\n").filter((l) => l.startsWith("ok ") || l.startsWith("FAIL "));
    expect(results.filter((l) => l.startsWith("FAIL ")), r.stderr).toEqual([]);
    expect(results.length).toBe(Object.keys(redisCases).length);
    expect(r.code).toBe(0);
  }, 100_000);
});
