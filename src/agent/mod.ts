/**
 * `edgemux agent`: the other end of a reverse tunnel. Destination role
 * (expose local services through the edge) and source role (forward local
 * ports to services behind other agents), over one session that reconnects.
 */
export { Agent, type AgentDeps, type AgentState, EXIT_REFUSED } from "./agent.ts";
export { AGENT_DEFAULTS } from "./defaults.ts";
export { type AgentConfig, type AgentFlags, describeTarget, type Expose, type ExposeTarget, type Forward, loadAgentConfig } from "./config.ts";
export { type ConnectFn, type Dialed, dialEdge, EdgeRefusal } from "./dial.ts";
export { fileHandler, resolveInside, startFileServer } from "./files.ts";
export { runAgent } from "./run.ts";
export { statusHandler } from "./status.ts";
