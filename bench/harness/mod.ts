/** The benchmark harness's public face, used by bench/run.ts. */
export { parseArgs, USAGE, type Options } from "./args.ts";
export { startTcpBackend, startTlsBackend, type Backend } from "./backends.ts";
export { buildClientHello } from "./client_hello.ts";
export { clientHelloParse, runMicro, type MicroResult } from "./micro.ts";
export { ALL_PEERS, checkoutVersion, peersFor, type PeerDef } from "./peers.ts";
export { ProcessRegistry, runToEnd } from "./procs.ts";
export { renderMarkdown, renderSvg } from "./report.ts";
export { computeRatios, computeTargets, type IdleRssResult, type PeerInfo, type Results, type ScenarioResult } from "./results.ts";
export { runScenario } from "./runner.ts";
export { SCENARIOS } from "./scenarios.ts";
