/**
 * The agent's `GET /metrics` on its status address: Prometheus text format
 * 0.0.4, rendered from the same record as `GET /status` (so the two never
 * disagree), plus the standard `process_*` facts read the way the edge reads
 * them. The families are listed in the README's agent section; keep the two
 * in step.
 *
 * - `edgemux_agent_info{agent,version,runtime,edge,transport}` 1
 * - `edgemux_agent_state{state}`: 1 for the current connection state
 * - `edgemux_agent_session_up{edge}`: 1 while a welcomed session to the edge is up
 * - `edgemux_agent_session_start_time_seconds{edge}`, `edgemux_agent_session_streams{edge}`: the current session
 * - `edgemux_agent_sessions_leaving`: sessions finishing their streams after a go-away
 * - `edgemux_agent_reconnects_total`
 * - per stream owner, labels `role` (destination: an exposed service; source: a
 *   forward), `service`, `listen` (a forward's local address, "" for a service),
 *   `proto`: `edgemux_agent_streams_opened_total`, `edgemux_agent_streams_active`,
 *   `edgemux_agent_streams_failed_total`, `edgemux_agent_received_bytes_total`
 *   (from the edge), `edgemux_agent_sent_bytes_total` (to the edge), and for
 *   sources `edgemux_agent_connections_refused_total` (local connections refused
 *   while no session was up)
 *
 * This module loads only when the status address is set (run.ts imports
 * status.ts lazily): an agent without one never holds a renderer.
 */
import type { Runtime } from "../runtime/types.ts";
// The renderer's format helpers and the process facts, by file rather than through stats/mod.ts and
// supervisor/: the barrels would load the edge's stats registry and supervisor into the agent.
import { escapeHelp, escapeLabel, formatValue, PROMETHEUS_CONTENT_TYPE } from "../stats/prometheus.ts";
import { ProcessMetrics } from "../supervisor/process_metrics.ts";
import { wallMs } from "../runtime/clock.ts";
import type { AgentState } from "./agent.ts";

export { PROMETHEUS_CONTENT_TYPE };

const STATES: readonly AgentState[] = ["connecting", "connected", "backoff", "stopped", "refused"];

interface Owner {
  streams: number;
  open: number;
  errors: number;
  bytes_in: number;
  bytes_out: number;
}

/** The part of `Agent.status()` this renders. */
export interface AgentStatusView {
  agent: string;
  version: string;
  runtime: string;
  state: AgentState;
  edge: string;
  transport: string;
  session: { since: string; streams: number } | null;
  leaving_sessions: number;
  reconnects: number;
  services: (Owner & { name: string; target: string })[];
  forwards: (Owner & { service: string; listen: string; proto: string; refused: number })[];
}

/** Something with a status record (the Agent). */
export interface MetricsSource {
  status(): Record<string, unknown>;
  readonly runtime: Runtime;
}

/** `/metrics` for one agent: holds the process reader (its start time is read once). */
export class AgentMetrics {
  private readonly proc: ProcessMetrics;

  constructor(private readonly agent: MetricsSource) {
    const rt = agent.runtime;
    this.proc = new ProcessMetrics({
      startTimeSeconds: wallMs() / 1000,
      residentMemoryBytes: () => rt.rss(),
      cpuSecondsTotal: () => rt.cpuUsageMicros() / 1e6,
    });
  }

  render(): string {
    return renderAgentMetrics(this.agent.status() as unknown as AgentStatusView, this.proc.read());
  }
}

/** The exposition text for one status record and the process facts. Pure. */
export function renderAgentMetrics(s: AgentStatusView, proc: ReturnType<ProcessMetrics["read"]>): string {
  const out: string[] = [];
  const family = (name: string, type: "counter" | "gauge", help: string) => out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  const sample = (name: string, labels: Record<string, string>, v: number) => {
    const l = Object.entries(labels).map(([k, x]) => `${k}="${escapeLabel(x)}"`).join(",");
    out.push(`${name}${l ? `{${l}}` : ""} ${formatValue(v)}`);
  };

  family("edgemux_agent_info", "gauge", "The agent's name, version, runtime, edge and transport; always 1.");
  sample("edgemux_agent_info", { agent: s.agent, version: s.version, runtime: s.runtime, edge: s.edge, transport: s.transport }, 1);
  family("edgemux_agent_state", "gauge", "1 for the agent's current connection state, 0 for the others.");
  for (const st of STATES) sample("edgemux_agent_state", { state: st }, s.state === st ? 1 : 0);
  family("edgemux_agent_session_up", "gauge", "1 while a session to the edge is up (welcomed), else 0.");
  sample("edgemux_agent_session_up", { edge: s.edge }, s.session ? 1 : 0);
  if (s.session) {
    family("edgemux_agent_session_start_time_seconds", "gauge", "When the current session to the edge came up, Unix seconds.");
    sample("edgemux_agent_session_start_time_seconds", { edge: s.edge }, Date.parse(s.session.since) / 1000);
    family("edgemux_agent_session_streams", "gauge", "Streams open on the current session, both directions.");
    sample("edgemux_agent_session_streams", { edge: s.edge }, s.session.streams);
  }
  family("edgemux_agent_sessions_leaving", "gauge", "Sessions that got a go-away and still finish their streams.");
  sample("edgemux_agent_sessions_leaving", {}, s.leaving_sessions);
  family("edgemux_agent_reconnects_total", "counter", "Times the agent dialed the edge again after a lost session, a refusal or a go-away.");
  sample("edgemux_agent_reconnects_total", {}, s.reconnects);

  const owners = [
    ...s.services.map((x) => ({ labels: { role: "destination", service: x.name, listen: "", proto: x.target.startsWith("udp:") ? "udp" : "tcp" }, c: x })),
    ...s.forwards.map((f) => ({ labels: { role: "source", service: f.service, listen: f.listen, proto: f.proto }, c: f })),
  ];
  const perOwner = (name: string, type: "counter" | "gauge", help: string, v: (c: Owner) => number) => {
    family(name, type, help);
    for (const o of owners) sample(name, o.labels, v(o.c));
  };
  perOwner("edgemux_agent_streams_opened_total", "counter", "Tunnel streams opened, per exposed service (destination) or forward (source).", (c) => c.streams);
  perOwner("edgemux_agent_streams_active", "gauge", "Tunnel streams open now.", (c) => c.open);
  perOwner("edgemux_agent_streams_failed_total", "counter", "Tunnel streams that failed: refused, unreachable service, or ended by an error.", (c) => c.errors);
  perOwner("edgemux_agent_received_bytes_total", "counter", "Payload bytes received from the edge.", (c) => c.bytes_in);
  perOwner("edgemux_agent_sent_bytes_total", "counter", "Payload bytes sent to the edge.", (c) => c.bytes_out);
  family("edgemux_agent_connections_refused_total", "counter", "Local connections to a forward refused because no session to the edge was up.");
  for (const f of s.forwards) sample("edgemux_agent_connections_refused_total", { service: f.service, listen: f.listen, proto: f.proto }, f.refused);

  family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
  sample("process_cpu_seconds_total", {}, proc.cpuSecondsTotal);
  family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  sample("process_resident_memory_bytes", {}, proc.residentMemoryBytes);
  if (proc.openFds !== undefined) {
    family("process_open_fds", "gauge", "Number of open file descriptors.");
    sample("process_open_fds", {}, proc.openFds);
  }
  if (proc.maxFds !== undefined) {
    family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
    sample("process_max_fds", {}, proc.maxFds);
  }
  family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
  sample("process_start_time_seconds", {}, proc.startTimeSeconds);
  return out.join("\n") + "\n";
}
