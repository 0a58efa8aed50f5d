/**
 * CPU cost of the relay hot path, per request/response turn, for edgemux and
 * the naive Bun forwarder side by side (a tool for tuning, not a benchmark of
 * record: bench/ is that). Measures the proxy process's own CPU time
 * (/proc/<pid>/stat utime+stime, all threads), so the load on the machine
 * changes the wall time but hardly the figure.
 *
 *   bun scripts/profile_relay.ts [--turns 20000] [--size 100] [--workers 1]
 *   EDGEMUX_PROFILE=1 adds --cpu-prof to the edgemux process (profile in .tmp/prof).
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { tempDir } from "../test/support/edgemux.ts";
import { fixtureHello } from "../test/support/net.ts";

const { values } = parseArgs({ options: { turns: { type: "string", default: "20000" }, size: { type: "string", default: "100" }, workers: { type: "string", default: "1" } } });
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

async function startProxy(kind: "edgemux" | "naive", backendPort: number): Promise<{ pid: number; port: number; stop: () => void }> {
  const dir = tempDir("edgemux-prof-");
  let args: string[];
  if (kind === "edgemux") {
    const cfg = join(dir, "e.toml");
    writeFileSync(cfg, `workers = ${values.workers}\n[log]\nconnections = false\n[admin]\naddress = "off"\n[[listeners]]\nkind = "sni"\naddress = "127.0.0.1:0"\nidle_timeout = "0s"\n[[routes]]\nmatch = "*"\ntargets = ["127.0.0.1:${backendPort}"]\n`);
    const prof = process.env.EDGEMUX_PROFILE ? ["--cpu-prof", "--cpu-prof-dir", join(ROOT, ".tmp/prof")] : [];
    args = [...prof, join(ROOT, "src/cli/main.ts"), "serve", "--config", cfg, "--log-format", "json"];
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
  return { pid: p.pid!, port, stop: () => p.kill("SIGKILL") };
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

const backendPort = await echoBackend();
for (const kind of ["naive", "edgemux", "naive", "edgemux"] as const) {
  const proxy = await startProxy(kind, backendPort);
  await pingPong(proxy.port); // warm-up
  const t0 = cpuTicks(proxy.pid);
  const ms = await pingPong(proxy.port);
  const t1 = cpuTicks(proxy.pid);
  proxy.stop();
  const cpuUs = ((t1 - t0) * 10_000) / TURNS;
  console.log(`${kind.padEnd(8)} ${TURNS} turns of ${SIZE} B: ${(TURNS / (ms / 1000)).toFixed(0)} turns/s, proxy CPU ${cpuUs.toFixed(1)} µs per turn`);
}
process.exit(0);
