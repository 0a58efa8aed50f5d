/**
 * `edgemux agent`: load the settings, start the agent and its status
 * endpoint, print one "ready" line (always, whatever the log level: tests and
 * scripts read the bound forward and status addresses from it), run until
 * SIGTERM/SIGINT (exit 0) or a refusal retrying cannot fix (exit 3).
 */
import { ConfigError } from "../config/issues.ts";
import { Logger, setConnIdTag } from "../log/mod.ts";
import type { Runtime } from "../runtime/types.ts";
import { VERSION } from "../version.ts";
import { Agent } from "./agent.ts";
import { type AgentFlags, loadAgentConfig } from "./config.ts";
import { formatPeer } from "../proto/ip_text.ts";

export async function runAgent(rt: Runtime, flags: AgentFlags, err: (s: string) => void): Promise<number> {
  let cfg;
  try {
    cfg = await loadAgentConfig(flags, (n) => rt.env(n));
  } catch (e) {
    err(e instanceof ConfigError ? e.message : `edgemux agent: ${(e as Error).message}`);
    return 2;
  }
  const log = new Logger(cfg.log.level, cfg.log.format, { agent: cfg.name });
  // Ids of connections this agent starts (source role): `a.<boot>.<n>`.
  setConnIdTag("a");
  // The state dir (and the DER encoder under it) loads only with --state-dir.
  let state: { fingerprint: string; dir: string } | null = null;
  let recordEdge: ((r: { edge: string; session: string; seen_as: string; at: string }) => void) | undefined;
  if (cfg.stateDir) {
    try {
      const st = await import("./state.ts");
      const s = await st.openState(cfg.stateDir, cfg.name);
      for (const w of s.warnings) log.warn("state dir permissions fixed", { reason: w });
      state = { fingerprint: s.fingerprint, dir: s.dir };
      const last = st.readEdges(s.dir)[0];
      if (last) log.info("state dir", { dir: s.dir, fingerprint: s.fingerprint, last_edge: last.edge, last_reached: last.at });
      recordEdge = (r) => st.recordEdge(s.dir, r);
    } catch (e) {
      err(`edgemux agent: --state-dir ${cfg.stateDir}: ${(e as Error).message}`);
      return 2;
    }
  }
  // agent-reload re-reads the same file with the same flags (flags still win).
  const agent = new Agent(cfg, { runtime: rt, log, reload: () => loadAgentConfig(flags, (n) => rt.env(n)), ...(recordEdge ? { recordEdge } : {}) });
  if (cfg.shell && rt.spawnPty === undefined) {
    log.warn("shells are allowed but this runtime has no pseudo-terminal: every shell will be refused (REMOTE_DISABLED); run the agent on Bun for shells", { runtime: rt.name });
  }
  let bound;
  let status = null;
  try {
    bound = await agent.start();
    // The status endpoint (and its Prometheus renderer) loads only when an address is set.
    if (cfg.status) status = await (await import("./status.ts")).startStatus(rt, agent, cfg.status);
  } catch (e) {
    log.error("agent failed to start", { reason: (e as Error).message });
    agent.stop();
    return 1;
  }
  const stop = (sig: string) => {
    log.info("signal received", { signal: sig });
    agent.stop();
  };
  rt.onSignal("SIGTERM", () => stop("SIGTERM"));
  rt.onSignal("SIGINT", () => stop("SIGINT"));
  log.always("ready", {
    version: VERSION,
    runtime: `${rt.name} ${rt.version}`,
    pid: rt.pid,
    edge: formatPeer(cfg.edge.hostname, cfg.edge.port),
    transport: cfg.transport,
    services: cfg.exposes.map((x) => x.name),
    forwards: bound.forwards,
    files: cfg.files ? cfg.files.roots.map((r) => `${r.name}=${r.dir}`) : null,
    state_dir: state?.dir ?? null,
    fingerprint: state?.fingerprint ?? null,
    shell: cfg.shell ? (rt.spawnPty ? cfg.shell.command.join(" ") : "unavailable (no PTY)") : null,
    status: status ? formatPeer(status.hostname, status.port) : null,
  });
  const code = await agent.exited;
  await status?.close();
  return code;
}
