/**
 * `bun run bench` (quick) / `bun run bench -- --full`: edgemux against direct
 * TCP, a naive Bun forwarder, HAProxy, nginx stream and sniproxy on
 * 127.0.0.1, interleaved and repeated — the SNI section (routing by the
 * ClientHello), the tcp section (plain L4 forwarding) and the http section
 * (HTTPS reverse proxy routing by Host, against nginx and HAProxy `mode
 * http`) — plus the hot-path micro benchmarks. `--baseline DIR` adds another checkout's edgemux as
 * "edgemux-before" to the SNI section. Writes
 * bench/results/<timestamp>.{json,md,svg} and prints the markdown.
 * See bench/README.md.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type Backend,
  checkoutVersion,
  clientHelloParse,
  computeRatios,
  computeTargets,
  type IdleRssResult,
  parseArgs,
  peersFor,
  ProcessRegistry,
  renderMarkdown,
  renderSvg,
  type Results,
  runMicro,
  runScenario,
  runToEnd,
  SCENARIOS,
  type ScenarioResult,
  startTcpBackend,
  startTlsBackend,
  USAGE,
} from "./harness/mod.ts";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const log = (s: string) => process.stderr.write(`${s}\n`);

function fdLimit(): string {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync("/proc/self/limits", "utf8"));
    return m ? `${m[1]} soft / ${m[2]} hard` : "unknown";
  } catch {
    return "unknown";
  }
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  const reg = new ProcessRegistry();
  reg.installExitHandlers();
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
  const outDir = resolve(opts.outDir ?? join(repoRoot, "bench", "results"));
  mkdirSync(outDir, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), "edgemux-bench-"));
  let keepDir = opts.keepTmp;
  // Also on Ctrl-C and errors (the registry's handlers exit the process).
  process.once("exit", () => {
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
  });
  const cores = cpus().length;
  const loadAtStart = loadavg().map((x) => x.toFixed(2)).join(" ");
  const notes: string[] = [
    `${cores} cores shared by load generator (wrk -t${opts.plan.wrkThreads} / the Bun bulk and idle clients), backend and proxy; nothing pinned.`,
    "new-connection latencies are wrk's (request write → response end); the TCP+TLS handshake is outside them, the rate includes it.",
  ];

  if (opts.deps) {
    log("bench: checking peers (scripts/bench_deps.sh)");
    const r = await runToEnd(reg, "bench_deps", "bash", [join(repoRoot, "scripts", "bench_deps.sh")], 600_000);
    log(r.output.trim());
    if (r.code !== 0) notes.push(`scripts/bench_deps.sh failed (exit ${r.code}); peers that are missing are skipped`);
  }

  const baseline = opts.baseline ? resolve(opts.baseline) : null;
  if (baseline) {
    if (!existsSync(join(baseline, "node_modules"))) notes.push(`--baseline ${baseline} has no node_modules: link or install them there (edgemux-before may fail to start)`);
    notes.push(`edgemux-before is ${baseline}'s src/cli/main.ts with the same config templates as this tree's edgemux; it runs in the SNI section only.`);
  }
  // --baseline asks for edgemux-before, whatever --peers lists.
  const peers = peersFor(baseline).filter((p) => !opts.peers || opts.peers.includes(p.name) || p.name === "edgemux-before");
  const peerInfos = peers.map((p) => {
    const unavailable = p.unavailable(repoRoot);
    return { name: p.name, kind: p.kind, version: unavailable ? "–" : p.version(repoRoot), unavailable };
  });
  const runnable = peers.filter((p) => !peerInfos.find((i) => i.name === p.name)!.unavailable);
  for (const p of peerInfos) log(`bench: ${p.name}: ${p.unavailable ? `unavailable (${p.unavailable})` : p.version}`);

  // Micro benchmarks first, while the machine is quiet.
  let micro: Awaited<ReturnType<typeof runMicro>> = { results: [], failures: [] };
  if (opts.micro) micro = await runMicro(reg, repoRoot, opts.plan.mode === "full" ? 600_000 : 180_000, log);
  // Memory at rest, also before the load starts: its own process, so the bench's memory stays out of it.
  const idleRss = opts.idleRss ? await measureIdleRss(reg) : undefined;

  const scenarios = SCENARIOS.filter((s) => !opts.scenarios || opts.scenarios.includes(s.id));
  if (scenarios.some((s) => s.id === "bulk1" || s.id === "bulk4")) {
    notes.push("bulk is raw TCP after a real ClientHello: the backend streams bytes once the proxy has routed the hello (no TLS record work at the ends).");
  }
  if (scenarios.some((s) => s.routing === "tcp")) {
    notes.push(
      "tcp section: plain L4 forwarding, no ClientHello. tcp_newconn/tcp_keepalive are wrk over plain HTTP/1.1 to nginx (no TLS at either end, so a new connection is TCP set-up and teardown only); tcp_bulk* open each stream with a short text line, then the backend streams.",
    );
  }
  if (scenarios.some((s) => s.routing === "http")) {
    notes.push(
      "http section: wrk over HTTPS (SNI and Host localhost) to a proxy that terminates TLS with the run's certificate and routes by Host to the plain-HTTP nginx backend over kept upstream connections; direct is wrk over HTTPS to the same nginx's TLS port. http_newconn sends Connection: close, so every request is a full TLS handshake at the proxy (or at the backend for direct).",
    );
  }
  // The tree under test may be edited while the bench runs: record what it was at the start (and at the end, below).
  const treeAtStart = checkoutVersion(repoRoot);
  const results: ScenarioResult[] = [];
  const backends = new Map<Backend["kind"], Backend>();
  const ctx = { reg, repoRoot, dir, plan: opts.plan, cores, log };
  try {
    for (let i = 0; i < scenarios.length; i++) {
      const sc = scenarios[i]!;
      log(`bench: scenario ${sc.id} — ${sc.title}`);
      let backend = backends.get(sc.backend);
      if (!backend) {
        backend =
          sc.backend === "tls" || sc.backend === "http" || sc.backend === "web"
            ? await startTlsBackend(reg, dir, repoRoot, cores, sc.backend)
            : await startTcpBackend(reg, dir, repoRoot, sc.backend);
        backends.set(sc.backend, backend);
      }
      results.push(await runScenario(ctx, sc, runnable, backend));
      // Stop a backend no later scenario needs (its connections and fds go with it).
      if (!scenarios.slice(i + 1).some((s) => s.backend === sc.backend)) {
        await backend.stop();
        backends.delete(sc.backend);
      }
    }
  } finally {
    for (const b of backends.values()) await b.stop();
  }

  const hello = clientHelloParse(micro.results);
  const subjects = ["edgemux", "naive_bun"].filter((s) => runnable.some((p) => p.name === s));
  const report: Results = {
    version: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    mode: opts.plan.mode,
    plan: opts.plan,
    machine: {
      cpus: cores,
      cpuModel: cpus()[0]?.model ?? "unknown",
      kernel: `Linux ${release()}`,
      bun: `bun ${process.versions.bun ?? "?"}`,
      fdLimit: fdLimit(),
      loadAvgAtStart: loadAtStart,
      loadAvgAtEnd: loadavg().map((x) => x.toFixed(2)).join(" "),
    },
    notes: hello ? [...notes, `ClientHello parse figure from ${hello.file}: "${hello.name}"`] : notes,
    peers: peerInfos,
    scenarios: results,
    micro: micro.results,
    microFailures: micro.failures,
    targets: computeTargets(results, subjects, hello ? hello.avgNs : null),
    ratios: computeRatios(results),
    tree: { atStart: treeAtStart, atEnd: checkoutVersion(repoRoot) },
    ...(baseline ? { baseline: { dir: baseline, version: checkoutVersion(baseline) } } : {}),
    ...(idleRss ? { idleRss } : {}),
  };
  const base = join(outDir, stamp);
  writeFileSync(`${base}.json`, JSON.stringify(report, null, 1) + "\n");
  const md = renderMarkdown(report);
  const suites = await runSuites(reg, opts, base);
  writeFileSync(`${base}.md`, md + suites);
  writeFileSync(`${base}.svg`, renderSvg(report));
  console.log(md + suites);
  log(`bench: wrote ${base}.json, .md, .svg`);
  await reg.stopAll();
  const troubled = results.some((sc) => sc.samples.some((x) => x.error) || sc.entries.some((e) => e.skipped || e.exits));
  keepDir = opts.keepTmp || troubled;
  if (keepDir) log(`bench: scratch directory kept${troubled ? " (some measurements failed; every process's log is there)" : ""}: ${dir}`);
  return 0;
}

/**
 * The other capabilities' benchmarks are standalone scripts with their own
 * peers; run them in the same session and append their reports.
 */
async function runSuites(reg: ProcessRegistry, opts: ReturnType<typeof parseArgs>, base: string): Promise<string> {
  const full = opts.plan.mode === "full";
  const rounds = String(opts.plan.rounds);
  const suites: Record<string, { file: string; argv: string[]; md: () => string }> = {
    connect: {
      file: "bench/connect_bench.ts",
      argv: ["--rounds", rounds, "--seconds", String(opts.plan.seconds), "--out", `${base}-connect`],
      md: () => latestMd(`${base}-connect`),
    },
    mux: {
      file: "bench/mux_bulk.ts",
      argv: ["--bytes", String(full ? 1 << 30 : 256 << 20), "--repeats", rounds, "--json", `${base}-mux.json`],
      md: () => "",
    },
    tunnel: {
      file: "bench/tunnel_bench.ts",
      argv: ["--rounds", rounds, "--out", `${base}-tunnel`],
      md: () => latestMd(`${base}-tunnel`),
    },
  };
  let out = "";
  for (const id of opts.suites) {
    const s = suites[id]!;
    if (!existsSync(join(repoRoot, s.file))) continue;
    log(`bench: suite ${id} (${s.file})`);
    const r = await runToEnd(reg, `suite_${id}`, "bun", [join(repoRoot, s.file), ...s.argv], full ? 1_800_000 : 900_000);
    const md = s.md();
    out += `\n## Suite: ${id} (${s.file})\n\n${r.code === 0 ? "" : `**exited ${r.code}**\n\n`}${md || "```\n" + r.output.trim().split("\n").slice(-40).join("\n") + "\n```"}\n`;
  }
  return out;
}

/** scripts/idle_rss.ts --json: the idle edge's and agent's RSS (median of 5 runs). */
async function measureIdleRss(reg: ProcessRegistry): Promise<IdleRssResult | { error: string }> {
  log("bench: memory at rest (scripts/idle_rss.ts)");
  const r = await runToEnd(reg, "idle_rss", "bun", [join(repoRoot, "scripts", "idle_rss.ts"), "--runs", "5", "--json"], 300_000);
  const line = r.output.trim().split("\n").reverse().find((l) => l.startsWith("{"));
  if (r.code !== 0 || !line) return { error: `scripts/idle_rss.ts exited ${r.code}${r.timedOut ? " (timed out)" : ""}: ${r.output.trim().split("\n").slice(-3).join(" / ")}` };
  return JSON.parse(line) as IdleRssResult;
}

/** The newest .md a suite wrote into `dir`, or "" when there is none. */
function latestMd(dir: string): string {
  if (!existsSync(dir)) return "";
  const files = readdirSync(dir).filter((f) => f.endsWith(".md")).sort();
  return files.length ? readFileSync(join(dir, files[files.length - 1]!), "utf8").replace(/^# /m, "### ") : "";
}

main().then(
  (code) => process.exit(code),
  (e) => {
    log(`bench: ${e instanceof Error ? e.stack ?? e.message : e}`);
    process.exit(1);
  },
);
