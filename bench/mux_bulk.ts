/**
 * One smux stream, bulk, over loopback: edgemux's mux against Go's
 * github.com/xtaci/smux (Debian golang-github-xtaci-smux-dev) in one harness
 * and one run, interleaved, repeated; plus memory per idle session and stream.
 *
 *   bun bench/mux_bulk.ts [--bytes 1073741824] [--repeats 3] [--version 2] [--json out.json]
 *
 * Pairs (client → server), each a separate process on each side:
 *   go→go   Go smux source-client → Go smux sink-server   (the reference)
 *   em→em   edgemux source-client → edgemux sink-server   (target: ≥ 1.0× go→go)
 *   go→em, em→go   mixed, to show which side limits
 * The client sends an 8-byte length and that many bytes on one stream; the
 * server counts them and answers one byte; the client reports the time from
 * its first write to the answer. Both sides use the same smux settings (Go's
 * defaults: frame 32 KiB, stream window 64 KiB, session buffer 4 MiB).
 *
 * Memory (JS heap after a forced GC, in a `bun --expose-gc` child): sessions
 * over in-memory connection pairs, then streams on one session, minus the same
 * setup without them; per session end and per stream end.
 *
 * The Go peer is built by scripts/build_go_peers.sh into .tmp/go/.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { MuxSession, type MuxStream } from "../src/mux/mod.ts";
import { type Conn, type ConnHandler, memoryPair, detectRuntime } from "../src/runtime/mod.ts";

const runtime = detectRuntime();

const self = fileURLToPath(import.meta.url);
const root = fileURLToPath(new URL("..", import.meta.url));
const log = (s: string) => process.stderr.write(`${s}\n`);

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}

const noop: ConnHandler = { onData() {}, onDrain() {}, onEnd() {}, onClose() {} };

// ------------------------------------------------------------------ edgemux roles

/** Counts one stream's bytes after its 8-byte length; answers one byte at the end. */
function sinkStream(s: MuxStream): void {
  let header: Uint8Array | null = new Uint8Array(8);
  let headerHave = 0;
  let left = -1;
  s.setHandler({
    onData(_c, chunk) {
      let off = 0;
      if (header !== null) {
        const m = Math.min(8 - headerHave, chunk.length);
        header.set(chunk.subarray(0, m), headerHave);
        headerHave += m;
        off = m;
        if (headerHave < 8) return;
        left = Number(new DataView(header.buffer).getBigUint64(0, true));
        header = null;
      }
      left -= chunk.length - off;
      if (left === 0) {
        s.write(Uint8Array.of(1));
        s.end();
      }
    },
    onDrain() {},
    onEnd() {},
    onClose() {},
  });
}

function roleSinkServer(version: 1 | 2): void {
  const l = runtime.listen({
    address: { hostname: "127.0.0.1", port: 0 },
    onAccept(conn: Conn) {
      const s = new MuxSession(conn, { client: false, version });
      s.onStream = sinkStream;
      return s;
    },
  });
  console.log(`LISTEN 127.0.0.1:${l.port}`);
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
}

async function roleSourceClient(version: 1 | 2, port: number, total: number): Promise<void> {
  const conn = await runtime.connect({ address: { hostname: "127.0.0.1", port }, handler: noop, timeoutMs: 5000 });
  const session = new MuxSession(conn, { client: true, version });
  const s = session.openStream();
  // One immutable block, written again and again: the stream keeps views until framed, which is fine
  // because the bytes never change.
  const block = new Uint8Array(64 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    let left = total;
    const pumpOut = () => {
      while (left > 0) {
        const n = Math.min(left, block.length);
        left -= n;
        if (!s.write(n === block.length ? block : block.subarray(0, n))) return;
      }
    };
    s.setHandler({ onData: () => resolve(), onDrain: pumpOut, onEnd() {}, onClose() {} });
    const hdr = new Uint8Array(8);
    new DataView(hdr.buffer).setBigUint64(0, BigInt(total), true);
    s.write(hdr);
    pumpOut();
  });
  const seconds = (performance.now() - t0) / 1000;
  session.close();
  console.log(JSON.stringify({ ok: true, bytes: total, seconds }));
  process.exit(0);
}

// ------------------------------------------------------------------ memory role

async function settle(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !cond(); i++) await new Promise((r) => setTimeout(r, 0));
  if (!cond()) throw new Error("memory bench: setup did not settle");
}

function heap(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run the memory role with --expose-gc");
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

async function roleMem(version: 1 | 2): Promise<void> {
  const N = 5000;
  const keep: unknown[] = [];
  const pairs = Array.from({ length: N }, () => memoryPair());
  keep.push(pairs);
  const h0 = heap();
  const sessions: MuxSession[] = [];
  for (const [a, b] of pairs) {
    sessions.push(new MuxSession(a, { client: true, version }), new MuxSession(b, { client: false, version }));
  }
  // Each session sends nothing when idle; let any microtask work finish.
  await settle(() => true);
  const h1 = heap();
  const perSession = (h1 - h0) / (2 * N);

  const M = 20_000;
  const [a, b] = memoryPair();
  const client = new MuxSession(a, { client: true, version, maxStreams: M + 1 });
  const server = new MuxSession(b, { client: false, version, maxStreams: M + 1 });
  const accepted: MuxStream[] = [];
  server.onStream = (s) => {
    s.setHandler(noop);
    accepted.push(s);
  };
  await settle(() => true);
  const h2 = heap();
  const opened: MuxStream[] = [];
  for (let i = 0; i < M; i++) {
    const s = client.openStream();
    s.setHandler(noop);
    opened.push(s);
  }
  await settle(() => server.numStreams === M);
  // One tiny exchange per stream so each has seen a read and an UPD (v2), as a used idle stream has.
  for (const s of opened) s.write(Uint8Array.of(1));
  await settle(() => server.stats().framesIn >= 2 * M);
  const h3 = heap();
  const perStream = (h3 - h2) / (2 * M);
  keep.push(sessions, opened, accepted, client, server);
  console.log(JSON.stringify({ ok: true, sessions: N * 2, streams: M * 2, heapBytesPerIdleSession: perSession, heapBytesPerIdleStream: perStream }));
  process.exit(0);
}

// ------------------------------------------------------------------ driver

type Side = "go" | "em";
interface Run {
  pair: string;
  repeat: number;
  bytes: number;
  seconds: number;
  mbps: number;
}

function startServer(side: Side, version: number, goPeer: string, children: Set<ChildProcess>): Promise<{ port: number; stop(): void }> {
  const c = side === "go"
    ? spawn(goPeer, ["-mode", "sink-server", "-version", String(version)], { stdio: ["pipe", "pipe", "inherit"] })
    : spawn(process.execPath, [self, "--role", "sink-server", "--version", String(version)], { stdio: ["pipe", "pipe", "inherit"] });
  children.add(c);
  c.on("exit", () => children.delete(c));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${side} server did not start`)), 10_000);
    c.on("error", reject);
    c.stdout!.on("data", (d) => {
      out += d;
      const m = /^LISTEN \S+:(\d+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), stop: () => c.stdin!.end() });
      }
    });
  });
}

function runClient(side: Side, version: number, port: number, bytes: number, goPeer: string): Promise<{ bytes: number; seconds: number }> {
  const args = side === "go"
    ? [goPeer, "-mode", "source-client", "-connect", `127.0.0.1:${port}`, "-version", String(version), "-bytes", String(bytes)]
    : [process.execPath, self, "--role", "source-client", "--port", String(port), "--version", String(version), "--bytes", String(bytes)];
  return runJson(args);
}

function runJson(argv: string[]): Promise<{ bytes: number; seconds: number } & Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const c = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    c.stdout!.on("data", (d) => (out += d));
    c.on("error", reject);
    c.on("exit", (code) => {
      const line = out.trim().split("\n").pop() ?? "";
      try {
        const r = JSON.parse(line);
        if (!r.ok) throw new Error(r.error);
        resolve(r);
      } catch (e) {
        reject(new Error(`${argv.join(" ")} exited ${code}: ${(e as Error).message} ${out}`));
      }
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function driver(): Promise<void> {
  const bytes = Number(arg("bytes", String(1024 * 1024 * 1024)));
  const repeats = Math.max(3, Number(arg("repeats", "3")));
  const version = Number(arg("version", "2"));
  const jsonOut = arg("json", "");
  const build = spawnSync("bash", [`${root}scripts/build_go_peers.sh`], { encoding: "utf8" });
  if (build.status !== 0) throw new Error(`building the Go peer failed: ${build.stderr}`);
  const goPeer = build.stdout.trim().split("\n").pop()!;

  const children = new Set<ChildProcess>();
  const cleanup = () => {
    for (const c of children) c.kill();
  };
  process.on("exit", cleanup);

  const pairs: [Side, Side][] = [["go", "go"], ["em", "em"], ["go", "em"], ["em", "go"]];
  const runs: Run[] = [];
  for (let r = 0; r < repeats; r++) {
    // Interleaved: every pair once per round, the order rotated each round.
    for (let k = 0; k < pairs.length; k++) {
      const [cli, srv] = pairs[(k + r) % pairs.length]!;
      const pair = `${cli}→${srv}`;
      const server = await startServer(srv, version, goPeer, children);
      try {
        const res = await runClient(cli, version, server.port, bytes, goPeer);
        const mbps = res.bytes / res.seconds / 1e6;
        runs.push({ pair, repeat: r, bytes: res.bytes, seconds: res.seconds, mbps });
        log(`round ${r + 1}/${repeats} ${pair.padEnd(6)} ${mbps.toFixed(0).padStart(6)} MB/s (${res.seconds.toFixed(2)} s)`);
      } finally {
        server.stop();
      }
    }
  }
  const mem = await runJson([process.execPath, "--expose-gc", self, "--role", "mem", "--version", String(version)]);

  const byPair: Record<string, { medianMBps: number; runsMBps: number[] }> = {};
  for (const [cli, srv] of pairs) {
    const pair = `${cli}→${srv}`;
    const xs = runs.filter((x) => x.pair === pair).map((x) => x.mbps);
    byPair[pair] = { medianMBps: median(xs), runsMBps: xs };
  }
  const ratio = byPair["em→em"]!.medianMBps / byPair["go→go"]!.medianMBps;
  const result = {
    bench: "mux_bulk",
    version,
    bytesPerRun: bytes,
    repeats,
    runtime: `${runtime.name} ${runtime.version}`,
    pairs: byPair,
    ratioEdgemuxToGo: ratio,
    target: ">= 1.0",
    memory: {
      heapBytesPerIdleSession: Math.round(mem.heapBytesPerIdleSession as number),
      heapBytesPerIdleStream: Math.round(mem.heapBytesPerIdleStream as number),
    },
    runs,
  };
  console.log(`\n| pair (client→server) | median MB/s | runs |`);
  console.log(`|---|---:|---|`);
  for (const [pair, v] of Object.entries(byPair)) {
    console.log(`| ${pair} | ${v.medianMBps.toFixed(0)} | ${v.runsMBps.map((x) => x.toFixed(0)).join(", ")} |`);
  }
  console.log(`\nedgemux/Go (median em→em ÷ go→go): ${ratio.toFixed(2)}× (target ≥ 1.0×)`);
  console.log(`heap per idle session end: ${result.memory.heapBytesPerIdleSession} B; per idle stream end: ${result.memory.heapBytesPerIdleStream} B\n`);
  console.log(JSON.stringify(result));
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify(result, null, 2) + "\n");
  cleanup();
}

const role = arg("role", "driver");
const ver = Number(arg("version", "2")) as 1 | 2;
switch (role) {
  case "sink-server":
    roleSinkServer(ver);
    break;
  case "source-client":
    await roleSourceClient(ver, Number(arg("port", "0")), Number(arg("bytes", "0")));
    break;
  case "mem":
    await roleMem(ver);
    break;
  default:
    await driver();
}
