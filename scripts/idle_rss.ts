/**
 * Memory at rest: the resident size of an edge (one worker, one tunnel
 * listener) and of an agent holding one idle session to it, after both have
 * settled. A tool for tuning what each role loads (bench/README.md keeps the
 * figures), not a test.
 *
 *   bun scripts/idle_rss.ts [--settle 3000]
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { hashToken } from "../src/auth/mod.ts";
import { startEdgemux } from "../test/support/edgemux.ts";
import { edgeTls, startAgentProcess } from "../test/support/tunnel.ts";

const { values } = parseArgs({ options: { settle: { type: "string", default: "3000" } } });
const SECRET = "idle-rss-token";

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

const tls = edgeTls();
const edge = await startEdgemux(`
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
sha256 = "${hashToken(SECRET)}"
roles = ["destination"]
`);
const agent = await startAgentProcess(["--edge", `localhost:${edge.hostPort("tunnel").port}`, "--ca", tls.ca, "--token", SECRET, "--name", "idle", "--expose", "web=127.0.0.1:9"]);
await agent.waitForLine((l) => l.msg === "connected to the edge", 15_000);
await new Promise((r) => setTimeout(r, Number(values.settle)));
console.log(`edge (supervisor + 1 worker, 1 idle session): ${rssMb(edge.proc.pid!).toFixed(1)} MB RSS`);
console.log(`agent (1 idle session):                        ${rssMb(agent.proc.pid!).toFixed(1)} MB RSS`);
await agent.stop();
await edge.stop();
process.exit(0);
