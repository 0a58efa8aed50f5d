/**
 * The agent's `GET /metrics` (on its status address) with real processes:
 * `edgemux serve` with a tunnel listener, a destination agent exposing a TCP
 * echo service and a source agent forwarding to it, each with `--status`.
 * After a stream has gone through, both agents' metrics count it (per
 * service, per forward, both byte directions), the session gauges say up,
 * the process_* metrics are there, and the text passes `promtool check
 * metrics` (Debian's prometheus package) when promtool is installed. Runs on
 * Bun, and on Deno with EDGEMUX_RUNTIME=deno.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { type EdgemuxProcess, startEdgemux } from "./support/edgemux.ts";
import { echoServer, edgeTls, roundTrip, startAgentProcess } from "./support/tunnel.ts";

const PROMTOOL = "/usr/bin/promtool";
const hex = (s: string) => createHash("sha256").update(s).digest("hex");
const SECRETS = { dest: "metrics-dest", src: "metrics-src" };

let edge: EdgemuxProcess;
let dest: EdgemuxProcess;
let src: EdgemuxProcess;
let echo: ReturnType<typeof echoServer>;

beforeAll(async () => {
  const tls = edgeTls();
  echo = echoServer();
  edge = await startEdgemux(`
workers = 1
[admin]
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
sha256 = "${hex(SECRETS.dest)}"
roles = ["destination"]
[[tokens]]
name = "src"
sha256 = "${hex(SECRETS.src)}"
roles = ["source"]
`);
  const common = ["--edge", `localhost:${edge.hostPort("tunnel").port}`, "--ca", tls.ca, "--status", "127.0.0.1:0"];
  dest = await startAgentProcess([...common, "--token", SECRETS.dest, "--name", "metrics-dest", "--expose", `echo=127.0.0.1:${echo.port}`]);
  src = await startAgentProcess([...common, "--token", SECRETS.src, "--name", "metrics-src", "--forward", "127.0.0.1:0=echo"]);
  await Promise.all([dest, src].map((p) => p.waitForLine((l) => l.msg === "connected to the edge", 15_000)));
}, 60_000);

afterAll(async () => {
  await Promise.all([src, dest, edge].filter(Boolean).map((p) => p.stop()));
  echo?.close();
});

async function scrape(p: EdgemuxProcess): Promise<{ text: string; type: string | null; value(series: string): number }> {
  const r = await fetch(`http://${p.admin}/metrics`);
  expect(r.status).toBe(200);
  const text = await r.text();
  return {
    text,
    type: r.headers.get("content-type"),
    value(series: string): number {
      const line = text.split("\n").find((l) => l.startsWith(`${series} `));
      if (line === undefined) throw new Error(`no sample ${series} in:\n${text}`);
      return Number(line.slice(series.length + 1));
    },
  };
}

describe("agent /metrics", () => {
  test("counts a stream through source → edge → destination, per service and forward, with process_* metrics", async () => {
    const data = randomBytes(64 * 1024);
    const port = Number(src.listeners["tcp:echo"]!.split(":").pop());
    const back = await roundTrip(port, data, 20_000);
    expect(back.length).toBe(data.length);

    // The relay's byte counters are updated as chunks pass; the stream's close reaches the counters a moment later.
    const settled = async (p: EdgemuxProcess, series: string) => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const m = await scrape(p);
        if (m.value(series) === 0 || Date.now() > deadline) return m;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const d = await settled(dest, `edgemux_agent_streams_active{role="destination",service="echo",listen="",proto="tcp"}`);
    const svc = `{role="destination",service="echo",listen="",proto="tcp"}`;
    expect(d.type).toStartWith("text/plain; version=0.0.4");
    expect(d.value(`edgemux_agent_streams_opened_total${svc}`)).toBe(1);
    expect(d.value(`edgemux_agent_streams_active${svc}`)).toBe(0);
    expect(d.value(`edgemux_agent_streams_failed_total${svc}`)).toBe(0);
    expect(d.value(`edgemux_agent_received_bytes_total${svc}`)).toBe(data.length);
    expect(d.value(`edgemux_agent_sent_bytes_total${svc}`)).toBe(data.length);
    expect(d.value(`edgemux_agent_state{state="connected"}`)).toBe(1);
    expect(d.value(`edgemux_agent_state{state="backoff"}`)).toBe(0);
    expect(d.value(`edgemux_agent_session_up{edge="localhost:${edge.hostPort("tunnel").port}"}`)).toBe(1);
    expect(d.value("edgemux_agent_reconnects_total")).toBe(0);
    expect(d.value("process_resident_memory_bytes")).toBeGreaterThan(1_000_000);
    expect(d.value("process_start_time_seconds")).toBeGreaterThan(Date.now() / 1000 - 3600);
    expect(d.text).toContain(`edgemux_agent_info{agent="metrics-dest",`);

    const listen = src.listeners["tcp:echo"]!;
    const fwd = `{role="source",service="echo",listen="${listen}",proto="tcp"}`;
    const s = await settled(src, `edgemux_agent_streams_active${fwd}`);
    expect(s.value(`edgemux_agent_streams_opened_total${fwd}`)).toBe(1);
    expect(s.value(`edgemux_agent_sent_bytes_total${fwd}`)).toBe(data.length);
    expect(s.value(`edgemux_agent_received_bytes_total${fwd}`)).toBe(data.length);
    expect(s.value(`edgemux_agent_connections_refused_total{service="echo",listen="${listen}",proto="tcp"}`)).toBe(0);
  }, 40_000);

  test("promtool check metrics accepts both agents' text", async () => {
    if (!existsSync(PROMTOOL)) {
      console.warn(`skipped: ${PROMTOOL} not installed (Debian's prometheus package)`);
      return;
    }
    for (const p of [dest, src]) {
      const { text } = await scrape(p);
      const r = spawnSync(PROMTOOL, ["check", "metrics"], { input: text, encoding: "utf8", timeout: 20_000 });
      if (r.error) throw r.error;
      expect(`${r.stdout}${r.stderr}`).toBe("");
      expect(r.status).toBe(0);
    }
  }, 30_000);

  test("the status endpoint still answers /status and /healthz, and names /metrics when a path is unknown", async () => {
    expect((await fetch(`http://${dest.admin}/healthz`)).status).toBe(200);
    const st = (await (await fetch(`http://${dest.admin}/status`)).json()) as { state: string };
    expect(st.state).toBe("connected");
    const nf = await fetch(`http://${dest.admin}/nope`);
    expect(nf.status).toBe(404);
    expect(await nf.text()).toContain("/metrics");
  });
});
