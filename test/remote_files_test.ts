/**
 * `edgemux cp` end to end: an edge (two workers, so the operator's session
 * and the agent's may sit on different workers), a destination agent with
 * `[files]` roots, and the cp command as a process. A 200 MiB random file
 * both ways with its checksum, a directory tree, a copy killed half way and
 * resumed, path escapes and an oversized file refused with their numbered
 * codes, the operator's token checked on the edge (role, agents patterns),
 * each request in the edge's audit log with the token's name and counted in
 * /metrics. Runs with the agent on Bun and on Deno (EDGEMUX_RUNTIME=deno).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { edgemuxCommand, type EdgemuxProcess, run, startEdgemux, tempDir, waitFor } from "./support/edgemux.ts";
import { edgeTls, startAgentProcess } from "./support/tunnel.ts";

const hex = (s: string) => createHash("sha256").update(s).digest("hex");
const SECRETS = { dest: "files-dest-secret", ops: "files-ops-secret", narrow: "files-narrow-secret", src: "files-src-secret" };
const MiB = 1024 * 1024;

function sha256File(path: string): string {
  const h = createHash("sha256");
  const fd = openSync(path, "r");
  const buf = Buffer.alloc(4 * MiB);
  try {
    for (;;) {
      const n = require("node:fs").readSync(fd, buf, 0, buf.length, null) as number;
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest("hex");
}

function randomFile(path: string, bytes: number): void {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(MiB);
  for (let o = 0; o < bytes; o += chunk.length) {
    crypto.getRandomValues(chunk);
    writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - o));
  }
  closeSync(fd);
}

let tls: { cert: string; key: string; ca: string };
let edge: EdgemuxProcess;
let agent: EdgemuxProcess;
let dir: string;
let root: string;
let outside: string;
let edgeAddr = "";

function cp(args: string[], secret = SECRETS.ops, timeoutMs = 120_000) {
  const { cmd, argv } = edgemuxCommand(["cp", "--edge", edgeAddr, "--ca", tls.ca, "--token", secret, ...args]);
  return run(cmd, argv, { timeoutMs, cwd: dir });
}

beforeAll(async () => {
  tls = edgeTls();
  dir = tempDir("edgemux-files-");
  root = join(dir, "root");
  outside = join(dir, "outside");
  mkdirSync(root);
  mkdirSync(outside);
  writeFileSync(join(outside, "secret.txt"), "not for operators\n");
  symlinkSync(outside, join(root, "escape"));
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
name = "ops-alice"
sha256 = "${hex(SECRETS.ops)}"
roles = ["operator"]
agents = ["dev-*"]

[[tokens]]
name = "ops-narrow"
sha256 = "${hex(SECRETS.narrow)}"
roles = ["operator"]
agents = ["prod-*"]

[[tokens]]
name = "src"
sha256 = "${hex(SECRETS.src)}"
roles = ["source"]
`);
  // By name: Deno's TLS client sends the address it dials as the server name.
  edgeAddr = `localhost:${edge.hostPort("tunnel").port}`;
  const agentToml = join(dir, "agent.toml");
  writeFileSync(agentToml, `[files]\nroots = ["${root}"]\nmax_size = ${300 * MiB}\n`);
  agent = await startAgentProcess(["--edge", edgeAddr, "--ca", tls.ca, "--token", SECRETS.dest, "--name", "dev-1", "--config", agentToml]);
  await agent.waitForLine((l) => l.msg === "connected to the edge");
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await edge?.stop();
  // 200 MiB files both ways and a resumed copy: ~750 MB that must not outlive the test.
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("edgemux cp", () => {
  test("a 200 MiB random file to the agent and back, SHA-256 verified", async () => {
    const src = join(dir, "big.bin");
    randomFile(src, 200 * MiB);
    const want = sha256File(src);
    const up = await cp([src, "dev-1:data/big.bin"]);
    expect(up.stderr).toBe("");
    expect(up.code).toBe(0);
    expect(up.stdout).toContain(`sha256 ${want}`);
    expect(sha256File(join(root, "data/big.bin"))).toBe(want);
    const back = join(dir, "big.back");
    const down = await cp(["dev-1:data/big.bin", back]);
    expect(down.code).toBe(0);
    expect(sha256File(back)).toBe(want);
    expect(statSync(back).size).toBe(200 * MiB);
    // No part files left on either side.
    expect(readdirSync(join(root, "data")).filter((n) => n.endsWith(".edgemux-part"))).toEqual([]);
    expect(readdirSync(dir).filter((n) => n.endsWith(".edgemux-part"))).toEqual([]);
  }, 180_000);

  test("a directory tree both ways", async () => {
    const tree = join(dir, "tree");
    mkdirSync(join(tree, "a/b/c"), { recursive: true });
    mkdirSync(join(tree, "empty"));
    writeFileSync(join(tree, "top.txt"), "top\n");
    writeFileSync(join(tree, "a/one.txt"), "one\n");
    writeFileSync(join(tree, "a/b/c/deep.bin"), crypto.getRandomValues(new Uint8Array(100_000)));
    writeFileSync(join(tree, "a/b/zero"), "");
    const up = await cp([tree, "dev-1:trees/t1"]);
    expect(up.code).toBe(0);
    expect(up.stdout).toContain("4 file(s)");
    expect(readFileSync(join(root, "trees/t1/a/b/c/deep.bin"))).toEqual(readFileSync(join(tree, "a/b/c/deep.bin")));
    expect(existsSync(join(root, "trees/t1/empty"))).toBe(true);
    const back = join(dir, "tree-back");
    const down = await cp(["dev-1:trees/t1", back]);
    expect(down.code).toBe(0);
    for (const f of ["top.txt", "a/one.txt", "a/b/c/deep.bin", "a/b/zero"]) expect(readFileSync(join(back, f))).toEqual(readFileSync(join(tree, f)));
    expect(statSync(join(back, "empty")).isDirectory()).toBe(true);
  }, 60_000);

  test("a copy killed half way continues from the byte it reached, and the whole file is verified", async () => {
    const src = join(dir, "resume.bin");
    randomFile(src, 32 * MiB);
    const want = sha256File(src);
    const part = join(root, `.resume.bin.${want.slice(0, 16)}.edgemux-part`);
    // 16 MiB/s: about two seconds for the file, so the kill lands half way.
    const { cmd, argv } = edgemuxCommand(["cp", "--edge", edgeAddr, "--ca", tls.ca, "--token", SECRETS.ops, "--bwlimit", String(16 * MiB), src, "dev-1:resume.bin"]);
    const p = spawn(cmd, argv, { stdio: "ignore" });
    await waitFor(() => existsSync(part) && statSync(part).size >= 16 * MiB, 30_000, "half of the file on the agent");
    p.kill("SIGKILL");
    await new Promise((r) => p.once("exit", r));
    // The agent notices the stream is gone and keeps the part file.
    await agent.waitForLine((l) => l.msg === "remote access ended" && l.kind === "put" && l.path === "resume.bin" && l.error !== null);
    const reached = statSync(part).size;
    expect(reached).toBeGreaterThan(0);
    expect(reached).toBeLessThan(32 * MiB);
    const again = await cp([src, "dev-1:resume.bin"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`(resumed at byte ${reached})`);
    expect(sha256File(join(root, "resume.bin"))).toBe(want);
    expect(existsSync(part)).toBe(false);

    // The other way: a part file beside the destination is continued, then verified whole.
    const local = join(dir, "resume.back");
    writeFileSync(join(dir, ".resume.back.edgemux-part"), readFileSync(src).subarray(0, 5 * MiB + 123));
    const down = await cp(["dev-1:resume.bin", local]);
    expect(down.code).toBe(0);
    expect(down.stdout).toContain(`(resumed at byte ${5 * MiB + 123})`);
    expect(sha256File(local)).toBe(want);
    // A part file that is not a prefix of the agent's file fails the hash and is discarded.
    const bad = join(dir, "resume.bad");
    writeFileSync(join(dir, ".resume.bad.edgemux-part"), "garbage that is no prefix");
    const mismatch = await cp(["dev-1:resume.bin", bad]);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain("CHECKSUM_MISMATCH (47)");
    expect(existsSync(join(dir, ".resume.bad.edgemux-part"))).toBe(false);
    expect((await cp(["dev-1:resume.bin", bad])).code).toBe(0);
  }, 90_000);

  test("paths that leave the root are refused with PATH_DENIED (44)", async () => {
    const small = join(dir, "small.txt");
    writeFileSync(small, "hello\n");
    for (const args of [
      [small, "dev-1:../x.txt"],
      [small, "dev-1:a/../../x.txt"],
      [small, "dev-1:/etc/x.txt"],
      [small, "dev-1:escape/planted.txt"],
      ["dev-1:escape/secret.txt", join(dir, "stolen.txt")],
      ["dev-1:/etc/passwd", join(dir, "passwd")],
    ]) {
      const r = await cp(args);
      expect({ args, code: r.code }).toEqual({ args, code: 1 });
      expect(r.stderr).toContain("PATH_DENIED (44)");
    }
    expect(existsSync(join(outside, "planted.txt"))).toBe(false);
    expect(existsSync(join(dir, "stolen.txt"))).toBe(false);
    await edge.waitForLine((l) => l.msg === "remote access refused" && l.code === 44 && l.token === "ops-alice" && l.path === "escape/planted.txt");
  }, 60_000);

  test("a file over the agent's max_size is refused with FILE_TOO_LARGE (45)", async () => {
    const huge = join(dir, "huge.bin");
    // Sparse: 301 MiB of size, nothing written.
    const fd = openSync(huge, "w");
    writeSync(fd, "x", 301 * MiB - 1);
    closeSync(fd);
    const r = await cp([huge, "dev-1:huge.bin"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("FILE_TOO_LARGE (45)");
  }, 60_000);

  test("the edge checks the operator's token: role, agents patterns, a connected agent", async () => {
    const small = join(dir, "small2.txt");
    writeFileSync(small, "hi\n");
    const narrow = await cp([small, "dev-1:x.txt"], SECRETS.narrow);
    expect(narrow.code).toBe(1);
    expect(narrow.stderr).toContain("AGENT_DENIED (40)");
    const notOperator = await cp([small, "dev-1:x.txt"], SECRETS.src);
    expect(notOperator.code).toBe(1);
    expect(notOperator.stderr).toContain("ROLE_DENIED (11)");
    const unknown = await cp([small, "dev-9:x.txt"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("AGENT_UNKNOWN (41)");
    await edge.waitForLine((l) => l.msg === "remote access refused" && l.code === 40 && l.token === "ops-narrow" && l.agent === "dev-1");
  }, 60_000);

  test("agent-reload: an invalid file changes nothing (RELOAD_FAILED, 48); a valid one applies [files] at once", async () => {
    const reload = (secret = SECRETS.ops) => {
      const { cmd, argv } = edgemuxCommand(["agent-reload", "--edge", edgeAddr, "--ca", tls.ca, "--token", secret, "dev-1"]);
      return run(cmd, argv, { timeoutMs: 20_000 });
    };
    const agentToml = join(dir, "agent.toml");
    const good = readFileSync(agentToml, "utf8");
    writeFileSync(agentToml, `${good}read_only = "yes"\nbogus = 1\n`);
    const bad = await reload();
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("RELOAD_FAILED (48)");
    expect(bad.stderr).toContain("files.read_only: must be true or false");
    expect(bad.stderr).toContain("bogus: unknown key");
    // Nothing changed: copies still work.
    const small = join(dir, "after-bad-reload.txt");
    writeFileSync(small, "still writable\n");
    expect((await cp([small, "dev-1:after-bad-reload.txt"])).code).toBe(0);
    writeFileSync(agentToml, `${good}read_only = true\n`);
    const ok = await reload();
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("valid; applied: files");
    const refused = await cp([small, "dev-1:after-reload.txt"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("REMOTE_DISABLED (42)");
    // Reading still works.
    expect((await cp(["dev-1:after-bad-reload.txt", join(dir, "read-back.txt")])).code).toBe(0);
    expect((await reload(SECRETS.narrow)).stderr).toContain("AGENT_DENIED (40)");
    await edge.waitForLine((l) => l.msg === "remote access" && l.kind === "reload" && l.token === "ops-alice");
    await agent.waitForLine((l) => l.msg === "agent-reload: config re-read" && Array.isArray(l.applied) && (l.applied as string[]).includes("files"));
    writeFileSync(agentToml, good);
    expect((await reload()).code).toBe(0);
  }, 60_000);

  test("the audit trail names the token; /metrics counts by kind and outcome", async () => {
    const ok = await edge.waitForLine((l) => l.msg === "remote access" && l.kind === "put" && l.path === "data/big.bin");
    expect(ok).toMatchObject({ token: "ops-alice", agent: "dev-1", size: 200 * MiB });
    await agent.waitForLine((l) => l.msg === "remote access" && l.operator === "ops-alice" && l.kind === "get");
    const text = await (await edge.adminGet("/metrics")).text();
    const streams = text.split("\n").find((l) => l.startsWith(`edgemux_tunnel_service_streams_total{service="@remote:put"}`));
    expect(Number(streams?.split(" ").at(-1))).toBeGreaterThanOrEqual(3);
    expect(text).toMatch(/edgemux_tunnel_service_open_failures_total\{service="@remote:put",code="PATH_DENIED"\} [1-9]/);
    expect(text).toMatch(/edgemux_tunnel_service_open_failures_total\{service="@remote:put",code="FILE_TOO_LARGE"\} 1/);
    expect(text).toMatch(/edgemux_tunnel_service_open_failures_total\{service="@remote:put",code="AGENT_DENIED"\} 1/);
  }, 30_000);
});
