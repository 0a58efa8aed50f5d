import { expect, test } from "bun:test";
import type { ListenerConfig, RouteConfig } from "../config/types.ts";
import { StatsRegistry, StatsWriter } from "../stats/mod.ts";
import { buildStatus, STATUS_MAX_TUNNEL_SESSIONS, type TunnelSessionFact } from "./status.ts";

const LISTENER: ListenerConfig = {
  name: "tls",
  kind: "sni",
  address: { kind: "tcp", hostname: "::", port: 443 },
  acceptProxy: "none",
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 0,
  maxClientHello: 16_384,
  maxConnections: 1000,
};

function route(name: string, over: Partial<RouteConfig> = {}): RouteConfig {
  return {
    name,
    match: name,
    alpn: [],
    listeners: [],
    targets: [{ kind: "tcp", hostname: "10.0.0.1", port: 8443 }],
    balance: "round_robin",
    connectTimeoutMs: 5000,
    proxyProtocol: "none",
    directory: null,
    ...over,
  };
}

test("buildStatus joins config, stats and the supervisor's worker table", () => {
  const routes = [
    route("a.example"),
    route("b.example", { targets: [{ kind: "unix", path: "/run/b.sock" }] }),
    route("c.example", { directory: "/srv/tls" }),
  ];
  const reg = new StatsRegistry(3); // one listener + two routes fit; the third overflows
  const slots = reg.assign([LISTENER.name], routes.map((r) => r.name));
  const slabs = [reg.createSlab(), reg.createSlab()];
  const w0 = new StatsWriter(slabs[0]!);
  const w1 = new StatsWriter(slabs[1]!);
  w0.heartbeat(10_000);
  w0.opened(slots.listeners.tls!);
  w0.opened(slots.routes["a.example"]!);
  w0.bytes(slots.routes["a.example"]!, 10, 20);
  w0.bytes(slots.listeners.tls!, 10, 20);
  w1.opened(slots.listeners.tls!);
  w1.opened(slots.routes["c.example"]!); // overflow
  w1.refused(slots.listeners.tls!);
  w1.error(slots.listeners.tls!, "LISTENER_FULL");
  w0.error(slots.listeners.tls!, "NO_ROUTE");
  w1.error(slots.listeners.tls!, "NO_ROUTE");
  w0.error(slots.listeners.tls!, "DOWNSTREAM_RESET"); // an abort, not an error
  w0.error(slots.routes["a.example"]!, "UPSTREAM_RESET");
  w1.error(slots.routes["c.example"]!, "UPSTREAM_CONNECT_REFUSED");

  const status = buildStatus({
    version: "0.1.0",
    runtime: "bun 1.4.5",
    pid: 77,
    startedMs: 1_000,
    nowMs: 11_500,
    listeners: [LISTENER],
    routes,
    snapshot: reg.snapshot(slabs, { nowMs: 11_500 }),
    workers: [
      { id: 0, threadId: 1, up: true, restarts: 0 },
      { id: 1, threadId: 5, up: false, restarts: 2 },
    ],
  });

  expect(status).toMatchObject({ version: "0.1.0", runtime: "bun 1.4.5", pid: 77, uptime_seconds: 10 });
  expect(status.started_at).toBe("1970-01-01T00:00:01.000Z");
  expect(status.workers).toEqual([
    { id: 0, thread_id: 1, up: true, restarts: 0, heartbeat_age_ms: 1500, active_connections: 1 },
    { id: 1, thread_id: 5, up: false, restarts: 2, heartbeat_age_ms: null, active_connections: 1 },
  ]);
  expect(status.listeners).toEqual([
    {
      name: "tls",
      kind: "sni",
      address: "[::]:443",
      max_connections: 1000,
      accepted: 2,
      active: 2,
      closed: 0,
      refused: 1,
      bytes_in: 10,
      bytes_out: 20,
      errors_total: 3,
      errors: { NO_ROUTE: 2, LISTENER_FULL: 1 },
      aborts: { DOWNSTREAM_RESET: 1 },
    },
  ]);
  expect(status.routes.map((r) => [r.name, r.match, r.targets, r.connections, r.errors_total])).toEqual([
    ["a.example", "a.example", ["10.0.0.1:8443"], 1, 0],
    ["b.example", "b.example", ["unix:/run/b.sock"], 0, 0],
    ["c.example", "c.example", ["dir:/srv/tls"], 0, 0], // beyond capacity: counted under _other
    ["_other", "", [], 1, 1],
  ]);
  expect(status.routes[3]!.errors).toEqual({ UPSTREAM_CONNECT_REFUSED: 1 });
  expect(status.routes[0]).toMatchObject({ bytes_in: 10, bytes_out: 20, active: 1, errors: {}, aborts: { UPSTREAM_RESET: 1 } });
  expect(status.routes[1]).toMatchObject({ errors_total: 0, errors: {}, aborts: {} });
  expect(status.totals).toEqual({
    accepted: 2, active: 2, closed: 0, refused: 1, bytes_in: 10, bytes_out: 20,
    errors_total: 3, errors: { NO_ROUTE: 2, LISTENER_FULL: 1 }, aborts: { DOWNSTREAM_RESET: 1 },
  });
  expect(status.tunnels).toEqual({ sessions: 0, list: [] });
  expect(JSON.parse(JSON.stringify(status))).toEqual(status); // plain data
  // Every key is snake_case, like the config file and the log fields (error codes are values' keys, not fields).
  const keys = (v: unknown, path: string): string[] =>
    v === null || typeof v !== "object"
      ? []
      : Object.entries(v).flatMap(([k, x]) => [
        ...(/^(errors|aborts)$/.test(path.split(".").pop()!) ? [] : [`${path}.${k}`]),
        ...keys(x, Array.isArray(v) ? path : `${path}.${k}`),
      ]);
  for (const k of keys(status, "")) expect(k).toMatch(/^(\.[a-z0-9_]+)+$/);
});

test("tunnel sessions: oldest first, the list capped, the count whole", () => {
  const fact = (i: number, sinceMs: number): TunnelSessionFact => ({
    id: `w${i % 2}-tunnel-${i}`,
    listener: "tunnel",
    worker: i % 2,
    agent: `agent-${i}`,
    token: i % 3 === 0 ? "dest" : "src",
    peer: `127.0.0.1:${40000 + i}`,
    transport: i % 5 === 0 ? "websocket" : "smux",
    roles: i % 3 === 0 ? ["destination"] : ["source"],
    services: i % 3 === 0 ? ["web"] : [],
    sinceMs,
  });
  const reg = new StatsRegistry(1);
  const base = {
    version: "0.1.0",
    runtime: "bun 1.4.5",
    pid: 1,
    startedMs: 0,
    listeners: [],
    routes: [],
    snapshot: reg.snapshot([reg.createSlab()]),
    workers: [{ id: 0, threadId: 1, up: true, restarts: 0 }],
  };
  const three = buildStatus({ ...base, tunnels: [fact(2, 3000), fact(0, 1000), fact(1, 2000)] }).tunnels;
  expect(three.sessions).toBe(3);
  expect(three.list.map((s) => s.agent)).toEqual(["agent-0", "agent-1", "agent-2"]);
  expect(three.list[0]).toEqual({
    id: "w0-tunnel-0",
    listener: "tunnel",
    worker: 0,
    agent: "agent-0",
    token: "dest",
    peer: "127.0.0.1:40000",
    transport: "websocket",
    roles: ["destination"],
    services: ["web"],
    since: "1970-01-01T00:00:01.000Z",
    streams: 0,
    active_streams: 0,
    bytes_in: 0,
    bytes_out: 0,
  });

  const many = Array.from({ length: STATUS_MAX_TUNNEL_SESSIONS + 5 }, (_, i) => fact(i, 10_000 - i));
  const capped = buildStatus({ ...base, tunnels: many }).tunnels;
  expect(capped.sessions).toBe(STATUS_MAX_TUNNEL_SESSIONS + 5);
  expect(capped.list.length).toBe(STATUS_MAX_TUNNEL_SESSIONS);
  expect(capped.list[0]!.agent).toBe(`agent-${STATUS_MAX_TUNNEL_SESSIONS + 4}`); // the oldest
});

test("routes list their targets as the config spells them: tunnel:NAME, hbone://host:port", () => {
  const hbone = { certPath: "c", keyPath: "k", caPath: "a", cert: "", key: "", ca: "", servername: null, authority: null, port: 0 } as unknown as NonNullable<RouteConfig["hbone"]>;
  const routes = [
    route("t.example", { targets: [], tunnel: "web" }),
    route("h.example", { targets: [{ kind: "tcp", hostname: "10.0.0.2", port: 15008 }, { kind: "tcp", hostname: "fd00::2", port: 15008 }], hbone }),
    route("p.example"),
  ];
  const reg = new StatsRegistry(8);
  reg.assign([], routes.map((r) => r.name));
  const status = buildStatus({
    version: "0.1.0",
    runtime: "bun 1.4.5",
    pid: 1,
    startedMs: 0,
    listeners: [],
    routes,
    snapshot: reg.snapshot([reg.createSlab()]),
    workers: [{ id: 0, threadId: 1, up: true, restarts: 0 }],
  });
  expect(status.routes.map((r) => [r.name, r.targets])).toEqual([
    ["t.example", ["tunnel:web"]],
    ["h.example", ["hbone://10.0.0.2:15008", "hbone://[fd00::2]:15008"]],
    ["p.example", ["10.0.0.1:8443"]],
  ]);
});

test("backends: the current routes' targets with state, counts, connect quantiles and the last error", () => {
  const routes = [route("r", { targets: [{ kind: "tcp", hostname: "10.0.0.1", port: 80 }, { kind: "unix", path: "/run/b.sock" }] })];
  const reg = new StatsRegistry(4);
  const slots = reg.assign([], ["r", "gone"], { r: ["10.0.0.1:80", "unix:/run/b.sock"], gone: ["10.9.9.9:1"] });
  reg.assign([], ["r"], { r: ["10.0.0.1:80", "unix:/run/b.sock"] }); // a reload dropped "gone"
  const slab = reg.createSlab();
  const w = new StatsWriter(slab);
  const [a, b] = slots.backends.r!;
  for (let i = 0; i < 10; i++) w.backendConnected(a!, 0.0008, 1000);
  w.backendFailed(b!, "UPSTREAM_CONNECT_REFUSED", 2000, 4000);
  const status = buildStatus({
    version: "0.1.0",
    runtime: "bun 1.4.5",
    pid: 1,
    startedMs: 0,
    nowMs: 3000,
    listeners: [],
    routes,
    snapshot: reg.snapshot([slab], { nowMs: 3000 }),
    workers: [{ id: 0, threadId: 1, up: true, restarts: 0 }],
  });
  expect(status.backends).toEqual([
    { route: "r", target: "10.0.0.1:80", state: "up", active: 10, connections: 10, failures: 0, connect_p50_ms: 0.75, connect_p99_ms: 0.995, last_error: null },
    {
      route: "r",
      target: "unix:/run/b.sock",
      state: "cooling_down",
      active: 0,
      connections: 0,
      failures: 1,
      connect_p50_ms: null,
      connect_p99_ms: null,
      last_error: { code: "UPSTREAM_CONNECT_REFUSED", at: "1970-01-01T00:00:02.000Z" },
    },
  ]);
});

test("services: named by routes, exposed by agents, or counted; listed offline once their agent is gone", () => {
  const routes = [route("t", { targets: [], tunnel: "web" })];
  const reg = new StatsRegistry(4);
  reg.assign([], ["t"]);
  const slab = reg.createSlab();
  const w = new StatsWriter(slab);
  const web = w.serviceSlot("web");
  w.serviceOpened(web);
  w.serviceClosed(web, 10, 20);
  w.serviceOpened(web);
  w.serviceFailed(web, "SERVICE_UNKNOWN");
  const base = {
    version: "0.1.0",
    runtime: "bun 1.4.5",
    pid: 1,
    startedMs: 0,
    listeners: [],
    routes,
    snapshot: reg.snapshot([slab]),
    workers: [{ id: 0, threadId: 1, up: true, restarts: 0 }],
  };
  const session: TunnelSessionFact = {
    id: "s1",
    listener: "tunnel",
    worker: 0,
    agent: "a1",
    token: "dest",
    peer: "127.0.0.1:1",
    transport: "smux",
    roles: ["destination"],
    services: ["web", "db"],
    sinceMs: 1000,
    counts: { streams: 3, activeStreams: 1, bytesIn: 100, bytesOut: 200 },
  };
  const online = buildStatus({ ...base, tunnels: [session], knownServices: ["db", "old"] });
  expect(online.services).toEqual([
    { name: "db", online: true, agents: [{ session_id: "s1", agent: "a1", worker: 0 }], streams: 0, active_streams: 0, bytes_in: 0, bytes_out: 0, open_failures: 0 },
    { name: "old", online: false, agents: [], streams: 0, active_streams: 0, bytes_in: 0, bytes_out: 0, open_failures: 0 },
    { name: "web", online: true, agents: [{ session_id: "s1", agent: "a1", worker: 0 }], streams: 2, active_streams: 1, bytes_in: 10, bytes_out: 20, open_failures: 1 },
  ]);
  expect(online.tunnels.list[0]).toMatchObject({ streams: 3, active_streams: 1, bytes_in: 100, bytes_out: 200 });
  const offline = buildStatus({ ...base, tunnels: [] });
  expect(offline.services.map((s) => [s.name, s.online, s.agents.length])).toEqual([["web", false, 0]]);
});
