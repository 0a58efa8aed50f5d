/**
 * Reverse-tunnel benchmarks (issue 4, section 5), all in one run so each
 * result is a ratio of measurements taken minutes apart on this machine:
 *
 *   bun bench/tunnel_bench.ts [--only bulk,ssh,http,fairness,memory,xworker] [--rounds 3] [--seconds 3] [--json out.json] [--out DIR]
 *
 * Processes: `edgemux serve` (one worker: the machine has two cores for
 * everything), a destination agent and a source agent (`edgemux agent`), the
 * backend and the load client, each its own process, on 127.0.0.1.
 *
 *   bulk      one TCP stream, client ← source agent ← edge ← destination agent ← backend,
 *             bench/tools/tcp_client.ts + tcp_backend.ts (bulk mode), against
 *             the same client reading the backend directly.      target ≥ 0.5× direct
 *   http      keep-alive HTTP request rate, wrk -t1 -c32 through the tunnel and
 *             direct, to a Bun.serve backend answering "ok".      reported
 *   fairness  1,000 concurrent streams, each downloading 64 KiB through the
 *             tunnel; per-stream completion times.               target p99 ≤ 3× median
 *   memory    edge RSS per idle agent session (300 sessions from one client
 *             process) and per idle relayed stream (2,000 held connections
 *             through a source → destination pair).              reported
 *   ssh       the public side of a reverse tunnel against OpenSSH's: one TCP stream,
 *             client → edge (a `tcp` listener routed to tunnel:bulk) → destination
 *             agent → backend, against client → sshd (remote forward) → `ssh -R`
 *             → backend; bytes per CPU-second of edge + agent ÷ sshd + ssh.
 *                                                                 target ≥ 1.0×
 *   xworker   the cross-worker data path: postMessage per chunk, postMessage
 *             batched per microtask (what src/worker/peer_link.ts does) and a
 *             SharedArrayBuffer ring, between two worker threads.  reported
 *
 * Rounds are interleaved (tunnel, direct, tunnel, direct, ...) and medians
 * reported. Results print as a table and one JSON line (`--json` writes it).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";

// ================================================================ cross-worker data path
//
// Two worker threads, a producer and a consumer, joined the three ways the
// design considers; the producer sends `total` bytes in `chunk`-byte pieces
// tagged with a stream id; the consumer takes each piece as a fresh buffer
// (what handing it to a Conn needs) and counts:
//   post        one postMessage per chunk, the chunk copied into an exact-size
//               ArrayBuffer and transferred (the simplest design)
//   post-batch  the same messages gathered per microtask turn into one
//               postMessage (what src/worker/peer_link.ts PeerLink does)
//   ring        a SharedArrayBuffer ring (8 MiB): records `length u32 | stream u32 | bytes`,
//               head and tail published with Atomics; the consumer is woken by one
//               postMessage "kick" only when it said it was going idle, the producer
//               likewise when the ring was full. No Atomics.wait (it would stall an
//               I/O worker's event loop). The consumer copies each record out (the
//               ring space is reused), so a chunk is copied twice, against once for post.
// Credit-based flow control (256 KiB per stream, as PeerLink) runs in the post variants.

type Mode = "post" | "post-batch" | "ring";
interface Job {
  role: "producer" | "consumer";
  mode: Mode;
  total: number;
  chunk: number;
  sab?: SharedArrayBuffer;
}

const RING = 8 * 1024 * 1024;
const WINDOW = 256 * 1024;
const HDR = 8;

// ---------------------------------------------------------------- ring

/** ctl: [0] head (bytes consumed, mod 2^32), [1] tail (bytes published), [2] consumer idle flag, [3] producer blocked flag. */
class Ring {
  readonly ctl: Int32Array;
  readonly data: Uint8Array;
  readonly mask = RING - 1;
  constructor(sab: SharedArrayBuffer) {
    this.ctl = new Int32Array(sab, 0, 4);
    this.data = new Uint8Array(sab, 16, RING);
  }
  static create(): SharedArrayBuffer {
    return new SharedArrayBuffer(16 + RING);
  }
  /** Copies `src` into the ring at position `pos` (wrapping). */
  put(pos: number, src: Uint8Array): void {
    const o = pos & this.mask;
    const first = Math.min(src.length, RING - o);
    this.data.set(first === src.length ? src : src.subarray(0, first), o);
    if (first < src.length) this.data.set(src.subarray(first), 0);
  }
  get(pos: number, out: Uint8Array): void {
    const o = pos & this.mask;
    const first = Math.min(out.length, RING - o);
    out.set(this.data.subarray(o, o + first), 0);
    if (first < out.length) out.set(this.data.subarray(0, out.length - first), first);
  }
}

const hdrBuf = new Uint8Array(HDR);
const hdrView = new DataView(hdrBuf.buffer);

function producerRing(job: Job, port: { postMessage(m: unknown): void; on(e: "message", f: (m: unknown) => void): void }): Promise<void> {
  const r = new Ring(job.sab!);
  const payload = new Uint8Array(job.chunk).fill(7);
  let sent = 0;
  return new Promise<void>((resolve) => {
    const pump = () => {
      while (sent < job.total) {
        const n = Math.min(job.chunk, job.total - sent);
        const need = HDR + n;
        const head = Atomics.load(r.ctl, 0) >>> 0;
        const tail = Atomics.load(r.ctl, 1) >>> 0;
        if (RING - ((tail - head) >>> 0) < need) {
          // Full: ask for a kick, then check again (the consumer may have freed space meanwhile).
          Atomics.store(r.ctl, 3, 1);
          const head2 = Atomics.load(r.ctl, 0) >>> 0;
          if (RING - ((tail - head2) >>> 0) < need) return;
          Atomics.store(r.ctl, 3, 0);
          continue;
        }
        hdrView.setUint32(0, n);
        hdrView.setUint32(4, 1);
        r.put(tail, hdrBuf);
        r.put(tail + HDR, n === payload.length ? payload : payload.subarray(0, n));
        Atomics.store(r.ctl, 1, (tail + need) | 0);
        sent += n;
        if (Atomics.load(r.ctl, 2) === 1 && Atomics.exchange(r.ctl, 2, 0) === 1) port.postMessage("kick");
      }
      resolve();
    };
    port.on("message", (m) => {
      if (m === "space") pump();
    });
    pump();
  });
}

function consumerRing(job: Job, port: { postMessage(m: unknown): void; on(e: "message", f: (m: unknown) => void): void }): Promise<number> {
  const r = new Ring(job.sab!);
  let got = 0;
  return new Promise<number>((resolve) => {
    const drain = () => {
      for (;;) {
        let head = Atomics.load(r.ctl, 0) >>> 0;
        let tail = Atomics.load(r.ctl, 1) >>> 0;
        while (head !== tail) {
          r.get(head, hdrBuf);
          const n = hdrView.getUint32(0);
          const out = new Uint8Array(n); // the chunk a Conn would be handed
          r.get(head + HDR, out);
          got += n;
          head = (head + HDR + n) >>> 0;
          if (head === tail) tail = Atomics.load(r.ctl, 1) >>> 0;
        }
        Atomics.store(r.ctl, 0, head | 0);
        if (Atomics.load(r.ctl, 3) === 1 && Atomics.exchange(r.ctl, 3, 0) === 1) port.postMessage("space");
        if (got >= job.total) return resolve(got);
        // Going idle: say so, then look once more (the producer may have published meanwhile).
        Atomics.store(r.ctl, 2, 1);
        if ((Atomics.load(r.ctl, 1) >>> 0) === head) return;
        Atomics.store(r.ctl, 2, 0);
      }
    };
    port.on("message", (m) => {
      if (m === "kick") drain();
    });
    drain();
  });
}

// ---------------------------------------------------------------- postMessage

interface DataMsg {
  t: "d";
  id: number;
  buf: ArrayBuffer;
}

function producerPost(job: Job, port: { postMessage(m: unknown, t?: ArrayBuffer[]): void; on(e: "message", f: (m: unknown) => void): void }): Promise<void> {
  const payload = new Uint8Array(job.chunk).fill(7);
  let sent = 0;
  let inFlight = 0;
  let batch: DataMsg[] = [];
  let transfers: ArrayBuffer[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    port.postMessage(batch, transfers);
    batch = [];
    transfers = [];
  };
  return new Promise<void>((resolve) => {
    const pump = () => {
      while (sent < job.total && inFlight < WINDOW) {
        const n = Math.min(job.chunk, job.total - sent);
        const buf = (n === payload.length ? payload : payload.subarray(0, n)).slice().buffer as ArrayBuffer;
        const m: DataMsg = { t: "d", id: 1, buf };
        if (job.mode === "post") port.postMessage(m, [buf]);
        else {
          batch.push(m);
          transfers.push(buf);
          if (!scheduled) {
            scheduled = true;
            queueMicrotask(flush);
          }
        }
        sent += n;
        inFlight += n;
      }
      if (sent >= job.total) resolve();
    };
    port.on("message", (m) => {
      const credits = Array.isArray(m) ? m : [m];
      for (const c of credits as { n: number }[]) inFlight -= c.n;
      pump();
    });
    pump();
  });
}

function consumerPost(job: Job, port: { postMessage(m: unknown): void; on(e: "message", f: (m: unknown) => void): void }): Promise<number> {
  let got = 0;
  let credit = 0;
  let scheduled = false;
  return new Promise<number>((resolve) => {
    const sendCredit = () => {
      scheduled = false;
      port.postMessage({ n: credit });
      credit = 0;
    };
    port.on("message", (m) => {
      const list = (Array.isArray(m) ? m : [m]) as DataMsg[];
      for (const d of list) {
        const chunk = new Uint8Array(d.buf); // transferred: already a fresh buffer, no copy
        got += chunk.length;
        credit += chunk.length;
      }
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(sendCredit);
      }
      if (got >= job.total) resolve(got);
    });
  });
}

// ---------------------------------------------------------------- worker side

if (!isMainThread && (workerData as Job | undefined)?.role) {
  // Worker side of the cross-worker measurement (this file is also the worker entry).
  const job = workerData as Job;
  const port = parentPort!;
  // The peer's port arrives first; then "go".
  port.once("message", async (peer: MessagePort) => {
    const p = {
      postMessage: (m: unknown, t?: ArrayBuffer[]) => peer.postMessage(m, t ?? []),
      on: (_e: "message", f: (m: unknown) => void) => peer.addEventListener("message", (e) => f((e as MessageEvent).data)),
    };
    peer.start();
    port.postMessage("ready");
    await new Promise<void>((r) => port.once("message", () => r()));
    const t0 = performance.now();
    if (job.role === "producer") {
      if (job.mode === "ring") await producerRing(job, p);
      else await producerPost(job, p);
      port.postMessage({ done: true });
    } else {
      const got = job.mode === "ring" ? await consumerRing(job, p) : await consumerPost(job, p);
      port.postMessage({ got, ms: performance.now() - t0 });
    }
  });
}

// ---------------------------------------------------------------- driver

export interface XworkerResult {
  mode: Mode;
  chunk: number;
  bytes: number;
  seconds: number;
  mbps: number;
  chunksPerSecond: number;
}

function once(w: Worker, pred: (m: unknown) => boolean): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const on = (m: unknown) => {
      if (!pred(m)) return;
      w.off("message", on);
      resolve(m);
    };
    w.on("message", on);
    w.once("error", reject);
  });
}

export async function measureXworker(mode: Mode, chunk: number, total: number): Promise<XworkerResult> {
  const sab = mode === "ring" ? Ring.create() : undefined;
  const url = new URL(import.meta.url);
  const prod = new Worker(url, { workerData: { role: "producer", mode, total, chunk, sab } satisfies Job });
  const cons = new Worker(url, { workerData: { role: "consumer", mode, total, chunk, sab } satisfies Job });
  const ch = new MessageChannel();
  const readyP = once(prod, (m) => m === "ready");
  const readyC = once(cons, (m) => m === "ready");
  prod.postMessage(ch.port1, [ch.port1 as never]);
  cons.postMessage(ch.port2, [ch.port2 as never]);
  await Promise.all([readyP, readyC]);
  const result = once(cons, (m) => typeof m === "object" && m !== null && "got" in m) as Promise<{ got: number; ms: number }>;
  const t0 = performance.now();
  cons.postMessage("go");
  prod.postMessage("go");
  const r = await result;
  const seconds = (performance.now() - t0) / 1000;
  await prod.terminate();
  await cons.terminate();
  return { mode, chunk, bytes: r.got, seconds, mbps: r.got / seconds / 1e6, chunksPerSecond: r.got / chunk / seconds };
}

// ================================================================ end-to-end scenarios

const self = fileURLToPath(import.meta.url);
const root = fileURLToPath(new URL("..", import.meta.url));
const log = (s: string) => process.stderr.write(`${s}\n`);

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(Math.ceil((p / 100) * s.length) - 1, 0)]!;
};

/** A child process whose stdout/stderr lines we keep and can wait on. */
class Proc {
  readonly lines: string[] = [];
  private waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  exitCode: number | null = null;
  constructor(readonly name: string, readonly child: ChildProcess) {
    for (const s of [child.stdout, child.stderr]) {
      if (!s) continue;
      let rest = "";
      s.setEncoding("utf8");
      s.on("data", (d: string) => {
        rest += d;
        let i;
        while ((i = rest.indexOf("\n")) >= 0) {
          const line = rest.slice(0, i);
          rest = rest.slice(i + 1);
          this.lines.push(line);
          if (this.lines.length > 500) this.lines.shift();
          this.waiters = this.waiters.filter((w) => (w.pred(line) ? (w.resolve(line), false) : true));
        }
      });
    }
    child.on("exit", (c) => (this.exitCode = c ?? -1));
  }
  wait(pred: (l: string) => boolean, ms = 30_000): Promise<string> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name}: timed out; last lines:\n${this.lines.slice(-10).join("\n")}`)), ms);
      this.waiters.push({ pred, resolve: (l) => (clearTimeout(t), resolve(l)) });
    });
  }
  json(pred: (o: Record<string, unknown>) => boolean, ms = 30_000): Promise<Record<string, unknown>> {
    return this.wait((l) => {
      try {
        return pred(JSON.parse(l));
      } catch {
        return false;
      }
    }, ms).then((l) => JSON.parse(l));
  }
  async stop(): Promise<void> {
    if (this.exitCode !== null) return;
    this.child.kill("SIGTERM");
    const t = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await new Promise((r) => this.child.once("exit", r));
    clearTimeout(t);
  }
}

const procs = new Set<Proc>();
function start(name: string, argv: string[], opts: { stdin?: boolean } = {}): Proc {
  const c = spawn(argv[0]!, argv.slice(1), { stdio: [opts.stdin ? "pipe" : "ignore", "pipe", "pipe"], cwd: root });
  const p = new Proc(name, c);
  procs.add(p);
  c.on("exit", () => procs.delete(p));
  return p;
}
process.on("exit", () => {
  for (const p of procs) p.child.kill("SIGKILL");
});

function rss(pid: number): number {
  const { readFileSync } = require("node:fs") as typeof import("node:fs");
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

const hex = (s: string) => createHash("sha256").update(s).digest("hex");

interface Setup {
  edge: Proc;
  edgePort: number;
  dest: Proc;
  src: Proc;
  forwards: Record<string, number>;
  ca: string;
}

/**
 * Edge + destination agent (exposing `exposes`) + source agent (forwarding each).
 * With `publicService`, the edge also has a `tcp` listener "public" whose route
 * targets tunnel:<publicService> (its port is in `forwards.public`).
 */
async function setup(dir: string, exposes: Record<string, number>, maxStreams = 4096, publicService?: string): Promise<Setup> {
  const pki = makePki(dir);
  const publicToml = publicService
    ? `
[[listeners]]
name = "public"
kind = "tcp"
address = "127.0.0.1:0"
[[routes]]
name = "public"
match = "*"
listeners = ["public"]
targets = ["tunnel:${publicService}"]
`
    : "";
  const toml = `
workers = 1
[log]
level = "warn"
connections = false
[admin]
address = "off"
[[listeners]]
name = "tunnel"
kind = "tunnel"
address = "127.0.0.1:0"
max_streams = ${maxStreams}
[listeners.tls]
cert = "${pki.cert}"
key = "${pki.key}"
[[tokens]]
name = "bench"
sha256 = "${hex("bench-secret")}"
roles = ["source", "destination"]
${publicToml}`;
  writeFileSync(join(dir, "edge.toml"), toml);
  const edge = start("edge", [process.execPath, join(root, "src/cli/main.ts"), "serve", "--config", join(dir, "edge.toml"), "--log-format", "json"]);
  const ready = await edge.json((o) => o.msg === "ready");
  const edgePort = Number(String((ready.listeners as Record<string, string>).tunnel).split(":").pop());
  // info: the "connected to the edge" line says when each agent is up (a handful of lines per run).
  const common = ["--edge", `127.0.0.1:${edgePort}`, "--servername", "localhost", "--ca", pki.ca, "--token", "bench-secret", "--log-format", "json", "--log-level", "info"];
  const dest = start("dest", [process.execPath, join(root, "src/cli/main.ts"), "agent", ...common, "--name", "bench-dest", ...Object.entries(exposes).flatMap(([n, p]) => ["--expose", `${n}=127.0.0.1:${p}`])]);
  const src = start("src", [process.execPath, join(root, "src/cli/main.ts"), "agent", ...common, "--name", "bench-src", ...Object.keys(exposes).flatMap((n) => ["--forward", `127.0.0.1:0=${n}`])]);
  const [, srcReady] = await Promise.all([dest.json((o) => o.msg === "ready"), src.json((o) => o.msg === "ready")]);
  const forwards: Record<string, number> = {};
  for (const f of srcReady.forwards as { listen: string; service: string }[]) forwards[f.service] = Number(f.listen.split(":").pop());
  if (publicService) forwards.public = Number(String((ready.listeners as Record<string, string>).public).split(":").pop());
  // Both agents welcomed (one worker: the destination's services are then known to the source's session).
  await Promise.all([dest.json((o) => o.msg === "connected to the edge"), src.json((o) => o.msg === "connected to the edge")]);
  return { edge, edgePort, dest, src, forwards, ca: pki.ca };
}

async function teardown(s: Setup): Promise<void> {
  await Promise.all([s.src.stop(), s.dest.stop(), s.edge.stop()]);
}

function makePki(dir: string): { cert: string; key: string; ca: string } {
  const { execFileSync } = require("node:child_process") as typeof import("node:child_process");
  const o = (...a: string[]) => execFileSync("openssl", a, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  o("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=bench CA", "-keyout", "ca.key", "-out", "ca.crt");
  writeFileSync(join(dir, "ext"), "subjectAltName=DNS:localhost\n");
  o("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost", "-keyout", "edge.key", "-out", "edge.csr");
  o("x509", "-req", "-in", "edge.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "1", "-days", "2", "-extfile", "ext", "-out", "edge.crt");
  return { cert: join(dir, "edge.crt"), key: join(dir, "edge.key"), ca: join(dir, "ca.crt") };
}

function runJson(name: string, argv: string[], ms: number): Promise<Record<string, unknown>> {
  const p = start(name, argv);
  return Promise.race([
    p.json((o) => "ok" in o || "gbps" in o || "p50Ms" in o || "requests" in o, ms),
    new Promise<never>((_, rej) => p.child.once("exit", (c) => setTimeout(() => rej(new Error(`${name} exited ${c}: ${p.lines.slice(-5).join(" | ")}`)), 200))),
  ]);
}

// ---------------------------------------------------------------- bulk

async function benchBulk(dir: string, rounds: number, seconds: number) {
  // tcp_backend exits when its stdin ends: keep a pipe open.
  const backend = start("tcp_backend", [process.execPath, join(root, "bench/tools/tcp_backend.ts"), "--mode", "bulk"], { stdin: true });
  const b = await backend.json((o) => o.ready === true);
  const bport = Number(b.port);
  const s = await setup(dir, { bulk: bport });
  const tunnel: number[] = [];
  const direct: number[] = [];
  const client = (port: number) =>
    runJson("tcp_client", [process.execPath, join(root, "bench/tools/tcp_client.ts"), "--mode", "bulk", "--port", String(port), "--streams", "1", "--seconds", String(seconds)], (seconds + 30) * 1000);
  try {
    await client(s.forwards.bulk!); // warm-up, unrecorded
    for (let r = 0; r < rounds; r++) {
      const t = await client(s.forwards.bulk!);
      const d = await client(bport);
      tunnel.push(Number(t.gbps));
      direct.push(Number(d.gbps));
      log(`bulk round ${r + 1}/${rounds}: tunnel ${Number(t.gbps).toFixed(2)} Gbit/s, direct ${Number(d.gbps).toFixed(2)} Gbit/s`);
    }
  } finally {
    await teardown(s);
    await backend.stop();
  }
  const ratios = tunnel.map((t, i) => t / direct[i]!);
  return { tunnelGbps: median(tunnel), directGbps: median(direct), ratio: median(ratios), target: 0.5, pass: median(ratios) >= 0.5, tunnel, direct };
}

// ---------------------------------------------------------------- reverse tunnel vs OpenSSH

/** CPU seconds (user + system) of a process and all its descendants, from /proc. */
function treeCpuSeconds(rootPids: number[]): number {
  const { readdirSync, readFileSync } = require("node:fs") as typeof import("node:fs");
  const parent = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields from 3 (state) on
      parent.set(Number(d), Number(f[1]));
      ticks.set(Number(d), Number(f[11]) + Number(f[12])); // utime, stime (fields 14, 15)
    } catch {
      // the process ended while we read
    }
  }
  const inTree = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = parent.get(p) ?? 0, hops++) if (rootPids.includes(p)) return true;
    return false;
  };
  let total = 0;
  for (const [pid, t] of ticks) if (inTree(pid)) total += t;
  return total / 100; // USER_HZ is 100 on Linux
}

/** Binds 127.0.0.1:0, closes it and returns the port (for sshd, which cannot report a port 0). */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** sshd on 127.0.0.1 with a throwaway host key and client key, and `ssh -R` forwarding to `backendPort`. */
async function startSsh(dir: string, backendPort: number): Promise<{ sshd: Proc; ssh: Proc; port: number }> {
  const { execFileSync } = require("node:child_process") as typeof import("node:child_process");
  const { existsSync } = require("node:fs") as typeof import("node:fs");
  const sshdBin = "/usr/sbin/sshd";
  if (!existsSync(sshdBin)) throw new Error("no /usr/sbin/sshd (Debian openssh-server; scripts/bench_deps.sh installs it)");
  mkdirSync("/run/sshd", { recursive: true }); // its privilege-separation directory
  const d = join(dir, "ssh");
  mkdirSync(d, { recursive: true });
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(d, "host")]);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(d, "client")]);
  const { readFileSync } = require("node:fs") as typeof import("node:fs");
  writeFileSync(join(d, "authorized_keys"), readFileSync(join(d, "client.pub")));
  const port = await freePort();
  // Bun 1.4.5's os.userInfo() says "unknown" for root here; id(1) reads the passwd entry.
  const user = execFileSync("id", ["-un"], { encoding: "utf8" }).trim();
  writeFileSync(
    join(d, "sshd_config"),
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${join(d, "host")}`,
      `PidFile ${join(d, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(d, "authorized_keys")}`,
      "StrictModes no",
      "UsePAM no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PermitRootLogin prohibit-password",
      "AllowTcpForwarding yes",
      // The same AEAD a TLS 1.3 session picks with AES-NI (AES-128-GCM): OpenSSH at its fastest.
      "Ciphers aes128-gcm@openssh.com",
      "LogLevel ERROR",
      "",
    ].join("\n"),
  );
  const sshd = start("sshd", [sshdBin, "-D", "-e", "-f", join(d, "sshd_config")]);
  // Wait until it accepts.
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = createConnection(port, "127.0.0.1", () => (c.destroy(), r(true)));
      c.on("error", () => r(false));
    });
    if (ok) break;
    if (i > 100 || sshd.exitCode !== null) throw new Error(`sshd did not start: ${sshd.lines.slice(-5).join(" | ")}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const ssh = start("ssh", [
    "ssh", "-N", "-p", String(port), "-i", join(d, "client"), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
    "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-c", "aes128-gcm@openssh.com", "-v",
    "-R", `127.0.0.1:0:127.0.0.1:${backendPort}`, `${user}@127.0.0.1`,
  ]);
  const line = await ssh.wait((l) => /Allocated port \d+ for remote forward/.test(l));
  return { sshd, ssh, port: Number(/Allocated port (\d+)/.exec(line)![1]) };
}

async function benchSsh(dir: string, rounds: number, seconds: number) {
  const backend = start("tcp_backend", [process.execPath, join(root, "bench/tools/tcp_backend.ts"), "--mode", "bulk"], { stdin: true });
  const b = await backend.json((o) => o.ready === true);
  const bport = Number(b.port);
  const s = await setup(dir, { bulk: bport }, 4096, "bulk");
  const o = await startSsh(dir, bport);
  const client = (port: number) =>
    runJson("tcp_client", [process.execPath, join(root, "bench/tools/tcp_client.ts"), "--mode", "bulk", "--port", String(port), "--streams", "1", "--seconds", String(seconds)], (seconds + 30) * 1000);
  /** One measurement: bytes moved per CPU-second of the given processes' trees, and the rate. */
  const measure = async (port: number, pids: number[]) => {
    const cpu0 = treeCpuSeconds(pids);
    const r = await client(port);
    const cpu = treeCpuSeconds(pids) - cpu0;
    return { gbps: Number(r.gbps), bytes: Number(r.bytes), cpuS: cpu, bytesPerCpuS: cpu > 0 ? Number(r.bytes) / cpu : Number.NaN };
  };
  const edgemuxPids = [s.edge.child.pid!, s.dest.child.pid!];
  const sshPids = [o.sshd.child.pid!, o.ssh.child.pid!];
  const em: Awaited<ReturnType<typeof measure>>[] = [];
  const os: Awaited<ReturnType<typeof measure>>[] = [];
  try {
    await client(s.forwards.public!); // warm-up, unrecorded
    await client(o.port);
    for (let r = 0; r < rounds; r++) {
      const e = await measure(s.forwards.public!, edgemuxPids);
      const h = await measure(o.port, sshPids);
      em.push(e);
      os.push(h);
      log(`ssh round ${r + 1}/${rounds}: edgemux ${e.gbps.toFixed(2)} Gbit/s at ${(e.bytesPerCpuS / 1e9).toFixed(2)} GB/CPU-s, ssh -R ${h.gbps.toFixed(2)} Gbit/s at ${(h.bytesPerCpuS / 1e9).toFixed(2)} GB/CPU-s`);
    }
  } finally {
    await Promise.all([o.ssh.stop(), o.sshd.stop()]);
    await teardown(s);
    await backend.stop();
  }
  const perCpuRatio = median(em.map((e, i) => e.bytesPerCpuS / os[i]!.bytesPerCpuS));
  const rateRatio = median(em.map((e, i) => e.gbps / os[i]!.gbps));
  return {
    edgemuxGbps: median(em.map((e) => e.gbps)),
    sshGbps: median(os.map((e) => e.gbps)),
    edgemuxBytesPerCpuS: median(em.map((e) => e.bytesPerCpuS)),
    sshBytesPerCpuS: median(os.map((e) => e.bytesPerCpuS)),
    perCpuRatio,
    rateRatio,
    target: 1.0,
    pass: perCpuRatio >= 1.0,
    rounds: { edgemux: em, ssh: os },
  };
}

// ---------------------------------------------------------------- http keep-alive

async function benchHttp(dir: string, rounds: number, seconds: number) {
  const backend = start("http_backend", [process.execPath, self, "--role", "http-backend"]);
  const b = await backend.json((o) => o.ready === true);
  const bport = Number(b.port);
  const s = await setup(dir, { http: bport });
  const wrk = async (port: number) => {
    const p = start("wrk", ["wrk", "-t1", "-c32", `-d${seconds}s`, "--timeout", "5s", "-s", join(root, "bench/tools/wrk_report.lua"), `http://127.0.0.1:${port}/`]);
    const line = await p.wait((l) => l.startsWith("WRKJSON "), (seconds + 30) * 1000);
    const o = JSON.parse(line.slice(8));
    await new Promise((r) => (p.exitCode !== null ? r(null) : p.child.once("exit", r)));
    return { rps: o.requests / (o.duration_us / 1e6), p50Us: o.lat_p50_us, p99Us: o.lat_p99_us, errors: (o.connect_errors ?? 0) + (o.read_errors ?? 0) + (o.status_errors ?? 0) + (o.timeouts ?? 0) };
  };
  const tunnel: { rps: number; p50Us: number; p99Us: number; errors: number }[] = [];
  const direct: typeof tunnel = [];
  try {
    await wrk(s.forwards.http!);
    for (let r = 0; r < rounds; r++) {
      tunnel.push(await wrk(s.forwards.http!));
      direct.push(await wrk(bport));
      log(`http round ${r + 1}/${rounds}: tunnel ${tunnel[r]!.rps.toFixed(0)} req/s, direct ${direct[r]!.rps.toFixed(0)} req/s`);
    }
  } finally {
    await teardown(s);
    await backend.stop();
  }
  return {
    tunnelRps: median(tunnel.map((x) => x.rps)),
    directRps: median(direct.map((x) => x.rps)),
    ratio: median(tunnel.map((t, i) => t.rps / direct[i]!.rps)),
    tunnelP50Us: median(tunnel.map((x) => x.p50Us)),
    tunnelP99Us: median(tunnel.map((x) => x.p99Us)),
    errors: tunnel.reduce((n, x) => n + x.errors, 0),
  };
}

// ---------------------------------------------------------------- fairness

async function benchFairness(dir: string, rounds: number) {
  const backend = start("fair_backend", [process.execPath, self, "--role", "fair-backend"]);
  const b = await backend.json((o) => o.ready === true);
  const s = await setup(dir, { fair: Number(b.port) });
  const results: { p50Ms: number; p99Ms: number; maxMs: number; ratio: number; failed: number }[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const o = await runJson("fair_client", [process.execPath, self, "--role", "fair-client", "--port", String(s.forwards.fair), "--streams", "1000", "--bytes", String(64 * 1024)], 120_000);
      results.push(o as never);
      log(`fairness round ${r + 1}/${rounds}: p50 ${Number(o.p50Ms).toFixed(0)} ms, p99 ${Number(o.p99Ms).toFixed(0)} ms (${Number(o.ratio).toFixed(2)}×), failed ${o.failed}`);
    }
  } finally {
    await teardown(s);
    await backend.stop();
  }
  const ratio = median(results.map((x) => x.ratio));
  return { streams: 1000, bytesPerStream: 64 * 1024, p50Ms: median(results.map((x) => x.p50Ms)), p99Ms: median(results.map((x) => x.p99Ms)), ratio, target: 3, pass: ratio <= 3, failed: results.reduce((n, x) => n + x.failed, 0) };
}

// ---------------------------------------------------------------- memory

async function benchMemory(dir: string) {
  const SESSIONS = 300;
  const STREAMS = 2000;
  const hold = start("hold_backend", [process.execPath, join(root, "bench/tools/tcp_backend.ts"), "--mode", "hold"], { stdin: true });
  const hb = await hold.json((o) => o.ready === true);
  const s = await setup(dir, { hold: Number(hb.port) });
  try {
    const settle = () => new Promise((r) => setTimeout(r, 1500));
    await settle();
    const before = rss(s.edge.child.pid!);
    const sess = start("sessions", [process.execPath, self, "--role", "sessions", "--port", String(s.edgePort), "--ca", s.ca, "--count", String(SESSIONS)], { stdin: true });
    await sess.json((o) => o.sessions !== undefined, 120_000);
    await settle();
    const withSessions = rss(s.edge.child.pid!);
    sess.child.stdin!.end();
    await sess.stop();
    await settle();
    const beforeStreams = rss(s.edge.child.pid!);
    const idle = start("idle_client", [process.execPath, join(root, "bench/tools/tcp_client.ts"), "--mode", "idle", "--port", String(s.forwards.hold), "--conns", String(STREAMS), "--concurrency", "128", "--hold-max", "120"], { stdin: true });
    const ir = await idle.json((o) => "ready" in o, 120_000);
    await settle();
    const withStreams = rss(s.edge.child.pid!);
    idle.child.stdin!.write("close\n");
    await idle.stop();
    return {
      sessions: SESSIONS,
      edgeBytesPerIdleSession: Math.round((withSessions - before) / SESSIONS),
      streams: Number(ir.ready),
      edgeBytesPerIdleStream: Math.round((withStreams - beforeStreams) / Math.max(1, Number(ir.ready))),
      note: "RSS delta of the edge process (one worker) divided by the count; a relayed stream on the edge is two mux streams (source session, destination session) and a relay",
    };
  } finally {
    await teardown(s);
    await hold.stop();
  }
}

// ---------------------------------------------------------------- roles (child processes)

async function roleHttpBackend(): Promise<void> {
  // deno-lint-ignore no-explicit-any
  const B = (globalThis as any).Bun;
  const server = B.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("ok") });
  console.log(JSON.stringify({ ready: true, port: server.port }));
}

/** Per connection: read an 8-byte big-endian size, send that many bytes, close. */
function roleFairBackend(): void {
  const payload = Buffer.alloc(1 << 16, 0x61);
  const server = createServer({ noDelay: true }, (sock: Socket) => {
    let hdr = Buffer.alloc(0);
    sock.on("error", () => {});
    sock.on("data", (d: Buffer) => {
      if (hdr === null) return;
      hdr = Buffer.concat([hdr, d]);
      if (hdr.length < 8) return;
      let left = Number(hdr.readBigUInt64BE(0));
      hdr = null as never;
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, payload.length);
          left -= n;
          if (!sock.write(n === payload.length ? payload : payload.subarray(0, n))) return void sock.once("drain", pump);
        }
        sock.end();
      };
      pump();
    });
  });
  server.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ ready: true, port: (server.address() as { port: number }).port })));
}

/** Opens N connections at once, each asks for B bytes; reports completion-time percentiles from the common start. */
async function roleFairClient(): Promise<void> {
  const port = Number(arg("port", "0"));
  const n = Number(arg("streams", "1000"));
  const bytes = Number(arg("bytes", String(64 * 1024)));
  const req = Buffer.alloc(8);
  req.writeBigUInt64BE(BigInt(bytes));
  const socks: Socket[] = [];
  // Connect all first (bounded concurrency), then start every request at one instant.
  for (let i = 0; i < n; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, n - i) }, () => new Promise<void>((resolve) => {
      const s = createConnection({ host: "127.0.0.1", port, noDelay: true });
      s.on("error", () => {});
      s.once("connect", () => resolve());
      s.once("error", () => resolve());
      socks.push(s);
    })));
  }
  const t0 = performance.now();
  const times = await Promise.all(socks.map((s) => new Promise<number>((resolve) => {
    let got = 0;
    s.on("data", (d: Buffer) => {
      got += d.length;
    });
    s.on("close", () => resolve(got === bytes ? performance.now() - t0 : -1));
    s.write(req);
  })));
  const ok = times.filter((t) => t >= 0);
  const p50 = pct(ok, 50);
  const p99 = pct(ok, 99);
  console.log(JSON.stringify({ ok: true, p50Ms: p50, p99Ms: p99, maxMs: Math.max(...ok), ratio: p99 / p50, failed: n - ok.length }));
  process.exit(0);
}

/** Holds `count` idle agent sessions (source role, no services) until stdin closes. */
async function roleSessions(): Promise<void> {
  const { readFileSync } = await import("node:fs");
  const { dialEdge } = await import("../src/agent/dial.ts");
  const { AgentSession } = await import("../src/agent/session.ts");
  const { MuxTicker } = await import("../src/mux/mod.ts");
  const runtime = (await import("../src/runtime/mod.ts")).detectRuntime();
  const port = Number(arg("port", "0"));
  const count = Number(arg("count", "100"));
  const ca = readFileSync(arg("ca", ""), "utf8");
  const ticker = new MuxTicker(1000);
  const cfg = { edge: { hostname: "127.0.0.1", port }, servername: "localhost", transport: "upgrade", token: "bench-secret", ca, cert: null, key: null, connectTimeoutMs: 10_000 } as never;
  let welcomed = 0;
  const keep: unknown[] = [];
  const events = { welcome: () => welcomed++, refused() {}, goAway() {}, incoming() {}, closed() {} };
  for (let i = 0; i < count; i += 20) {
    await Promise.all(Array.from({ length: Math.min(20, count - i) }, async (_, k) => {
      const d = await dialEdge(cfg, (o) => runtime.connect(o));
      keep.push(new AgentSession(d, { agent: `idle-${i + k}`, roles: ["source"], services: [] }, events as never, ticker, { openTimeoutMs: 10_000, helloTimeoutMs: 10_000, streamWindow: 262_144, maxStreams: 1_000 }));
    }));
  }
  for (let i = 0; i < 2000 && welcomed < count; i++) await new Promise((r) => setTimeout(r, 10));
  console.log(JSON.stringify({ sessions: welcomed }));
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
}

// ---------------------------------------------------------------- xworker

async function benchXworker() {
  const out: XworkerResult[] = [];
  for (const chunk of [64 * 1024, 4 * 1024]) {
    for (const mode of ["post", "post-batch", "ring"] as const) {
      const r = await measureXworker(mode, chunk, chunk === 65536 ? 1024 * 1024 * 1024 : 128 * 1024 * 1024);
      out.push(r);
      log(`xworker ${mode.padEnd(10)} ${String(chunk).padStart(6)} B chunks: ${r.mbps.toFixed(0)} MB/s, ${(r.chunksPerSecond / 1000).toFixed(0)}k chunks/s`);
    }
  }
  return out;
}

// ---------------------------------------------------------------- driver

async function driver(): Promise<void> {
  const only = arg("only", "bulk,ssh,http,fairness,memory,xworker").split(",");
  const rounds = Math.max(1, Number(arg("rounds", "3")));
  const seconds = Math.max(1, Number(arg("seconds", "3")));
  const dir = mkdtempSync(join(tmpdir(), "edgemux-tunnel-bench-"));
  const result: Record<string, unknown> = { bench: "tunnel", runtime: `bun ${process.versions.bun ?? "?"}`, rounds, seconds, cores: require("node:os").cpus().length };
  if (only.includes("bulk")) result.bulk = await benchBulk(dir, rounds, seconds);
  if (only.includes("ssh")) result.ssh = await benchSsh(dir, rounds, seconds);
  if (only.includes("http")) result.http = await benchHttp(dir, rounds, seconds);
  if (only.includes("fairness")) result.fairness = await benchFairness(dir, rounds);
  if (only.includes("memory")) result.memory = await benchMemory(dir);
  if (only.includes("xworker")) result.xworker = await benchXworker();
  const rows: string[] = ["| measurement | result | target |", "|---|---:|---|"];
  const b = result.bulk as Awaited<ReturnType<typeof benchBulk>> | undefined;
  if (b) rows.push(`| bulk, one stream through the edge relay ÷ direct TCP | ${b.ratio.toFixed(2)}× (${b.tunnelGbps.toFixed(2)} vs ${b.directGbps.toFixed(2)} Gbit/s) | ≥ 0.5× ${b.pass ? "pass" : "**miss**"} |`);
  const sh = result.ssh as Awaited<ReturnType<typeof benchSsh>> | undefined;
  if (sh) rows.push(`| reverse tunnel, one stream: bytes per CPU-s of edge + agent ÷ sshd + \`ssh -R\` | ${sh.perCpuRatio.toFixed(2)}× (${(sh.edgemuxBytesPerCpuS / 1e9).toFixed(2)} vs ${(sh.sshBytesPerCpuS / 1e9).toFixed(2)} GB per CPU-s; rate ${sh.rateRatio.toFixed(2)}×, ${sh.edgemuxGbps.toFixed(2)} vs ${sh.sshGbps.toFixed(2)} Gbit/s) | ≥ 1.0× ${sh.pass ? "pass" : "**miss**"} |`);
  const h = result.http as Awaited<ReturnType<typeof benchHttp>> | undefined;
  if (h) rows.push(`| keep-alive HTTP through the tunnel | ${h.tunnelRps.toFixed(0)} req/s (direct ${h.directRps.toFixed(0)}, ${h.ratio.toFixed(2)}×; p50 ${(h.tunnelP50Us / 1000).toFixed(2)} ms, p99 ${(h.tunnelP99Us / 1000).toFixed(2)} ms) | reported |`);
  const f = result.fairness as Awaited<ReturnType<typeof benchFairness>> | undefined;
  if (f) rows.push(`| 1,000 concurrent streams × 64 KiB: p99 ÷ median completion | ${f.ratio.toFixed(2)}× (p50 ${f.p50Ms.toFixed(0)} ms, p99 ${f.p99Ms.toFixed(0)} ms, failed ${f.failed}) | ≤ 3× ${f.pass ? "pass" : "**miss**"} |`);
  const m = result.memory as Awaited<ReturnType<typeof benchMemory>> | undefined;
  if (m) rows.push(`| edge RSS per idle agent session / per idle relayed stream | ${m.edgeBytesPerIdleSession} B / ${m.edgeBytesPerIdleStream} B | reported |`);
  const x = result.xworker as XworkerResult[] | undefined;
  if (x) for (const r of x) rows.push(`| cross-worker ${r.mode}, ${r.chunk} B chunks | ${r.mbps.toFixed(0)} MB/s (${(r.chunksPerSecond / 1000).toFixed(0)}k chunks/s) | reported |`);
  const table = rows.join("\n");
  console.log(`\n${table}`);
  console.log(JSON.stringify(result));
  const jsonOut = arg("json", "");
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify(result, null, 2) + "\n");
  // --out DIR (bench/run.ts): <DIR>/<timestamp>.json and .md, the newest .md appended to the suite report.
  const outDir = arg("out", "");
  if (outDir) {
    mkdirSync(outDir, { recursive: true });
    const stamp = new Date().toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
    writeFileSync(join(outDir, `${stamp}.json`), JSON.stringify(result, null, 2) + "\n");
    writeFileSync(join(outDir, `${stamp}.md`), `# Reverse tunnel (bench/tunnel_bench.ts)\n\n${rounds} rounds × ${seconds} s, ${result.cores} cores shared by every process; medians.\n\n${table}\n`);
  }
  for (const p of procs) await p.stop();
  process.exit(0);
}

if (isMainThread) {
  switch (arg("role", "driver")) {
    case "http-backend":
      await roleHttpBackend();
      break;
    case "fair-backend":
      roleFairBackend();
      break;
    case "fair-client":
      await roleFairClient();
      break;
    case "sessions":
      await roleSessions();
      break;
    default:
      await driver();
  }
}
