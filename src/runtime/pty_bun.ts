/**
 * A process on a pseudo-terminal, on Bun: `Bun.spawn(cmd, { terminal })`
 * (Bun.Terminal, Bun ≥ 1.3.5). The terminal's output arrives in `data`
 * callbacks, which cannot be paused: the caller bounds what it queues.
 */
import type { PtyProcess, PtySpawnOptions } from "./types.ts";
import { constants } from "node:os";

const SIGNALS = constants.signals as Record<string, number>;

/** `Bun`, reached through globalThis so `deno check` can type-check this file too. */
// deno-lint-ignore no-explicit-any
const Bun: any = (globalThis as any).Bun;

export function spawnPty(o: PtySpawnOptions): PtyProcess {
  const proc = Bun.spawn(o.command, {
    cwd: o.cwd,
    env: o.env,
    terminal: {
      cols: o.cols,
      rows: o.rows,
      data: (_t: unknown, data: Uint8Array) => o.onData(data),
    },
  });
  const term = proc.terminal;
  const exited: Promise<number> = proc.exited.then((code: number | null) => {
    const sig = proc.signalCode as string | null;
    // A shell's convention: killed by signal N → status 128 + N.
    const status = code ?? (sig !== null && SIGNALS[sig] !== undefined ? 128 + SIGNALS[sig]! : 255);
    return status;
  });
  return {
    pid: proc.pid,
    write: (data) => void term.write(data),
    resize: (cols, rows) => term.resize(cols, rows),
    kill: (signal = "SIGHUP") => {
      try {
        proc.kill(signal);
      } catch {
        // already gone
      }
    },
    close: () => {
      try {
        term.close();
      } catch {
        // already closed
      }
    },
    exited,
  };
}
