/**
 * The kernel relay ([relay] mode = "kernel": both sockets handed to a native
 * splice loop) and the JavaScript relay under the same scenarios, through a
 * real `edgemux serve` with a tcp listener:
 * - large transfers each way and both ways at once, checked by SHA-256;
 * - FIN in each direction (the other direction keeps flowing);
 * - a reset from either side, a slow reader (backpressure is the kernel's);
 * - idle timeout and the drain deadline close a relay the loop holds;
 * - an empty pipe pool leaves relays in JavaScript, and they still work;
 * - more bulk directions than the budget of enlarged (1 MiB) pipes: the rest
 *   keep the default size, and reused pipes are back at it;
 * - a fuzz of many connections that reset or half-close at random points;
 * - the outcome record (bytes each way, error) is the same in every mode, and
 *   the process's sockets and pipes return to their baseline (no leaks).
 * "kernel-late" promotes only after 64 KiB, so bulk scenarios move to the
 * kernel mid-stream; "kernel" at once (promote_after = 0).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readdirSync, readlinkSync } from "node:fs";
import net from "node:net";
import { type EdgemuxProcess, type LogLine, startEdgemux, waitFor } from "./support/edgemux.ts";

const MIB = 1024 * 1024;
const KERNEL = process.env.EDGEMUX_RUNTIME !== "deno";
const MODES = KERNEL ? (["js", "kernel", "kernel-late"] as const) : (["js"] as const);
type Mode = (typeof MODES)[number];
const MAX_PIPES = 16; // per worker: 8 kernel relays at once; the pool test opens more

/** Deterministic bytes: `n` of them from `seed`, in 64 KiB blocks (cheap to make, different per offset). */
function block(seed: number): Uint8Array {
  const b = new Uint8Array(65_536);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < b.length; i += 4) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x & 0xff;
    b[i + 1] = (x >>> 8) & 0xff;
    b[i + 2] = (x >>> 16) & 0xff;
    b[i + 3] = x >>> 24;
  }
  return b;
}
function* stream(n: number, seed: number): Generator<Uint8Array> {
  for (let off = 0, k = 0; off < n; off += 65_536, k++) yield block(seed + k).subarray(0, Math.min(65_536, n - off));
}
function shaOf(n: number, seed: number): string {
  const h = createHash("sha256");
  for (const b of stream(n, seed)) h.update(b);
  return h.digest("hex");
}

/** Writes a generator with backpressure, then optionally ends. */
async function writeAll(s: net.Socket, gen: Iterable<Uint8Array>, end: boolean): Promise<void> {
  for (const b of gen) {
    if (s.destroyed) return;
    if (!s.write(b)) await new Promise<void>((r) => s.once("drain", r).once("close", r));
  }
  if (end && !s.destroyed) s.end();
}

/**
 * The backend. The first line is a command:
 *   down N SEED   send N bytes, then FIN
 *   up            read until FIN, answer "<n> <sha256>", FIN
 *   echo          send back everything, FIN after the client's FIN
 *   finfirst N ID send N bytes and FIN at once, keep reading; record "<n> <sha>" under ID at the client's FIN
 *   rst N         send N bytes, then reset
 *   idle          nothing
 */
interface Backend {
  server: net.Server;
  port: number;
  recorded: Map<string, string>;
  /** "idle" commands seen (the relay of that connection is up). */
  idles: number;
}
function backend(): Promise<Backend> {
  const recorded = new Map<string, string>();
  const self = { idles: 0 };
  const server = net.createServer({ allowHalfOpen: true }, (c) => {
    c.on("error", () => {});
    let head = "";
    let mode = "";
    let n = 0;
    let id = "";
    const h = createHash("sha256");
    const body = (d: Buffer) => {
      if (mode === "echo") {
        if (!c.write(d)) {
          c.pause();
          c.once("drain", () => c.resume());
        }
        return;
      }
      n += d.length;
      h.update(d);
    };
    c.on("data", (d: Buffer) => {
      if (mode !== "") return body(d);
      head += d.toString("latin1");
      const nl = head.indexOf("\n");
      if (nl < 0) return;
      const [cmd, a, b] = head.slice(0, nl).split(" ");
      const rest = Buffer.from(head.slice(nl + 1), "latin1");
      mode = cmd!;
      if (cmd === "idle") self.idles++;
      if (cmd === "down") void writeAll(c, stream(Number(a), Number(b)), true);
      else if (cmd === "finfirst") {
        id = b!;
        void writeAll(c, stream(Number(a), 7), true);
      } else if (cmd === "rst") {
        void writeAll(c, stream(Number(a), 9), false).then(() => c.resetAndDestroy());
      }
      if (rest.length > 0) body(rest);
    });
    c.on("end", () => {
      if (mode === "up") c.end(`${n} ${h.digest("hex")}\n`);
      else if (mode === "echo") c.end();
      else if (mode === "finfirst") recorded.set(id, `${n} ${h.digest("hex")}`);
    });
  });
  return new Promise((r) =>
    server.listen(0, "127.0.0.1", () =>
      r({
        server,
        port: (server.address() as net.AddressInfo).port,
        recorded,
        get idles() {
          return self.idles;
        },
      })
    )
  );
}

interface ClientResult {
  localPort: number;
  got: number;
  sha: string;
  text: string;
  error: string | null;
}

/**
 * Connects, sends `head`, then runs `body`; collects everything read until
 * close, hashing it; `slow` pauses 20 ms after every MiB read.
 */
function client(port: number, head: string, body: (s: net.Socket) => Promise<void> | void, opts: { slow?: boolean; timeoutMs?: number; keepWriting?: boolean } = {}): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const h = createHash("sha256");
    let got = 0;
    let nextPause = MIB;
    let text = "";
    let error: string | null = null;
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`client timed out: ${head.trim()} got ${got}`));
    }, opts.timeoutMs ?? 30_000);
    let localPort = 0;
    s.on("connect", () => {
      localPort = s.localPort ?? 0; // read now: after the close it is gone
      s.write(head);
      void body(s);
    });
    s.on("data", (d: Buffer) => {
      got += d.length;
      h.update(d);
      if (text.length < 200) text += d.toString("latin1");
      if (opts.slow && got >= nextPause) {
        nextPause += MIB;
        s.pause();
        setTimeout(() => s.resume(), 20);
      }
    });
    // A peer's FIN ends our side too, unless the scenario keeps sending after it.
    if (!opts.keepWriting) {
      s.on("end", () => {
        if (!s.writableEnded) s.end();
      });
    }
    s.on("error", (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    s.on("close", () => {
      clearTimeout(t);
      resolve({ localPort, got, sha: h.digest("hex"), text, error });
    });
  });
}

function fds(pid: number): { sockets: number; pipes: number } {
  let sockets = 0;
  let pipes = 0;
  for (const f of readdirSync(`/proc/${pid}/fd`)) {
    let l = "";
    try {
      l = readlinkSync(`/proc/${pid}/fd/${f}`);
    } catch {
      continue;
    }
    if (l.startsWith("socket:")) sockets++;
    else if (l.startsWith("pipe:")) pipes++;
  }
  return { sockets, pipes };
}

function configFor(mode: Mode, backendPort: number, extra = ""): string {
  const relay = mode === "js" ? `mode = "js"` : `mode = "kernel"\nmax_pipes = ${MAX_PIPES}\npromote_after = ${mode === "kernel" ? 0 : 65_536}`;
  return `
workers = 1
drain_timeout = "1s"
[admin]
address = "127.0.0.1:0"
[relay]
${relay}

[[listeners]]
name = "bulk"
kind = "tcp"
address = "127.0.0.1:0"

[[listeners]]
name = "idle"
kind = "tcp"
address = "127.0.0.1:0"
idle_timeout = "1s"

[[routes]]
match = "*"
listeners = ["bulk", "idle"]
targets = ["127.0.0.1:${backendPort}"]
${extra}
`;
}

let be: Backend;
/** Per scenario name: per mode, the outcome record's bytes and error. */
const outcomes = new Map<string, Map<Mode, string>>();

beforeAll(async () => {
  be = await backend();
});
afterAll(() => {
  be.server.close();
});

for (const mode of MODES) {
  describe(`relay mode ${mode}`, () => {
    let em: EdgemuxProcess;
    let pid = 0;
    let port = 0;
    let idlePort = 0;
    let base = { sockets: 0, pipes: 0 };

    beforeAll(async () => {
      em = await startEdgemux(configFor(mode, be.port));
      pid = em.proc.pid!;
      port = em.hostPort("bulk").port;
      idlePort = em.hostPort("idle").port;
      // Warm up (first connection's allocations), then take the baseline.
      const r = await client(port, "down 1000 1\n", () => {});
      expect(r.got).toBe(1000);
      await outcome(r.localPort);
      base = fds(pid);
    });
    afterAll(async () => {
      await em?.stop();
    });

    if (mode !== "js") {
      test("the worker says the kernel relay is on", async () => {
        await em.waitForLine((l) => l.msg === "kernel relay on", 5_000);
      });
    }

    /** The connection's outcome record (its log line), found by the client's port. */
    function outcome(localPort: number): Promise<LogLine> {
      return em.waitForLine((l) => l.msg === "connection" && String(l.client).endsWith(`:${localPort}`), 10_000);
    }
    async function record(name: string, localPort: number, bytes = true): Promise<LogLine> {
      const line = await outcome(localPort);
      const key = bytes ? `in=${line.bytes_in} out=${line.bytes_out} error=${line.error}` : `error=${line.error}`;
      if (!outcomes.has(name)) outcomes.set(name, new Map());
      outcomes.get(name)!.set(mode, key);
      return line;
    }

    test("download 64 MiB, SHA-256 intact", async () => {
      const r = await client(port, `down ${64 * MIB} 11\n`, () => {});
      expect(r.got).toBe(64 * MIB);
      expect(r.sha).toBe(shaOf(64 * MIB, 11));
      const line = await record("download", r.localPort);
      expect(line.bytes_out).toBe(64 * MIB);
      expect(line.error).toBeNull();
    }, 60_000);

    test("upload 32 MiB then FIN (client half-closes first): the backend gets every byte", async () => {
      const r = await client(port, "up\n", (s) => writeAll(s, stream(32 * MIB, 21), true));
      expect(r.text.trim()).toBe(`${32 * MIB} ${shaOf(32 * MIB, 21)}`);
      const line = await record("upload", r.localPort);
      expect(line.bytes_in).toBe(32 * MIB + 3);
    }, 60_000);

    test("both directions at once: 16 MiB echoed while it is sent", async () => {
      const r = await client(port, "echo\n", (s) => writeAll(s, stream(16 * MIB, 31), true));
      expect(r.got).toBe(16 * MIB);
      expect(r.sha).toBe(shaOf(16 * MIB, 31));
      await record("echo", r.localPort);
    }, 60_000);

    test("the upstream half-closes first; the client keeps sending 2 MiB after it", async () => {
      const id = `ff${(MODES as readonly Mode[]).indexOf(mode)}`; // the same length in every mode: the outcome's bytes_in must match
      const r = await client(port, `finfirst ${MIB} ${id}\n`, (s) => {
        s.once("end", () => void writeAll(s, stream(2 * MIB, 41), true));
      }, { keepWriting: true });
      expect(r.got).toBe(MIB);
      expect(r.sha).toBe(shaOf(MIB, 7));
      await waitFor(() => be.recorded.get(id), 10_000, "the backend's record");
      expect(be.recorded.get(id)).toBe(`${2 * MIB} ${shaOf(2 * MIB, 41)}`);
      await record("finfirst", r.localPort);
    }, 60_000);

    test("a slow reader gets all 24 MiB (backpressure)", async () => {
      const r = await client(port, `down ${24 * MIB} 51\n`, () => {}, { slow: true });
      expect(r.sha).toBe(shaOf(24 * MIB, 51));
      await record("slow", r.localPort);
    }, 60_000);

    test("the upstream resets mid-transfer: UPSTREAM_RESET", async () => {
      const r = await client(port, `rst ${8 * MIB}\n`, () => {});
      expect(r.got).toBeLessThanOrEqual(8 * MIB);
      const line = await record("upstream-reset", r.localPort, false);
      expect(line.error).toBe("UPSTREAM_RESET");
    }, 60_000);

    test("the client resets mid-upload: DOWNSTREAM_RESET", async () => {
      const r = await client(port, "up\n", async (s) => {
        await writeAll(s, stream(4 * MIB, 61), false);
        s.resetAndDestroy();
      });
      expect(r.text).toBe("");
      const line = await record("client-reset", r.localPort, false);
      expect(line.error).toBe("DOWNSTREAM_RESET");
    }, 60_000);

    test("an idle relay is closed by the idle timeout", async () => {
      const started = Date.now();
      const r = await client(idlePort, "idle\n", () => {}, { timeoutMs: 10_000 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(500); // the sweeper's coarse clock may start the second up to a sweep early
      const line = await record("idle", r.localPort);
      expect(line.error).toBe("IDLE_TIMEOUT");
    }, 20_000);

    test("more bulk relays than the pipe pool holds: the rest stay in JavaScript, all intact", async () => {
      const n = MAX_PIPES / 2 + 4;
      const rs = await Promise.all(Array.from({ length: n }, (_, i) => client(port, `down ${4 * MIB} ${100 + i}\n`, () => {}, { slow: i % 2 === 0 })));
      rs.forEach((r, i) => expect(r.sha).toBe(shaOf(4 * MIB, 100 + i)));
      for (const r of rs) expect((await outcome(r.localPort)).error).toBeNull();
    }, 60_000);

    test("more bulk directions than the enlarged-pipe budget: 8 echoes both ways at once, all intact", async () => {
      // 8 relays fill the pool (MAX_PIPES / 2); their 16 bulk directions exceed the worker's budget of
      // 1 MiB pipes (8 MiB on 2 cores), so some directions keep the default size. Run twice: the second
      // round takes pipes that were enlarged, shrunk and pooled by the first.
      for (const round of [0, 1]) {
        const rs = await Promise.all(Array.from({ length: MAX_PIPES / 2 }, (_, i) => client(port, "echo\n", (s) => writeAll(s, stream(4 * MIB, 200 + 10 * round + i), true))));
        rs.forEach((r, i) => expect(r.sha).toBe(shaOf(4 * MIB, 200 + 10 * round + i)));
        for (const r of rs) expect((await outcome(r.localPort)).error).toBeNull();
      }
    }, 60_000);

    test("fuzz: 160 connections reset or half-close at random points; every one ends with one record", async () => {
      let seed = 12345;
      const rand = (n: number) => {
        seed = (seed * 1103515245 + 12345) >>> 0;
        return seed % n;
      };
      const jobs: Promise<ClientResult>[] = [];
      const descs: string[] = [];
      for (let i = 0; i < 160; i++) {
        const kind = rand(4);
        const size = rand(2 * MIB);
        const action = rand(3); // 0: reset, 1: half-close, 2: run to the end
        const after = rand(40);
        const head = kind === 0 ? `down ${size} ${i}\n` : kind === 1 ? "up\n" : kind === 2 ? "echo\n" : `rst ${size}\n`;
        descs.push(`${head.trim()} action=${action} after=${after}`);
        jobs.push(client(port, head, async (s) => {
          if (kind === 1 || kind === 2) void writeAll(s, stream(size, i), action === 2);
          if (action === 2) return;
          await new Promise((r) => setTimeout(r, after));
          if (action === 0) s.resetAndDestroy();
          else if (!s.writableEnded) s.end();
        }, { timeoutMs: 20_000 }));
        if (i % 16 === 15) await Promise.all(jobs.slice(-16));
      }
      const rs = await Promise.all(jobs);
      // A client that resets before edgemux read anything may be gone before Bun hands over the accepted
      // socket (no session, no record, in every mode): only connections that got a byte must have a record.
      const missing = () => rs.filter((r, i) => (r.got > 0 || !descs[i]!.includes("action=0")) && !em.lines.some((l) => l.msg === "connection" && String(l.client).endsWith(`:${r.localPort}`)));
      await waitFor(() => missing().length === 0, 10_000, "a record per connection").catch(() => {
        throw new Error(`no outcome record for ${JSON.stringify(missing().map((r) => ({ job: descs[rs.indexOf(r)], localPort: r.localPort, got: r.got, error: r.error })).slice(0, 5))}`);
      });
      // Still serving.
      const r = await client(port, `down ${MIB} 3\n`, () => {});
      expect(r.sha).toBe(shaOf(MIB, 3));
    }, 120_000);

    test("descriptors return to the baseline: no socket or pipe leaked", async () => {
      await waitFor(() => fds(pid).sockets === base.sockets, 10_000, `sockets back to ${base.sockets} (now ${fds(pid).sockets})`);
      // The pool keeps up to max_pipes empty pipes for reuse; nothing past that.
      expect(fds(pid).pipes - base.pipes).toBeLessThanOrEqual(2 * MAX_PIPES);
      if (mode === "js") expect(fds(pid).pipes).toBe(base.pipes);
    });
  });
}

describe("every mode writes the same outcome record", () => {
  test("bytes each way and error per scenario", () => {
    if (MODES.length === 1) return;
    for (const [name, byMode] of outcomes) {
      const js = byMode.get("js");
      for (const m of MODES) expect(`${name} ${m}: ${byMode.get(m)}`).toBe(`${name} ${m}: ${js}`);
    }
  });
});

describe("drain deadline", () => {
  for (const mode of MODES) {
    if (mode === "kernel-late") continue;
    test(`closes an open relay (${mode})`, async () => {
      const em = await startEdgemux(configFor(mode, be.port));
      try {
        const seen = be.idles;
        const c = client(em.hostPort("bulk").port, "idle\n", () => {}, { timeoutMs: 15_000 });
        // The relay is up once the backend has the command; then drain with a 1 s deadline.
        await waitFor(() => be.idles > seen, 5_000, "the backend to get the connection");
        em.signal("SIGTERM");
        const r = await c;
        const line = await em.waitForLine((l) => l.msg === "connection" && String(l.client).endsWith(`:${r.localPort}`), 10_000);
        expect(line.error).toBe("DRAINING");
        expect(await em.waitExit(10_000)).toBe(0);
      } finally {
        await em.stop();
      }
    }, 30_000);
  }
});

describe("config", () => {
  test.if(!KERNEL)(`relay.mode = "kernel" refuses to start where there is no kernel relay`, async () => {
    await expect(startEdgemux(configFor("kernel", be.port))).rejects.toThrow(/kernel/);
  });
});
