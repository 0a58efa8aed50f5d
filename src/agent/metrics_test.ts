import { describe, expect, test } from "bun:test";
import { type AgentStatusView, renderAgentMetrics } from "./metrics.ts";

const base: AgentStatusView = {
  agent: 'a"b',
  version: "0.1.0",
  runtime: "bun 1.4.5",
  state: "backoff",
  edge: "edge.example:7443",
  transport: "upgrade",
  session: null,
  leaving_sessions: 1,
  reconnects: 4,
  services: [{ name: "dns", target: "udp:127.0.0.1:53", streams: 3, open: 1, errors: 2, bytes_in: 10, bytes_out: 20 }],
  forwards: [{ service: "web", listen: "127.0.0.1:8000", proto: "tcp", streams: 5, open: 0, errors: 1, refused: 7, bytes_in: 30, bytes_out: 40 }],
};
const proc = { startTimeSeconds: 1_700_000_000, residentMemoryBytes: 30e6, cpuSecondsTotal: 1.5 };

describe("renderAgentMetrics", () => {
  test("families once each with HELP and TYPE; labels escaped; one-hot state; per service and forward", () => {
    const text = renderAgentMetrics(base, proc);
    const lines = text.trimEnd().split("\n");
    const types = lines.filter((l) => l.startsWith("# TYPE ")).map((l) => l.split(" ")[2]);
    expect(new Set(types).size).toBe(types.length);
    expect(lines).toContain('edgemux_agent_info{agent="a\\"b",version="0.1.0",runtime="bun 1.4.5",edge="edge.example:7443",transport="upgrade"} 1');
    expect(lines).toContain('edgemux_agent_state{state="backoff"} 1');
    expect(lines).toContain('edgemux_agent_state{state="connected"} 0');
    expect(lines).toContain('edgemux_agent_session_up{edge="edge.example:7443"} 0');
    expect(text).not.toContain("edgemux_agent_session_streams");
    expect(lines).toContain("edgemux_agent_reconnects_total 4");
    expect(lines).toContain("edgemux_agent_sessions_leaving 1");
    expect(lines).toContain('edgemux_agent_streams_failed_total{role="destination",service="dns",listen="",proto="udp"} 2');
    expect(lines).toContain('edgemux_agent_received_bytes_total{role="source",service="web",listen="127.0.0.1:8000",proto="tcp"} 30');
    expect(lines).toContain('edgemux_agent_connections_refused_total{service="web",listen="127.0.0.1:8000",proto="tcp"} 7');
    expect(lines).toContain("process_cpu_seconds_total 1.5");
    expect(text).not.toContain("process_open_fds");
  });

  test("a session up adds its start time and stream count", () => {
    const text = renderAgentMetrics({ ...base, state: "connected", session: { since: "2026-12-01T00:00:00.000Z", streams: 2 } }, { ...proc, openFds: 9, maxFds: 1024 });
    expect(text).toContain(`edgemux_agent_session_start_time_seconds{edge="edge.example:7443"} ${Date.parse("2026-12-01T00:00:00.000Z") / 1000}`);
    expect(text).toContain('edgemux_agent_session_streams{edge="edge.example:7443"} 2');
    expect(text).toContain("process_open_fds 9\n");
    expect(text).toContain("process_max_fds 1024\n");
  });
});
