/**
 * Starts a real `edgemux serve` process for end-to-end tests, on Bun or (with
 * EDGEMUX_RUNTIME=deno) on Deno, or the compiled binary (EDGEMUX_BIN=path),
 * and reads its JSON log lines. Nothing here sleeps: callers wait for lines
 * or conditions with a deadline.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { StatusJson } from "../../src/admin/mod.ts";

export const ROOT = resolve(import.meta.dir, "../..");

export interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}

export function edgemuxCommand(args: string[]): { cmd: string; argv: string[] } {
  const bin = process.env.EDGEMUX_BIN;
  if (bin) return { cmd: bin, argv: args };
  if (process.env.EDGEMUX_RUNTIME === "deno") {
    return { cmd: "deno", argv: ["run", "--allow-all", "--unstable-net", join(ROOT, "src/cli/main.ts"), ...args] };
  }
  return { cmd: process.execPath, argv: [join(ROOT, "src/cli/main.ts"), ...args] };
}

export class EdgemuxProcess {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  private waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  exitCode: number | null = null;
  private exitWaiters: ((code: number | null) => void)[] = [];
  admin = "";
  listeners: Record<string, string> = {};

  constructor(readonly proc: ChildProcess, readonly configPath: string) {
    let buf = "";
    proc.stdout!.setEncoding("utf8");
    proc.stdout!.on("data", (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const raw = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let line: LogLine;
        try {
          line = JSON.parse(raw);
        } catch {
          line = { level: "raw", msg: raw };
        }
        this.lines.push(line);
        this.waiters = this.waiters.filter((w) => {
          if (!w.pred(line)) return true;
          w.resolve(line);
          return false;
        });
      }
    });
    proc.stderr!.setEncoding("utf8");
    proc.stderr!.on("data", (d: string) => this.stderr.push(d));
    proc.on("exit", (code) => {
      this.exitCode = code ?? -1;
      for (const w of this.exitWaiters) w(this.exitCode);
    });
  }

  /** The first line (already seen or future) matching `pred`, within `timeoutMs`. */
  waitForLine(pred: (l: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for a log line; stderr: ${this.stderr.join("")}; last lines: ${JSON.stringify(this.lines.slice(-5))}`)), timeoutMs);
      this.waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(t);
          resolve(l);
        },
      });
    });
  }

  waitExit(timeoutMs = 15_000): Promise<number | null> {
    if (this.exitCode !== null) return Promise.resolve(this.exitCode);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("process did not exit in time")), timeoutMs);
      this.exitWaiters.push((c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
  }

  signal(sig: NodeJS.Signals): void {
    this.proc.kill(sig);
  }

  /** SIGTERM, then SIGKILL if it does not exit in time. */
  async stop(timeoutMs = 10_000): Promise<number | null> {
    if (this.exitCode !== null) return this.exitCode;
    this.proc.kill("SIGTERM");
    try {
      return await this.waitExit(timeoutMs);
    } catch {
      this.proc.kill("SIGKILL");
      return await this.waitExit(5_000);
    }
  }

  /** "127.0.0.1:1234" → [host, port] of a listener. */
  hostPort(listener: string): { host: string; port: number } {
    const a = this.listeners[listener];
    if (!a) throw new Error(`no listener ${listener}: ${JSON.stringify(this.listeners)}`);
    const i = a.lastIndexOf(":");
    return { host: a.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(a.slice(i + 1)) };
  }

  /** GET on the admin API; `headers` e.g. `{ authorization: "Bearer SECRET" }` when it has [[admin.tokens]]. */
  async adminGet(path: string, headers?: Record<string, string>): Promise<Response> {
    return await fetch(`http://${this.admin}${path}`, headers ? { headers } : {});
  }

  async status(): Promise<StatusJson> {
    return (await (await this.adminGet("/status")).json()) as StatusJson;
  }
}

export function tempDir(prefix = "edgemux-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes the config, starts `edgemux serve`, waits for the ready line. */
export async function startEdgemux(configToml: string, opts: { workers?: number; dir?: string; args?: string[] } = {}): Promise<EdgemuxProcess> {
  const dir = opts.dir ?? tempDir();
  const configPath = join(dir, "edgemux.toml");
  writeFileSync(configPath, configToml);
  const args = ["serve", "--config", configPath, "--log-format", "json", ...(opts.workers ? ["--workers", String(opts.workers)] : []), ...(opts.args ?? [])];
  const { cmd, argv } = edgemuxCommand(args);
  const proc = spawn(cmd, argv, { cwd: dir, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env } });
  const p = new EdgemuxProcess(proc, configPath);
  const ready = await Promise.race([
    p.waitForLine((l) => l.msg === "ready", 30_000),
    p.waitExit(30_000).then((code) => {
      throw new Error(`edgemux exited with ${code} before ready: ${p.stderr.join("")} ${JSON.stringify(p.lines)}`);
    }),
  ]);
  p.admin = String(ready.admin ?? "");
  p.listeners = (ready.listeners ?? {}) as Record<string, string>;
  return p;
}

/** Runs a command to completion, collecting output; bounded by timeoutMs. */
export function run(cmd: string, args: string[], opts: { input?: string | Uint8Array; timeoutMs?: number; cwd?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.setEncoding("utf8");
    p.stderr.setEncoding("utf8");
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    const t = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`${cmd} ${args.join(" ")} timed out; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 20_000);
    p.on("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
    p.on("exit", (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
    if (opts.input !== undefined) p.stdin.end(opts.input);
    else p.stdin.end();
  });
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = "condition"): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function writeFile(path: string, text: string): void {
  writeFileSync(path, text);
}
