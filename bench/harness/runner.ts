/**
 * Runs one scenario: starts its entries, proves each proxy routes (by SNI, or
 * by Host in the http section) or forwards (tcp section), warms them up, then measures them interleaved (A B C, A B C, …) for the
 * plan's rounds, reading each proxy's CPU time and peak memory around every
 * measurement.
 */
import type { Backend } from "./backends.ts";
import type { PeerDef, RunningPeer } from "./peers.ts";
import type { ProcessRegistry } from "./procs.ts";
import { resetPeaks, sampleTree } from "./proc_stats.ts";
import type { EntryInfo, Sample, ScenarioResult } from "./results.ts";
import { summarise } from "./results.ts";
import type { Plan, Scenario } from "./scenarios.ts";
import { checkHttpRouting, UNROUTED_HOST } from "./http_check.ts";
import { checkSniRouting, checkTcpForwarding, probe } from "./sni_check.ts";
import { fmt } from "./stats.ts";

export interface RunContext {
  reg: ProcessRegistry;
  repoRoot: string;
  dir: string;
  plan: Plan;
  cores: number;
  log: (line: string) => void;
}

async function startChecked(ctx: RunContext, sc: Scenario, peer: PeerDef, backend: Backend): Promise<{ running: RunningPeer; check: string }> {
  const running = await peer.start({
    reg: ctx.reg,
    dir: ctx.dir,
    repoRoot: ctx.repoRoot,
    backendPort: backend.port,
    ...(backend.directPort !== undefined ? { directPort: backend.directPort } : {}),
    ...(backend.tls ? { tls: backend.tls } : {}),
    profile: sc.profile,
    routing: sc.routing,
    cores: ctx.cores,
  });
  if (peer.kind === "direct") return { running, check: "n/a (no proxy)" };
  let problem: string | null;
  if (sc.routing === "http") {
    const r = await checkHttpRouting(running.port);
    if (r.problem) {
      await running.stop();
      throw new Error(`Host routing check failed: ${r.problem}`);
    }
    return { running, check: `ok (Host localhost answered 200 "ok" by the backend, Host ${UNROUTED_HOST} refused: ${r.unrouted})` };
  }
  if (sc.routing === "tcp") {
    problem = await checkTcpForwarding(running.port);
    if (problem) {
      await running.stop();
      throw new Error(`forwarding check failed: ${problem}`);
    }
    return { running, check: "plain forwarding: a plain request reached the backend and was answered" };
  }
  if (peer.routesBySni) problem = await checkSniRouting(running.port);
  else {
    const p = await probe(running.port, "localhost");
    problem = p.routed ? null : `did not reach the backend: ${p.detail}`;
  }
  if (problem) {
    await running.stop();
    throw new Error(`SNI check failed: ${problem}`);
  }
  return { running, check: peer.routesBySni ? "ok (localhost routed, unrouted.invalid refused)" : "not a router: forwards every connection to the one target" };
}

async function measureOnce(ctx: RunContext, sc: Scenario, entry: RunningPeer, backend: Backend, round: number, seconds: number): Promise<Sample> {
  const pid = entry.pid;
  if (pid !== null) resetPeaks(pid);
  const before = pid !== null ? sampleTree(pid) : null;
  try {
    const m = await sc.measure({ reg: ctx.reg, repoRoot: ctx.repoRoot, dir: ctx.dir, plan: ctx.plan, entry, backend, seconds });
    if (entry.proc && !entry.proc.running) {
      throw new Error(`${entry.name} exited during the measurement (code ${entry.proc.exitCode}); last output:\n${entry.proc.tail(10)}`);
    }
    const after = pid !== null ? sampleTree(pid) : null;
    // A process of the tree that ended meanwhile takes its ticks with it: a negative delta is no figure.
    const delta = before && after ? after.cpuSeconds - before.cpuSeconds : null;
    const cpu = delta !== null && delta >= 0 ? delta : null;
    return {
      round,
      entry: entry.name,
      value: m.value,
      p50Ms: m.p50Ms,
      p99Ms: m.p99Ms,
      work: m.work,
      errors: m.errors,
      proxyCpuS: cpu,
      perCpuS: cpu !== null && cpu > 0 ? m.work / cpu : null,
      peakRssKb: after ? after.hwmKb : null,
      detail: m.detail,
    };
  } catch (e) {
    return failedSample(round, entry.name, e instanceof Error ? e.message : String(e));
  }
}

function failedSample(round: number, entry: string, error: string): Sample {
  return { round, entry, value: Number.NaN, p50Ms: null, p99Ms: null, work: 0, errors: 0, proxyCpuS: null, perCpuS: null, peakRssKb: null, error, detail: {} };
}

/**
 * edgemux's own view, from its admin API: how many connections each route
 * took. After a wrk run through the "localhost" route this is the proof that
 * the SNI arrived and was routed (not only that bytes flowed).
 */
async function adminRouteCounters(entry: RunningPeer): Promise<Record<string, unknown> | null> {
  const admin = entry.info["admin"];
  if (typeof admin !== "string") return null;
  try {
    const res = await fetch(`http://${admin}/status`, { signal: AbortSignal.timeout(3000) });
    const body = (await res.json()) as { routes?: { name: string; connections: number; errors_total: number; errors?: unknown }[]; totals?: unknown };
    return {
      routes: (body.routes ?? []).map((r) => ({ name: r.name, connections: r.connections, errors: r.errors_total, errorsByCode: r.errors ?? {} })),
      totals: body.totals ?? null,
    };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

function describe(sc: Scenario, s: Sample): string {
  if (s.error) return `FAILED: ${s.error.split("\n")[0]}`;
  const cpu = s.proxyCpuS !== null ? `, proxy CPU ${s.proxyCpuS.toFixed(2)} s` : "";
  const lat = s.p50Ms !== null ? `, p50 ${fmt(s.p50Ms)} ms p99 ${fmt(s.p99Ms)} ms` : "";
  return `${fmt(s.value)} ${sc.metric.unit}${lat}${cpu}${s.errors ? `, ${s.errors} errors` : ""}`;
}

export async function runScenario(ctx: RunContext, sc: Scenario, peers: readonly PeerDef[], backend: Backend): Promise<ScenarioResult> {
  const chosen = peers.filter((p) => (sc.includesDirect || p.kind !== "direct") && p.routings.includes(sc.routing));
  const infos: EntryInfo[] = [];
  const samples: Sample[] = [];
  const running = new Map<string, RunningPeer>();
  const tag = (round: number | string) => `[${sc.id} ${round}]`;
  try {
    if (!sc.freshPeerPerRound) {
      for (const peer of chosen) {
        try {
          const { running: r, check } = await startChecked(ctx, sc, peer, backend);
          running.set(peer.name, r);
          infos.push({ name: peer.name, settings: r.settings, sniCheck: check });
          if (sc.warmup && ctx.plan.warmupSeconds > 0) await measureOnce(ctx, sc, r, backend, 0, ctx.plan.warmupSeconds);
        } catch (e) {
          const why = e instanceof Error ? e.message : String(e);
          infos.push({ name: peer.name, settings: {}, sniCheck: "failed", skipped: why.split("\n")[0]! });
          ctx.log(`${tag("start")} ${peer.name} skipped: ${why}`);
        }
      }
    }
    for (let round = 1; round <= ctx.plan.rounds; round++) {
      for (const peer of chosen) {
        if (sc.freshPeerPerRound) {
          if (infos.some((i) => i.name === peer.name && i.skipped)) continue;
          let r: RunningPeer;
          try {
            const started = await startChecked(ctx, sc, peer, backend);
            r = started.running;
            if (!infos.some((i) => i.name === peer.name)) infos.push({ name: peer.name, settings: r.settings, sniCheck: started.check });
          } catch (e) {
            const why = e instanceof Error ? e.message : String(e);
            infos.push({ name: peer.name, settings: {}, sniCheck: "failed", skipped: why.split("\n")[0]! });
            ctx.log(`${tag(`r${round}`)} ${peer.name} skipped: ${why}`);
            continue;
          }
          try {
            const s = await measureOnce(ctx, sc, r, backend, round, ctx.plan.seconds);
            samples.push(s);
            ctx.log(`${tag(`r${round}/${ctx.plan.rounds}`)} ${peer.name.padEnd(9)} ${describe(sc, s)}`);
          } finally {
            const counters = await adminRouteCounters(r);
            const info = infos.find((i) => i.name === peer.name);
            if (counters && info) info.adminStatus = counters;
            await r.stop();
          }
          continue;
        }
        let r = running.get(peer.name);
        if (!r) continue;
        if (r.proc && !r.proc.running) {
          // It died since the last measurement: record that, then start it again so one crash does not eat every round.
          const info = infos.find((i) => i.name === peer.name)!;
          info.exits = (info.exits ?? 0) + 1;
          ctx.log(`${tag(`r${round}`)} ${peer.name} had exited (code ${r.proc.exitCode}); restarting it. Last output:\n${r.proc.tail(10)}`);
          try {
            const started = await startChecked(ctx, sc, peer, backend);
            r = started.running;
            running.set(peer.name, r);
          } catch (e) {
            samples.push(failedSample(round, peer.name, `exited and could not be restarted: ${e instanceof Error ? e.message : e}`));
            running.delete(peer.name);
            continue;
          }
        }
        const s = await measureOnce(ctx, sc, r, backend, round, ctx.plan.seconds);
        samples.push(s);
        ctx.log(`${tag(`r${round}/${ctx.plan.rounds}`)} ${peer.name.padEnd(9)} ${describe(sc, s)}`);
      }
    }
  } finally {
    for (const r of running.values()) {
      const counters = await adminRouteCounters(r);
      const info = infos.find((i) => i.name === r.name);
      if (counters && info) info.adminStatus = counters;
      await r.stop();
    }
  }
  return {
    id: sc.id,
    title: sc.title,
    profile: sc.profile,
    routing: sc.routing,
    metric: sc.metric,
    workUnit: sc.workUnit,
    entries: infos,
    samples,
    summary: summarise(samples),
  };
}
