/**
 * The process facts behind the standard `process_*` metrics, read the way
 * Prometheus' client libraries read them on Linux (client_golang's process
 * collector, through procfs): `/proc/self/stat` for CPU time and start time,
 * `/proc/self/status` for resident memory, `/proc/self/fd` for open
 * descriptors, `/proc/self/limits` for their limit. Read by the supervisor,
 * whose process holds every worker thread, so the numbers cover all of them.
 * Where /proc cannot be read (not Linux) the runtime's own counters stand in
 * and the descriptor counts are left out.
 */
import { readdirSync, readFileSync } from "node:fs";

/** USER_HZ: the unit of the tick fields of /proc/<pid>/stat. 100 on every Linux ABI (client_golang assumes it too). */
const USER_HZ = 100;

export interface ProcessFacts {
  startTimeSeconds: number;
  residentMemoryBytes: number;
  cpuSecondsTotal: number;
  openFds?: number;
  maxFds?: number;
}

/** What the runtime knows without /proc. */
export interface ProcessFallback {
  startTimeSeconds: number;
  residentMemoryBytes(): number;
  cpuSecondsTotal(): number;
}

/** utime + stime (seconds) and starttime (seconds after boot) from a `/proc/<pid>/stat` line. */
export function parseProcStat(text: string): { cpuSeconds: number; startSecondsAfterBoot: number } | null {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so count fields after its last ")".
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  const f = text.slice(close + 2).trim().split(/\s+/); // f[0] is field 3 (state); field n is f[n - 3]
  const utime = Number(f[14 - 3]);
  const stime = Number(f[15 - 3]);
  const start = Number(f[22 - 3]);
  if (![utime, stime, start].every(Number.isFinite)) return null;
  return { cpuSeconds: (utime + stime) / USER_HZ, startSecondsAfterBoot: start / USER_HZ };
}

/** `btime` of /proc/stat: the boot time, Unix seconds. */
export function parseBootTime(text: string): number | null {
  const m = /^btime\s+(\d+)\s*$/m.exec(text);
  return m ? Number(m[1]) : null;
}

/** `VmRSS` of /proc/<pid>/status, in bytes. */
export function parseVmRss(text: string): number | null {
  const m = /^VmRSS:\s+(\d+)\s+kB\s*$/m.exec(text);
  return m ? Number(m[1]) * 1024 : null;
}

/** The soft "Max open files" of /proc/<pid>/limits; null when unlimited or absent. */
export function parseMaxOpenFiles(text: string): number | null {
  const m = /^Max open files\s+(\S+)/m.exec(text);
  if (!m || m[1] === "unlimited") return null;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : null;
}

/**
 * Reads the process facts, each from /proc when it can and from `fallback`
 * otherwise. `proc` is the procfs mount (a fixture directory in tests).
 */
export class ProcessMetrics {
  private startTimeSeconds: number | null = null;

  constructor(
    private readonly fallback: ProcessFallback,
    private readonly proc = "/proc",
  ) {}

  read(): ProcessFacts {
    const stat = parseProcStat(this.text("self/stat") ?? "");
    const rss = parseVmRss(this.text("self/status") ?? "");
    const facts: ProcessFacts = {
      startTimeSeconds: this.startTime(stat?.startSecondsAfterBoot),
      residentMemoryBytes: rss ?? this.fallback.residentMemoryBytes(),
      cpuSecondsTotal: stat?.cpuSeconds ?? this.fallback.cpuSecondsTotal(),
    };
    const open = this.openFds();
    if (open !== null) facts.openFds = open;
    const max = parseMaxOpenFiles(this.text("self/limits") ?? "");
    if (max !== null) facts.maxFds = max;
    return facts;
  }

  /** Boot time + the process's start ticks, read once: neither changes. */
  private startTime(afterBoot: number | undefined): number {
    if (this.startTimeSeconds === null) {
      const boot = afterBoot === undefined ? null : parseBootTime(this.text("stat") ?? "");
      this.startTimeSeconds = boot !== null && afterBoot !== undefined ? boot + afterBoot : this.fallback.startTimeSeconds;
    }
    return this.startTimeSeconds;
  }

  private openFds(): number | null {
    try {
      return readdirSync(`${this.proc}/self/fd`).length;
    } catch {
      return null;
    }
  }

  private text(path: string): string | null {
    try {
      return readFileSync(`${this.proc}/${path}`, "utf8");
    } catch {
      return null;
    }
  }
}
