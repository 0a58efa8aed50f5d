/**
 * Per-target and per-service metrics end to end: `edgemux serve` (two
 * workers) with a tcp route over two targets, one of them down, and a tcp
 * route to a tunnel service exposed by an `edgemux agent`. After traffic,
 * /metrics and /status show the connections and failures per target (the
 * dead one failing or cooling down), the connect times, and the service's
 * streams and bytes; once the agent is gone the service stays listed,
 * offline, and its failed opens are counted under its name.
 * Runs on Bun, and on Deno with EDGEMUX_RUNTIME=deno.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { hashToken } from "../src/auth/mod.ts";
import type { StatusJson } from "../src/admin/mod.ts";
import { type EdgemuxProcess, startEdgemux, waitFor } from "./support/edgemux.ts";
import { deadPort } from "./support/net.ts";
import { echoServer, edgeTls, roundTrip, startAgentProcess } from "./support/tunnel.ts";

const DEST = "dest-secret-metrics";

let edge: EdgemuxProcess;
let agent: EdgemuxProcess | null = null;
let echo: ReturnType<typeof echoServer>;
let dead = 0;

function config(): string {
  const tls = edgeTls();
  return `
workers = 2
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "lb"
kind = "tcp"
address = "127.0.0.1:0"

[[listeners]]
name = "tun"
kind = "tcp"
address = "127.0.0.1:0"

[[listeners]]
name = "tunnel"
kind = "tunnel"
address = "127.0.0.1:0"
[listeners.tls]
cert = "${tls.cert}"
key = "${tls.key}"

[[tokens]]
name = "dest"
sha256 = "${hashToken(DEST)}"
roles = ["destination"]

[[routes]]
name = "lb"
match = "*"
listeners = ["lb"]
targets = ["127.0.0.1:${dead}", "127.0.0.1:${echo.port}"]

[[routes]]
name = "tun"
match = "*"
listeners = ["tun"]
targets = ["tunnel:web"]
`;
}

/** The value of one sample line of the exposition text, or null when absent. */
function sample(text: string, series: string): number | null {
  for (const line of text.split("\n")) if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  return null;
}

async function metrics(): Promise<string> {
  return await (await edge.adminGet("/metrics")).text();
}

beforeAll(async () => {
  echo = echoServer();
  dead = await deadPort();
  edge = await startEdgemux(config(), { workers: 2 });
  agent = await startAgentProcess(["--edge", `localhost:${edge.hostPort("tunnel").port}`, "--ca", edgeTls().ca, "--token", DEST, "--name", "webd", "--expose", `web=127.0.0.1:${echo.port}`]);
  await agent.waitForLine((l) => l.msg === "connected to the edge", 15_000);
  await waitFor(async () => (await edge.status()).services.find((s) => s.name === "web" && s.online) ?? null, 10_000, "service web online");
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await edge?.stop();
  echo?.close();
});

describe("backend and service metrics", () => {
  test("a route with a dead target: per-target connections, failures, state and connect times", async () => {
    const data = randomBytes(1000);
    for (let i = 0; i < 6; i++) expect((await roundTrip(edge.hostPort("lb").port, data)).length).toBe(data.length);

    const live = `127.0.0.1:${echo.port}`;
    const down = `127.0.0.1:${dead}`;
    const text = await metrics();
    expect(sample(text, `edgemux_backend_connections_total{route="lb",target="${live}"}`)).toBe(6);
    expect(sample(text, `edgemux_backend_connections_total{route="lb",target="${down}"}`)).toBe(0);
    // Each worker that took a connection tried the dead target first once (round robin starts at the first target).
    expect(sample(text, `edgemux_backend_failures_total{route="lb",target="${down}",code="UPSTREAM_CONNECT_REFUSED"}`)).toBeGreaterThanOrEqual(1);
    expect(sample(text, `edgemux_backend_connect_seconds_count{route="lb",target="${live}"}`)).toBe(6);
    expect(sample(text, `edgemux_backend_state{route="lb",target="${live}",state="up"}`)).toBe(1);
    expect(sample(text, `edgemux_route_connect_seconds_count{route="lb"}`)).toBe(6);
    expect(sample(text, `edgemux_listener_connect_seconds_count{listener="lb"}`)).toBe(6);

    const st = await waitFor(async () => {
      const s = await edge.status();
      return s.backends.filter((b) => b.route === "lb").every((b) => b.active === 0) ? s : null;
    }, 10_000, "backend connections closed");
    const byTarget = Object.fromEntries(st.backends.filter((b) => b.route === "lb").map((b) => [b.target, b]));
    expect(byTarget[live]).toMatchObject({ state: "up", connections: 6, failures: 0, active: 0, last_error: null });
    expect(byTarget[live]!.connect_p50_ms).toBeGreaterThan(0);
    expect(byTarget[live]!.connect_p99_ms).toBeGreaterThanOrEqual(byTarget[live]!.connect_p50_ms!);
    expect(["failing", "cooling_down"]).toContain(byTarget[down]!.state);
    expect(byTarget[down]!.connections).toBe(0);
    expect(byTarget[down]!.failures).toBeGreaterThanOrEqual(1);
    expect(byTarget[down]!.connect_p50_ms).toBeNull();
    expect(byTarget[down]!.last_error?.code).toBe("UPSTREAM_CONNECT_REFUSED");
    expect(Date.parse(byTarget[down]!.last_error!.at)).toBeGreaterThan(0);
  }, 30_000);

  test("a tunnel service: streams, bytes by direction, per-session counts; the route shows tunnel:NAME", async () => {
    const sizes = [10_000, 20_000, 30_000];
    for (const n of sizes) {
      const data = randomBytes(n);
      expect((await roundTrip(edge.hostPort("tun").port, data, 10_000)).length).toBe(n);
    }
    const total = sizes.reduce((a, b) => a + b, 0);
    const st: StatusJson = await waitFor(async () => {
      const s = await edge.status();
      const web = s.services.find((v) => v.name === "web");
      return web && web.active_streams === 0 && web.bytes_out === total && (s.tunnels.list[0]?.streams ?? 0) >= 3 ? s : null;
    }, 10_000, "the service's streams ended and the session report arrived");
    const web = st.services.find((v) => v.name === "web")!;
    expect(web).toMatchObject({ online: true, streams: 3, active_streams: 0, bytes_in: total, bytes_out: total, open_failures: 0 });
    expect(web.agents).toEqual([{ session_id: st.tunnels.list[0]!.id, agent: "webd", worker: st.tunnels.list[0]!.worker }]);
    expect(st.tunnels.list[0]!.bytes_in).toBeGreaterThan(total); // wire bytes: payload plus framing
    expect(st.tunnels.list[0]!.bytes_out).toBeGreaterThan(total);
    expect(st.routes.find((r) => r.name === "tun")!.targets).toEqual(["tunnel:web"]);

    const text = await metrics();
    expect(sample(text, `edgemux_tunnel_service_streams_total{service="web"}`)).toBe(3);
    expect(sample(text, `edgemux_tunnel_service_active_streams{service="web"}`)).toBe(0);
    expect(sample(text, `edgemux_tunnel_service_bytes_total{service="web",direction="in"}`)).toBe(total);
    expect(sample(text, `edgemux_tunnel_service_bytes_total{service="web",direction="out"}`)).toBe(total);
  }, 30_000);

  test("the agent goes away: the service stays listed, offline, and failed opens count under its name", async () => {
    await agent!.stop();
    agent = null;
    await waitFor(async () => (await edge.status()).services.find((s) => s.name === "web" && !s.online) ?? null, 10_000, "service web offline");
    expect((await roundTrip(edge.hostPort("tun").port, new Uint8Array([1, 2, 3]))).length).toBe(0); // refused: closed without an answer
    const st = await edge.status();
    const web = st.services.find((v) => v.name === "web")!;
    expect(web).toMatchObject({ online: false, agents: [], streams: 3, open_failures: 1 });
    const text = await metrics();
    expect(sample(text, `edgemux_tunnel_service_open_failures_total{service="web",code="SERVICE_UNKNOWN"}`)).toBe(1);
  }, 30_000);
});
