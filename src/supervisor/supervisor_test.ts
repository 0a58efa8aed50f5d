/**
 * The supervisor's worker bookkeeping with fake worker threads: no process,
 * no socket. A worker "starts" when the test answers its start message.
 */
import { expect, test } from "bun:test";
import { loadDefaultConfig } from "../config/mod.ts";
import { Logger } from "../log/mod.ts";
import type { Runtime, WorkerHandle } from "../runtime/types.ts";
import { Supervisor } from "./supervisor.ts";

class FakeWorker implements WorkerHandle {
  static nextThread = 1;
  readonly threadId = FakeWorker.nextThread++;
  private exit: ((reason: string) => void) | null = null;
  private message: ((msg: unknown) => void) | null = null;
  postMessage(msg: unknown): void {
    if ((msg as { type: string }).type === "drain") queueMicrotask(() => this.message?.({ type: "drained", closedAtDeadline: 0 }));
  }
  onExit(fn: (reason: string) => void): void {
    this.exit = fn;
  }
  onMessage(fn: (msg: unknown) => void): void {
    this.message = fn;
  }
  terminate(): void {
    this.exit?.("terminated");
  }
  crash(reason: string): void {
    this.exit?.(reason);
  }
  ready(): void {
    this.message?.({ type: "ready", workerId: 0, listeners: {} });
  }
}

async function supervisor() {
  const spawned: FakeWorker[] = [];
  const runtime = {
    name: "fake",
    version: "0",
    cpuCount: () => 1,
    spawnWorker: () => {
      const w = new FakeWorker();
      spawned.push(w);
      queueMicrotask(() => w.ready());
      return w;
    },
  } as unknown as Runtime;
  const lines: Record<string, unknown>[] = [];
  const log = new Logger("info", "json", {}, (l) => lines.push(JSON.parse(l)));
  const config = { ...loadDefaultConfig(), workers: 1 };
  const sup = new Supervisor({ runtime, log, config, configPath: null, flags: {}, workerUrl: new URL("file:///nowhere.ts") });
  await sup.start();
  return { sup, spawned, lines };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(cond()).toBe(true);
}

test("an operator's restart is logged at info, not as a crash, and the worker comes back", async () => {
  const { sup, spawned, lines } = await supervisor();
  expect(sup.restartWorker(0)).toBe(true);
  expect(lines.filter((l) => l.level !== "info")).toEqual([]);
  expect(lines).toContainEqual(expect.objectContaining({ level: "info", msg: "worker restarted by operator", worker: 0 }));
  await until(() => spawned.length === 2 && sup.workers[0]!.up);
  expect(sup.workers[0]!.restarts).toBe(1);
  expect(sup.workers[0]!.lastExitReason).toBe("restarted by operator");
  expect(sup.restartWorker(7)).toBe(false);
  await sup.drain();
});

test("a crash is still an error line with the reason", async () => {
  const { sup, spawned, lines } = await supervisor();
  spawned[0]!.crash("segfault");
  expect(lines).toContainEqual(expect.objectContaining({ level: "error", msg: "worker exited; restarting", worker: 0, reason: "segfault" }));
  expect(lines.some((l) => l.msg === "worker restarted by operator")).toBe(false);
  await until(() => spawned.length === 2 && sup.workers[0]!.up);
  // The replacement's exit after an operator restart of the *old* handle is still a crash.
  expect(sup.restartWorker(0)).toBe(true);
  await until(() => spawned.length === 3 && sup.workers[0]!.up);
  spawned[2]!.crash("oom");
  expect(lines.filter((l) => l.level === "error").map((l) => l.reason)).toEqual(["segfault", "oom"]);
  await sup.drain();
});
