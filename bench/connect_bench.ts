/**
 * Forward-proxy benchmarks (issue 5), standalone:
 *
 *   bun bench/connect_bench.ts [--rounds 3] [--seconds 3] [--hbone-mib 512]
 *                              [--only newconn,bulk1,hbone1,hbone100] [--out DIR]
 *
 * HTTP/1.1 CONNECT — edgemux against squid and tinyproxy (Debian packages):
 *   newconn  new tunnels per second: 32 clients loop connect → CONNECT →
 *            200 → one byte echoed → close (bench/peers/connect/load.ts);
 *   bulk1    one tunnel, a backend streaming 1 MiB writes: MiB/s.
 *   target:  edgemux ≥ 1.5 × the better of squid and tinyproxy.
 * HBONE (HTTP/2 CONNECT over mTLS) — edgemux against Go's x/net/http2 relay
 * (test/go/hbone server), driven by the Go client (test/go/hbone client):
 *   hbone1   one stream uploading --hbone-mib MiB to a sink;
 *   hbone100 100 concurrent streams on one connection, same total.
 *   target:  edgemux ≥ 1.0 × Go.
 *
 * Every scenario runs its entries interleaved (round 1: A B C, round 2: A B C,
 * ...) after one unrecorded warm-up each, and reports medians; a ratio is the
 * median of the per-round ratios, so a slow minute on a shared machine hits
 * both sides of it. Peers are configured from bench/peers/connect/*.tmpl.
 * Everything listens on 127.0.0.1. Results: <out>/connect-<time>.json and .md.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "..");
const PEERS = join(ROOT, "bench/peers/connect");
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ""), process.argv[i + 1] ?? "");
if (args.has("help")) {
  console.log(readFileSync(import.meta.path, "utf8").split("*/")[0]);
  process.exit(0);
}
const ROUNDS = Number(args.get("rounds") ?? 3);
const SECONDS = Number(args.get("seconds") ?? 3);
const HBONE_MIB = Number(args.get("hbone-mib") ?? 512);
const ONLY = new Set((args.get("only") ?? "newconn,bulk1,hbone1,hbone100").split(","));
const OUT = resolve(args.get("out") ?? join(ROOT, ".tmp/bench-connect"));
/**
 * edgemux workers. Default 1: on a small machine the load client and the
 * backends need a core of their own; a second worker then only adds
 * contention (measured: 2 workers on 2 cores halve new tunnels/s here).
 */
const WORKERS = Number(args.get("workers") ?? 1);
const dir = mkdtempSync(join(tmpdir(), "edgemux-connect-bench-"));
const procs: ChildProcess[] = [];

function fill(tmpl: string, holes: Record<string, string | number>): string {
  const text = readFileSync(join(PEERS, tmpl), "utf8").replace(/\{\{(\w+)\}\}/g, (_, k: string) => {
    if (!(k in holes)) throw new Error(`${tmpl}: no value for {{${k}}}`);
    return String(holes[k]);
  });
  return text;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function waitPort(port: number, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), r(true)));
      s.once("error", () => r(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listens on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function start(cmd: string, argv: string[], name: string): ChildProcess {
  const p = spawn(cmd, argv, { stdio: ["pipe", "pipe", "pipe"], cwd: dir });
  p.stderr!.on("data", (d) => writeFileSync(join(dir, `${name}.err`), d, { flag: "a" }));
  procs.push(p);
  return p;
}

function firstJsonLine(p: ChildProcess, pred: (o: Record<string, unknown>) => boolean, ms = 60_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let buf = "";
    const t = setTimeout(() => reject(new Error(`no ready line; ${buf.slice(0, 500)}`)), ms);
    p.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split("\n")) {
        try {
          const o = JSON.parse(line);
          if (pred(o)) {
            clearTimeout(t);
            resolve(o);
            return;
          }
        } catch { /* not JSON yet */ }
      }
    });
  });
}

function run(cmd: string, argv: string[], timeoutMs = 300_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    const t = setTimeout(() => (p.kill("SIGKILL"), reject(new Error(`${cmd} timed out`))), timeoutMs);
    p.on("exit", (code) => {
      clearTimeout(t);
      code === 0 ? resolve(out) : reject(new Error(`${cmd} ${argv.join(" ")} exited ${code}: ${err}${out}`));
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

// ---- setup ----------------------------------------------------------------------

function pki() {
  const o = (...a: string[]) => execFileSync("openssl", a, { cwd: dir, stdio: "ignore" });
  o("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=bench CA", "-keyout", "ca.key", "-out", "ca.crt");
  const issue = (name: string, san: string, serial: number) => {
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
    o("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.csr`);
    o("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", String(serial), "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.crt`);
  };
  issue("server", "DNS:localhost,IP:127.0.0.1,URI:spiffe://bench.local/ns/bench/sa/proxy", 1);
  issue("client", "URI:spiffe://bench.local/ns/bench/sa/client", 2);
  return { ca: join(dir, "ca.crt"), cert: join(dir, "server.crt"), key: join(dir, "server.key"), ccert: join(dir, "client.crt"), ckey: join(dir, "client.key") };
}

interface Entry {
  name: string;
  /** One measurement; a number, higher is better. */
  measure(): Promise<number>;
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const certs = pki();
  const backend = start("bun", [join(PEERS, "backend.ts")], "backend");
  const ports = (await firstJsonLine(backend, (o) => "echo" in o)) as { echo: number; source: number; sink: number };

  const em = start("bun", [join(ROOT, "src/cli/main.ts"), "serve", "--config", writeConf("edgemux.toml", fill("edgemux.toml.tmpl", { WORKERS, CERT: certs.cert, KEY: certs.key, CA: certs.ca })), "--log-format", "json"], "edgemux");
  const ready = (await firstJsonLine(em, (o) => o.msg === "ready")) as { listeners: Record<string, string> };
  const emHttp = Number(ready.listeners.http!.split(":").pop());
  const emHbone = Number(ready.listeners.hbone!.split(":").pop());

  const have = (bin: string) => {
    try {
      execFileSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  };
  const h1Entries: { name: string; port: number }[] = [{ name: "edgemux", port: emHttp }];
  if (have("squid")) {
    const port = await freePort();
    start("squid", ["-N", "-f", writeConf("squid.conf", fill("squid.conf.tmpl", { PORT: port, WORKERS: 1, DIR: dir }))], "squid");
    await waitPort(port);
    h1Entries.push({ name: "squid", port });
  } else console.log("squid: not installed (apt-get install squid); skipped");
  if (have("tinyproxy")) {
    const port = await freePort();
    start("tinyproxy", ["-d", "-c", writeConf("tinyproxy.conf", fill("tinyproxy.conf.tmpl", { PORT: port, DIR: dir }))], "tinyproxy");
    await waitPort(port);
    h1Entries.push({ name: "tinyproxy", port });
  } else console.log("tinyproxy: not installed (apt-get install tinyproxy); skipped");

  const hbone = (await run("bash", [join(ROOT, "scripts/build_go_hbone.sh")])).trim().split("\n").pop()!;
  const goSrv = start(hbone, ["server", "-listen", "127.0.0.1:0", "-cert", certs.cert, "-key", certs.key, "-ca", certs.ca], "go-hbone");
  const goPort = Number((await firstJsonLine(goSrv, (o) => o.ready === true)).port);

  const load = (mode: string, port: number, target: number, extra: string[] = []) =>
    run("bun", [join(PEERS, "load.ts"), mode, "--port", String(port), "--target", `127.0.0.1:${target}`, "--seconds", String(SECONDS), ...extra]).then((o) => JSON.parse(o.trim().split("\n").pop()!));
  const goUpload = async (port: number, streams: number) => {
    const out = await run(hbone, ["client", "-addr", `127.0.0.1:${port}`, "-authority", `127.0.0.1:${ports.sink}`, "-ca", certs.ca, "-cert", certs.ccert, "-key", certs.ckey, "-mode", "upload", "-streams", String(streams), "-bytes", String(Math.floor((HBONE_MIB << 20) / streams))]);
    const r = JSON.parse(out.trim().split("\n").pop()!);
    if (r.ok !== streams) throw new Error(`Go client: ${out}`);
    return r.mib_per_s as number;
  };

  const scenarios: { id: string; unit: string; entries: Entry[]; baseline: string[]; target: number }[] = [];
  if (ONLY.has("newconn")) {
    scenarios.push({
      id: "newconn",
      unit: "tunnels/s",
      entries: h1Entries.map((e) => ({ name: e.name, measure: async () => (await load("newconn", e.port, ports.echo, ["--concurrency", "32"])).rate })),
      baseline: ["squid", "tinyproxy"],
      target: 1.5,
    });
  }
  if (ONLY.has("bulk1")) {
    scenarios.push({
      id: "bulk1",
      unit: "MiB/s",
      entries: [
        ...h1Entries.map((e) => ({ name: e.name, measure: async () => (await load("bulk", e.port, ports.source)).mibps })),
        // No proxy: what this client and backend manage alone, the ceiling of the measurement.
        { name: "direct", measure: async () => (await load("bulk", 0, ports.source, ["--direct", "1"])).mibps },
      ],
      baseline: ["squid", "tinyproxy"],
      target: 1.5,
    });
  }
  for (const [id, streams] of [["hbone1", 1], ["hbone100", 100]] as const) {
    if (!ONLY.has(id)) continue;
    scenarios.push({
      id,
      unit: "MiB/s",
      entries: [
        { name: "edgemux", measure: () => goUpload(emHbone, streams) },
        { name: "go-x-net-http2", measure: () => goUpload(goPort, streams) },
      ],
      baseline: ["go-x-net-http2"],
      target: 1.0,
    });
  }

  const results: Record<string, unknown>[] = [];
  const lines: string[] = [`# edgemux forward-proxy benchmarks (${new Date().toISOString()})`, "", `rounds ${ROUNDS}, ${SECONDS} s per HTTP/1.1 measurement, ${HBONE_MIB} MiB per HBONE measurement; edgemux workers ${WORKERS}; squid 1 worker; machine: ${navigator.hardwareConcurrency} CPUs`, ""];
  lines.push("| scenario | entry | median | samples | ratio edgemux ÷ baseline (median of rounds) | target |", "|---|---|---|---|---|---|");
  for (const sc of scenarios) {
    for (const e of sc.entries) await e.measure().catch(() => 0); // warm-up, unrecorded
    const samples: Record<string, number[]> = Object.fromEntries(sc.entries.map((e) => [e.name, []]));
    const ratios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const round: Record<string, number> = {};
      for (const e of sc.entries) {
        let v = 0;
        try {
          v = await e.measure();
        } catch (err) {
          console.error(`${sc.id} ${e.name}: ${(err as Error).message}`);
        }
        round[e.name] = v;
        samples[e.name]!.push(v);
      }
      const base = Math.max(...sc.baseline.filter((b) => b in round).map((b) => round[b]!));
      if (base > 0) ratios.push(round.edgemux! / base);
      console.log(`${sc.id} round ${r + 1}: ${Object.entries(round).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ")}`);
    }
    const ratio = median(ratios);
    for (const e of sc.entries) {
      const m = median(samples[e.name]!);
      const isEm = e.name === "edgemux";
      lines.push(`| ${sc.id} | ${e.name} | ${m.toFixed(1)} ${sc.unit} | ${samples[e.name]!.map((x) => x.toFixed(0)).join(", ")} | ${isEm ? `${ratio.toFixed(2)}× (${sc.baseline.join(" / ")})` : ""} | ${isEm ? `≥ ${sc.target}× ${ratio >= sc.target ? "met" : "NOT met"}` : ""} |`);
    }
    results.push({ scenario: sc.id, unit: sc.unit, samples, ratios, ratio, target: sc.target, baseline: sc.baseline });
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  writeFileSync(join(OUT, `connect-${stamp}.json`), JSON.stringify({ rounds: ROUNDS, seconds: SECONDS, hboneMib: HBONE_MIB, workers: WORKERS, results }, null, 2));
  writeFileSync(join(OUT, `connect-${stamp}.md`), lines.join("\n") + "\n");
  console.log("\n" + lines.join("\n"));
  console.log(`\nresults: ${join(OUT, `connect-${stamp}.json`)}`);
}

function writeConf(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

try {
  await main();
} finally {
  for (const p of procs) p.kill("SIGTERM");
}
process.exit(0);
