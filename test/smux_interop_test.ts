/**
 * Interop with Go's github.com/xtaci/smux (Debian golang-github-xtaci-smux-dev),
 * both ways, v1 and v2, over real sockets on 127.0.0.1:
 * - Go client → edgemux echo server, and edgemux client → Go echo server;
 * - 1,000 streams of random sizes at once, each checked by SHA-256;
 * - one big stream: 64 MiB by default, 1 GiB with EDGEMUX_LONG_TESTS=1.
 *
 * Go's peers (test/go/smux_peer.go) are built by scripts/build_go_peers.sh into .tmp/go/.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { MuxSession, type MuxStream, MuxTicker } from "../src/mux/mod.ts";
import { type Conn, type ConnHandler, type Listener, detectRuntime } from "../src/runtime/mod.ts";

const runtime = detectRuntime();

const root = fileURLToPath(new URL("..", import.meta.url));
const hasGo = spawnSync("go", ["version"]).status === 0;
const LONG = runtime.env("EDGEMUX_LONG_TESTS") === "1";
const BIG = LONG ? 1024 * 1024 * 1024 : 64 * 1024 * 1024;
const STREAMS = 1000;
const MAX_SIZE = 128 * 1024;

let peer = "";
const children = new Set<ChildProcess>();
const ticker = new MuxTicker(1000);

beforeAll(() => {
  if (!hasGo) return;
  const r = spawnSync("bash", [`${root}scripts/build_go_peers.sh`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`building the Go peers failed:\n${r.stderr}`);
  peer = r.stdout.trim().split("\n").pop()!;
}, 120_000);

afterAll(() => {
  for (const c of children) c.kill();
});

/** Runs a Go peer to completion; resolves with its JSON report. */
function runGo(args: string[]): Promise<{ ok: boolean; error?: string; bytes?: number; seconds?: number }> {
  return new Promise((resolve, reject) => {
    const c = spawn(peer, args, { stdio: ["ignore", "pipe", "pipe"] });
    children.add(c);
    let out = "";
    let err = "";
    c.stdout!.on("data", (d) => (out += d));
    c.stderr!.on("data", (d) => (err += d));
    c.on("error", reject);
    c.on("exit", () => {
      children.delete(c);
      const line = out.trim().split("\n").pop() ?? "";
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`Go peer ${args.join(" ")} printed ${JSON.stringify(out)} ${err}`));
      }
    });
  });
}

/** Starts a Go echo server; it exits when its stdin closes. */
function startGoServer(version: number): Promise<{ port: number; stop(): void }> {
  return new Promise((resolve, reject) => {
    const c = spawn(peer, ["-mode", "echo-server", "-version", String(version)], { stdio: ["pipe", "pipe", "inherit"] });
    children.add(c);
    let out = "";
    c.on("error", reject);
    c.on("exit", () => children.delete(c));
    c.stdout!.on("data", (d) => {
      out += d;
      const m = /^LISTEN \S+:(\d+)$/m.exec(out);
      if (m) resolve({ port: Number(m[1]), stop: () => c.stdin!.end() });
    });
  });
}

/** Echo for accepted streams, with backpressure both ways. */
const echoHandler: ConnHandler = {
  onData(c, chunk) {
    if (!c.write(chunk)) c.pause();
  },
  onDrain(c) {
    c.resume();
  },
  onEnd(c) {
    c.end();
  },
  onClose() {},
};

function listenEcho(version: 1 | 2): { listener: Listener; sessions: MuxSession[] } {
  const sessions: MuxSession[] = [];
  const listener = runtime.listen({
    address: { hostname: "127.0.0.1", port: 0 },
    onAccept(conn: Conn) {
      const s = new MuxSession(conn, { client: false, version, ticker });
      s.onStream = (st) => st.setHandler(echoHandler);
      sessions.push(s);
      return s;
    },
  });
  return { listener, sessions };
}

async function dialSession(port: number, version: 1 | 2): Promise<MuxSession> {
  const placeholder: ConnHandler = { onData() {}, onDrain() {}, onEnd() {}, onClose() {} };
  const conn = await runtime.connect({ address: { hostname: "127.0.0.1", port }, handler: placeholder, timeoutMs: 5000 });
  return new MuxSession(conn, { client: true, version, ticker });
}

/**
 * Sends `size` bytes (made by `chunkAt`) on a new stream, hashes the echo as it
 * arrives, half-closes once the whole echo is in (Go's echo ends on EOF), and
 * resolves with both hashes when the stream is closed.
 */
function echoThrough(
  session: MuxSession,
  size: number,
  chunkAt: (offset: number) => Uint8Array,
): Promise<{ sent: string; got: string; received: number; err?: Error }> {
  return new Promise((resolve) => {
    const s: MuxStream = session.openStream();
    const sent = createHash("sha256");
    const got = createHash("sha256");
    let off = 0;
    let received = 0;
    const pumpOut = () => {
      while (off < size) {
        const c = chunkAt(off);
        off += c.length;
        sent.update(c);
        if (!s.write(c)) return;
      }
    };
    s.setHandler({
      onData(_c, chunk) {
        got.update(chunk);
        received += chunk.length;
        if (received === size) s.end();
      },
      onDrain: pumpOut,
      onEnd() {},
      onClose(_c, err) {
        resolve({ sent: sent.digest("hex"), got: got.digest("hex"), received, err });
      },
    });
    pumpOut();
    if (size === 0) s.end();
  });
}

/** Random sizes (seeded) for the many-streams case, with the edge sizes always in. */
function sizes(seed: number): number[] {
  let x = seed;
  const out = [0, 1, 32767, 32768, 32769, 65536, MAX_SIZE];
  while (out.length < STREAMS) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out.push(x % (MAX_SIZE + 1));
  }
  return out;
}

/** A big stream's bytes: a random block, stamped with its offset so reordering shows. */
function bigChunker(): (off: number) => Uint8Array {
  const block = randomBytes(64 * 1024);
  return (off) => {
    // A fresh buffer per write: the stream keeps a view until the bytes are framed.
    const c = new Uint8Array(Math.min(block.length, BIG - off));
    c.set(block.subarray(0, c.length));
    if (c.length >= 8) new DataView(c.buffer).setFloat64(0, off, true);
    return c;
  };
}

for (const version of [1, 2] as const) {
  describe.skipIf(!hasGo)(`smux interop with Go, v${version}`, () => {
    test(`Go client → edgemux server: ${STREAMS} streams of random sizes, SHA-256 checked`, async () => {
      const { listener, sessions } = listenEcho(version);
      try {
        const r = await runGo([
          "-mode", "echo-client", "-connect", `127.0.0.1:${listener.port}`, "-version", String(version),
          "-streams", String(STREAMS), "-max-size", String(MAX_SIZE), "-seed", "7", "-timeout", "50s",
        ]);
        expect(r.error).toBeUndefined();
        expect(r.ok).toBe(true);
        expect(sessions.length).toBe(1);
        expect(sessions[0]!.stats().streamsAccepted).toBe(STREAMS);
      } finally {
        listener.close();
        for (const s of sessions) s.close();
      }
    }, 60_000);

    test(`edgemux client → Go server: ${STREAMS} streams of random sizes, SHA-256 checked`, async () => {
      const go = await startGoServer(version);
      const session = await dialSession(go.port, version);
      try {
        const all = sizes(11);
        const blocks = all.map((n) => randomBytes(n));
        const results = await Promise.all(
          all.map((n, i) => echoThrough(session, n, (off) => blocks[i]!.subarray(off, Math.min(n, off + 16 * 1024)))),
        );
        let bad = 0;
        for (const [i, r] of results.entries()) {
          if (r.err || r.received !== all[i] || r.sent !== r.got) bad++;
        }
        expect(bad).toBe(0);
        expect(session.closed).toBe(false);
        expect(session.numStreams).toBe(0);
      } finally {
        session.close();
        go.stop();
      }
    }, 60_000);

    test(`Go client → edgemux server: one ${BIG >> 20} MiB stream`, async () => {
      const { listener, sessions } = listenEcho(version);
      try {
        const t0 = performance.now();
        const r = await runGo([
          "-mode", "echo-client", "-connect", `127.0.0.1:${listener.port}`, "-version", String(version),
          "-streams", "1", "-bytes", String(BIG), "-timeout", "280s",
        ]);
        expect(r.error).toBeUndefined();
        expect(r.ok).toBe(true);
        expect(r.bytes).toBe(BIG);
        console.log(`v${version} Go client → edgemux, ${BIG >> 20} MiB echoed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      } finally {
        listener.close();
        for (const s of sessions) s.close();
      }
    }, 300_000);

    test(`edgemux client → Go server: one ${BIG >> 20} MiB stream`, async () => {
      const go = await startGoServer(version);
      const session = await dialSession(go.port, version);
      try {
        const t0 = performance.now();
        const r = await echoThrough(session, BIG, bigChunker());
        expect(r.err).toBeUndefined();
        expect(r.received).toBe(BIG);
        expect(r.got).toBe(r.sent);
        console.log(`v${version} edgemux client → Go, ${BIG >> 20} MiB echoed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      } finally {
        session.close();
        go.stop();
      }
    }, 300_000);
  });
}
