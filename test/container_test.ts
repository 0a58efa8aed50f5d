/**
 * deploy/container/Containerfile, built and run offline with buildah.
 *
 * The Containerfile's base is `debian:bookworm-slim`, which comes from a
 * container registry this machine cannot reach. It takes `--build-arg BASE=`,
 * so the test first builds a stand-in base FROM scratch holding exactly what
 * the executable links against (the loader and the libraries `ldd` names,
 * copied from this machine's glibc), then builds the real Containerfile on
 * it, unchanged, and checks the image: its config (user 65532, entrypoint,
 * command, stop signal, ports), `edgemux --version` inside it, and `serve`
 * with a mounted config printing its ready line, running as uid 65532 and
 * proxying a connection.
 *
 * Runs with `buildah run --isolation chroot` (no daemon, no OCI runtime, the
 * host's network: published ports are not needed to reach it). `podman run`
 * cannot run here: crun refuses this machine's hybrid cgroup v1/v2 layout
 * (README "Container"). Everything lives in a storage root under TMPDIR
 * (`--storage-driver vfs`), removed at the end.
 *
 * Uses EDGEMUX_BIN when set, else builds the executable into TMPDIR.
 * Skipped, with the reason printed, without buildah or when not root.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { VERSION } from "../src/version.ts";
import { EdgemuxProcess, ROOT, run, tempDir } from "./support/edgemux.ts";
import { echoServer, roundTrip } from "./support/tunnel.ts";

const hasBuildah = spawnSync("buildah", ["--version"]).status === 0;
const isRoot = process.getuid?.() === 0;
const skip = !hasBuildah ? "buildah is not installed (apt-get install buildah; scripts/install.sh does)" : !isRoot ? "buildah needs root here (rootless needs subuid ranges)" : null;
if (skip !== null) console.warn(`container_test: skipped: ${skip}`);

let dir = "";
let storage: string[] = [];
let bin = "";
const containers: string[] = [];

/** buildah with this test's own storage. */
function buildah(args: string[], timeoutMs = 120_000) {
  return run("buildah", [...storage, ...args], { timeoutMs });
}

async function ok(args: string[], timeoutMs?: number): Promise<string> {
  const r = await buildah(args, timeoutMs);
  if (r.code !== 0) throw new Error(`buildah ${args.join(" ")} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** The loader and libraries an executable links against (`ldd`), as absolute paths. */
function sharedLibraries(exe: string): string[] {
  const r = spawnSync("ldd", [exe], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ldd ${exe}: ${r.stderr}`);
  const out: string[] = [];
  for (const line of r.stdout.split("\n")) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m) out.push(m[1]!);
  }
  return out;
}

beforeAll(async () => {
  if (skip !== null) return;
  dir = tempDir("edgemux-container-");
  storage = ["--root", join(dir, "storage"), "--runroot", join(dir, "run"), "--storage-driver", "vfs"];
  const ctx = join(dir, "context");
  mkdirSync(ctx);
  bin = join(ctx, "edgemux");
  if (process.env.EDGEMUX_BIN) copyFileSync(process.env.EDGEMUX_BIN, bin);
  else {
    const r = await run(process.execPath, [join(ROOT, "scripts/build.ts"), "--outfile", bin], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`build failed: ${r.stdout}${r.stderr}`);
  }
  // The stand-in base: glibc as the executable needs it, nothing else.
  const base = join(dir, "base");
  const root = join(base, "rootfs");
  for (const lib of sharedLibraries(bin)) {
    mkdirSync(join(root, dirname(lib)), { recursive: true });
    copyFileSync(lib, join(root, lib));
  }
  mkdirSync(join(root, "tmp"));
  chmodSync(join(root, "tmp"), 0o1777);
  writeFileSync(join(base, "Containerfile"), "FROM scratch\nCOPY rootfs/ /\n");
  await ok(["build", "--isolation", "chroot", "--pull=never", "-f", join(base, "Containerfile"), "-t", "localhost/edgemux-test-glibc", base]);
  const started = performance.now();
  await ok([
    "build", "--isolation", "chroot", "--pull=never",
    "-f", join(ROOT, "deploy/container/Containerfile"),
    "--build-arg", "BASE=localhost/edgemux-test-glibc",
    "--build-arg", "BIN=edgemux",
    "-t", "localhost/edgemux-test", ctx,
  ]);
  console.log(`container_test: image built in ${Math.round(performance.now() - started)} ms`);
}, 180_000);

afterAll(async () => {
  if (skip !== null || dir === "") return;
  for (const c of containers) await buildah(["rm", c]);
  await buildah(["rmi", "--all", "--force"]);
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

async function container(): Promise<string> {
  const id = (await ok(["from", "--pull=never", "localhost/edgemux-test"])).trim();
  containers.push(id);
  return id;
}

describe.skipIf(skip !== null)("container image (deploy/container/Containerfile)", () => {
  test("the image runs edgemux as uid 65532 with serve --config /etc/edgemux/edgemux.toml", async () => {
    const info = JSON.parse(await ok(["inspect", "--type", "image", "localhost/edgemux-test"]));
    const config = info.OCIv1.config;
    expect(config.User).toBe("65532:65532");
    expect(config.Entrypoint).toEqual(["/usr/local/bin/edgemux"]);
    expect(config.Cmd).toEqual(["serve", "--config", "/etc/edgemux/edgemux.toml"]);
    expect(config.WorkingDir).toBe("/var/lib/edgemux");
    expect(config.StopSignal).toBe("SIGTERM");
    expect(Object.keys(config.ExposedPorts).sort()).toEqual(["8443/tcp", "9901/tcp"]);
  });

  test("edgemux --version inside the image", async () => {
    const c = await container();
    const out = await ok(["run", "--isolation", "chroot", c, "--", "/usr/local/bin/edgemux", "--version"]);
    expect(out).toBe(`edgemux ${VERSION} (bun ${Bun.version})\n`);
  }, 60_000);

  test("serve with a mounted config: ready line, uid 65532, a connection proxied, SIGTERM drains", async () => {
    const echo = echoServer();
    const cfg = join(dir, "edgemux.toml");
    writeFileSync(cfg, `
workers = 1
[log]
format = "json"
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "tcp"
kind = "tcp"
address = "127.0.0.1:0"
[[routes]]
match = "*"
listeners = ["tcp"]
targets = ["127.0.0.1:${echo.port}"]
`);
    const c = await container();
    // The image's CMD is what runs: only the config is given, as `podman run -v …` would.
    const proc = spawn("buildah", [...storage, "run", "--isolation", "chroot", "-v", `${cfg}:/etc/edgemux/edgemux.toml:ro`, c, "--", "/usr/local/bin/edgemux", "serve", "--config", "/etc/edgemux/edgemux.toml"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const p = new EdgemuxProcess(proc, cfg);
    try {
      const ready = await Promise.race([
        p.waitForLine((l) => l.msg === "ready", 30_000),
        p.waitExit(30_000).then((code) => {
          throw new Error(`exited with ${code} before ready: ${p.stderr.join("")} ${JSON.stringify(p.lines.slice(-5))}`);
        }),
      ]);
      expect(ready.config).toBe("/etc/edgemux/edgemux.toml");
      // chroot isolation shares the host's process and network namespaces: the pid and ports are ours to check.
      const status = readFileSync(`/proc/${ready.pid}/status`, "utf8");
      expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe("65532");
      const port = Number(String((ready.listeners as Record<string, string>).tcp).split(":").pop());
      const data = new TextEncoder().encode("through the container");
      expect(new TextDecoder().decode(await roundTrip(port, data, 10_000))).toBe("through the container");
      // What `podman stop` does (the image's STOPSIGNAL). Sent to edgemux itself: `buildah run` does not
      // pass SIGTERM on (it kills its child), which says nothing about the image.
      process.kill(Number(ready.pid), "SIGTERM");
      await p.waitForLine((l) => l.msg === "stopped accepting", 15_000);
      expect(await p.waitExit(20_000)).toBe(0);
      expect(existsSync(`/proc/${ready.pid}`)).toBe(false);
    } finally {
      if (p.exitCode === null) await p.stop();
      echo.close();
    }
  }, 90_000);
});
