/**
 * Memory at rest: the resident size (VmRSS) of an edge (supervisor and one
 * worker, one tunnel listener) and of an agent holding one idle session to
 * it, after both have settled; median of several runs, each run a fresh pair
 * of processes. A bare runtime process (no code loaded) is measured the same
 * way for reference. `bun run bench` adds these figures to its report;
 * bench/README.md keeps them.
 *
 *   bun scripts/idle_rss.ts [--runs 5] [--settle 2000] [--json]
 *
 * EDGEMUX_RUNTIME=deno measures edgemux on Deno, EDGEMUX_BIN a built binary
 * (test/support/edgemux.ts's edgemuxCommand decides what runs).
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { hashToken } from "../src/auth/mod.ts";
import { startEdgemux } from "../test/support/edgemux.ts";
import { edgeTls, startAgentProcess } from "../test/support/tunnel.ts";

const SECRET = "idle-rss-token";

export interface IdleRss {
  /** Medians, MiB. */
  edgeMb: number;
  agentMb: number;
  bareMb: number;
  /** Every run's figures, MiB. */
  runs: { edgeMb: number; agentMb: number; bareMb: number }[];
  settleMs: number;
  /** What ran, e.g. "bun 1.4.5, source" — the same command line the tests use. */
  subject: string;
}

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

function median(xs: number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A process of the same runtime that loads nothing and waits: what the runtime itself costs. */
async function bareRss(settleMs: number): Promise<number> {
  const deno = process.env.EDGEMUX_RUNTIME === "deno" && !process.env.EDGEMUX_BIN;
  const p = deno ? spawn("deno", ["eval", "setInterval(() => {}, 1e6)"], { stdio: "ignore" }) : spawn(process.execPath, ["-e", "setInterval(() => {}, 1e6)"], { stdio: "ignore" });
  try {
    await sleep(settleMs);
    return rssMb(p.pid!);
  } finally {
    p.kill("SIGKILL");
  }
}

async function oneRun(settleMs: number, tls: ReturnType<typeof edgeTls>): Promise<{ edgeMb: number; agentMb: number }> {
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
  try {
    const agent = await startAgentProcess(["--edge", `localhost:${edge.hostPort("tunnel").port}`, "--ca", tls.ca, "--token", SECRET, "--name", "idle", "--expose", "web=127.0.0.1:9"]);
    try {
      await agent.waitForLine((l) => l.msg === "connected to the edge", 15_000);
      await sleep(settleMs);
      return { edgeMb: rssMb(edge.proc.pid!), agentMb: rssMb(agent.proc.pid!) };
    } finally {
      await agent.stop();
    }
  } finally {
    await edge.stop();
  }
}

export async function measureIdleRss(opts: { runs?: number; settleMs?: number; log?: (s: string) => void } = {}): Promise<IdleRss> {
  const runs = opts.runs ?? 5;
  const settleMs = opts.settleMs ?? 2000;
  const tls = edgeTls();
  const all: IdleRss["runs"] = [];
  for (let i = 0; i < runs; i++) {
    const r = await oneRun(settleMs, tls);
    const bareMb = await bareRss(settleMs);
    all.push({ ...r, bareMb });
    opts.log?.(`idle rss: run ${i + 1}/${runs}: edge ${r.edgeMb.toFixed(1)} MiB, agent ${r.agentMb.toFixed(1)} MiB, bare runtime ${bareMb.toFixed(1)} MiB`);
  }
  const runtime = process.env.EDGEMUX_BIN ? `binary ${process.env.EDGEMUX_BIN}` : process.env.EDGEMUX_RUNTIME === "deno" ? "deno, source" : `bun ${process.versions.bun}, source`;
  return {
    edgeMb: median(all.map((r) => r.edgeMb)),
    agentMb: median(all.map((r) => r.agentMb)),
    bareMb: median(all.map((r) => r.bareMb)),
    runs: all,
    settleMs,
    subject: runtime,
  };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { runs: { type: "string", default: "5" }, settle: { type: "string", default: "2000" }, json: { type: "boolean", default: false } } });
  const r = await measureIdleRss({ runs: Number(values.runs), settleMs: Number(values.settle), log: (s) => console.error(s) });
  if (values.json) console.log(JSON.stringify(r));
  else {
    console.log(`idle RSS, median of ${r.runs.length} runs (${r.subject}, ${r.settleMs} ms settle):`);
    console.log(`  edge (supervisor + 1 worker, 1 idle session): ${r.edgeMb.toFixed(1)} MiB`);
    console.log(`  agent (1 idle session):                        ${r.agentMb.toFixed(1)} MiB`);
    console.log(`  bare runtime process:                          ${r.bareMb.toFixed(1)} MiB`);
  }
  process.exit(0);
}
