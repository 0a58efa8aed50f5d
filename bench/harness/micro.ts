/**
 * Micro benchmarks of the hot path: every bench/micro/*_bench.ts (mitata) is
 * run in its own `bun` process with colours off, and its text report parsed
 * (the files call mitata's `run()` themselves, so the harness reads what they
 * print rather than asking them for JSON).
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { type ProcessRegistry, runToEnd } from "./procs.ts";

export interface MicroResult {
  file: string;
  group: string | null;
  name: string;
  avgNs: number;
  p75Ns: number;
  p99Ns: number | null;
}

const UNIT_NS: Record<string, number> = { ps: 1e-3, ns: 1, "µs": 1e3, us: 1e3, ms: 1e6, s: 1e9 };
const NUM = "([\\d.]+)\\s*(ps|ns|µs|us|ms|s)";
const ROW = new RegExp(`^(\\S.*?)\\s+${NUM}/iter\\s+${NUM}`);
const SECOND = new RegExp(`^\\s+\\(.*?\\)\\s+${NUM}`);

const toNs = (v: string, unit: string) => Number(v) * (UNIT_NS[unit] ?? Number.NaN);

/** Parses mitata 1.x's default (no colour) report. */
export function parseMitata(text: string, file: string): MicroResult[] {
  const out: MicroResult[] = [];
  let group: string | null = null;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\x1b\[[0-9;]*m/g, "");
    const g = /^•\s+(.+?)\s*$/.exec(line);
    if (g) {
      group = g[1]!;
      continue;
    }
    if (/^-{10,}/.test(line) && i > 0 && lines[i - 1]!.trim() === "") group = null; // a new unnamed block
    const m = ROW.exec(line);
    if (!m) continue;
    const next = SECOND.exec((lines[i + 1] ?? "").replace(/\x1b\[[0-9;]*m/g, ""));
    out.push({
      file,
      group,
      name: m[1]!.trim(),
      avgNs: toNs(m[2]!, m[3]!),
      p75Ns: toNs(m[4]!, m[5]!),
      p99Ns: next ? toNs(next[1]!, next[2]!) : null,
    });
  }
  return out;
}

export function microFiles(repoRoot: string): string[] {
  const dir = join(repoRoot, "bench", "micro");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith("_bench.ts"))
    .sort()
    .map((f) => join("bench", "micro", f));
}

export interface MicroRun {
  results: MicroResult[];
  failures: { file: string; reason: string }[];
}

export async function runMicro(reg: ProcessRegistry, repoRoot: string, timeoutMs: number, log: (s: string) => void): Promise<MicroRun> {
  const results: MicroResult[] = [];
  const failures: { file: string; reason: string }[] = [];
  for (const file of microFiles(repoRoot)) {
    log(`micro: ${file}`);
    const r = await runToEnd(reg, `micro:${file}`, "bun", [file], timeoutMs, {
      cwd: repoRoot,
      env: { NO_COLOR: "1", FORCE_COLOR: undefined },
    });
    const parsed = parseMitata(r.output, file);
    if (r.code !== 0 || parsed.length === 0) {
      failures.push({ file, reason: r.timedOut ? `timed out after ${timeoutMs} ms` : `exit ${r.code}, ${parsed.length} results: ${r.output.slice(-500)}` });
    }
    results.push(...parsed);
  }
  return { results, failures };
}

/**
 * The ClientHello parse figure for the target: among micro results whose group
 * or name says "ClientHello"/"client hello" and "parse", the slowest of the
 * single-chunk cases (what nearly every connection does), or the slowest of
 * all of them when none says "one chunk". Slowest, so a pass holds for every
 * hello size the bench covers.
 */
export function clientHelloParse(results: readonly MicroResult[]): MicroResult | null {
  const label = (r: MicroResult) => `${r.group ?? ""} ${r.name}`;
  const hello = results.filter((r) => /client\s*_?hello/i.test(label(r)) && Number.isFinite(r.avgNs));
  if (hello.length === 0) return null;
  const parse = hello.filter((r) => /pars/i.test(label(r)));
  const pool = parse.length > 0 ? parse : hello;
  const oneChunk = pool.filter((r) => /one chunk/i.test(r.name));
  const candidates = oneChunk.length > 0 ? oneChunk : pool;
  return candidates.reduce((a, b) => (b.avgNs > a.avgNs ? b : a));
}
