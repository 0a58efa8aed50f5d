import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseBootTime, parseMaxOpenFiles, parseProcStat, parseVmRss, ProcessMetrics } from "./process_metrics.ts";

// A real line, with a comm that holds a space and a parenthesis.
const STAT =
  "4037 (edge mux) x) S 4034 4034 2345 0 -1 4194304 99 0 0 0 1234 567 0 0 20 0 9 0 579184 3133440 413 " +
  "18446744073709551615 93962424135680 93962424155561 140723928769088 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
const LIMITS = [
  "Limit                     Soft Limit           Hard Limit           Units     ",
  "Max cpu time              unlimited            unlimited            seconds   ",
  "Max open files            20000                524288               files     ",
  "",
].join("\n");
const STATUS = "Name:\tedgemux\nVmPeak:\t  300000 kB\nVmRSS:\t   71680 kB\nThreads:\t9\n";
const PROC_STAT = "cpu  1 2 3\nintr 1\nbtime 1796321056\nprocesses 5\n";

const FALLBACK = { startTimeSeconds: 42, residentMemoryBytes: () => 7, cpuSecondsTotal: () => 1.5 };

describe("procfs parsers", () => {
  test("stat: utime + stime and start ticks, past a comm with spaces and parentheses", () => {
    expect(parseProcStat(STAT)).toEqual({ cpuSeconds: (1234 + 567) / 100, startSecondsAfterBoot: 5791.84 });
    expect(parseProcStat("garbage")).toBeNull();
    expect(parseProcStat("1 (x) S 1 2")).toBeNull();
  });
  test("btime, VmRSS, Max open files", () => {
    expect(parseBootTime(PROC_STAT)).toBe(1796321056);
    expect(parseVmRss(STATUS)).toBe(71680 * 1024);
    expect(parseMaxOpenFiles(LIMITS)).toBe(20000);
    expect(parseMaxOpenFiles(LIMITS.replace("20000    ", "unlimited"))).toBeNull();
    expect(parseBootTime("")).toBeNull();
    expect(parseVmRss("")).toBeNull();
  });
});

describe("ProcessMetrics", () => {
  test("reads a procfs tree", () => {
    const root = mkdtempSync(join(tmpdir(), "procfs-"));
    try {
      mkdirSync(join(root, "self/fd"), { recursive: true });
      for (const fd of ["0", "1", "2", "7"]) writeFileSync(join(root, "self/fd", fd), "");
      writeFileSync(join(root, "self/stat"), STAT);
      writeFileSync(join(root, "self/status"), STATUS);
      writeFileSync(join(root, "self/limits"), LIMITS);
      writeFileSync(join(root, "stat"), PROC_STAT);
      expect(new ProcessMetrics(FALLBACK, root).read()).toEqual({
        startTimeSeconds: 1796321056 + 5791.84,
        residentMemoryBytes: 71680 * 1024,
        cpuSecondsTotal: 18.01,
        openFds: 4,
        maxFds: 20000,
      });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test("without procfs: the runtime's numbers, no descriptor counts", () => {
    const root = mkdtempSync(join(tmpdir(), "procfs-"));
    try {
      expect(new ProcessMetrics(FALLBACK, root).read()).toEqual({ startTimeSeconds: 42, residentMemoryBytes: 7, cpuSecondsTotal: 1.5 });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test.skipIf(process.platform !== "linux")("this process, on Linux", () => {
    const facts = new ProcessMetrics(FALLBACK).read();
    const uptime = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
    expect(facts.startTimeSeconds).toBeLessThanOrEqual(Date.now() / 1000 + 1);
    expect(facts.startTimeSeconds).toBeGreaterThan(Date.now() / 1000 - uptime - 1);
    expect(facts.startTimeSeconds).toBeGreaterThan(Date.now() / 1000 - 3600); // this test run started it
    expect(facts.residentMemoryBytes).toBeGreaterThan(1 << 20);
    expect(facts.cpuSecondsTotal).toBeGreaterThan(0);
    expect(facts.openFds).toBeGreaterThanOrEqual(3);
    expect(facts.maxFds).toBe(parseMaxOpenFiles(readFileSync("/proc/self/limits", "utf8"))!);
    expect(facts.maxFds!).toBeGreaterThanOrEqual(facts.openFds!);
  });
});
