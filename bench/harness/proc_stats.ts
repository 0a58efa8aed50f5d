/**
 * What the proxy costs, read from /proc (Linux): CPU seconds (utime+stime of
 * every process in the proxy's tree; threads are included in their process's
 * numbers) and resident memory (VmRSS now, VmHWM peak, summed over the tree).
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";

let clockTicks = 0;
/** sysconf(_SC_CLK_TCK); 100 on every Linux this harness meets. */
export function clkTck(): number {
  if (clockTicks === 0) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

export interface StatFields {
  pid: number;
  ppid: number;
  /** utime + stime, clock ticks */
  cpuTicks: number;
}

/** Parses /proc/<pid>/stat. The comm field may hold spaces and parentheses, so split after the last ')'. */
export function parseStat(text: string): StatFields {
  const close = text.lastIndexOf(")");
  if (close < 0) throw new Error("malformed /proc stat: no ')'");
  const pid = Number(text.slice(0, text.indexOf("(")).trim());
  const rest = text.slice(close + 2).trim().split(/\s+/);
  // rest[0] is field 3 (state); field N is rest[N - 3].
  const ppid = Number(rest[1]);
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (![pid, ppid, utime, stime].every(Number.isFinite)) throw new Error("malformed /proc stat fields");
  return { pid, ppid, cpuTicks: utime + stime };
}

/** Reads `VmRSS` and `VmHWM` (kB) from /proc/<pid>/status text; 0 when absent (a zombie). */
export function parseStatusMem(text: string): { rssKb: number; hwmKb: number } {
  const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  const hwm = /^VmHWM:\s+(\d+)\s+kB/m.exec(text);
  return { rssKb: rss ? Number(rss[1]) : 0, hwmKb: hwm ? Number(hwm[1]) : 0 };
}

function readStat(pid: number): StatFields | null {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return null;
  }
}

/** The root and every live descendant. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const st = readStat(Number(entry));
    if (!st) continue;
    const list = children.get(st.ppid);
    if (list) list.push(st.pid);
    else children.set(st.ppid, [st.pid]);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0 && out.length < 10_000) {
    const pid = queue.shift()!;
    out.push(pid);
    for (const c of children.get(pid) ?? []) queue.push(c);
  }
  return out;
}

export interface TreeSample {
  pids: number[];
  cpuSeconds: number;
  rssKb: number;
  hwmKb: number;
}

export function sampleTree(root: number): TreeSample {
  const pids = processTree(root);
  let ticks = 0;
  let rssKb = 0;
  let hwmKb = 0;
  for (const pid of pids) {
    const st = readStat(pid);
    if (st) ticks += st.cpuTicks;
    try {
      const m = parseStatusMem(readFileSync(`/proc/${pid}/status`, "utf8"));
      rssKb += m.rssKb;
      hwmKb += m.hwmKb;
    } catch {
      // process left between listing and reading
    }
  }
  return { pids, cpuSeconds: ticks / clkTck(), rssKb, hwmKb };
}

/**
 * Resets VmHWM to the current RSS for every process of the tree (writing "5"
 * to clear_refs, Linux ≥ 4.0), so a peak is per measurement, not per process
 * life. Returns false where the kernel refused; peaks are then since start.
 */
export function resetPeaks(root: number): boolean {
  let ok = true;
  for (const pid of processTree(root)) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, "5");
    } catch {
      ok = false;
    }
  }
  return ok;
}
