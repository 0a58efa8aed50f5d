// @ts-nocheck -- Deno-only script (Deno.* QUIC is --unstable-net); tsc here checks with Bun's types.
/**
 * QUIC probe for Deno's `Deno.QuicEndpoint` / `Deno.connectQuic` (quinn +
 * rustls underneath), the twin of scripts/quic_probe_bun.ts: same probes, same
 * probe protocol (described there), so either script's client runs against
 * either script's server. A tool (bench/README.md "QUIC probe"), not a test.
 *
 *   deno run -A --unstable-net --v8-flags=--expose-gc scripts/quic_probe_deno.ts [--bulk-mib 1024] [--conns 200] [--streams 1000] [--only a,b]
 *       (--shared-endpoint: the memory probe's clients share one QuicEndpoint)
 *   deno run -A --unstable-net scripts/quic_probe_deno.ts serve [--cert self]
 *   deno run -A --unstable-net scripts/quic_probe_deno.ts client --port N [--bulk-mib 256]
 */
import { parseArgs } from "node:util";
import { createHash, X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";

const { values: opt, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    port: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    "bulk-mib": { type: "string" },
    conns: { type: "string", default: "200" },
    streams: { type: "string", default: "1000" },
    only: { type: "string" },
    "shared-endpoint": { type: "boolean", default: false },
    cert: { type: "string", default: "ca" },
  },
});
const mode = positionals[0] ?? "local";
const ALPN = "edgemux/1";
const enc = new TextEncoder();
const dec = new TextDecoder();

function ensureCerts(): string {
  const dir = `${Deno.env.get("TMPDIR") || "/tmp"}/quicprobe-certs`;
  if (existsSync(`${dir}/self.pk8.pem`)) return dir;
  // same recipe as quic_probe_bun.ts
  mkdirSync(dir, { recursive: true });
  const r = new Deno.Command("bun", { args: [new URL("./quic_probe_bun.ts", import.meta.url).pathname, "--only", "none"], stdout: "null", stderr: "piped" }).outputSync();
  if (!existsSync(`${dir}/self.pk8.pem`)) throw new Error(`making certs failed: ${dec.decode(r.stderr)}`);
  return dir;
}
const CD = ensureCerts();
const text = (n: string) => readFileSync(`${CD}/${n}`, "utf8");
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256.replaceAll(":", "").toLowerCase();

function cpuSeconds(): number {
  const f = readFileSync("/proc/self/stat", "utf8");
  const p = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(p[11]) + Number(p[12])) / 100;
}
function rssMiB(): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}
const gc = () => (globalThis as any).gc?.();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: any;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`timeout after ${ms} ms: ${what}`)), ms)))]).finally(() => clearTimeout(t));
}
function errText(e: any): string {
  if (!e) return String(e);
  return [e.name && e.name !== "Error" ? e.name : null, e.message].filter(Boolean).join(": ");
}
const BLOCK = new Uint8Array(64 * 1024).map((_, i) => (i * 2654435761) >>> 24);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function readLine(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<{ line: string; rest: Uint8Array | null }> {
  let buf = new Uint8Array(0);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return { line: dec.decode(buf), rest: null };
    const m = new Uint8Array(buf.byteLength + value.byteLength);
    m.set(buf);
    m.set(value, buf.byteLength);
    buf = m;
    const nl = buf.indexOf(10);
    if (nl >= 0) return { line: dec.decode(buf.subarray(0, nl)), rest: buf.subarray(nl + 1) };
  }
}
async function* rest(reader: ReadableStreamDefaultReader<Uint8Array>) {
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    yield value;
  }
}
async function readAll(readable: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of readable) {
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
async function writeAll(w: WritableStreamDefaultWriter, data: Uint8Array, chunk = 64 * 1024) {
  for (let off = 0; off < data.byteLength; off += chunk) {
    await w.ready;
    await w.write(data.slice(off, Math.min(off + chunk, data.byteLength)));
  }
}

// ---------------------------------------------------------------- server
const heldStreams: any[] = [];
function transport(extra: any = {}) {
  return { maxIdleTimeout: 30000, maxConcurrentBidirectionalStreams: 4096, ...extra };
}
function startServer(certKind = "ca") {
  const ep = new Deno.QuicEndpoint({ hostname: opt.host, port: mode === "serve" && opt.port ? Number(opt.port) : 0 });
  const name = certKind === "self" ? "self" : "server";
  const l = ep.listen({ cert: text(`${name}.crt`), key: text(`${name}.pk8.pem`), alpnProtocols: [ALPN], ...transport() });
  (async () => {
    for await (const inc of l) {
      inc.accept().then(serveConn, () => {});
    }
  })().catch(() => {});
  return ep;
}
async function serveConn(conn: any) {
  (async () => {
    for (;;) {
      const d = await conn.readDatagram();
      await conn.sendDatagram(d);
    }
  })().catch(() => {});
  try {
    for await (const bs of conn.incomingBidirectionalStreams) serveStream(conn, bs).catch(() => {});
  } catch {}
}
async function serveStream(conn: any, bs: any) {
  const reader = bs.readable.getReader();
  const w = bs.writable.getWriter();
  const { line, rest: first } = await readLine(reader);
  const [cmd, a1, ...more] = line.split(" ");
  switch (cmd) {
    case "echo": {
      if (first?.byteLength) await writeAll(w, first);
      for await (const c of rest(reader)) await writeAll(w, c);
      await w.close();
      return;
    }
    case "sink":
    case "count": {
      const h = createHash("sha256");
      let n = first?.byteLength ?? 0;
      if (cmd === "sink" && first) h.update(first);
      for await (const c of rest(reader)) {
        n += c.byteLength;
        if (cmd === "sink") h.update(c);
      }
      await writeAll(w, enc.encode(cmd === "sink" ? `${n} ${h.digest("hex")}\n` : `${n} ${cpuSeconds()}\n`));
      await w.close();
      return;
    }
    case "source": {
      let left = Number(a1);
      while (left > 0) {
        const c = left >= BLOCK.byteLength ? BLOCK : BLOCK.subarray(0, left);
        await w.ready;
        await w.write(c.slice());
        left -= c.byteLength;
      }
      await w.close();
      return;
    }
    case "halfclose": {
      let n = first?.byteLength ?? 0;
      for await (const c of rest(reader)) n += c.byteLength;
      await sleep(200);
      await writeAll(w, enc.encode(`after-fin ${n}\n`));
      await writeAll(w, BLOCK);
      await w.close();
      return;
    }
    case "expect-reset": {
      let msg = "no error: FIN";
      try {
        for await (const _ of rest(reader));
      } catch (e) {
        msg = errText(e);
      }
      const code = /error (\d+)|code (\d+)/.exec(msg);
      await writeAll(w, enc.encode(`read-error ${code ? code[1] ?? code[2] : "?"} ${msg}\n`));
      await w.close();
      return;
    }
    case "reset": {
      await writeAll(w, enc.encode("partial\n"));
      await sleep(50);
      await w.abort(Number(a1)); // the only reset the API offers: WritableStream.abort(reason)
      return;
    }
    case "stop": {
      await reader.cancel(Number(a1)); // ReadableStream.cancel → quinn stop(0)
      await writeAll(w, enc.encode("stopped\n"));
      await w.close();
      return;
    }
    case "close": {
      conn.close({ closeCode: Number(a1), reason: more.join(" ") });
      return;
    }
    case "info": {
      await writeAll(w, enc.encode(JSON.stringify({ runtime: `deno ${Deno.version.deno} Deno.QuicEndpoint`, alpn: conn.protocol, servername: conn.serverName, peer: "no API for the peer certificate", cpu: cpuSeconds() }) + "\n"));
      await w.close();
      return;
    }
    case "hold": {
      heldStreams.push(bs);
      for await (const _ of rest(reader));
      await w.close();
      return;
    }
    default:
      await w.abort(99);
  }
}

// ---------------------------------------------------------------- client probes
function clientOptions(port: number, extra: any = {}) {
  return { hostname: opt.host, port, serverName: "localhost", alpnProtocols: [ALPN], caCerts: [text("ca.crt")], ...transport(), ...extra };
}
async function dial(port: number, extra: any = {}) {
  const c = await withTimeout(Deno.connectQuic(clientOptions(port, extra)), 5000, "handshake");
  c.closed.catch(() => {});
  return c;
}
async function cmdStream(c: any, cmd: string) {
  const bs = await c.createBidirectionalStream({ waitUntilAvailable: true });
  const w = bs.writable.getWriter();
  await w.write(enc.encode(cmd + "\n"));
  return { bs, w };
}
async function ask(c: any, cmd: string): Promise<string> {
  const { bs, w } = await cmdStream(c, cmd);
  await w.close();
  return dec.decode(await readAll(bs.readable)).trim();
}
async function echoStreams(c: any, n: number, size: number) {
  const t0 = performance.now();
  const results = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const block = crypto.getRandomValues(new Uint8Array(65536));
      const full = new Uint8Array(size);
      for (let o = 0; o < size; o += block.byteLength) full.set(block.subarray(0, Math.min(block.byteLength, size - o)), o);
      full[0] = i & 255;
      const { bs, w } = await cmdStream(c, "echo");
      const [back] = await Promise.all([readAll(bs.readable), (async () => { await writeAll(w, full); await w.close(); })()]);
      return sha(back) === sha(full) && back.byteLength === size;
    }),
  );
  const ok = results.filter(Boolean).length;
  return { ok: ok === n, detail: `${ok}/${n} streams × ${size / 1048576} MiB echoed, SHA-256 equal, ${(performance.now() - t0).toFixed(0)} ms` };
}
async function halfClose(c: any) {
  const { bs, w } = await cmdStream(c, "halfclose");
  await w.write(enc.encode("x".repeat(1000)));
  await w.close();
  const back = await readAll(bs.readable);
  const head = dec.decode(back.subarray(0, back.indexOf(10)));
  return { ok: head === "after-fin 1000" && back.byteLength === head.length + 1 + 65536, detail: `client FIN, then server sent "${head}" + ${back.byteLength - head.length - 1} bytes` };
}
async function resetClientToServer(c: any) {
  const { bs, w } = await cmdStream(c, "expect-reset");
  await w.write(enc.encode("some bytes"));
  await sleep(50);
  await w.abort(42);
  const back = dec.decode(await withTimeout(readAll(bs.readable), 5000, "server reply")).trim();
  return { ok: back.startsWith("read-error 42"), detail: `client writer.abort(42) → server read: ${back}` };
}
async function resetServerToClient(c: any) {
  const { bs, w } = await cmdStream(c, "reset 43");
  await w.close();
  let got = "";
  let n = 0;
  try {
    for await (const x of bs.readable) n += x.byteLength;
    got = `FIN after ${n} bytes (no error)`;
  } catch (e) {
    got = `after ${n} bytes: ${errText(e)}`;
  }
  return { ok: /43/.test(got), detail: `server reset 43 → client read ${got}` };
}
async function stopSending(port: number) {
  const c = await dial(port);
  const { bs, w } = await cmdStream(c, "stop 44");
  const reply = readAll(bs.readable).then((b) => dec.decode(b).trim(), (e) => `read error ${errText(e)}`);
  let err = "";
  try {
    for (let i = 0; i < 200; i++) {
      await withTimeout(w.ready, 3000, "writer ready");
      await withTimeout(w.write(BLOCK.slice()), 3000, "write");
      await sleep(5);
    }
    err = "writes kept succeeding";
  } catch (e) {
    err = errText(e);
  }
  const rep = await withTimeout(reply, 2000, "reply").catch((e) => errText(e));
  c.close({ closeCode: 0, reason: "" });
  return { ok: /44/.test(err), detail: `server cancel(44) on its reader → client write: ${err}; reply: ${rep}` };
}
async function closeWithCode(port: number) {
  const c = await dial(port);
  const { w } = await cmdStream(c, "close 4660 going away");
  await w.close().catch(() => {});
  let r = "";
  await withTimeout(c.closed, 5000, "closed").then((i: any) => (r = `closed resolved ${JSON.stringify(i)}`), (e) => (r = `closed rejected ${errText(e)}`));
  return { ok: /4660/.test(r) && /going away/.test(r), detail: `server close(code 4660, "going away") → client conn.closed: ${r}` };
}
async function idleTimeout(port: number, keepAliveMs?: number) {
  const c = await dial(port, { maxIdleTimeout: 1000, ...(keepAliveMs ? { keepAliveInterval: keepAliveMs } : {}) });
  const t0 = performance.now();
  let how = "";
  const closed = c.closed.then((i: any) => (how = `resolved ${JSON.stringify(i)}`), (e: any) => (how = `rejected ${errText(e)}`));
  const r = await Promise.race([closed.then(() => "closed"), sleep(keepAliveMs ? 3500 : 5000).then(() => "open")]);
  const ms = performance.now() - t0;
  if (r === "open") {
    let alive = "";
    try {
      alive = (await withTimeout(ask(c, "info"), 2000, "info")).startsWith("{") ? "works" : "?";
    } catch (e) {
      alive = errText(e);
    }
    c.close({ closeCode: 0, reason: "" });
    return { ok: !!keepAliveMs, detail: `still open after ${ms.toFixed(0)} ms (a stream then: ${alive})` };
  }
  return { ok: !keepAliveMs, detail: `closed after ${ms.toFixed(0)} ms: ${how}` };
}
async function bulk(c: any, mib: number) {
  const bytes = mib * 1048576;
  const srv0 = JSON.parse(await ask(c, "info")).cpu;
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const { bs, w } = await cmdStream(c, "count");
  const replyP = readAll(bs.readable);
  for (let left = bytes; left > 0; left -= BLOCK.byteLength) {
    await w.ready;
    w.write(BLOCK.slice()); // not awaited: the writer queues up to its high-water mark
  }
  await w.close();
  const reply = dec.decode(await replyP).trim();
  const sec = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - cpu0;
  const n = Number(reply.split(" ")[0]);
  const gbit = (bytes * 8) / sec / 1e9;
  return { ok: n === bytes, sec, cpu, gbit, detail: `${mib} MiB up in ${sec.toFixed(2)} s = ${gbit.toFixed(2)} Gbit/s; process CPU ${cpu.toFixed(2)} s (${((cpu / bytes) * 2 ** 30).toFixed(1)} CPU-s/GiB, both ends if in-process); server counted ${n}, server process CPU ${(Number(reply.split(" ")[1]) - srv0).toFixed(2)} s` };
}
async function bulkDown(c: any, mib: number) {
  const bytes = mib * 1048576;
  const srv0 = JSON.parse(await ask(c, "info")).cpu;
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  const { bs, w } = await cmdStream(c, `source ${bytes}`);
  await w.close();
  let n = 0;
  for await (const x of bs.readable) n += x.byteLength;
  const sec = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds() - cpu0;
  const gbit = (bytes * 8) / sec / 1e9;
  return { ok: n === bytes, sec, cpu, gbit, detail: `${mib} MiB down in ${sec.toFixed(2)} s = ${gbit.toFixed(2)} Gbit/s; process CPU ${cpu.toFixed(2)} s (${((cpu / bytes) * 2 ** 30).toFixed(1)} CPU-s/GiB); got ${n}, server process CPU ${(JSON.parse(await ask(c, "info")).cpu - srv0).toFixed(2)} s` };
}
/** Read-side backpressure: ask for 256 MiB, read nothing for 2 s, see how much the process buffered. */
async function pauseRead(c: any) {
  gc();
  const r0 = rssMiB();
  const { bs, w } = await cmdStream(c, `source ${256 * 1048576}`);
  await w.close();
  await sleep(2000);
  gc();
  const r1 = rssMiB();
  let n = 0;
  for await (const x of bs.readable) n += x.byteLength;
  return { ok: r1 - r0 < 64 && n === 256 * 1048576, detail: `server sends 256 MiB, client does not read for 2 s: RSS +${(r1 - r0).toFixed(1)} MiB (sender held by flow control), then read ${n >> 20} MiB` };
}
async function datagrams(c: any) {
  const max = c.maxDatagramSize;
  const got: number[] = [];
  (async () => {
    for (;;) got.push((await c.readDatagram()).byteLength);
  })().catch(() => {});
  const sent: string[] = [];
  for (const n of [1, 100, max, max + 1, 1200, 1400]) {
    try {
      await withTimeout(c.sendDatagram(new Uint8Array(n).fill(7)), 1000, "sendDatagram");
      sent.push(`${n}→sent`);
    } catch (e) {
      sent.push(`${n}→${errText(e)}`);
    }
    await sleep(30);
  }
  await sleep(300);
  return { ok: got.length > 0, detail: `maxDatagramSize=${max}; send: ${sent.join(", ")}; echoed back sizes: [${got.join(", ")}]` };
}
async function alpnMismatch(port: number) {
  try {
    const c = await dial(port, { alpnProtocols: ["other/1"] });
    return { ok: false, detail: `handshake completed with protocol=${c.protocol}` };
  } catch (e) {
    return { ok: true, detail: `refused: ${errText(e)}` };
  }
}

async function runClientProbes(port: number, results: any[], bulkMib: number) {
  const only = opt.only ? new Set(opt.only.split(",")) : null;
  const rec = async (name: string, f: () => Promise<any>, ms = 60000) => {
    if (only && !only.has(name)) return;
    let r: any;
    try {
      r = await withTimeout(f(), ms, name);
    } catch (e) {
      r = { ok: false, detail: `FAILED: ${errText(e)}` };
    }
    results.push({ name, ...r });
    console.log(`${r.ok ? "ok  " : "FAIL"} ${name}: ${r.detail}`);
  };
  const c = await dial(port);
  await rec("handshake", async () => ({ ok: c.protocol === ALPN, detail: `protocol=${c.protocol} maxDatagramSize=${c.maxDatagramSize}; server says ${await ask(c, "info")}` }));
  await rec("streams-1", () => echoStreams(c, 1, 1048576));
  await rec("streams-100", () => echoStreams(c, 100, 1048576));
  await rec("half-close", () => halfClose(c));
  await rec("reset-c2s", () => resetClientToServer(c), 10000);
  await rec("reset-s2c", () => resetServerToClient(c), 10000);
  await rec("stop-sending", () => stopSending(port), 20000);
  await rec("pause-read", () => pauseRead(c));
  await rec("datagrams", () => datagrams(c));
  await rec("close-code", () => closeWithCode(port));
  await rec("alpn-mismatch", () => alpnMismatch(port));
  await rec("idle-timeout", () => idleTimeout(port));
  await rec("keep-alive", () => idleTimeout(port, 300));
  if (bulkMib > 0) {
    await rec("bulk-up", () => bulk(c, bulkMib), 120000);
    await rec("bulk-down", () => bulkDown(c, Math.min(bulkMib, 256)), 120000);
  }
  c.close({ closeCode: 0, reason: "" });
}

async function clientCerts(results: any[], port: number) {
  // The server side (QuicListenOptions) has no CA / requestCert option and QuicConn
  // no peer-certificate accessor; connectQuic takes cert/key (undocumented, passed
  // to rustls' client config) but nothing on the server can ask for or read it.
  let detail = "";
  try {
    const c = await dial(port, { cert: text("client.crt"), key: text("client.pk8.pem") });
    detail = `connectQuic({cert,key}) accepted; server sees: ${await ask(c, "info")}; QuicListenOptions has no ca/requestCert, QuicConn no peerCertificate`;
    c.close({ closeCode: 0, reason: "" });
  } catch (e) {
    detail = `connectQuic({cert,key}): ${errText(e)}`;
  }
  results.push({ name: "client-cert", ok: false, detail });
  console.log(`FAIL client-cert: ${detail}`);
}
async function pinning(results: any[]) {
  const ep = startServer("self");
  const port = ep.addr.port;
  const parts: string[] = [];
  let ok = true;
  try {
    const c = await dial(port);
    parts.push("CA-verified client accepted a self-signed cert (BAD)");
    ok = false;
    c.close({ closeCode: 0, reason: "" });
  } catch (e) {
    parts.push(`CA-verified: refused (${errText(e).slice(0, 120)})`);
  }
  try {
    const c = await dial(port, { caCerts: [text("self.crt")] });
    parts.push(`caCerts=[self.crt]: accepted (protocol ${c.protocol})`);
    c.close({ closeCode: 0, reason: "" });
  } catch (e) {
    parts.push(`caCerts=[self.crt]: refused (${errText(e).slice(0, 160)})`);
    ok = false;
  }
  for (const [label, fp] of [["right", fingerprint(text("self.crt"))], ["wrong", "00".repeat(32)]]) {
    const hash = Uint8Array.from(fp.match(/../g)!.map((h) => parseInt(h, 16)));
    try {
      const c = await dial(port, { caCerts: [], serverCertificateHashes: [{ algorithm: "sha-256", value: hash }] });
      parts.push(`serverCertificateHashes (undocumented) ${label} hash: accepted`);
      c.close({ closeCode: 0, reason: "" });
    } catch (e) {
      parts.push(`serverCertificateHashes ${label} hash: refused (${errText(e).slice(0, 100)})`);
    }
  }
  parts.push("no API exposes the server's certificate or fingerprint to the client");
  ep.close();
  results.push({ name: "pinning", ok, detail: parts.join("; ") });
  console.log(`${ok ? "ok  " : "FAIL"} pinning: ${parts.join("; ")}`);
}
async function memory(results: any[], port: number, nConns: number, nStreams: number) {
  gc();
  await sleep(300);
  const base = rssMiB();
  const conns: any[] = [];
  const shared = opt["shared-endpoint"] ? { endpoint: new Deno.QuicEndpoint({ hostname: "127.0.0.1", port: 0 }) } : {};
  try {
    for (let i = 0; i < nConns; i++) conns.push(await dial(port, shared));
    await Promise.all(conns.map((c) => ask(c, "info")));
  } catch (e) {
    console.log(`connections stopped at ${conns.length}: ${errText(e)}`);
  }
  gc();
  await sleep(500);
  const after = rssMiB();
  const per = ((after - base) * 1024) / conns.length;
  const d1 = `${conns.length} idle connections (client+server in one process; ${opt["shared-endpoint"] ? "all clients share one QuicEndpoint" : "each connectQuic binds its own UDP socket"}): RSS ${base.toFixed(1)} → ${after.toFixed(1)} MiB = ${per.toFixed(1)} KiB per connection (both ends)`;
  results.push({ name: "mem-conns", ok: conns.length === nConns, detail: d1, perConnKiB: per });
  console.log(`${conns.length === nConns ? "ok  " : "FAIL"} mem-conns: ${d1}`);
  for (const c of conns) c.close({ closeCode: 0, reason: "" });
  await sleep(500);
  gc();
  const c = await dial(port);
  await ask(c, "info");
  gc();
  await sleep(300);
  const b2 = rssMiB();
  const held: any[] = [];
  try {
    for (let i = 0; i < nStreams; i++) held.push(await cmdStream(c, "hold"));
    await sleep(500);
  } catch (e) {
    console.log(`streams stopped at ${held.length}: ${errText(e)}`);
  }
  gc();
  await sleep(500);
  const a2 = rssMiB();
  const ps = ((a2 - b2) * 1024) / held.length;
  const d2 = `${held.length} idle streams on one connection (both ends, server holds ${heldStreams.length}): RSS ${b2.toFixed(1)} → ${a2.toFixed(1)} MiB = ${ps.toFixed(2)} KiB per stream (both ends)`;
  results.push({ name: "mem-streams", ok: held.length === nStreams, detail: d2, perStreamKiB: ps });
  console.log(`${held.length === nStreams ? "ok  " : "FAIL"} mem-streams: ${d2}`);
  c.close({ closeCode: 0, reason: "" });
}

const results: any[] = [];
if (mode === "serve") {
  const ep = startServer(opt.cert);
  console.log(JSON.stringify({ port: ep.addr.port, runtime: `deno ${Deno.version.deno}`, fingerprint: fingerprint(text(opt.cert === "self" ? "self.crt" : "server.crt")) }));
} else if (mode === "client") {
  console.log(`# deno ${Deno.version.deno} Deno.connectQuic client → 127.0.0.1:${opt.port}`);
  await runClientProbes(Number(opt.port), results, Number(opt["bulk-mib"] ?? 256));
  Deno.exit(0);
} else {
  console.log(`# deno ${Deno.version.deno} Deno.QuicEndpoint, client and server in one process (pid ${Deno.pid}), ${navigator.hardwareConcurrency} cores`);
  const ep = startServer("ca");
  const port = ep.addr.port;
  await runClientProbes(port, results, Number(opt["bulk-mib"] ?? 1024));
  const only = opt.only ? new Set(opt.only.split(",")) : null;
  if (!only || only.has("client-cert")) await clientCerts(results, port);
  if (!only || only.has("pinning")) await pinning(results);
  if (!only || only.has("memory")) await memory(results, port, Number(opt.conns), Number(opt.streams));
  console.log(`# ${results.filter((r) => r.ok).length}/${results.length} ok`);
  Deno.exit(0);
}
