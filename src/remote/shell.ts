/**
 * `edgemux shell AGENT [-- COMMAND ARGS...]`: the local terminal attached to
 * a pseudo-terminal on the agent. With stdin a terminal it goes to raw mode
 * (every key, ^C included, goes to the remote side) and is restored on the
 * way out; window-size changes are sent as RESIZE frames; the remote exit
 * status is returned (it becomes this process's).
 *
 * Uses node:process's stdin/stdout (the same in Bun and Deno): a terminal is
 * the local user's, not a socket the runtime adapters own.
 */
import process from "node:process";
import { encodeEof, encodeResize } from "./frames.ts";
import type { OperatorClient } from "./client.ts";

/** Status when the stream broke before the remote command ended (as ssh). */
export const EXIT_LOST = 255;

export async function runShell(client: OperatorClient, agent: string, command: string[] | undefined, err: (s: string) => void): Promise<number> {
  const stdin = process.stdin;
  const stdout = process.stdout;
  const size = () => ({ cols: stdout.isTTY ? stdout.columns : 80, rows: stdout.isTTY ? stdout.rows : 24 });
  const term = process.env.TERM;
  const fs = await client.open({
    kind: "shell",
    agent,
    ...(command !== undefined ? { command } : {}),
    ...size(),
    ...(term && /^[A-Za-z0-9._+-]{1,64}$/.test(term) ? { term } : {}),
  });
  const raw = stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  const onResize = () => fs.write(encodeResize(size().cols, size().rows));
  const onData = (chunk: Uint8Array) => {
    if (!fs.writeData(chunk)) {
      stdin.pause();
      void fs.drained().then(() => stdin.resume());
    }
  };
  const onEnd = () => fs.write(encodeEof());
  stdout.on("resize", onResize);
  stdin.on("data", onData);
  stdin.on("end", onEnd);
  stdin.resume();
  let status = EXIT_LOST;
  try {
    for (;;) {
      const f = await fs.next();
      if (f === null) {
        err(`edgemux shell: the stream to '${agent}' ended without an exit status`);
        break;
      }
      if (f.type === 0) {
        if (!stdout.write(f.data)) await new Promise((r) => stdout.once("drain", r));
      } else if (f.type === 4) {
        status = f.status;
        break;
      }
    }
  } catch (e) {
    err(`edgemux shell: ${(e as Error).message}`);
  } finally {
    stdout.off("resize", onResize);
    stdin.off("data", onData);
    stdin.off("end", onEnd);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
    fs.end();
  }
  return status;
}
