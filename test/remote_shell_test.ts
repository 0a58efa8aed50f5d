/**
 * `edgemux shell` end to end: the command runs inside a pseudo-terminal of
 * the test (Bun.Terminal), attached through the edge to a shell on an agent
 * started with `[shell]`. `stty size` shows the local size, a resize of the
 * local terminal reaches the remote one, `exit 3` becomes the local exit
 * status. Refusals: an agent without shells (REMOTE_DISABLED, 42), a token
 * without the operator role (ROLE_DENIED, 11), a command outside the allow
 * list (COMMAND_DENIED, 43). With EDGEMUX_RUNTIME=deno the agent has no PTY:
 * it says so at start-up and refuses shells with REMOTE_DISABLED.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { edgemuxCommand, type EdgemuxProcess, run, startEdgemux, tempDir, waitFor } from "./support/edgemux.ts";
import { edgeTls, startAgentProcess } from "./support/tunnel.ts";

const onDeno = process.env.EDGEMUX_RUNTIME === "deno";
const hex = (s: string) => createHash("sha256").update(s).digest("hex");
const SECRETS = { dest: "shell-dest-secret", ops: "shell-ops-secret", src: "shell-src-secret" };

let tls: { cert: string; key: string; ca: string };
let edge: EdgemuxProcess;
let shellAgent: EdgemuxProcess;
let plainAgent: EdgemuxProcess;
let edgeAddr = "";
let dir = "";

function shellArgs(secret: string, rest: string[]): { cmd: string; argv: string[] } {
  return edgemuxCommand(["shell", "--edge", edgeAddr, "--ca", tls.ca, "--token", secret, ...rest]);
}

/** `edgemux shell` inside a pseudo-terminal of cols × rows: its output so far, keys in, resize, exit status. */
function inTerminal(args: { cmd: string; argv: string[] }, cols: number, rows: number) {
  let output = "";
  // deno-lint-ignore no-explicit-any
  const proc = (Bun as any).spawn([args.cmd, ...args.argv], {
    env: { ...process.env, TERM: "xterm" },
    terminal: { cols, rows, data: (_t: unknown, d: Uint8Array) => (output += new TextDecoder().decode(d)) },
  });
  return {
    get output() {
      return output;
    },
    type: (s: string) => proc.terminal.write(s),
    resize: (c: number, r: number) => proc.terminal.resize(c, r),
    exited: proc.exited as Promise<number>,
    kill: () => proc.kill(),
  };
}

beforeAll(async () => {
  tls = edgeTls();
  dir = tempDir("edgemux-shell-");
  edge = await startEdgemux(`
workers = 2
[log]
level = "info"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "tunnel"
kind = "tunnel"
address = "127.0.0.1:0"
[listeners.tls]
cert = "${tls.cert}"
key = "${tls.key}"

[[tokens]]
name = "dest"
sha256 = "${hex(SECRETS.dest)}"
roles = ["destination"]

[[tokens]]
name = "ops-bob"
sha256 = "${hex(SECRETS.ops)}"
roles = ["operator"]
agents = ["dev-*"]

[[tokens]]
name = "src"
sha256 = "${hex(SECRETS.src)}"
roles = ["source"]
`);
  edgeAddr = `localhost:${edge.hostPort("tunnel").port}`;
  const toml = join(dir, "agent.toml");
  writeFileSync(toml, `[shell]\ncommand = ["/bin/sh"]\nallow = ["echo"]\nidle_timeout = "10m"\n`);
  const common = ["--edge", edgeAddr, "--ca", tls.ca, "--token", SECRETS.dest];
  // PS1: a prompt the test can wait for, whatever the user.
  shellAgent = await startAgentProcess([...common, "--name", "dev-sh", "--config", toml], { env: { PS1: "remote> " } });
  plainAgent = await startAgentProcess([...common, "--name", "dev-plain", "--allow-files", dir, "--state-dir", join(dir, "state")]);
  await shellAgent.waitForLine((l) => l.msg === "connected to the edge");
  await plainAgent.waitForLine((l) => l.msg === "connected to the edge");
}, 60_000);

afterAll(async () => {
  await shellAgent?.stop();
  await plainAgent?.stop();
  await edge?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("edgemux shell", () => {
  test.skipIf(onDeno)("stty size, a resize, and exit 3 becomes the local exit status", async () => {
    const t = inTerminal(shellArgs(SECRETS.ops, ["dev-sh"]), 80, 24);
    try {
      await waitFor(() => t.output.includes("remote> "), 20_000, `the remote prompt; got ${JSON.stringify(t.output)}`);
      t.type("stty size\r");
      await waitFor(() => t.output.includes("24 80"), 10_000, `"24 80"; got ${JSON.stringify(t.output)}`);
      t.resize(132, 43);
      // The RESIZE frame and the SIGWINCH race the next line: ask until the new size shows.
      await waitFor(() => {
        if (t.output.includes("43 132")) return true;
        t.type("stty size\r");
        return false;
      }, 10_000, `"43 132"; got ${JSON.stringify(t.output)}`);
      t.type("exit 3\r");
      expect(await t.exited).toBe(3);
    } finally {
      t.kill();
    }
    await edge.waitForLine((l) => l.msg === "remote access" && l.kind === "shell" && l.token === "ops-bob" && l.agent === "dev-sh");
    await shellAgent.waitForLine((l) => l.msg === "remote access ended" && l.kind === "shell" && l.status === 3 && l.operator === "ops-bob");
  }, 60_000);

  test.skipIf(onDeno)("a command from the allow list runs without a terminal; others are COMMAND_DENIED (43)", async () => {
    const { cmd, argv } = shellArgs(SECRETS.ops, ["dev-sh", "--", "echo", "hello from the agent"]);
    const ok = await run(cmd, argv, { timeoutMs: 20_000 });
    expect(ok.stdout).toContain("hello from the agent");
    expect(ok.code).toBe(0);
    const { cmd: c2, argv: a2 } = shellArgs(SECRETS.ops, ["dev-sh", "--", "cat", "/etc/passwd"]);
    const denied = await run(c2, a2, { timeoutMs: 20_000 });
    expect(denied.code).toBe(255);
    expect(denied.stderr).toContain("COMMAND_DENIED (43)");
  }, 30_000);

  test("an agent without shells refuses with REMOTE_DISABLED (42)", async () => {
    const { cmd, argv } = shellArgs(SECRETS.ops, ["dev-plain"]);
    const r = await run(cmd, argv, { timeoutMs: 20_000 });
    expect(r.code).toBe(255);
    expect(r.stderr).toContain("REMOTE_DISABLED (42)");
    await edge.waitForLine((l) => l.msg === "remote access refused" && l.code === 42 && l.agent === "dev-plain" && l.token === "ops-bob");
  }, 30_000);

  test("--state-dir: 0700, a key pair and certificate (fingerprint in the ready line), the edges reached", async () => {
    const ready = await plainAgent.waitForLine((l) => l.msg === "ready");
    expect(ready.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const state = join(dir, "state");
    expect(statSync(state).mode & 0o777).toBe(0o700);
    expect(statSync(join(state, "agent.key")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(state, "agent.crt"), "utf8")).toContain("BEGIN CERTIFICATE");
    const edges = await waitFor(() => {
      try {
        return JSON.parse(readFileSync(join(state, "edges.json"), "utf8")) as { edge: string; session: string }[];
      } catch {
        return null;
      }
    }, 10_000, "edges.json");
    expect(edges[0]!.edge).toBe(edgeAddr);
    expect(statSync(join(state, "edges.json")).mode & 0o777).toBe(0o600);
  }, 30_000);

  test("a token without the operator role is refused with ROLE_DENIED (11)", async () => {
    const { cmd, argv } = shellArgs(SECRETS.src, ["dev-sh"]);
    const r = await run(cmd, argv, { timeoutMs: 20_000 });
    expect(r.code).toBe(255);
    expect(r.stderr).toContain("ROLE_DENIED (11)");
  }, 30_000);

  test.if(onDeno)("on Deno the agent has no PTY: it says so at start-up and refuses shells", async () => {
    await shellAgent.waitForLine((l) => l.msg.includes("no pseudo-terminal"));
    const { cmd, argv } = shellArgs(SECRETS.ops, ["dev-sh"]);
    const r = await run(cmd, argv, { timeoutMs: 20_000 });
    expect(r.code).toBe(255);
    expect(r.stderr).toContain("REMOTE_DISABLED (42)");
  }, 30_000);
});
