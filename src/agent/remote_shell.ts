/**
 * Remote shells on the agent (`--allow-shell`, `[shell]`): the operator's
 * stream drives a process on a pseudo-terminal (Runtime.spawnPty).
 *
 *   operator → agent: DATA (keys), RESIZE (cols, rows), EOF (its input ended: ^D)
 *   agent → operator: DATA (terminal output), then EXIT (status) and FIN
 *
 * The operator ending or losing the stream hangs up the terminal (SIGHUP);
 * so does `[shell] idle_timeout` with no bytes either way. The terminal's
 * output cannot be paused: when more than MAX_QUEUED bytes wait for an
 * operator that does not read, the shell is hung up.
 */
import { basename } from "node:path";
import process from "node:process";
import { type RemoteMessage, TunnelErrorCode } from "../proto/tunnel_control.ts";
import type { Conn, PtyProcess } from "../runtime/types.ts";
import { wallMs } from "../runtime/mod.ts";
import { encodeExit } from "../remote/frames.ts";
import { FrameStream } from "../remote/frame_stream.ts";
import type { Agent } from "./agent.ts";
import type { ShellConfig } from "./config.ts";
import type { RemoteReply } from "./remote_files.ts";

const MAX_QUEUED = 8 * 1024 * 1024;
const EOT = new Uint8Array([0x04]);

/** Whether `command` may run: the configured one, or its program named in `allow` ("*" = any). */
export function commandAllowed(cfg: ShellConfig, command: string[]): boolean {
  if (JSON.stringify(command) === JSON.stringify(cfg.command)) return true;
  const prog = command[0]!;
  return cfg.allow.some((a) => a === "*" || a === prog || (!a.includes("/") && !prog.includes("/") && a === basename(prog)));
}

export async function serveShell(agent: Agent, cfg: ShellConfig, stream: Conn, m: RemoteMessage, reply: RemoteReply & { finished(o: { bytes: number; error: string | null; status?: number }): void }): Promise<void> {
  const command = m.command ?? cfg.command;
  if (!commandAllowed(cfg, command)) {
    return reply.refuse(
      TunnelErrorCode.COMMAND_DENIED,
      `'${command[0]}' is not in this agent's [shell] allow list (${cfg.allow.length > 0 ? cfg.allow.join(", ") : `only ${cfg.command.join(" ")}`})`,
    );
  }
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("EDGEMUX_")) env[k] = v;
  env.TERM = m.term ?? "xterm-256color";
  let fs: FrameStream | null = null;
  let pending: Uint8Array[] = [];
  let bytes = 0;
  let lastActive = wallMs();
  let pty: PtyProcess;
  try {
    pty = agent.runtime.spawnPty!({
      command,
      cwd: env.HOME ?? "/",
      env,
      cols: m.cols || 80,
      rows: m.rows || 24,
      onData: (d) => {
        lastActive = wallMs();
        bytes += d.length;
        if (fs === null) return void pending.push(d);
        fs.writeData(d);
        if (fs.conn.writableLength > MAX_QUEUED) pty.kill("SIGHUP");
      },
    });
  } catch (e) {
    return reply.refuse(TunnelErrorCode.COMMAND_DENIED, `cannot run '${command[0]}': ${(e as Error).message}`);
  }
  reply.ok();
  fs = new FrameStream(stream);
  for (const d of pending) fs.writeData(d);
  pending = [];
  const handle = { close: () => pty.kill("SIGHUP") };
  agent.shells.add(handle);
  const idle = cfg.idleTimeoutMs > 0
    ? setInterval(() => {
      if (wallMs() - lastActive < cfg.idleTimeoutMs) return;
      fs!.writeData(new TextEncoder().encode(`\r\nedgemux: no input or output for ${Math.round(cfg.idleTimeoutMs / 1000)} s ([shell] idle_timeout): hanging up\r\n`));
      pty.kill("SIGHUP");
    }, Math.min(1000, cfg.idleTimeoutMs))
    : null;
  // Keys and resizes until the operator ends; the process's end is awaited apart.
  const input = (async () => {
    for (;;) {
      const f = await fs.next();
      if (f === null) return;
      lastActive = wallMs();
      if (f.type === 0) pty.write(f.data);
      else if (f.type === 2) pty.resize(f.cols, f.rows);
      else if (f.type === 3) pty.write(EOT);
    }
  })();
  input.then(
    () => {
      // The operator went away (or ended its side): hang up unless the process already ended.
      if (!exitedYet) pty.kill("SIGHUP");
    },
    () => pty.kill("SIGHUP"),
  );
  let exitedYet = false;
  const status = await pty.exited;
  exitedYet = true;
  if (idle !== null) clearInterval(idle);
  agent.shells.delete(handle);
  // Output the terminal still held comes through its data callback before the next turn or two.
  await new Promise((r) => setTimeout(r, 20));
  pty.close();
  if (!fs.closed) {
    fs.write(encodeExit(status));
    fs.end();
  }
  reply.finished({ bytes, error: null, status });
}
