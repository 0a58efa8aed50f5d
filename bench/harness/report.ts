/** Renders a Results record as the markdown report and an SVG chart of the target ratios. Pure. */
import type { EntrySummary, IdleRssResult, RatioRow, Results, ScenarioResult, TargetResult } from "./results.ts";
import { RATIO_TABLES, scenarioRatio } from "./results.ts";
import type { Routing } from "./scenarios.ts";
import { fmt } from "./stats.ts";

const SUBJECTS = ["edgemux", "naive_bun"];

function value(sc: ScenarioResult, x: number): string {
  if (!Number.isFinite(x)) return "n/a";
  if (sc.metric.unit === "Gbit/s") return x.toFixed(2);
  return fmt(x, 3);
}

function perCpu(sc: ScenarioResult, s: EntrySummary): string {
  if (!Number.isFinite(s.perCpuS)) return "–";
  if (sc.workUnit === "bytes") return `${fmt(s.perCpuS / 1e9)} GB`;
  return fmt(s.perCpuS);
}

function mib(kb: number): string {
  return Number.isFinite(kb) ? (kb / 1024).toFixed(1) : "–";
}

function passText(t: TargetResult): string {
  return t.pass === null ? "n/a" : t.pass ? "**pass**" : "**miss**";
}

function targetValue(t: TargetResult): string {
  if (!Number.isFinite(t.value)) return "n/a";
  return t.against === "absolute" ? `${t.value.toFixed(3)} µs` : `${t.value.toFixed(2)}×${t.perCpu ? " per CPU-s" : ""}`;
}

export function renderTargets(targets: readonly TargetResult[]): string {
  const subjects = SUBJECTS.filter((s) => targets.some((t) => t.subject === s));
  const ids = [...new Set(targets.map((t) => t.id))];
  const lines = [
    `| target | needs | ${subjects.map((s) => (s === "edgemux" ? "edgemux | pass?" : `${s} (baseline) | pass?`)).join(" | ")} |`,
    `|---|---|${subjects.map(() => "---:|:---:").join("|")}|`,
  ];
  for (const id of ids) {
    const row = targets.filter((t) => t.id === id);
    const first = row[0]!;
    const against = row.find((t) => t.against !== "none")?.against ?? first.against;
    const label = first.id.includes("best") ? `${first.text} (${against})` : first.text;
    const cells = subjects.map((s) => {
      const t = row.find((r) => r.subject === s);
      if (!t) return "– | –";
      return `${targetValue(t)}${t.note ? ` (${t.note})` : ""} | ${passText(t)}`;
    });
    lines.push(`| ${label} | ${first.op === ">=" ? "≥" : "≤"} ${first.target}${first.against === "absolute" ? " µs" : "×"} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

function ratio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}×` : "–";
}

/**
 * One section's ratios: per scenario and subject, the rate and the
 * per-proxy-CPU-second ratio against each peer that ran, side by side, and the
 * rate against direct.
 */
export function renderSectionRatios(rows: readonly RatioRow[], table: Routing): string {
  const sel = rows.filter((r) => r.table === table);
  if (sel.length === 0) return "";
  const peers = RATIO_TABLES[table].against.filter((p) => p !== "direct" && sel.some((r) => r.against === p));
  const keys = [...new Set(sel.map((r) => `${r.scenario}\u0000${r.subject}`))];
  const lines = [
    `| scenario | subject | ${peers.map((p) => `÷ ${p}, rate | ÷ ${p}, per CPU-s`).join(" | ")} | vs direct, rate |`,
    `|---|---|${peers.map(() => "---:|---:").join("|")}|---:|`,
  ];
  for (const k of keys) {
    const [scenario, subject] = k.split("\u0000") as [string, string];
    const get = (against: string) => sel.find((r) => r.scenario === scenario && r.subject === subject && r.against === against);
    const cells = peers.map((p) => (p === subject ? "– | –" : `${ratio(get(p)?.rate ?? NaN)} | ${ratio(get(p)?.perCpu ?? NaN)}`));
    lines.push(`| ${scenario} | ${subject} | ${cells.join(" | ")} | ${ratio(get("direct")?.rate ?? NaN)} |`);
  }
  return lines.join("\n");
}

/** Before/after: edgemux-before ÷ HAProxy and edgemux ÷ HAProxy per SNI scenario, and edgemux ÷ edgemux-before. */
export function renderBeforeAfter(rows: readonly RatioRow[]): string {
  const ba = rows.filter((r) => r.table === "before_after");
  if (ba.length === 0) return "";
  const scenarios = [...new Set(ba.map((r) => r.scenario))];
  const lines = [
    "| scenario | before ÷ haproxy, rate | before ÷ haproxy, per CPU-s | after ÷ haproxy, rate | after ÷ haproxy, per CPU-s | after ÷ before, rate | after ÷ before, per CPU-s |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const sc of scenarios) {
    const get = (subject: string, against: string) => ba.find((r) => r.scenario === sc && r.subject === subject && r.against === against);
    const b = get("edgemux-before", "haproxy");
    const a = get("edgemux", "haproxy");
    const ab = get("edgemux", "edgemux-before");
    lines.push(`| ${sc} | ${ratio(b?.rate ?? NaN)} | ${ratio(b?.perCpu ?? NaN)} | ${ratio(a?.rate ?? NaN)} | ${ratio(a?.perCpu ?? NaN)} | ${ratio(ab?.rate ?? NaN)} | ${ratio(ab?.perCpu ?? NaN)} |`);
  }
  return lines.join("\n");
}

/** Each section's ratio table in the report: its heading and what it compares. */
export const SECTIONS: Record<Routing, { heading: string; blurb: string; check: string }> = {
  sni: {
    heading: "SNI section: every ratio (medians of per-round ratios)",
    blurb:
      "edgemux and the naive forwarder divided by each peer, as rates and as work per proxy CPU-second " +
      "(requests, connections or bytes per CPU-second of each proxy's process tree; above 1 the subject is cheaper). " +
      "On a shared machine the per CPU-s ratio is the steadier figure.",
    check: "SNI",
  },
  tcp: {
    heading: "tcp section: plain L4 forwarding (medians of per-round ratios)",
    blurb:
      "edgemux `kind = \"tcp\"` and the naive forwarder against HAProxy `mode tcp` and nginx `stream` (fixed `proxy_pass`). " +
      "\"per CPU-s\" divides the work each proxy did per CPU-second of its process tree (requests, bytes); above 1 the subject is cheaper.",
    check: "forwarding",
  },
  http: {
    heading: "http section: HTTPS reverse proxy, routing by Host (medians of per-round ratios)",
    blurb:
      "edgemux `kind = \"http\"` (TLS from `[listeners.tls]`) against nginx `proxy_pass` with an upstream keepalive pool and HAProxy `mode http` " +
      "(`bind … ssl crt`, `http-reuse always`): the same certificate, the same plain-HTTP nginx backend, wrk over HTTPS with `Host: localhost`. " +
      "\"per CPU-s\" is requests per CPU-second of each proxy's process tree; above 1 edgemux is cheaper. " +
      "\"vs direct\" is against wrk over HTTPS straight to the backend (nginx terminating TLS itself).",
    check: "Host routing",
  },
};

/**
 * "; admin /status: route localhost took N connections (E errors)" from
 * edgemux's counters; an http route counts one per request.
 */
function adminNote(status: Record<string, unknown> | undefined, routing: Routing): string {
  if (!status) return "";
  if (typeof status.error === "string") return `; admin /status unreadable: ${status.error}`;
  const routes = Array.isArray(status.routes) ? (status.routes as { name: string; connections: number; errors: number }[]) : [];
  if (routes.length === 0) return "; admin /status: no routes";
  const unit = routing === "http" ? "requests" : "connections";
  return `; admin /status: ${routes.map((r) => `route ${r.name} took ${fmt(r.connections)} ${unit} (${r.errors} errors)`).join(", ")}`;
}

export function renderScenario(sc: ScenarioResult): string {
  const entries = sc.entries.filter((e) => !e.skipped).map((e) => e.name);
  const hasDirect = entries.includes("direct");
  const subjects = SUBJECTS.filter((s) => entries.includes(s));
  const workLabel = sc.workUnit === "bytes" ? "bytes" : sc.workUnit === "requests" ? "req" : "conns";
  const head = [
    "entry",
    `${sc.metric.name} (median)`,
    "min – max",
    ...(hasDirect ? ["vs direct"] : []),
    ...subjects.map((s) => `${s} ÷ entry`),
    "p50 ms",
    "p99 ms",
    "proxy CPU s",
    `${workLabel} per proxy CPU-s`,
    "peak RSS MiB",
    "errors",
    "n",
  ];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`];
  for (const name of entries) {
    const s = sc.summary[name];
    if (!s) continue;
    const row = [
      name,
      value(sc, s.median),
      `${value(sc, s.min)} – ${value(sc, s.max)}`,
      ...(hasDirect ? [name === "direct" ? "1" : `${fmt(scenarioRatio(sc, name, "direct"))}×`] : []),
      ...subjects.map((sub) => (sub === name ? "–" : `${fmt(scenarioRatio(sc, sub, name))}×`)),
      fmt(s.p50Ms),
      fmt(s.p99Ms),
      Number.isFinite(s.proxyCpuS) ? s.proxyCpuS.toFixed(2) : "–",
      perCpu(sc, s),
      mib(s.peakRssKb),
      String(s.errors),
      String(s.n),
    ];
    lines.push(`| ${row.join(" | ")} |`);
  }
  const notes: string[] = [];
  for (const e of sc.entries) {
    const settings = Object.entries(e.settings).map(([k, v]) => `${k}=${v}`).join(", ");
    if (e.skipped) notes.push(`- ${e.name}: **skipped** — ${e.skipped}`);
    else if (e.name !== "direct") notes.push(`- ${e.name}: ${settings || "defaults"}; ${SECTIONS[sc.routing].check} check: ${e.sniCheck}${adminNote(e.adminStatus, sc.routing)}${e.exits ? `; **exited ${e.exits}× during the scenario (restarted)**` : ""}`);
  }
  const failed = sc.samples.filter((s) => s.error);
  for (const f of failed.slice(0, 10)) notes.push(`- round ${f.round} ${f.entry} failed: ${f.error!.split("\n")[0]}`);
  return [`### ${sc.id} — ${sc.title}`, "", `Unit: ${sc.metric.unit} (${sc.metric.higherIsBetter ? "higher" : "lower"} is better).`, "", ...lines, "", ...notes].join("\n");
}

/** Issue 12's memory-at-rest target: an agent holding one idle session, MiB. */
export const AGENT_IDLE_RSS_TARGET_MB = 35;

/** The "Memory at rest" table: the idle edge's and agent's RSS beside a bare runtime process. */
export function renderIdleRss(x: IdleRssResult | { error: string }): string {
  if ("error" in x) return `Measurement failed: ${x.error.split("\n")[0]}`;
  const span = (f: (r: IdleRssResult["runs"][number]) => number) => {
    const v = x.runs.map(f).filter(Number.isFinite);
    return v.length ? `${Math.min(...v).toFixed(1)} – ${Math.max(...v).toFixed(1)}` : "–";
  };
  const agentPass = x.agentMb <= AGENT_IDLE_RSS_TARGET_MB ? "**pass**" : "**miss**";
  return [
    `RSS (VmRSS) after ${x.settleMs} ms of rest, median of ${x.runs.length} runs, each a fresh edge (supervisor + 1 worker, one tunnel listener) and agent (one idle session, one exposed service); ${x.subject}.`,
    "",
    "| process | RSS MiB (median) | min – max | target |",
    "|---|---:|---:|---|",
    `| edge, 1 worker, 1 idle session | ${x.edgeMb.toFixed(1)} | ${span((r) => r.edgeMb)} | – |`,
    `| agent, 1 idle session | ${x.agentMb.toFixed(1)} | ${span((r) => r.agentMb)} | ≤ ${AGENT_IDLE_RSS_TARGET_MB}: ${agentPass} |`,
    `| bare runtime (no code loaded) | ${x.bareMb.toFixed(1)} | ${span((r) => r.bareMb)} | – |`,
  ].join("\n");
}

export function renderMarkdown(r: Results): string {
  const m = r.machine;
  const out: string[] = [
    `# edgemux benchmark — ${r.startedAt} (${r.mode})`,
    "",
    `Machine: ${m.cpus} CPUs (${m.cpuModel}), ${m.kernel}, ${m.bun}; open-file limit ${m.fdLimit}; load average (1/5/15 min) ${m.loadAvgAtStart} at start, ${m.loadAvgAtEnd} at end. ` +
      "Load generators, backends and proxies share these cores (nothing is pinned), so absolute figures are for the whole box; " +
      "compare entries through the ratios, which pair measurements of the same round.",
    ...(r.tree ? [`Tree under test: edgemux ${r.tree.atStart} at the start, ${r.tree.atEnd} at the end.`] : []),
    `Plan: ${r.plan.rounds} rounds × ${r.plan.seconds} s per measurement (+${r.plan.warmupSeconds} s warm-up per entry), entries interleaved in every round; ` +
      `${r.plan.idleConns} idle connections per proxy.`,
    "",
    "## Peers",
    "",
    "| entry | version | status |",
    "|---|---|---|",
    ...r.peers.map((p) => `| ${p.name} | ${p.version} | ${p.unavailable ? `unavailable: ${p.unavailable}` : "ran"} |`),
    "",
    "## Targets (medians of per-round ratios, same run)",
    "",
    r.targets.some((t) => Number.isFinite(t.value))
      ? renderTargets(r.targets)
      : "No scenario with a target ran: the targets belong to the SNI section and the http section's keep-alive.",
    "",
  ];
  for (const [table, section] of Object.entries(SECTIONS) as [Routing, (typeof SECTIONS)[Routing]][]) {
    const md = renderSectionRatios(r.ratios ?? [], table);
    if (md) out.push(`## ${section.heading}`, "", section.blurb, "", md, "");
  }
  const ba = renderBeforeAfter(r.ratios ?? []);
  if (ba) {
    out.push(
      "## Before/after: SNI scenarios, edgemux-before against this tree (medians of per-round ratios)",
      "",
      `before = ${r.baseline ? `${r.baseline.version} at ${r.baseline.dir}` : "edgemux-before"}; after = this tree's edgemux (${r.peers.find((p) => p.name === "edgemux")?.version ?? "?"}). Both ran with the same config, interleaved in the same rounds as HAProxy.`,
      "",
      ba,
      "",
    );
  }
  if (r.idleRss) out.push("## Memory at rest (scripts/idle_rss.ts)", "", renderIdleRss(r.idleRss), "");
  out.push("## Scenarios", "");
  for (const sc of r.scenarios) out.push(renderScenario(sc), "");
  out.push("## Micro benchmarks (bench/micro, mitata)", "");
  if (!r.plan.micro) out.push("Skipped (--no-micro).");
  else if (r.micro.length === 0 && r.microFailures.length === 0) out.push("No bench/micro/*_bench.ts found.");
  else {
    out.push("| file | group | benchmark | avg | p75 | p99 |", "|---|---|---|---:|---:|---:|");
    const t = (ns: number | null) => (ns === null || !Number.isFinite(ns) ? "–" : ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(2)} µs` : `${ns.toFixed(1)} ns`);
    for (const x of r.micro) out.push(`| ${x.file.replace(/^bench\/micro\//, "")} | ${x.group ?? ""} | ${x.name} | ${t(x.avgNs)} | ${t(x.p75Ns)} | ${t(x.p99Ns)} |`);
    for (const f of r.microFailures) out.push("", `- ${f.file} failed: ${f.reason.split("\n")[0]}`);
  }
  if (r.notes.length > 0) out.push("", "## Notes", "", ...r.notes.map((n) => `- ${n}`));
  return out.join("\n") + "\n";
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Horizontal bars: each target's ratio for each subject, with the target as a red tick. */
export function renderSvg(r: Results): string {
  const rows = [...new Set(r.targets.filter((t) => t.against !== "absolute").map((t) => t.id))];
  const subjects = SUBJECTS.filter((s) => r.targets.some((t) => t.subject === s && Number.isFinite(t.value)));
  const all = r.targets.filter((t) => t.against !== "absolute" && Number.isFinite(t.value));
  const maxX = Math.max(1.6, ...all.map((t) => t.value * 1.1), ...all.map((t) => t.target * 1.2));
  const labelW = 370;
  const plotW = 420;
  const barH = 12;
  const rowH = subjects.length * (barH + 3) + 14;
  const top = 40;
  const height = top + rows.length * rowH + 40;
  const x = (v: number) => labelW + (Math.min(v, maxX) / maxX) * plotW;
  const colors: Record<string, string> = { edgemux: "#2b6cb0", naive_bun: "#a0aec0" };
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + plotW + 130}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(`edgemux targets — ${r.startedAt} (${r.mode})`)}</text>`,
  ];
  for (let g = 0; g <= maxX; g += 0.5) {
    parts.push(`<line x1="${x(g)}" y1="${top - 6}" x2="${x(g)}" y2="${height - 30}" stroke="#e2e8f0"/>`);
    parts.push(`<text x="${x(g)}" y="${height - 16}" text-anchor="middle" fill="#4a5568">${g.toFixed(1)}×</text>`);
  }
  rows.forEach((id, i) => {
    const y0 = top + i * rowH;
    const ts = r.targets.filter((t) => t.id === id);
    const first = ts[0]!;
    const against = ts.find((t) => t.against !== "none")?.against ?? "";
    parts.push(`<text x="${labelW - 8}" y="${y0 + rowH / 2}" text-anchor="end">${esc(`${first.text}${first.id.includes("best") ? ` (${against})` : ""} ${first.op === ">=" ? "≥" : "≤"} ${first.target}`)}</text>`);
    subjects.forEach((s, j) => {
      const t = ts.find((q) => q.subject === s);
      const y = y0 + 4 + j * (barH + 3);
      if (!t || !Number.isFinite(t.value)) {
        parts.push(`<text x="${labelW + 4}" y="${y + barH - 2}" fill="#718096">${esc(s)}: n/a</text>`);
        return;
      }
      const fill = s === "edgemux" ? (t.pass ? "#38a169" : "#e53e3e") : colors[s] ?? "#718096";
      parts.push(`<rect x="${labelW}" y="${y}" width="${Math.max(x(t.value) - labelW, 1)}" height="${barH}" fill="${fill}"/>`);
      parts.push(`<text x="${x(t.value) + 4}" y="${y + barH - 2}" fill="#2d3748">${esc(`${s} ${t.value.toFixed(2)}×`)}</text>`);
    });
    parts.push(`<line x1="${x(first.target)}" y1="${y0 + 1}" x2="${x(first.target)}" y2="${y0 + rowH - 8}" stroke="#c53030" stroke-width="2"/>`);
  });
  parts.push(`<text x="10" y="${height - 4}" fill="#4a5568">bars: median of per-round ratios; red tick: target; green/red: edgemux passes/misses; grey: naive Bun baseline</text>`);
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}
