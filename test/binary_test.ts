/**
 * The single executable (`bun run build` → dist/edgemux) and runtime parity.
 *
 * Uses EDGEMUX_BIN when set (scripts/smoke_binary.sh copies dist/edgemux out
 * of the tree and points EDGEMUX_BIN at it); otherwise builds one into a
 * temporary directory. The binary must run with the source tree, its
 * node_modules and the bun executable all hidden (a mount namespace, where
 * `unshare -m` is allowed).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { commands } from "../src/cli/commands.ts";
import { VERSION } from "../src/version.ts";
import { EdgemuxProcess, ROOT, run, tempDir, waitFor } from "./support/edgemux.ts";
import { shortRequest, type Target } from "./support/load.ts";
import { type TlsBackend, testPki, tlsBackend } from "./support/tls.ts";

let bin = "";
let builtDir: string | null = null;
let backend: TlsBackend;

beforeAll(async () => {
  backend = await tlsBackend("bin.test");
  if (process.env.EDGEMUX_BIN) {
    bin = process.env.EDGEMUX_BIN;
    return;
  }
  builtDir = tempDir("edgemux-build-");
  const r = await run(process.execPath, [join(ROOT, "scripts/build.ts"), "--outfile", join(builtDir, "edgemux")], { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`build failed: ${r.stdout}${r.stderr}`);
  bin = join(builtDir, "edgemux");
}, 130_000);

afterAll(async () => {
  await backend?.close();
  if (builtDir) rmSync(builtDir, { recursive: true, force: true });
});

function config(dir: string): string {
  const p = join(dir, "edgemux.toml");
  writeFileSync(p, `
workers = 2
[log]
format = "json"
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "sni"
kind = "sni"
address = "127.0.0.1:0"
[[routes]]
match = "bin.test"
targets = ["${backend.address}"]
`);
  return p;
}

function target(port: number): Target {
  const pki = testPki();
  return { host: "127.0.0.1", port, servername: "bin.test", caCertPath: pki.caCertPath, caCert: pki.caCert };
}

async function ready(p: EdgemuxProcess): Promise<void> {
  const line = await Promise.race([
    p.waitForLine((l) => l.msg === "ready", 30_000),
    p.waitExit(30_000).then((code) => {
      throw new Error(`exited with ${code} before ready: ${p.stderr.join("")} ${JSON.stringify(p.lines.slice(-5))}`);
    }),
  ]);
  p.admin = String(line.admin ?? "");
  p.listeners = (line.listeners ?? {}) as Record<string, string>;
}

const canHide = spawnSync("unshare", ["-m", "true"]).status === 0;
if (!canHide) console.warn("binary_test: unshare -m is not allowed here; the binary runs outside the tree but the tree is not hidden");

describe("single executable", () => {
  test("--version: edgemux <version> (bun <version>)", async () => {
    const r = await run(bin, ["--version"], { cwd: "/" });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`edgemux ${VERSION} (bun ${Bun.version})\n`);
  });

  test("serves with the source tree, node_modules and bun hidden; a worker restart loads the embedded worker", async () => {
    const dir = tempDir("edgemux-bin-run-");
    const exe = join(dir, "edgemux");
    copyFileSync(bin, exe);
    const cfg = config(dir);
    const empty = join(dir, "empty");
    mkdirSync(empty);
    // Hide the tree (tmpfs over it), the bun executable and bun's install cache; PATH names nothing.
    const hide = [
      `mount -t tmpfs tmpfs "${ROOT}"`,
      `mount --bind /dev/null "${realpathSync(process.execPath)}"`,
      ...(existsSync(join(homedir(), ".bun")) ? [`mount -t tmpfs tmpfs "${join(homedir(), ".bun")}"`] : []),
      `test ! -e "${join(ROOT, "node_modules")}"`,
    ].join(" && ");
    const script = `${canHide ? `${hide} && ` : ""}cd "${dir}" && PATH="${empty}" HOME="${dir}" exec "${exe}" serve --config "${cfg}"`;
    const proc = spawn(canHide ? "unshare" : "sh", canHide ? ["-m", "sh", "-c", script] : ["-c", script], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const em = new EdgemuxProcess(proc, cfg);
    try {
      await ready(em);
      const port = em.hostPort("sni").port;
      for (let i = 0; i < 5; i++) expect(await shortRequest(target(port))).toBe("ok");
      expect((await fetch(`http://${em.admin}/workers/1/restart`, { method: "POST" })).status).toBe(202);
      await waitFor(async () => {
        const s = await em.status();
        return s.workers[1]!.up && s.workers[1]!.restarts === 1;
      }, 15_000, "worker 1 back");
      for (let i = 0; i < 5; i++) expect(await shortRequest(target(port))).toBe("ok");
      const dash = await fetch(`http://${em.admin}/`);
      expect(dash.status).toBe(200);
      expect(await dash.text()).toContain("edgemux");
    } finally {
      expect(await em.stop()).toBe(0);
    }
  }, 60_000);

  test("systemd Type=notify: READY=1 once it listens, STOPPING=1 on SIGTERM", async () => {
    const dir = tempDir("edgemux-notify-");
    const record = join(dir, "notify.log");
    const fake = join(dir, "systemd-notify");
    writeFileSync(fake, `#!/bin/sh\necho "$*" >> "${record}"\n`, { mode: 0o755 });
    const cfg = config(dir);
    const proc = spawn(bin, ["serve", "--config", cfg], {
      cwd: dir,
      env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, NOTIFY_SOCKET: join(dir, "notify.sock") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const em = new EdgemuxProcess(proc, cfg);
    try {
      await ready(em);
      const pid = Number(em.lines.find((l) => l.msg === "ready")!.pid);
      await waitFor(() => existsSync(record) && readFileSync(record, "utf8").includes("READY=1"), 10_000, "READY=1");
      expect(readFileSync(record, "utf8")).toBe(`--pid=${pid} READY=1\n`);
    } finally {
      expect(await em.stop()).toBe(0);
    }
    expect(readFileSync(record, "utf8")).toContain(`STOPPING=1`);
  }, 60_000);

  test("every command's --help lists every flag with its default", async () => {
    const main = await run(bin, ["--help"]);
    expect(main.code).toBe(0);
    for (const [name, cmd] of Object.entries(commands)) {
      expect(main.stdout).toContain(`  ${name} `);
      const r = await run(bin, [name, "--help"]);
      expect(r.code).toBe(0);
      const flagLines = r.stdout.split("\n").filter((l) => /^\s+(-\w, )?--[a-z-]+/.test(l) && !l.includes("--help"));
      expect(flagLines.length).toBe(Object.keys(cmd.flags).length);
      for (const flag of Object.keys(cmd.flags)) {
        const line = flagLines.find((l) => l.includes(`--${flag} `));
        expect(line, `${name} --${flag}`).toBeDefined();
        expect(line).toMatch(/\(default: [^)]+\)/);
      }
    }
  }, 30_000);
});

describe("runtime parity: Deno", () => {
  const deno = spawnSync("deno", ["--version"]).status === 0;
  test.skipIf(!deno)("deno.json's start/compile permission set runs the SNI path, unix sockets included", async () => {
    const tasks = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")).tasks as Record<string, string>;
    const perms = (task: string) => tasks[task]!.split(" ").filter((w) => w.startsWith("--allow-") || w.startsWith("--unstable-"));
    expect(perms("compile")).toEqual(perms("start"));
    expect(tasks.compile).toContain("--include workers/data_plane.ts");
    const dir = tempDir("edgemux-deno-perms-");
    const { tlsBackend: mk } = await import("./support/tls.ts");
    const unixBackend = await mk("bin.test", { unixPath: join(dir, "backend.sock") });
    const cfg = join(dir, "edgemux.toml");
    writeFileSync(cfg, `
workers = 1
[log]
format = "json"
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "tcp"
kind = "sni"
address = "127.0.0.1:0"
[[listeners]]
name = "local"
kind = "sni"
address = "unix:${join(dir, "edgemux.sock")}"
[[routes]]
match = "bin.test"
targets = ["unix:${unixBackend.address}"]
`);
    const proc = spawn("deno", ["run", ...perms("start"), join(ROOT, "src/cli/main.ts"), "serve", "--config", cfg], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    const em = new EdgemuxProcess(proc, cfg);
    try {
      await ready(em);
      expect(await shortRequest(target(em.hostPort("tcp").port))).toBe("ok");
      const viaUnix = await run("curl", ["-sS", "--max-time", "20", "--unix-socket", join(dir, "edgemux.sock"), "--cacert", testPki().caCertPath, "https://bin.test/"], { timeoutMs: 30_000 });
      expect(viaUnix.stdout).toBe("backend=bin.test\n");
    } finally {
      expect(await em.stop()).toBe(0);
      await unixBackend.close();
    }
  }, 60_000);
});
