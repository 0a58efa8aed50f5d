/**
 * `[cluster]`: several edges share one registry in Redis (src/cluster/).
 * Absent: everything stays in-process. `redis` and `name` say which registry,
 * `edge_id` who this edge is in it, `advertise` where other edges dial it,
 * `listen` the edge-to-edge listener, `heartbeat`/`ttl` how fast a dead
 * edge's entries expire, and `[cluster.tls]` the certificates edges
 * authenticate each other with (PEM paths, like `[routes.hbone]`).
 */

import { hostname as osHostname } from "node:os";
import type { Address, ClusterConfig, ClusterTlsConfig, HostPort, ListenerConfig, RedisAddress } from "./types.ts";
import { addressFrom, formatAddress } from "./address.ts";
import * as D from "./defaults.ts";
import { durationRange, readDuration, readString, readTable } from "./fields.ts";
import { canonicalHostname } from "./hostname.ts";
import { canonicalIp, parseIPv4 } from "./ip.ts";
import { checkKeys, describe, type Issues, type RawTable } from "./issues.ts";
import { formatDuration } from "./durations.ts";
import { checkKeyPair, parseCertificate, readPemFile } from "./validate_tls.ts";

export const CLUSTER_KEYS = ["redis", "redis_ca", "name", "edge_id", "advertise", "listen", "heartbeat", "ttl", "tls"] as const;
export const CLUSTER_TLS_KEYS = ["cert", "key", "ca"] as const;

const REDIS_FORMS = `"redis://host:port/db", "rediss://host:port/db" (TLS) or "unix:/path"`;

/**
 * A `[cluster] redis` value: `redis://[user[:password]@]host[:port][/db]`,
 * `rediss://...` (TLS), or `unix:/path[?db=N]`. Port 6379 and db 0 by default.
 */
export function parseRedisUrl(text: string): { address: RedisAddress } | { error: string } {
  const got = describe(text);
  if (text.startsWith("unix:")) {
    const q = text.indexOf("?");
    const path = q < 0 ? text.slice(5) : text.slice(5, q);
    const r = addressFrom(`unix:${path}`, { allowPortZero: false, allowHostnames: false });
    if ("error" in r) return r;
    let db = 0;
    if (q >= 0) {
      const m = /^db=(\d{1,5})$/.exec(text.slice(q + 1));
      if (m === null || Number(m[1]) > D.REDIS_MAX_DB) return { error: `a unix socket takes only "?db=N" (0..${D.REDIS_MAX_DB}) after the path, got ${got}` };
      db = Number(m[1]);
    }
    return { address: { kind: "unix", path: (r.address as Extract<Address, { kind: "unix" }>).path, db, username: null, password: null } };
  }
  const m = /^(rediss?):\/\/(?:([^@/]*)@)?(\[[^\]/]*\]|[^:/@]*)(?::(\d{0,5}))?(?:\/(\d{0,5}))?$/.exec(text);
  if (m === null) return { error: `must be ${REDIS_FORMS}, got ${got}` };
  const [, scheme, userinfo, hostText = "", portText, dbText] = m;
  let hostname: string;
  if (hostText.startsWith("[")) {
    const ip = canonicalIp(hostText.slice(1, -1));
    if (ip === null || ip.family !== 6) return { error: `is not a valid IPv6 address, got ${describe(hostText)}` };
    hostname = ip.text;
  } else if (hostText === "") {
    return { error: `needs a host (${REDIS_FORMS}), got ${got}` };
  } else if (parseIPv4(hostText) !== null) {
    hostname = hostText;
  } else {
    const h = canonicalHostname(hostText);
    if ("error" in h) return { error: `host ${h.error}` };
    hostname = h.name;
  }
  const port = portText === undefined || portText === "" ? D.REDIS_DEFAULT_PORT : Number(portText);
  if (port < 1 || port > 65535) return { error: `port must be 1..65535, got ${port}` };
  const db = dbText === undefined || dbText === "" ? 0 : Number(dbText);
  if (db > D.REDIS_MAX_DB) return { error: `database must be 0..${D.REDIS_MAX_DB}, got ${db}` };
  let username: string | null = null;
  let password: string | null = null;
  if (userinfo !== undefined) {
    try {
      const colon = userinfo.indexOf(":");
      const user = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon));
      username = user === "" ? null : user;
      password = colon < 0 ? null : decodeURIComponent(userinfo.slice(colon + 1));
    } catch {
      return { error: "user or password has a bad %-escape" };
    }
  }
  return { address: { kind: "tcp", hostname, port, tls: scheme === "rediss", db, username, password } };
}

/** The host-name part of a default edge_id: the machine's name, lower case, other characters as "-". */
export function defaultEdgeHost(name = osHostname()): string {
  const h = name.toLowerCase().replace(/[^a-z0-9_.-]/g, "-").slice(0, 120);
  return h === "" ? "edge" : h;
}

export function readCluster(is: Issues, raw: RawTable, listeners: readonly ListenerConfig[], admin: HostPort | null, baseDir: string): ClusterConfig | null {
  if (raw["cluster"] === undefined) return null;
  const t = readTable(is, raw, "cluster", "cluster");
  checkKeys(is, t, "cluster", CLUSTER_KEYS);

  let redis: RedisAddress | null = null;
  const redisText = readString(is, t, "redis", "cluster.redis", true);
  if (redisText !== null) {
    const r = parseRedisUrl(redisText);
    if ("error" in r) is.add("cluster.redis", r.error);
    else redis = r.address;
  }

  const caFile = readPemFile(is, t, "redis_ca", "cluster.redis_ca", baseDir, false);
  if (caFile !== null) {
    parseCertificate(is, "cluster.redis_ca", caFile);
    if (redis !== null && (redis.kind !== "tcp" || !redis.tls)) is.add("cluster.redis_ca", `only applies to a rediss:// (TLS) cluster.redis`);
  }

  let name = readString(is, t, "name", "cluster.name", true);
  if (name !== null && !D.CLUSTER_NAME.test(name)) {
    is.add("cluster.name", `must be 1..64 of [A-Za-z0-9_.-] (every key is under "edgemux:{name}"), got ${describe(name)}`);
    name = null;
  }

  const advertise = readHostPort(is, t, "advertise", true, true);
  const listenGiven = readHostPort(is, t, "listen", false, false);
  const listen = listenGiven ?? (advertise !== null ? { hostname: "0.0.0.0", port: advertise.port } : null);
  if (listen !== null) checkListenFree(is, listen, listenGiven !== null, listeners, admin);

  let edgeId = readString(is, t, "edge_id", "cluster.edge_id");
  if (edgeId !== null && !D.CLUSTER_EDGE_ID.test(edgeId)) {
    is.add("cluster.edge_id", `must be 1..128 of [A-Za-z0-9_.:-], got ${describe(edgeId)}`);
    edgeId = null;
  } else if (edgeId === null && t["edge_id"] === undefined) {
    const tunnel = listeners.find((l) => l.kind === "tunnel" && l.address.kind === "tcp");
    const port = tunnel !== undefined && tunnel.address.kind === "tcp" ? tunnel.address.port : advertise?.port;
    if (port !== undefined) edgeId = `${defaultEdgeHost()}:${port}`;
  }

  const heartbeatMs = readDuration(is, t, "heartbeat", "cluster.heartbeat", D.CLUSTER_HEARTBEAT);
  const ttlMs = t["ttl"] === undefined ? Math.max(D.CLUSTER_TTL.def, 3 * heartbeatMs) : readDuration(is, t, "ttl", "cluster.ttl", D.CLUSTER_TTL);
  if (t["ttl"] !== undefined && ttlMs <= 2 * heartbeatMs) {
    is.add("cluster.ttl", `must be more than twice cluster.heartbeat (${formatDuration(heartbeatMs)}), so one late heartbeat does not drop the edge; got ${describe(t["ttl"])} (${durationRange(D.CLUSTER_TTL)})`);
  }

  let tls: ClusterTlsConfig | null = null;
  if (t["tls"] === undefined) is.add("cluster.tls", "is required: [cluster.tls] with cert, key and ca (edges authenticate each other with these certificates)");
  else tls = readClusterTls(is, readTable(is, t, "tls", "cluster.tls"), baseDir);

  if (redis === null || name === null || edgeId === null || advertise === null || listen === null || tls === null) return null;
  return { redis, redisCa: caFile?.pem ?? null, redisCaPath: caFile?.path ?? null, name, edgeId, advertise, listen, heartbeatMs, ttlMs, tls };
}

function readHostPort(is: Issues, t: RawTable, key: "advertise" | "listen", required: boolean, hostnames: boolean): HostPort | null {
  const field = `cluster.${key}`;
  const text = readString(is, t, key, field, required);
  if (text === null) return null;
  const r = addressFrom(text, { allowPortZero: false, allowHostnames: hostnames, allowUnix: false });
  if ("error" in r) {
    is.add(field, r.error);
    return null;
  }
  const a = r.address as Extract<Address, { kind: "tcp" }>;
  return { hostname: a.hostname, port: a.port };
}

const WILDCARDS = new Set(["0.0.0.0", "::"]);

/** The edge-to-edge listener must not take a port a listener or the admin API binds. */
function checkListenFree(is: Issues, listen: HostPort, given: boolean, listeners: readonly ListenerConfig[], admin: HostPort | null): void {
  const clash = (h: string, p: number) => p === listen.port && (h === listen.hostname || WILDCARDS.has(h) || WILDCARDS.has(listen.hostname));
  const how = given ? "" : ` (the default, 0.0.0.0 and the advertise port: set cluster.listen)`;
  listeners.forEach((l, i) => {
    if (l.address.kind === "tcp" && l.address.port !== 0 && clash(l.address.hostname, l.address.port)) {
      is.add("cluster.listen", `${formatAddress({ kind: "tcp", ...listen })}${how} is also listeners[${i}] (${l.name})'s address`);
    }
  });
  if (admin !== null && admin.port !== 0 && clash(admin.hostname, admin.port)) {
    is.add("cluster.listen", `${formatAddress({ kind: "tcp", ...listen })}${how} is also the admin API's address`);
  }
}

function readClusterTls(is: Issues, t: RawTable, baseDir: string): ClusterTlsConfig | null {
  checkKeys(is, t, "cluster.tls", CLUSTER_TLS_KEYS);
  const certFile = readPemFile(is, t, "cert", "cluster.tls.cert", baseDir, true);
  const keyFile = readPemFile(is, t, "key", "cluster.tls.key", baseDir, true);
  const caFile = readPemFile(is, t, "ca", "cluster.tls.ca", baseDir, true);
  const cert = certFile ? parseCertificate(is, "cluster.tls.cert", certFile) : null;
  if (keyFile) checkKeyPair(is, "cluster.tls", cert, keyFile);
  if (caFile) parseCertificate(is, "cluster.tls.ca", caFile);
  if (certFile === null || keyFile === null || caFile === null) return null;
  return { certPath: certFile.path, keyPath: keyFile.path, caPath: caFile.path, cert: certFile.pem, key: keyFile.pem, ca: caFile.pem };
}
