/**
 * The shape of bench/results/<timestamp>.json and the pure arithmetic on it:
 * per-entry medians, the issues' targets as medians of per-round ratios, and
 * the ratio tables of each section (SNI, tcp, http) and of the before/after
 * comparison (rates and work per proxy CPU-second side by side).
 */
import type { MicroResult } from "./micro.ts";
import type { Plan, Routing, ScenarioId } from "./scenarios.ts";
import { median, medianRatio, spread } from "./stats.ts";

export interface Sample {
  round: number;
  entry: string;
  value: number;
  p50Ms: number | null;
  p99Ms: number | null;
  work: number;
  errors: number;
  /** CPU seconds of the proxy's process tree during the measurement; null for direct. */
  proxyCpuS: number | null;
  /** work / proxyCpuS: requests, bytes or connections per proxy CPU-second. */
  perCpuS: number | null;
  /** VmHWM summed over the proxy's processes (reset before each measurement when the kernel allows). */
  peakRssKb: number | null;
  error?: string;
  detail: Record<string, unknown>;
}

export interface EntryInfo {
  name: string;
  settings: Record<string, string | number>;
  /** "ok", "not checked (…)" or why the entry was dropped. */
  sniCheck: string;
  skipped?: string;
  /** Times the process was found exited between rounds (and restarted). */
  exits?: number;
  /** edgemux only: route counters from its admin /status when the entry stopped (last round for fresh-per-round scenarios). */
  adminStatus?: Record<string, unknown>;
}

export interface EntrySummary {
  n: number;
  median: number;
  min: number;
  max: number;
  p50Ms: number;
  p99Ms: number;
  proxyCpuS: number;
  perCpuS: number;
  peakRssKb: number;
  errors: number;
  work: number;
}

export interface ScenarioResult {
  id: ScenarioId;
  title: string;
  profile: string;
  routing: Routing;
  metric: { name: string; unit: string; higherIsBetter: boolean };
  workUnit: string;
  entries: EntryInfo[];
  samples: Sample[];
  summary: Record<string, EntrySummary>;
}

export interface TargetResult {
  id: string;
  text: string;
  subject: string;
  /** What the subject is compared with (a peer name, "direct", or "absolute"). */
  against: string;
  value: number;
  op: ">=" | "<=";
  target: number;
  /** null when the figure could not be measured. */
  pass: boolean | null;
  /** The ratio is of work per proxy CPU-second, not of rates. */
  perCpu?: boolean;
  note?: string;
}

export interface PeerInfo {
  name: string;
  kind: "direct" | "proxy";
  version: string;
  unavailable: string | null;
}

export interface Results {
  version: 1;
  startedAt: string;
  finishedAt: string;
  mode: "quick" | "full";
  plan: Plan;
  machine: Record<string, string | number>;
  notes: string[];
  peers: PeerInfo[];
  scenarios: ScenarioResult[];
  micro: MicroResult[];
  microFailures: { file: string; reason: string }[];
  targets: TargetResult[];
  /** Each section's and the before/after tables, one row per scenario × subject × against. */
  ratios: RatioRow[];
  /** This checkout's version and how many files under src/ differed from its commit, when the run started and ended. */
  tree?: { atStart: string; atEnd: string };
  /** Set with --baseline: the other checkout that ran as "edgemux-before". */
  baseline?: { dir: string; version: string };
  /** Memory at rest (scripts/idle_rss.ts), unless --no-idle-rss; `error` when the measurement failed. */
  idleRss?: IdleRssResult | { error: string };
}

/** scripts/idle_rss.ts's JSON: medians and every run, MiB. */
export interface IdleRssResult {
  edgeMb: number;
  agentMb: number;
  bareMb: number;
  runs: { edgeMb: number; agentMb: number; bareMb: number }[];
  settleMs: number;
  subject: string;
}

export function summarise(samples: readonly Sample[]): Record<string, EntrySummary> {
  const by = new Map<string, Sample[]>();
  for (const s of samples) {
    const list = by.get(s.entry);
    if (list) list.push(s);
    else by.set(s.entry, [s]);
  }
  const out: Record<string, EntrySummary> = {};
  for (const [entry, list] of by) {
    const ok = list.filter((s) => !s.error && Number.isFinite(s.value));
    const values = ok.map((s) => s.value);
    const { min, max } = spread(values);
    const num = (f: (s: Sample) => number | null) => median(ok.map((s) => f(s) ?? Number.NaN));
    out[entry] = {
      n: ok.length,
      median: median(values),
      min,
      max,
      p50Ms: num((s) => s.p50Ms),
      p99Ms: num((s) => s.p99Ms),
      proxyCpuS: num((s) => s.proxyCpuS),
      perCpuS: num((s) => s.perCpuS),
      peakRssKb: num((s) => s.peakRssKb),
      errors: list.reduce((a, s) => a + s.errors, 0),
      work: list.reduce((a, s) => a + (Number.isFinite(s.work) ? s.work : 0), 0),
    };
  }
  return out;
}

/** What a ratio compares: the scenario's rate (value) or its work per proxy CPU-second. */
export type RatioField = "value" | "perCpuS";

function byRound(sc: ScenarioResult | undefined, entry: string, field: RatioField): Map<number, number> {
  const m = new Map<number, number>();
  for (const s of sc?.samples ?? []) {
    const v = field === "value" ? s.value : s.perCpuS;
    if (s.entry === entry && !s.error && v !== null) m.set(s.round, v);
  }
  return m;
}

/** Median over rounds of subject/against in one scenario (NaN when either is missing). */
export function scenarioRatio(sc: ScenarioResult | undefined, subject: string, against: string, field: RatioField = "value"): number {
  return medianRatio(byRound(sc, subject, field), byRound(sc, against, field));
}

/** A ratio table: one per section (named by its routing), and the before/after comparison. */
export type RatioTable = Routing | "before_after";

export interface RatioRow {
  /** "sni" / "tcp" / "http": each section's scenarios against every peer; "before_after": the SNI scenarios with --baseline. */
  table: RatioTable;
  scenario: ScenarioId;
  subject: string;
  against: string;
  /** Median of per-round subject/against of the scenario's metric (req/s, Gbit/s). */
  rate: number;
  /** The same for work (requests, bytes) per proxy CPU-second; NaN against direct. */
  perCpu: number;
}

/** Subjects and what they are divided by, per table (a section's table is named by its routing). */
export const RATIO_TABLES: Record<RatioTable, { subjects: readonly string[]; against: readonly string[] }> = {
  sni: { subjects: ["edgemux", "naive_bun"], against: ["haproxy", "nginx", "sniproxy", "naive_bun", "direct"] },
  tcp: { subjects: ["edgemux", "naive_bun"], against: ["haproxy", "nginx", "naive_bun", "direct"] },
  http: { subjects: ["edgemux"], against: ["nginx", "haproxy", "direct"] },
  before_after: { subjects: ["edgemux-before", "edgemux"], against: ["haproxy", "edgemux-before"] },
};

/**
 * Every scenario's ratios against every peer of its section (rate and work per
 * proxy CPU-second) and, when "edgemux-before" ran, the before/after ratios
 * (every scenario it ran in). A pair whose two sides never ran in the same
 * round is left out.
 */
export function computeRatios(scenarios: readonly ScenarioResult[]): RatioRow[] {
  const rows: RatioRow[] = [];
  for (const sc of scenarios) {
    const tables: RatioTable[] = sc.summary["edgemux-before"] ? [sc.routing, "before_after"] : [sc.routing];
    for (const table of tables) {
      const def = RATIO_TABLES[table];
      for (const subject of def.subjects) {
        if (!sc.summary[subject]) continue;
        for (const against of def.against) {
          if (against === subject || !sc.summary[against]) continue;
          const rate = scenarioRatio(sc, subject, against, "value");
          if (!Number.isFinite(rate)) continue;
          rows.push({ table, scenario: sc.id, subject, against, rate, perCpu: scenarioRatio(sc, subject, against, "perCpuS") });
        }
      }
    }
  }
  return rows;
}

/** The mature peers the targets compare with (not the naive baseline, not the subject). */
export const MATURE_PEERS = ["haproxy", "nginx", "sniproxy"] as const;

/** The mature peer with the best median in a scenario. */
export function bestPeer(sc: ScenarioResult | undefined): string | null {
  if (!sc) return null;
  let best: string | null = null;
  for (const p of MATURE_PEERS) {
    const s = sc.summary[p];
    if (!s || !Number.isFinite(s.median)) continue;
    const better = best === null || (sc.metric.higherIsBetter ? s.median > sc.summary[best]!.median : s.median < sc.summary[best]!.median);
    if (better) best = p;
  }
  return best;
}

export interface TargetDef {
  id: string;
  text: string;
  scenario?: ScenarioId;
  /** A peer's name, or a function choosing one from the scenario's medians (bestPeer: the better of the mature peers that ran). */
  against: string | ((sc: ScenarioResult | undefined) => string | null);
  op: ">=" | "<=";
  target: number;
  /** The rate (default) or the work per proxy CPU-second. */
  field?: RatioField;
  /** Who is judged (default: every subject of the run); the http section has no naive forwarder. */
  subjects?: readonly string[];
}

/**
 * Issue 3's targets (rates), then issue 12's (work per proxy CPU-second, the
 * steadier figure on a shared machine: against HAProxy and against the naive
 * forwarder, which moves the same bytes without SNI parsing), then issue 13's
 * (the http section: HTTPS keep-alive requests/s against the better of nginx
 * and HAProxy). Every ratio is subject/against with the same run's rounds
 * paired.
 */
export const TARGETS: readonly TargetDef[] = [
  { id: "newconn_vs_haproxy", text: "new-connection rate vs HAProxy", scenario: "newconn", against: "haproxy", op: ">=", target: 1.1 },
  { id: "newconn_vs_nginx", text: "new-connection rate vs nginx stream", scenario: "newconn", against: "nginx", op: ">=", target: 1.0 },
  { id: "newconn_vs_sniproxy", text: "new-connection rate vs sniproxy", scenario: "newconn", against: "sniproxy", op: ">=", target: 1.0 },
  { id: "bulk1_vs_best", text: "bulk, 1 stream, vs best peer", scenario: "bulk1", against: bestPeer, op: ">=", target: 1.0 },
  { id: "bulk4_vs_best", text: "bulk, 4 streams, vs best peer", scenario: "bulk4", against: bestPeer, op: ">=", target: 1.0 },
  { id: "bulk1_vs_direct", text: "bulk, 1 stream, vs direct TCP", scenario: "bulk1", against: "direct", op: ">=", target: 0.65 },
  { id: "bulk4_vs_direct", text: "bulk, 4 streams, vs direct TCP", scenario: "bulk4", against: "direct", op: ">=", target: 0.65 },
  { id: "keepalive_vs_haproxy", text: "keep-alive request rate vs HAProxy", scenario: "keepalive", against: "haproxy", op: ">=", target: 1.3 },
  { id: "idle_rss_vs_haproxy", text: "RSS per idle proxied connection vs HAProxy", scenario: "idle", against: "haproxy", op: "<=", target: 0.7 },
  { id: "clienthello_parse", text: "ClientHello parse, µs per hello (micro)", against: "absolute", op: "<=", target: 2 },
  { id: "newconn_cpu_vs_haproxy", text: "new connections per CPU-s vs HAProxy", scenario: "newconn", against: "haproxy", op: ">=", target: 1.0, field: "perCpuS" },
  { id: "keepalive_cpu_vs_haproxy", text: "keep-alive requests per CPU-s vs HAProxy", scenario: "keepalive", against: "haproxy", op: ">=", target: 1.0, field: "perCpuS" },
  { id: "bulk1_cpu_vs_haproxy", text: "bulk 1 stream, bytes per CPU-s vs HAProxy", scenario: "bulk1", against: "haproxy", op: ">=", target: 1.5, field: "perCpuS" },
  { id: "bulk4_cpu_vs_haproxy", text: "bulk 4 streams, bytes per CPU-s vs HAProxy", scenario: "bulk4", against: "haproxy", op: ">=", target: 1.5, field: "perCpuS" },
  { id: "bulk1_vs_haproxy", text: "bulk 1 stream, rate vs HAProxy", scenario: "bulk1", against: "haproxy", op: ">=", target: 1.0 },
  { id: "bulk4_vs_haproxy", text: "bulk 4 streams, rate vs HAProxy", scenario: "bulk4", against: "haproxy", op: ">=", target: 1.0 },
  { id: "idle_rss_vs_haproxy_12", text: "RSS per idle proxied connection vs HAProxy (issue 12)", scenario: "idle", against: "haproxy", op: "<=", target: 0.8 },
  { id: "newconn_cpu_vs_naive", text: "new connections per CPU-s vs naive forwarder", scenario: "newconn", against: "naive_bun", op: ">=", target: 1.0, field: "perCpuS" },
  { id: "keepalive_cpu_vs_naive", text: "keep-alive requests per CPU-s vs naive forwarder", scenario: "keepalive", against: "naive_bun", op: ">=", target: 1.0, field: "perCpuS" },
  { id: "bulk1_cpu_vs_naive", text: "bulk 1 stream, bytes per CPU-s vs naive forwarder", scenario: "bulk1", against: "naive_bun", op: ">=", target: 1.0, field: "perCpuS" },
  { id: "bulk4_cpu_vs_naive", text: "bulk 4 streams, bytes per CPU-s vs naive forwarder", scenario: "bulk4", against: "naive_bun", op: ">=", target: 1.0, field: "perCpuS" },
  { id: "http_keepalive_vs_best", text: "HTTPS keep-alive requests/s vs the better of nginx and HAProxy (issue 13)", scenario: "http_keepalive", against: bestPeer, op: ">=", target: 1.0, subjects: ["edgemux"] },
];

export function judge(value: number, op: ">=" | "<=", target: number): boolean | null {
  if (!Number.isFinite(value)) return null;
  return op === ">=" ? value >= target : value <= target;
}

export function computeTargets(
  scenarios: readonly ScenarioResult[],
  subjects: readonly string[],
  helloParseNs: number | null,
): TargetResult[] {
  const out: TargetResult[] = [];
  for (const subject of subjects) {
    for (const t of TARGETS) {
      if (t.subjects && !t.subjects.includes(subject)) continue;
      if (!t.scenario) {
        // Absolute figures belong to edgemux's own code, not to a peer.
        const value = subject === "edgemux" && helloParseNs !== null ? helloParseNs / 1000 : Number.NaN;
        out.push({ id: t.id, text: t.text, subject, against: "absolute", value, op: t.op, target: t.target, pass: judge(value, t.op, t.target),
          ...(subject !== "edgemux" ? { note: "edgemux code only" } : helloParseNs === null ? { note: "no ClientHello micro bench found" } : {}) });
        continue;
      }
      const sc = scenarios.find((s) => s.id === t.scenario);
      const against = typeof t.against === "function" ? t.against(sc) : t.against;
      if (against === subject) continue; // the naive forwarder is not judged against itself
      const value = against ? scenarioRatio(sc, subject, against, t.field ?? "value") : Number.NaN;
      out.push({
        id: t.id,
        text: t.text,
        subject,
        against: against ?? "none",
        value,
        op: t.op,
        target: t.target,
        pass: judge(value, t.op, t.target),
        ...(t.field === "perCpuS" ? { perCpu: true } : {}),
        ...(!sc ? { note: "scenario not run" } : !against ? { note: "no peer measured" } : {}),
      });
    }
  }
  return out;
}
