/**
 * `edgemux agent-reload AGENT`: the agent re-reads its config file and
 * answers with the result of its validation: RELOAD_FAILED with every
 * problem (nothing applied), or what it applied at once and what needs a
 * restart of the agent.
 */
import type { OperatorClient } from "./client.ts";

export interface ReloadResult {
  file: string;
  applied: string[];
  restartNeeded: string[];
}

export async function reloadAgent(client: OperatorClient, agent: string): Promise<ReloadResult> {
  const fs = await client.open({ kind: "reload", agent });
  const m = await fs.nextMsg("the agent's reload result");
  fs.end();
  const list = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
  return { file: typeof m.file === "string" ? m.file : "", applied: list(m.applied), restartNeeded: list(m.restart_needed) };
}
