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
  const agent = new Agent(cfg, { runtime: rt, log });
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
    status: status ? formatPeer(status.hostname, status.port) : null,
  });
  const code = await agent.exited;
  await status?.close();
  return code;
}
