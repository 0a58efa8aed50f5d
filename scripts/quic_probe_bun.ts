// @ts-nocheck -- node:quic is experimental and has no type declarations in @types/bun.
/**
 * QUIC probe for Bun's experimental `node:quic` (ngtcp2 underneath). A tool
 * for deciding what edgemux builds its QUIC transport on (issue 10, §1;
 * bench/README.md "QUIC probe" keeps the figures), not a test.
 *
 *   bun scripts/quic_probe_bun.ts [--bulk-mib 1024] [--conns 200] [--streams 1000] [--only a,b]
 *       every probe, client and server in this process
 *   bun scripts/quic_probe_bun.ts serve [--cert self]
 *       a probe server on 127.0.0.1:0; prints {"port":N} and serves until killed
 *   bun scripts/quic_probe_bun.ts client --port N [--bulk-mib 256] [--pin SHA256HEX]
 *       the client probes against a probe server (this script's or quic_probe_deno.ts's)
 *
 * Certificates are made with openssl under $TMPDIR/quicprobe-certs (ECDSA P-256:
 * a CA, a server cert for localhost/127.0.0.1, a client cert, a self-signed cert).
 *
 * The probe protocol (shared with quic_probe_deno.ts): each bidirectional
 * stream starts with one command line ending in "\n"; the server answers:
 *   echo              echo every byte until FIN, then FIN
 *   sink              read to FIN, answer "<bytes> <sha256hex>\n" + FIN
 *   count             read to FIN, answer "<bytes> <serverCpuSeconds>\n" + FIN
 *   source N          send N bytes (a repeated 64 KiB block), FIN
 *   halfclose         read to FIN, wait 200 ms, then send "after-fin <bytes>\n" + 64 KiB + FIN
 *   expect-reset      read until the read fails; answer "read-error <code> <message>\n" + FIN
 *   reset CODE        send "partial\n", then RESET_STREAM(CODE)
 *   stop CODE         STOP_SENDING(CODE) on the server's read side, answer "stopped\n" + FIN
 *   close CODE REASON close the connection with application CODE and REASON
 *   info              answer one JSON line: runtime, alpn, servername, peer certificate, cpu
 *   hold              keep the stream open (idle-stream memory)
 * and every datagram it receives is sent back.
 */
import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { parseArgs } from "node:util";

const quic: any = await import("node:quic");
const { listen, connect, QuicEndpoint } = quic;

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    "bulk-mib": { type: "string" },
    conns: { type: "string", default: "200" },
    streams: { type: "string", default: "1000" },
    only: { type: "string" },
    cert: { type: "string", default: "ca" },
    pin: { type: "string" },
  },
});
const mode = positionals[0] ?? "local";
const ALPN = "edgemux/1";
const enc = new TextEncoder();
const dec = new TextDecoder();

// ---------------------------------------------------------------- certificates
export function ensureCerts(): string {
  const dir = `${process.env.TMPDIR || tmpdir()}/quicprobe-certs`;
  if (existsSync(`${dir}/self.pk8.pem`)) return dir;
  mkdirSync(dir, { recursive: true });
  const sh = `set -e; cd '${dir}'
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days 30 -subj /CN=probe-ca -out ca.crt
openssl ecparam -name prime256v1 -genkey -noout -out server.key
openssl req -new -key server.key -subj /CN=localhost -out server.csr
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -sha256 -extfile server.ext -out server.crt
openssl ecparam -name prime256v1 -genkey -noout -out client.key
openssl req -new -key client.key -subj /CN=agent-1 -out client.csr
printf 'subjectAltName=URI:spiffe://edgemux/agent-1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\n' > client.ext
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -sha256 -extfile client.ext -out client.crt
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout self.key -out self.crt -days 30 -subj /CN=self-pinned -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -addext basicConstraints=CA:FALSE
for f in ca server client self; do openssl pkcs8 -topk8 -nocrypt -in $f.key -out $f.pk8.pem; done`;
  const r = Bun.spawnSync(["sh", "-c", sh], { stderr: "pipe", stdout: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl failed: ${r.stderr.toString()}`);
  return dir;
}
const CD = ensureCerts();
const file = (n: string) => readFileSync(`${CD}/${n}`);
const fingerprint = (pem: Buffer | string) => new X509Certificate(pem).fingerprint256.replaceAll(":", "").toLowerCase();

// ---------------------------------------------------------------- helpers
function cpuSeconds(): number {
  const f = readFileSync("/proc/self/stat", "utf8");
  const p = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(p[11]) + Number(p[12])) / 100; // utime + stime, clock ticks (100 Hz)
}
function rssMiB(): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: any;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`timeout after ${ms} ms: ${what}`)), ms)))]).finally(() => clearTimeout(t));
}
function errText(e: any): string {
  if (!e) return String(e);
  const bits = [e.code, e.errorCode !== undefined ? `errorCode=${e.errorCode}` : null, e.type ? `type=${e.type}` : null, e.reason ? `reason=${e.reason}` : null, e.message].filter((x) => x !== null && x !== undefined);
  return bits.join(" | ");
}
const BLOCK = new Uint8Array(64 * 1024).map((_, i) => (i * 2654435761) >>> 24);

let DRAIN: symbol | undefined;
/** Write `data` with backpressure: writeSync until it refuses, then wait for the drain promise. */
async function writeAll(w: any, data: Uint8Array, chunk = 64 * 1024) {
  for (let off = 0; off < data.byteLength; off += chunk) {
    const c = data.subarray(off, Math.min(off + chunk, data.byteLength));
    while (!w.writeSync(c)) await waitDrain(w);
  }
}
async function waitDrain(w: any) {
  // A writer whose stream was stopped/reset/closed answers writeSync() false with
  // desiredSize null and no drain promise: nothing else says it is dead.
  if (w.desiredSize === null) throw new Error("writer closed (writeSync false, desiredSize null, no error surfaced)");
  DRAIN ??= Object.getOwnPropertySymbols(w).find((s) => s.description === "Stream.drainableProtocol");
  const p = DRAIN ? w[DRAIN]() : null;
  if (p) await p;
  else await new Promise((r) => setImmediate(r));
}
/** Flatten the stream's async iterator (it yields arrays of chunks). */
async function* chunksOf(st: any): AsyncGenerator<Uint8Array> {
  for await (const batch of st) for (const c of batch) yield c;
}
async function readLine(it: AsyncGenerator<Uint8Array>): Promise<{ line: string; rest: Uint8Array | null }> {
  let buf = new Uint8Array(0);
  for (;;) {
    const { value, done } = await it.next();
    if (done) return { line: dec.decode(buf), rest: null };
    const m = new Uint8Array(buf.byteLength + value.byteLength);
    m.set(buf);
    m.set(value, buf.byteLength);
    buf = m;
    const nl = buf.indexOf(10);
    if (nl >= 0) return { line: dec.decode(buf.subarray(0, nl)), rest: buf.subarray(nl + 1) };
  }
}
async function readAll(st: any): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of chunksOf(st)) {
    parts.push(c);
    n += c.byteLength;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

// ---------------------------------------------------------------- server
let serverSessions = 0;
const heldStreams: any[] = [];
function serverOptions(certKind: string, extra: any = {}) {
  const certName = certKind === "self" ? "self" : "server";
  return {
    endpoint: { address: `${opt.host}:${opt.port && mode === "serve" ? opt.port : 0}`, maxConnectionsPerHost: 0, maxConnectionsTotal: 0, sessionCreationRate: 100000, sessionCreationBurst: 100000 },
    sni: { "*": { keys: [createPrivateKey(file(`${certName}.key`))], certs: [file(`${certName}.crt`)] } },
    alpn: [ALPN],
    ca: [file("ca.crt")],
    verifyClient: false,
    streamIdleTimeout: 0,
    transportParams: { initialMaxStreamsBidi: 4096, maxIdleTimeout: 30 },
    ...extra,
  };
}
async function startServer(certKind = "ca", extra: any = {}) {
  const ep = await listen((session: any) => {
    serverSessions++;
    session.onerror = () => {};
    session.ondatagram = (d: Uint8Array) => {
      session.sendDatagram(d).catch(() => {});
    };
    session.onstream = (st: any) => {
      serveStream(session, st).catch((e) => {
        try {
          st.destroy(e);
        } catch {}
      });
    };
  }, serverOptions(certKind, extra));
  return ep;
}
async function serveStream(session: any, st: any) {
  st.onerror = () => {};
  const it = chunksOf(st);
  const { line, rest } = await readLine(it);
  const [cmd, a1, ...more] = line.split(" ");
  const w = st.writer;
  switch (cmd) {
    case "echo": {
      if (rest?.byteLength) await writeAll(w, rest);
      for await (const c of it) await writeAll(w, c);
      await w.end();
      return;
    }
    case "sink":
    case "count": {
      const h = createHash("sha256");
      let n = rest?.byteLength ?? 0;
      if (cmd === "sink" && rest) h.update(rest);
      for await (const c of it) {
        n += c.byteLength;
        if (cmd === "sink") h.update(c);
      }
      await writeAll(w, enc.encode(cmd === "sink" ? `${n} ${h.digest("hex")}\n` : `${n} ${cpuSeconds()}\n`));
      await w.end();
      return;
    }
    case "source": {
      let left = Number(a1);
      while (left > 0) {
        const c = left >= BLOCK.byteLength ? BLOCK : BLOCK.subarray(0, left);
        while (!w.writeSync(c)) await waitDrain(w);
        left -= c.byteLength;
      }
      await w.end();
      return;
    }
    case "halfclose": {
      let n = rest?.byteLength ?? 0;
      for await (const c of it) n += c.byteLength;
      await sleep(200);
      await writeAll(w, enc.encode(`after-fin ${n}\n`));
      await writeAll(w, BLOCK);
      await w.end();
      return;
    }
    case "expect-reset": {
      let msg = "no error: FIN";
      try {
        for await (const _ of it);
      } catch (e) {
        msg = errText(e);
      }
      const code = /code (\d+)|errorCode=(\d+)|\((\d+)\)/.exec(msg);
      await writeAll(w, enc.encode(`read-error ${code ? code[1] ?? code[2] ?? code[3] : "?"} ${msg}\n`));
      await w.end();
      return;
    }
    case "reset": {
      await writeAll(w, enc.encode("partial\n"));
      await sleep(50);
      st.resetStream(BigInt(a1));
      return;
    }
    case "stop": {
      st.stopSending(BigInt(a1));
      await writeAll(w, enc.encode("stopped\n"));
      await w.end();
      return;
    }
    case "close": {
      session.close({ code: BigInt(a1), type: "application", reason: more.join(" ") });
      return;
    }
    case "info": {
      let peer: any = null;
      try {
        const pc = session.peerCertificate;
        if (pc) peer = { subject: pc.subject, san: pc.subjectAltName, fingerprint256: pc.fingerprint256 };
      } catch (e) {
        peer = { error: errText(e) };
      }
      await writeAll(w, enc.encode(JSON.stringify({ runtime: `bun ${Bun.version} node:quic`, peer, cpu: cpuSeconds() }) + "\n"));
      await w.end();
      return;
    }
    case "hold": {
      heldStreams.push(st);
      for await (const _ of it);
      await w.end();
      return;
    }
    default:
      st.resetStream(99n);
  }
}

// ---------------------------------------------------------------- client probes
type Session = any;
function clientOptions(extra: any = {}) {
  return { alpn: ALPN, servername: "localhost", ca: [file("ca.crt")], reuseEndpoint: true, transportParams: { initialMaxStreamsBidi: 4096, maxIdleTimeout: 30 }, ...extra };
}
async function dial(port: number, extra: any = {}): Promise<{ s: Session; info: any }> {
  const s = await connect(`${opt.host}:${port}`, clientOptions(extra));
  s.onerror = () => {};
  const info = await withTimeout(s.opened, 5000, "handshake");
  return { s, info };
}
async function cmdStream(s: Session, cmd: string) {
  const st = await s.createBidirectionalStream();
  st.onerror = () => {};
  const w = st.writer;
  await writeAll(w, enc.encode(cmd + "\n"));
  return { st, w };
}
async function ask(s: Session, cmd: string): Promise<string> {
  const { st, w } = await cmdStream(s, cmd);
  await w.end();
  return dec.decode(await readAll(st)).trim();
}

async function echoStreams(s: Session, n: number, size: number) {
  const t0 = performance.now();
  const results = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const payload = crypto.getRandomValues(new Uint8Array(size > 65536 ? 65536 : size));
      const full = new Uint8Array(size);
      for (let o = 0; o < size; o += payload.byteLength) full.set(payload.subarray(0, Math.min(payload.byteLength, size - o)), o);
      full[0] = i & 255;
      const { st, w } = await cmdStream(s, "echo");
      const [back] = await Promise.all([readAll(st), (async () => { await writeAll(w, full); await w.end(); })()]);
      return sha(back) === sha(full) && back.byteLength === size;
    }),
  );
  const ok = results.filter(Boolean).length;
  return { ok: ok === n, detail: `${ok}/${n} streams × ${size / 1048576} MiB echoed, SHA-256 equal, ${(performance.now() - t0).toFixed(0)} ms` };
}
async function halfClose(s: Session) {
  const { st, w } = await cmdStream(s, "halfclose");
  await writeAll(w, enc.encode("x".repeat(1000)));
  await w.end(); // our FIN first
  const back = await readAll(st);
  const head = dec.decode(back.subarray(0, back.indexOf(10)));
  return { ok: head === "after-fin 1000" && back.byteLength === head.length + 1 + 65536, detail: `client FIN, then server sent "${head}" + ${back.byteLength - head.length - 1} bytes` };
}
async function resetClientToServer(s: Session) {
  const { st, w } = await cmdStream(s, "expect-reset");
  await writeAll(w, enc.encode("some bytes"));
  await sleep(50);
  st.resetStream(42n);
  const back = dec.decode(await readAll(st)).trim();
  return { ok: back.startsWith("read-error 42"), detail: `client resetStream(42) → server read: ${back}` };
}
async function resetServerToClient(s: Session) {
  const { st, w } = await cmdStream(s, "reset 43");
  await w.end();
  let got = "";
  let n = 0;
  try {
    for await (const c of chunksOf(st)) n += c.byteLength;
    got = `FIN after ${n} bytes (no error)`;
  } catch (e) {
    got = `after ${n} bytes: ${errText(e)}`;
  }
  return { ok: /43/.test(got), detail: `server resetStream(43) → client read ${got}` };
}
async function stopSending(port: number) {
  const { s } = await dial(port);
  const { st, w } = await cmdStream(s, "stop 44");
  let err = "";
  const reply = readAll(st).then((b) => dec.decode(b).trim(), (e) => `read error ${errText(e)}`);
  try {
    for (let i = 0; i < 200; i++) {
      while (!w.writeSync(BLOCK)) await withTimeout(waitDrain(w), 3000, "drain after STOP_SENDING");
      await sleep(5);
    }
    err = "writes kept succeeding";
  } catch (e) {
    err = errText(e);
  }
  let closed = "";
  await withTimeout(st.closed, 2000, "stream closed").then(() => (closed = "closed ok"), (e) => (closed = errText(e)));
  const rep = await withTimeout(reply, 2000, "reply").catch((e) => errText(e));
  let alive = "";
  try {
    alive = (await withTimeout(ask(s, "info"), 2000, "info")).startsWith("{") ? "session still usable" : "?";
  } catch (e) {
    alive = `session after: ${errText(e)}`;
  }
  s.destroy();
  return { ok: /44/.test(err + closed), detail: `server stopSending(44) → client write: ${err}; stream.closed: ${closed}; reply: ${rep}; ${alive}` };
}
async function closeWithCode(port: number) {
  const { s } = await dial(port);
  const { w } = await cmdStream(s, "close 4660 going away");
  await w.end().catch(() => {});
  let r = "";
  await withTimeout(s.closed, 5000, "session closed").then(() => (r = "closed without error"), (e) => (r = errText(e)));
  return { ok: /4660/.test(r) && /going away/.test(r), detail: `server close(code 4660 app, "going away") → client session.closed: ${r}` };
}
async function idleTimeout(port: number, keepAliveMs: number | undefined) {
  const { s } = await dial(port, { transportParams: { initialMaxStreamsBidi: 4096, maxIdleTimeout: 1 }, ...(keepAliveMs ? { keepAlive: keepAliveMs } : {}) });
  const t0 = performance.now();
  let how = "";
  const closed = s.closed.then(() => (how = "closed"), (e) => (how = errText(e)));
  const r = await Promise.race([closed.then(() => "closed"), sleep(keepAliveMs ? 3500 : 5000).then(() => "open")]);
  const ms = performance.now() - t0;
  if (r === "open") {
    let alive = "";
    try {
      alive = (await withTimeout(ask(s, "info"), 2000, "info")).slice(0, 40);
    } catch (e) {
      alive = errText(e);
    }
    s.destroy();
    return { ok: !!keepAliveMs, detail: `still open after ${ms.toFixed(0)} ms (a stream then: ${alive.startsWith("{") ? "works" : alive})` };
  }
  return { ok: !keepAliveMs, detail: `closed after ${ms.toFixed(0)} ms: ${how}` };
}
async function bulk(s: Session, mib: number) {
  const bytes = mib * 1048576;
  const srv0 = JSON.parse(await ask(s, "info")).cpu;
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const { st, w } = await cmdStream(s, "count");
  for (let left = bytes; left > 0; left -= BLOCK.byteLength) while (!w.writeSync(BLOCK)) await waitDrain(w);
  await w.end();
  const reply = dec.decode(await readAll(st)).trim();
  const sec = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - cpu0;
  const [n] = reply.split(" ").map(Number);
  const gbit = (bytes * 8) / sec / 1e9;
  return { ok: n === bytes, sec, cpu, gbit, detail: `${mib} MiB up in ${sec.toFixed(2)} s = ${gbit.toFixed(2)} Gbit/s; process CPU ${cpu.toFixed(2)} s (${((cpu / bytes) * 2 ** 30).toFixed(1)} CPU-s/GiB, both ends if in-process); server counted ${n}, server process CPU ${(Number(reply.split(" ")[1]) - srv0).toFixed(2)} s` };
}
async function bulkDown(s: Session, mib: number) {
  const bytes = mib * 1048576;
  const srv0 = JSON.parse(await ask(s, "info")).cpu;
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const { st, w } = await cmdStream(s, `source ${bytes}`);
  await w.end();
  let n = 0;
  for await (const c of chunksOf(st)) n += c.byteLength;
  const sec = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - cpu0;
  const gbit = (bytes * 8) / sec / 1e9;
  return { ok: n === bytes, sec, cpu, gbit, detail: `${mib} MiB down in ${sec.toFixed(2)} s = ${gbit.toFixed(2)} Gbit/s; process CPU ${cpu.toFixed(2)} s (${((cpu / bytes) * 2 ** 30).toFixed(1)} CPU-s/GiB); got ${n}, server process CPU ${(JSON.parse(await ask(s, "info")).cpu - srv0).toFixed(2)} s` };
}
/** Read-side backpressure: ask for 256 MiB, read nothing for 2 s, see how much the process buffered. */
async function pauseRead(s: Session) {
  Bun.gc(true);
  const r0 = rssMiB();
  const { st, w } = await cmdStream(s, `source ${256 * 1048576}`);
  await w.end();
  await sleep(2000);
  Bun.gc(true);
  const r1 = rssMiB();
  let n = 0;
  for await (const c of chunksOf(st)) n += c.byteLength;
  return { ok: r1 - r0 < 64 && n === 256 * 1048576, detail: `server sends 256 MiB, client does not pull the iterator for 2 s: RSS +${(r1 - r0).toFixed(1)} MiB (sender held by flow control), then read ${n >> 20} MiB` };
}
async function datagrams(s: Session) {
  const max = s.maxDatagramSize;
  const got: number[] = [];
  s.ondatagram = (d: Uint8Array) => got.push(d.byteLength);
  const sizes = [1, 100, max, max + 1, 1200, 1400];
  const ids: string[] = [];
  for (const n of sizes) {
    const id = await s.sendDatagram(new Uint8Array(n).fill(7));
    ids.push(`${n}→${id}`);
    await sleep(30);
  }
  await sleep(300);
  return { ok: got.length > 0, detail: `maxDatagramSize=${max}; sendDatagram(size)→id: ${ids.join(", ")} (0 = refused); echoed back sizes: [${got.join(", ")}]` };
}
async function alpnMismatch(port: number) {
  try {
    const s = await connect(`${opt.host}:${port}`, clientOptions({ alpn: "other/1" }));
    s.onerror = () => {};
    const info = await withTimeout(s.opened, 3000, "handshake");
    s.destroy();
    return { ok: false, detail: `handshake completed with protocol=${info.protocol}` };
  } catch (e) {
    return { ok: true, detail: `refused: ${errText(e)}` };
  }
}

async function runClientProbes(port: number, results: any[], opts: { bulkMib: number; remote: boolean }) {
  const only = opt.only ? new Set(opt.only.split(",")) : null;
  const want = (k: string) => !only || only.has(k);
  const rec = async (name: string, f: () => Promise<any>, ms = 60000) => {
    if (!want(name)) return;
    let r: any;
    try {
      r = await withTimeout(f(), ms, name);
    } catch (e) {
      r = { ok: false, detail: `FAILED: ${errText(e)}` };
    }
    results.push({ name, ...r });
    console.log(`${r.ok ? "ok  " : "FAIL"} ${name}: ${r.detail}`);
  };
  const { s, info } = await dial(port);
  await rec("handshake", async () => ({ ok: info.protocol === ALPN, detail: `protocol=${info.protocol} cipher=${info.cipher} servername=${info.servername} validation=${info.validationErrorReason || "ok"}; server says ${await ask(s, "info")}` }));
  await rec("streams-1", () => echoStreams(s, 1, 1048576));
  await rec("streams-100", () => echoStreams(s, 100, 1048576));
  await rec("half-close", () => halfClose(s));
  await rec("reset-c2s", () => resetClientToServer(s));
  await rec("reset-s2c", () => resetServerToClient(s));
  await rec("stop-sending", () => stopSending(port), 20000);
  await rec("pause-read", () => pauseRead(s));
  await rec("datagrams", () => datagrams(s));
  await rec("close-code", () => closeWithCode(port));
  await rec("alpn-mismatch", () => alpnMismatch(port));
  await rec("idle-timeout", () => idleTimeout(port, undefined));
  await rec("keep-alive", () => idleTimeout(port, 300));
  if (opts.bulkMib > 0) {
    await rec("bulk-up", () => bulk(s, opts.bulkMib), 120000);
    await rec("bulk-down", () => bulkDown(s, Math.min(opts.bulkMib, 256)), 120000);
  }
  s.close().catch(() => {});
}

// ---------------------------------------------------------------- local-only probes
async function clientCerts(results: any[]) {
  const ep = await startServer("ca", { verifyClient: true });
  const port = ep.address.port;
  let detail = "";
  let ok = false;
  try {
    const { s } = await dial(port, { keys: [createPrivateKey(file("client.key"))], certs: [file("client.crt")] });
    const r = JSON.parse(await withTimeout(ask(s, "info"), 3000, "info"));
    ok = !!r.peer?.fingerprint256;
    detail = `with client cert: server session.peerCertificate = ${JSON.stringify(r.peer)} (expected fp ${fingerprint(file("client.crt")).slice(0, 16)}…)`;
    s.close().catch(() => {});
  } catch (e) {
    detail = `with client cert: FAILED ${errText(e)}`;
  }
  try {
    const { s } = await dial(port);
    const r = await withTimeout(ask(s, "info"), 3000, "info");
    detail += `; without client cert (verifyClient: true): NOT refused, server sees ${r}`;
    s.close().catch(() => {});
  } catch (e) {
    detail += `; without client cert (verifyClient: true): refused: ${errText(e)}`;
  }
  ep.close();
  results.push({ name: "client-cert", ok, detail });
  console.log(`${ok ? "ok  " : "FAIL"} client-cert: ${detail}`);
}
async function pinning(results: any[]) {
  const ep = await startServer("self");
  const port = ep.address.port;
  const want = fingerprint(file("self.crt"));
  const parts: string[] = [];
  let ok = true;
  // 1. default verification against our CA must refuse the self-signed cert.
  try {
    const { s } = await dial(port);
    parts.push("CA-verified client accepted a self-signed cert (BAD)");
    ok = false;
    s.destroy();
  } catch (e) {
    parts.push(`CA-verified: refused (${errText(e).slice(0, 120)})`);
  }
  // 2. verifyPeer "manual": handshake completes, app compares the fingerprint.
  for (const [label, pin] of [["right pin", want], ["wrong pin", "00".repeat(32)]]) {
    try {
      const { s, info } = await dial(port, { verifyPeer: "manual", ca: [] });
      const fp = s.peerCertificate?.fingerprint256?.replaceAll(":", "").toLowerCase();
      const match = fp === pin;
      if (!match) s.destroy(undefined, { code: 0x100 + 42, type: "transport", reason: "pin mismatch" });
      else s.close().catch(() => {});
      parts.push(`manual + ${label}: validation="${info.validationErrorReason}" peer fp ${fp?.slice(0, 12)}… ${match ? "matches → keep" : "differs → destroy"}`);
      if ((label === "right pin") !== match) ok = false;
    } catch (e) {
      parts.push(`manual + ${label}: ${errText(e)}`);
      ok = false;
    }
  }
  // 3. the self-signed cert as the only CA.
  try {
    const { s } = await dial(port, { ca: [file("self.crt")] });
    parts.push("ca=[self.crt]: accepted");
    s.close().catch(() => {});
  } catch (e) {
    parts.push(`ca=[self.crt]: refused (${errText(e).slice(0, 120)})`);
  }
  ep.close();
  results.push({ name: "pinning", ok, detail: parts.join("; ") });
  console.log(`${ok ? "ok  " : "FAIL"} pinning: ${parts.join("; ")}`);
}
async function memory(results: any[], nConns: number, nStreams: number) {
  const ep = await startServer("ca");
  const port = ep.address.port;
  Bun.gc(true);
  await sleep(300);
  const base = rssMiB();
  const sessions: any[] = [];
  try {
    for (let i = 0; i < nConns; i++) sessions.push((await dial(port)).s);
    // a stream forces the session's application state on both sides
    await Promise.all(sessions.map((s) => ask(s, "info")));
  } catch (e) {
    results.push({ name: "mem-conns", ok: false, detail: `after ${sessions.length} connections: ${errText(e)}` });
  }
  Bun.gc(true);
  await sleep(500);
  const afterConns = rssMiB();
  const perConn = ((afterConns - base) * 1024) / sessions.length;
  const d1 = `${sessions.length} idle connections (client+server in one process, one endpoint each side): RSS ${base.toFixed(1)} → ${afterConns.toFixed(1)} MiB = ${perConn.toFixed(1)} KiB per connection (both ends)`;
  results.push({ name: "mem-conns", ok: sessions.length === nConns, detail: d1, perConnKiB: perConn });
  console.log(`ok   mem-conns: ${d1}`);
  for (const s of sessions) s.destroy();
  await sleep(300);
  Bun.gc(true);
  const { s } = await dial(port);
  await ask(s, "info");
  Bun.gc(true);
  await sleep(300);
  const b2 = rssMiB();
  const held: any[] = [];
  try {
    for (let i = 0; i < nStreams; i++) {
      const { st } = await cmdStream(s, "hold");
      held.push(st);
    }
    await sleep(500);
  } catch (e) {
    console.log(`streams stopped at ${held.length}: ${errText(e)}`);
  }
  Bun.gc(true);
  await sleep(500);
  const a2 = rssMiB();
  const perStream = ((a2 - b2) * 1024) / held.length;
  const d2 = `${held.length} idle streams on one connection (both ends, server holds ${heldStreams.length}): RSS ${b2.toFixed(1)} → ${a2.toFixed(1)} MiB = ${perStream.toFixed(2)} KiB per stream (both ends)`;
  results.push({ name: "mem-streams", ok: held.length === nStreams, detail: d2, perStreamKiB: perStream });
  console.log(`${held.length === nStreams ? "ok  " : "FAIL"} mem-streams: ${d2}`);
  s.destroy();
  ep.close();
}

// ---------------------------------------------------------------- main
const results: any[] = [];
if (mode === "serve") {
  const ep = await startServer(opt.cert);
  console.log(JSON.stringify({ port: ep.address.port, runtime: `bun ${Bun.version}`, fingerprint: fingerprint(file(opt.cert === "self" ? "self.crt" : "server.crt")) }));
  setInterval(() => {}, 1 << 30);
} else if (mode === "client") {
  console.log(`# bun ${Bun.version} node:quic client → 127.0.0.1:${opt.port}`);
  await runClientProbes(Number(opt.port), results, { bulkMib: Number(opt["bulk-mib"] ?? 256), remote: true });
  process.exit(0);
} else {
  console.log(`# bun ${Bun.version} node:quic, client and server in one process (pid ${process.pid}), ${navigator.hardwareConcurrency} cores`);
  const ep = await startServer("ca");
  await runClientProbes(ep.address.port, results, { bulkMib: Number(opt["bulk-mib"] ?? 1024), remote: false });
  const only = opt.only ? new Set(opt.only.split(",")) : null;
  if (!only || only.has("client-cert")) await clientCerts(results);
  if (!only || only.has("pinning")) await pinning(results);
  if (!only || only.has("memory")) await memory(results, Number(opt.conns), Number(opt.streams));
  ep.close();
  console.log(`# ${results.filter((r) => r.ok).length}/${results.length} ok`);
  process.exit(0);
}
