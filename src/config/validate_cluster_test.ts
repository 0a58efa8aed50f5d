import { describe, expect, test } from "bun:test";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig, reloadProblems } from "./mod.ts";
import { issuesOf, LISTENER } from "./test_util.ts";
import { defaultEdgeHost, parseRedisUrl } from "./validate_cluster.ts";
import type { RedisAddress } from "./types.ts";

const PKI = join(dirname(fileURLToPath(import.meta.url)), "testdata", "pki");
const TLS = `[cluster.tls]\ncert = "${PKI}/server.crt"\nkey = "${PKI}/server.key"\nca = "${PKI}/ca.crt"\n`;
const cluster = (body: string, tls = TLS) => `${LISTENER}\n[cluster]\n${body}\n${tls}`;
const BASE = `redis = "redis://127.0.0.1:6379"\nname = "prod"\nadvertise = "edge1.example.net:7444"`;
const tcp = (hostname: string, port: number, more: { tls?: boolean; db?: number; username?: string; password?: string } = {}): RedisAddress => ({ kind: "tcp", hostname, port, tls: false, db: 0, username: null, password: null, ...more });

describe("[cluster]", () => {
  test("absent: no cluster", () => {
    expect(parseConfig(LISTENER).cluster).toBeNull();
  });

  test("a minimal section gets its defaults", () => {
    const c = parseConfig(cluster(BASE)).cluster!;
    expect(c.redis).toEqual(tcp("127.0.0.1", 6379));
    expect(c.redisCa).toBeNull();
    expect(c.name).toBe("prod");
    expect(c.advertise).toEqual({ hostname: "edge1.example.net", port: 7444 });
    expect(c.listen).toEqual({ hostname: "0.0.0.0", port: 7444 });
    expect(c.heartbeatMs).toBe(5_000);
    expect(c.ttlMs).toBe(15_000);
    expect(c.tls.caPath).toBe(join(PKI, "ca.crt"));
    expect(c.tls.cert).toContain("BEGIN CERTIFICATE");
    // No tunnel listener: the host name and the advertise port.
    expect(c.edgeId).toBe(`${defaultEdgeHost()}:7444`);
  });

  test("edge_id defaults to the host name and the first tunnel listener's port", () => {
    const tunnel = `[[listeners]]\nkind = "tunnel"\naddress = "127.0.0.1:7443"\n[listeners.tls]\ncert = "${PKI}/server.crt"\nkey = "${PKI}/server.key"\n` +
      `[[tokens]]\nname = "a"\nsha256 = "${"a".repeat(64)}"\nroles = ["destination"]\n`;
    const c = parseConfig(`${tunnel}\n[cluster]\n${BASE}\n${TLS}`).cluster!;
    expect(c.edgeId).toBe(`${defaultEdgeHost()}:7443`);
    expect(defaultEdgeHost("Edge 1.Example")).toBe("edge-1.example");
    expect(defaultEdgeHost("")).toBe("edge");
  });

  test("every option as written", () => {
    const c = parseConfig(cluster(`redis = "rediss://u:p%40ss@[::1]:6380/3"\nredis_ca = "${PKI}/ca.crt"\nname = "eu-1"\nedge_id = "e1:7443"\nadvertise = "10.0.0.1:7444"\nlisten = "10.0.0.1:7444"\nheartbeat = "1s"\nttl = "3s"`)).cluster!;
    expect(c.redis).toEqual(tcp("::1", 6380, { tls: true, db: 3, username: "u", password: "p@ss" }));
    expect(c.redisCaPath).toBe(join(PKI, "ca.crt"));
    expect(c.redisCa).toContain("BEGIN CERTIFICATE");
    expect(c).toMatchObject({ name: "eu-1", edgeId: "e1:7443", listen: { hostname: "10.0.0.1", port: 7444 }, heartbeatMs: 1_000, ttlMs: 3_000 });
  });

  test("ttl defaults to 3 x heartbeat when that is longer than 15s", () => {
    expect(parseConfig(cluster(`${BASE}\nheartbeat = "10s"`)).cluster!.ttlMs).toBe(30_000);
  });

  test("required fields and [cluster.tls] are named", () => {
    expect(issuesOf(`${LISTENER}\n[cluster]\n`)).toEqual([
      "cluster.redis: is required",
      "cluster.name: is required",
      "cluster.advertise: is required",
      "cluster.tls: is required: [cluster.tls] with cert, key and ca (edges authenticate each other with these certificates)",
    ]);
    expect(issuesOf(cluster(BASE, `[cluster.tls]\ncert = "${PKI}/server.crt"\n`))).toEqual(["cluster.tls.key: is required", "cluster.tls.ca: is required"]);
  });

  test("bad values name the field and the bound", () => {
    expect(issuesOf(cluster(`${BASE}\nttl = "10s"`))).toEqual([
      `cluster.ttl: must be more than twice cluster.heartbeat (5s), so one late heartbeat does not drop the edge; got "10s" (300ms..10m)`,
    ]);
    expect(issuesOf(cluster(`${BASE}\nheartbeat = "50ms"`))).toEqual([`cluster.heartbeat: must be 100ms..1m, got "50ms"`]);
    expect(issuesOf(cluster(`${BASE}\nredis_ca = "${PKI}/ca.crt"`))).toEqual([`cluster.redis_ca: only applies to a rediss:// (TLS) cluster.redis`]);
    expect(issuesOf(cluster(`${BASE.replace("redis://", "rediss://")}\nredis_ca = "${PKI}/server.key"`))[0]).toStartWith(`cluster.redis_ca: ${PKI}/server.key is not a PEM certificate`);
    expect(issuesOf(cluster(`redis = "http://x"\nname = "a b"\nadvertise = "host"\nedge_id = "a/b"\nhost = 1`))).toEqual([
      `cluster.host: unknown key`,
      `cluster.redis: must be "redis://host:port/db", "rediss://host:port/db" (TLS) or "unix:/path", got "http://x"`,
      `cluster.name: must be 1..64 of [A-Za-z0-9_.-] (every key is under "edgemux:{name}"), got "a b"`,
      `cluster.advertise: must be "host:port" or "[v6]:port", got "host"`,
      `cluster.edge_id: must be 1..128 of [A-Za-z0-9_.:-], got "a/b"`,
    ]);
    expect(issuesOf(cluster(`${BASE}\nlisten = "edge1.example.net:7444"`))).toEqual([
      `cluster.listen: must be an IP address to listen on (127.0.0.1, 0.0.0.0, [::1], [::]), got "edge1.example.net"`,
    ]);
    const tlsIssues = issuesOf(cluster(BASE, `[cluster.tls]\ncert = "${PKI}/server.crt"\nkey = "${PKI}/client.key"\nca = "${PKI}/nope.crt"\n`));
    expect(tlsIssues).toHaveLength(2);
    expect(tlsIssues[0]).toStartWith(`cluster.tls.ca: cannot read ${PKI}/nope.crt: `);
    expect(tlsIssues[1]).toBe(`cluster.tls.key: ${PKI}/client.key is not the private key of cluster.tls.cert`);
  });

  test("listen must not take a listener's or the admin API's port", () => {
    const l = `[[listeners]]\nkind = "sni"\naddress = "127.0.0.1:7444"\n`;
    expect(issuesOf(`${l}\n[cluster]\n${BASE}\n${TLS}`)).toEqual([
      "cluster.listen: 0.0.0.0:7444 (the default, 0.0.0.0 and the advertise port: set cluster.listen) is also listeners[0] (sni)'s address",
    ]);
    expect(parseConfig(`${l}\n[cluster]\n${BASE}\nlisten = "127.0.0.2:7444"\n${TLS}`).cluster!.listen).toEqual({ hostname: "127.0.0.2", port: 7444 });
    expect(issuesOf(cluster(`${BASE}\nlisten = "127.0.0.1:9901"`))).toEqual(["cluster.listen: 127.0.0.1:9901 is also the admin API's address"]);
  });
});

test("a change to [cluster] needs a restart", () => {
  const one = parseConfig(cluster(BASE));
  expect(reloadProblems(one, parseConfig(cluster(BASE)))).toEqual([]);
  expect(reloadProblems(one, parseConfig(cluster(`${BASE}\nheartbeat = "1s"`)))).toEqual(["cluster: changing [cluster] needs a restart"]);
  expect(reloadProblems(one, parseConfig(LISTENER))).toEqual(["cluster: changing [cluster] needs a restart"]);
});

describe("parseRedisUrl", () => {
  test("the URL forms", () => {
    const ok = (s: string) => {
      const r = parseRedisUrl(s);
      if ("error" in r) throw new Error(r.error);
      return r.address;
    };
    expect(ok("redis://localhost")).toEqual(tcp("localhost", 6379));
    expect(ok("redis://Redis.Example:7000/15")).toEqual(tcp("redis.example", 7000, { db: 15 }));
    expect(ok("redis://:secret@10.1.2.3/")).toEqual(tcp("10.1.2.3", 6379, { password: "secret" }));
    expect(ok("redis://bob@10.1.2.3:1")).toEqual(tcp("10.1.2.3", 1, { username: "bob" }));
    expect(ok("rediss://[2001:db8::0:1]:6380")).toEqual(tcp("2001:db8::1", 6380, { tls: true }));
    expect(ok("unix:/run/redis/redis.sock")).toEqual({ kind: "unix", path: "/run/redis/redis.sock", db: 0, username: null, password: null });
    expect(ok("unix:/tmp/r.sock?db=2")).toEqual({ kind: "unix", path: "/tmp/r.sock", db: 2, username: null, password: null });
  });

  test("refusals say why", () => {
    const err = (s: string) => {
      const r = parseRedisUrl(s);
      if (!("error" in r)) throw new Error(`accepted ${s}`);
      return r.error;
    };
    expect(err("redis://")).toContain("needs a host");
    expect(err("redis://h:0")).toBe("port must be 1..65535, got 0");
    expect(err("redis://h:70000")).toBe("port must be 1..65535, got 70000");
    expect(err("redis://h/70000")).toBe("database must be 0..65535, got 70000");
    expect(err("redis://h/x")).toContain("must be");
    expect(err("redis://[zz]:1")).toContain("IPv6");
    expect(err("redis://127.1:1")).toContain("host");
    expect(err("redis://%zz:p@h")).toBe("user or password has a bad %-escape");
    expect(err("unix:run/r.sock")).toContain("absolute");
    expect(err("unix:/r.sock?x=1")).toContain(`"?db=N"`);
    expect(err("valkey://h")).toContain("must be");
  });
});
