/**
 * CPU cost of the relay hot path, per request/response turn, for edgemux and
 * the naive Bun forwarder side by side (a tool for tuning, not a benchmark of
 * record: bench/ is that). Measures the proxy process's own CPU time
 * (/proc/<pid>/stat utime+stime, all threads), so the load on the machine
 * changes the wall time but hardly the figure.
 *
 *   bun scripts/profile_relay.ts [--turns 20000] [--size 100] [--workers 1]
 *   EDGEMUX_PROFILE=1 runs the data plane on one main thread (scripts/dataplane_inprocess.ts)
 *   under --cpu-prof instead (profile in .tmp/prof).
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { tempDir } from "../test/support/edgemux.ts";
import { fixtureHello } from "../test/support/net.ts";

const { values } = parseArgs({
  options: {
    turns: { type: "string", default: "20000" },
    size: { type: "string", default: "100" },
    workers: { type: "string", default: "1" },
    // "turns": request/response turns on one connection; "conns": a new connection per turn
    mode: { type: "string", default: "turns" },
    // edgemux's [relay] mode: "auto" (kernel relay for bulk), "js"
    relay: { type: "string", default: "auto" },
  },
});
const TURNS = Number(values.turns);
const SIZE = Number(values.size);
const ROOT = join(import.meta.dir, "..");

function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime, clock ticks (100/s)
}

/** Echo backend: after the proxied hello arrives, echoes every byte. */
async function echoBackend(): Promise<number> {
  const server = createServer((s) => s.on("data", (d) => s.write(d)).on("error", () => {}));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as AddressInfo).port;
}

async function startProxy(kind: "edgemux" | "naive" | "inproc", backendPort: number): Promise<{ pid: number; port: number; stop: () => Promise<void> }> {
  const dir = tempDir("edgemux-prof-");
  let args: string[];
  if (kind === "edgemux" || kind === "inproc") {
    const cfg = join(dir, "e.toml");
    writeFileSync(cfg, `workers = ${values.workers}\n[relay]\nmode = "${values.relay}"\n[log]\nconnections = false\n[admin]\naddress = "off"\n[[listeners]]\nkind = "sni"\naddress = "127.0.0.1:0"\nidle_timeout = "0s"\n[[routes]]\nmatch = "*"\ntargets = ["127.0.0.1:${backendPort}"]\n`);
    const prof = process.env.EDGEMUX_PROFILE ? ["--cpu-prof", "--cpu-prof-dir", join(ROOT, ".tmp/prof")] : [];
    args = kind === "inproc"
      ? [...prof, join(ROOT, "scripts/dataplane_inprocess.ts"), cfg]
      : [...prof, join(ROOT, "src/cli/main.ts"), "serve", "--config", cfg, "--log-format", "json"];
  } else {
    args = [join(ROOT, "bench/peers/naive_bun.ts"), "--target", `127.0.0.1:${backendPort}`];
  }
  const p = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve) => {
    let buf = "";
    p.stdout!.on("data", (d) => {
      buf += d;
      const m = /"ready".*?"listeners":\{"[^"]+":"[^"]*:(\d+)"/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
  });
  // SIGTERM: edgemux drains and exits 0, which lets --cpu-prof write its profile.
  return { pid: p.pid!, port, stop: () => new Promise<void>((r) => (p.once("exit", () => r()), p.kill("SIGTERM"))) };
}

async function pingPong(port: number): Promise<number> {
  const sock: Socket = connect(port, "127.0.0.1");
  await new Promise<void>((r) => sock.once("connect", () => r()));
  sock.setNoDelay(true);
  const msg = Buffer.alloc(SIZE, 0x61);
  const hello = Buffer.from(fixtureHello());
  // The hello goes through and is echoed back; then turns of SIZE bytes.
  let expect = hello.length;
  let got = 0;
  let turns = 0;
  const started = performance.now();
  return await new Promise<number>((resolve) => {
    sock.on("data", (d: Buffer) => {
      got += d.length;
      if (got < expect) return;
      got -= expect;
      if (turns++ === TURNS) {
        sock.destroy();
        return resolve(performance.now() - started);
      }
      expect = SIZE;
      sock.write(msg);
    });
    sock.write(hello);
  });
}

/** A new connection per turn: connect, hello, its echo, close; `parallel` at a time. */
async function newConns(port: number, parallel = 16): Promise<number> {
  const hello = Buffer.from(fixtureHello());
  const started = performance.now();
  let next = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const sock = connect(port, "127.0.0.1", () => sock.write(hello));
      let got = 0;
      sock.on("data", (d: Buffer) => {
        got += d.length;
        if (got >= hello.length) sock.end();
      });
      sock.on("error", () => {});
      sock.on("close", () => resolve());
    });
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next++ < TURNS) await one();
  }));
  return performance.now() - started;
}

const run = values.mode === "conns" ? newConns : pingPong;
const backendPort = await echoBackend();
const kinds = process.env.EDGEMUX_PROFILE ? (["inproc"] as const) : (["naive", "edgemux", "naive", "edgemux"] as const);
for (const kind of kinds) {
  const proxy = await startProxy(kind, backendPort);
  await run(proxy.port); // warm-up
  const t0 = cpuTicks(proxy.pid);
  const ms = await run(proxy.port);
  const t1 = cpuTicks(proxy.pid);
  await proxy.stop();
  const cpuUs = ((t1 - t0) * 10_000) / TURNS;
  const what = values.mode === "conns" ? "new connections" : `turns of ${SIZE} B`;
  console.log(`${kind.padEnd(8)} ${TURNS} ${what}: ${(TURNS / (ms / 1000)).toFixed(0)}/s, proxy CPU ${cpuUs.toFixed(1)} µs each`);
}
process.exit(0);
