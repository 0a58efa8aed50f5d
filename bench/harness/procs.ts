/**
 * Child processes of a bench run: every peer, backend and load client is
 * started here, in its own process group (so nginx's workers go with their
 * master), and every one is ended on exit, on Ctrl-C and on errors.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";

const KEEP_LINES = 400;

export class Managed {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined = undefined;
  private waiters = new Set<(line: string) => void>();
  private exitWaiters = new Set<() => void>();

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    private readonly log: WriteStream | null,
  ) {
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        for (const w of this.exitWaiters) w();
        resolve(this.exitCode);
      });
      child.once("error", (err) => {
        this.pushLine(`[spawn error] ${err.message}`);
        this.exitCode = -1;
        for (const w of this.exitWaiters) w();
        resolve(-1);
      });
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      let rest = "";
      stream.setEncoding("utf8");
      stream.on("data", (s: string) => {
        this.log?.write(s);
        rest += s;
        let nl: number;
        while ((nl = rest.indexOf("\n")) >= 0) {
          this.pushLine(rest.slice(0, nl));
          rest = rest.slice(nl + 1);
        }
        if (rest.length > 1 << 20) rest = rest.slice(-4096); // a line without end must not grow forever
      });
    }
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  private pushLine(line: string): void {
    this.lines.push(line);
    if (this.lines.length > KEEP_LINES) this.lines.splice(0, this.lines.length - KEEP_LINES);
    for (const w of this.waiters) w(line);
  }

  /** Resolves with the first line (already seen or future) that matches; rejects on exit or timeout. */
  waitForLine(pred: (line: string) => boolean, timeoutMs: number, fromIndex = 0): Promise<string> {
    for (let i = fromIndex; i < this.lines.length; i++) if (pred(this.lines[i]!)) return Promise.resolve(this.lines[i]!);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(onLine);
        this.exitWaiters.delete(onExit);
      };
      const onLine = (line: string) => {
        if (pred(line)) {
          done();
          resolve(line);
        }
      };
      const onExit = () => {
        done();
        reject(new Error(`${this.name} exited (code ${this.exitCode}) before the expected line; last output:\n${this.tail(15)}`));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no expected line within ${timeoutMs} ms; last output:\n${this.tail(15)}`));
      }, timeoutMs);
      if (!this.running) return onExit();
      this.waiters.add(onLine);
      this.exitWaiters.add(onExit);
    });
  }

  tail(n: number): string {
    return this.lines.slice(-n).join("\n");
  }

  write(text: string): void {
    this.child.stdin?.write(text);
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.running || this.pid <= 0) return;
    try {
      process.kill(-this.pid, sig); // the whole group this child leads
    } catch {
      try {
        process.kill(this.pid, sig);
      } catch {
        // already gone
      }
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (!this.running) return;
    this.signal("SIGTERM");
    const timer = setTimeout(() => this.signal("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
    this.signal("SIGKILL"); // leftovers of the group (workers that outlived the leader)
    this.log?.end();
  }
}

export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Append stdout+stderr here. */
  logFile?: string;
  stdin?: boolean;
}

export class ProcessRegistry {
  private readonly all = new Set<Managed>();
  private handlersInstalled = false;

  spawn(name: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}): Managed {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: [opts.stdin ? "pipe" : "ignore", "pipe", "pipe"],
      detached: true, // own process group: stop() ends its workers too
    });
    const log = opts.logFile ? createWriteStream(opts.logFile, { flags: "a" }) : null;
    const m = new Managed(name, child, log);
    this.all.add(m);
    void m.exited.then(() => this.all.delete(m));
    return m;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.all].map((m) => m.stop(2000)));
  }

  /** Synchronous last resort (process 'exit'): SIGKILL every group still alive. */
  killAllNow(): void {
    for (const m of this.all) m.signal("SIGKILL");
  }

  /** Ends every child on Ctrl-C, SIGTERM, an uncaught error and at exit. */
  installExitHandlers(): void {
    if (this.handlersInstalled) return;
    this.handlersInstalled = true;
    const bail = (why: string, code: number) => {
      process.stderr.write(`\nbench: ${why}; stopping child processes\n`);
      this.killAllNow();
      process.exit(code);
    };
    process.once("SIGINT", () => bail("interrupted", 130));
    process.once("SIGTERM", () => bail("terminated", 143));
    process.once("uncaughtException", (e) => bail(`uncaught error: ${e instanceof Error ? e.stack : e}`, 1));
    process.once("unhandledRejection", (e) => bail(`unhandled rejection: ${e instanceof Error ? e.stack : e}`, 1));
    process.once("exit", () => this.killAllNow());
  }
}

/** Runs a command to completion with a time bound; resolves with its output. */
export function runToEnd(
  reg: ProcessRegistry,
  name: string,
  cmd: string,
  args: readonly string[],
  timeoutMs: number,
  opts: SpawnOptions = {},
): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  const m = reg.spawn(name, cmd, args, opts);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    m.signal("SIGKILL");
  }, timeoutMs);
  return m.exited.then((code) => {
    clearTimeout(timer);
    return { code, output: m.lines.join("\n"), timedOut };
  });
}
