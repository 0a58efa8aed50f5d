/**
 * `kind = "udp"` listeners end to end: a real `edgemux serve` (two workers)
 * in front of a real DNS server (dnsmasq) queried by a real client (dig),
 * directly and through a tunnel UDP service exposed by a real `edgemux agent`;
 * a flood of random datagrams beside a query stream; the max_flows and
 * max_datagram bounds and the idle end of a flow, read back from /metrics and
 * the log. Runs on Bun, and on Deno with EDGEMUX_RUNTIME=deno (where only
 * worker 0 binds a udp listener: Deno cannot share a UDP port).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes, randomInt } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { detectRuntime, type UdpSocket } from "../src/runtime/mod.ts";
import { type EdgemuxProcess, run, startEdgemux, tempDir, waitFor } from "./support/edgemux.ts";
import { edgeTls, startAgentProcess } from "./support/tunnel.ts";

const runtime = detectRuntime();

/** Debian puts dnsmasq in /usr/sbin, which a non-root PATH may lack. */
const DNSMASQ = existsSync("/usr/sbin/dnsmasq") ? "/usr/sbin/dnsmasq" : "dnsmasq";
const hasTools = spawnSync("dig", ["-v"]).status === 0 && spawnSync(DNSMASQ, ["--version"]).status === 0;
const hex = (s: string) => createHash("sha256").update(s).digest("hex");
const MAX_DATAGRAM = 1200;

const dirs: string[] = [];
const children = new Set<EdgemuxProcess>();
let dnsmasq: ChildProcess | null = null;
let dnsPort = 0;
let edge: EdgemuxProcess;

/** A UDP port the kernel hands out now (dnsmasq takes a port number, not a socket). */
async function freeUdpPort(): Promise<number> {
  const s = await runtime.bindUdp({ hostname: "127.0.0.1", port: 0, onDatagram() {} });
  const p = s.port;
  s.close();
  return p;
}

async function dig(port: number, name = "example.test"): Promise<string> {
  const r = await run("dig", [`@127.0.0.1`, "-p", String(port), name, "+short", "+time=1", "+tries=3"]);
  return r.stdout.trim();
}

/** dnsmasq answering example.test with 10.1.2.3, on a free port, unprivileged files in `dir` only. */
async function startDnsmasq(dir: string): Promise<{ proc: ChildProcess; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const port = await freeUdpPort();
    const proc = spawn(DNSMASQ, [
      "--no-daemon",
      "--conf-file=/dev/null",
      `--pid-file=${join(dir, "dnsmasq.pid")}`,
      `--port=${port}`,
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      "--no-resolv",
      "--no-hosts",
      "--address=/example.test/10.1.2.3",
      "--log-facility=-",
    ], { stdio: ["ignore", "ignore", "pipe"] });
    let exited = false;
    proc.on("exit", () => (exited = true));
    try {
      await waitFor(async () => exited || (await dig(port)) === "10.1.2.3", 10_000, "dnsmasq");
    } catch { /* fall through */ }
    if (!exited) return { proc, port };
    if (attempt >= 4) throw new Error("dnsmasq did not start");
  }
}

/** The kernel's count of UDP datagrams dropped for a full receive buffer (Linux), for the report; 0 elsewhere. */
function udpRcvbufErrors(): number {
  try {
    const rows = readFileSync("/proc/net/snmp", "utf8").split("\n").filter((l) => l.startsWith("Udp: "));
    const names = rows[0]!.split(/\s+/);
    return Number(rows[1]!.split(/\s+/)[names.indexOf("RcvbufErrors")]);
  } catch {
    return 0;
  }
}

/** One sample of a /metrics family, 0 when absent. */
async function metric(p: EdgemuxProcess, name: string, labels: string): Promise<number> {
  const text = await (await p.adminGet("/metrics")).text();
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) && line.includes(labels)) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return 0;
}

/** A client socket that keeps what it receives. */
async function client(): Promise<{ sock: UdpSocket; got: Uint8Array[] }> {
  const got: Uint8Array[] = [];
  const sock = await runtime.bindUdp({ hostname: "127.0.0.1", port: 0, onDatagram: (d) => got.push(d) });
  return { sock, got };
}

beforeAll(async () => {
  if (!hasTools) return;
  const dir = tempDir("edgemux-udp-");
  dirs.push(dir);
  const d = await startDnsmasq(dir);
  dnsmasq = d.proc;
  dnsPort = d.port;
  const tls = edgeTls();
  edge = await startEdgemux(`
workers = 2
[log]
level = "info"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "dns"
kind = "udp"
address = "127.0.0.1:0"
max_datagram = ${MAX_DATAGRAM}

[[listeners]]
name = "dns-tunnel"
kind = "udp"
address = "127.0.0.1:0"

[[listeners]]
name = "tunnel"
kind = "tunnel"
address = "127.0.0.1:0"
[listeners.tls]
cert = "${tls.cert}"
key = "${tls.key}"

[[routes]]
name = "dns"
match = "*"
listeners = ["dns"]
targets = ["127.0.0.1:${dnsPort}"]

[[routes]]
name = "dns-tunnel"
match = "*"
listeners = ["dns-tunnel"]
targets = ["tunnel:dns"]

[[tokens]]
name = "dest"
sha256 = "${hex("dest-secret")}"
roles = ["destination"]
`, { workers: 2, dir });
  children.add(edge);
}, 60_000);

afterAll(async () => {
  await Promise.all([...children].map((c) => c.stop()));
  if (dnsmasq !== null && dnsmasq.exitCode === null) {
    const gone = new Promise((r) => dnsmasq!.once("exit", r));
    dnsmasq.kill("SIGTERM");
    await gone;
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(!hasTools)("udp listener", () => {
  test("dig through the udp listener to dnsmasq", async () => {
    const { port } = edge.hostPort("dns");
    expect(await dig(port)).toBe("10.1.2.3");
    // Another name: dnsmasq has no upstream, so it answers with no address.
    expect(await dig(port, "other.test")).toBe("");
  }, 20_000);

  test("dig through a tunnel UDP service exposed by an agent", async () => {
    const { port: tport } = edge.hostPort("tunnel");
    const agent = await startAgentProcess([
      "--edge", `localhost:${tport}`, "--ca", edgeTls().ca, "--token", "dest-secret", "--name", "dns-agent",
      "--expose", `dns=udp:127.0.0.1:${dnsPort}`,
    ]);
    children.add(agent);
    await agent.waitForLine((l) => l.msg === "connected to the edge", 15_000);
    const { port } = edge.hostPort("dns-tunnel");
    expect(await dig(port)).toBe("10.1.2.3");
    // The flow's log line shows the tunnel backend once it ends; while open, /status counts it.
    const st = await edge.status();
    expect(st.listeners.find((l) => l.name === "dns-tunnel")!.accepted).toBeGreaterThan(0);
  }, 30_000);

  test("10,000 random datagrams beside 200 dig queries: every query answered, edgemux stays up", async () => {
    const { port } = edge.hostPort("dns");
    const batch = join(dirs[0]!, "queries.txt");
    writeFileSync(batch, Array.from({ length: 200 }, () => `@127.0.0.1 -p ${port} example.test +short +time=1 +tries=5`).join("\n") + "\n");
    const before = await metric(edge, "edgemux_listener_errors_total", `listener="dns",code="DATAGRAM_TOO_LARGE"`);
    const drops0 = udpRcvbufErrors();
    const senders = await Promise.all(Array.from({ length: 8 }, () => client()));
    let sent = 0;
    let oversized = 0;
    const t0 = performance.now();
    let floodMs = 0;
    let digMs = 0;
    const flood = (async () => {
      for (let i = 0; i < 10_000; i++) {
        const size = randomInt(0, MAX_DATAGRAM + 101);
        if (size > MAX_DATAGRAM) oversized++;
        if (senders[i % senders.length]!.sock.send(randomBytes(size), port, "127.0.0.1")) sent++;
        // A turn of the event loop every 10 datagrams spreads the flood over the query stream's run.
        if (i % 10 === 9) await new Promise((r) => setImmediate(r));
      }
      floodMs = performance.now() - t0;
    })();
    const queries = run("dig", ["-f", batch], { timeoutMs: 120_000 }).then((r) => {
      digMs = performance.now() - t0;
      return r;
    });
    const [, answers] = await Promise.all([flood, queries]);
    // dig prints ";; communications error ... timed out" for a query it had to resend (UDP drops under the flood).
    const lines = answers.stdout.trim().split("\n").filter((l) => !l.startsWith(";;"));
    const retried = answers.stdout.split("\n").filter((l) => l.startsWith(";;")).length;
    const correct = lines.filter((l) => l === "10.1.2.3").length;
    // The counter moves as the workers read their backlog: wait until ten polls in a row see the same value.
    let counted = -1;
    let same = 0;
    await waitFor(async () => {
      const n = (await metric(edge, "edgemux_listener_errors_total", `listener="dns",code="DATAGRAM_TOO_LARGE"`)) - before;
      same = n === counted ? same + 1 : 0;
      counted = n;
      return same >= 10;
    }, 20_000, "the oversized count to settle");
    const kernelDrops = udpRcvbufErrors() - drops0;
    console.log(`udp flood: ${sent} sent, ${oversized} over max_datagram, ${counted} counted as too large by edgemux, ${kernelDrops} dropped by the kernel (RcvbufErrors, all sockets); dig: ${correct}/200 answered, ${retried} resends; flood took ${Math.round(floodMs)} ms, the 200 queries ${Math.round(digMs)} ms (both from the same start)`);
    for (const s of senders) s.sock.close();
    expect(correct).toBe(200);
    expect(lines.length).toBe(200);
    expect(sent).toBe(10_000);
    expect(counted).toBeGreaterThan(0);
    expect(counted).toBeLessThanOrEqual(oversized);
    expect(edge.exitCode).toBeNull();
    expect((await edge.adminGet("/healthz")).status).toBe(200);
    expect(await dig(port)).toBe("10.1.2.3");
  }, 180_000);
});

describe("udp listener bounds (one worker, an echo backend)", () => {
  let em: EdgemuxProcess;
  let echo: UdpSocket;
  const BIG = new TextEncoder().encode("send-big");

  beforeAll(async () => {
    // Echoes, except "send-big", answered with a datagram one byte over max_datagram.
    echo = await runtime.bindUdp({
      hostname: "127.0.0.1",
      port: 0,
      onDatagram: (d, p, a) => echo.send(d.length === BIG.length && d.every((b, i) => b === BIG[i]) ? new Uint8Array(513) : d, p, a),
    });
    const dir = tempDir("edgemux-udp-bounds-");
    dirs.push(dir);
    em = await startEdgemux(`
workers = 1
[log]
level = "info"
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "u"
kind = "udp"
address = "127.0.0.1:0"
max_flows = 3
max_datagram = 512
idle_timeout = "1s"
[[routes]]
name = "echo"
match = "*"
listeners = ["u"]
targets = ["127.0.0.1:${echo.port}"]
`, { workers: 1, dir });
    children.add(em);
  }, 60_000);

  afterAll(() => echo?.close());

  test("max_flows: a fourth and fifth client are dropped and counted as LISTENER_FULL; max_datagram both ways; idle flows end", async () => {
    const { port } = em.hostPort("u");
    const cs = await Promise.all(Array.from({ length: 5 }, () => client()));
    const hello = new TextEncoder().encode("hello");
    // Three flows, one at a time so which three is known.
    for (const c of cs.slice(0, 3)) {
      await waitFor(() => {
        c.sock.send(hello, port, "127.0.0.1");
        return c.got.length > 0;
      }, 5_000, "echo");
    }
    for (const c of cs.slice(3)) c.sock.send(hello, port, "127.0.0.1");
    await waitFor(async () => (await metric(em, "edgemux_listener_errors_total", `listener="u",code="LISTENER_FULL"`)) >= 2, 5_000, "LISTENER_FULL counted");
    expect(await metric(em, "edgemux_listener_connections_refused_total", `listener="u"`)).toBeGreaterThanOrEqual(2);
    expect(await metric(em, "edgemux_listener_connections_active", `listener="u"`)).toBe(3);

    // max_datagram: 513 bytes from a client are dropped; 512 pass; a 513-byte reply is dropped too.
    const c0 = cs[0]!;
    c0.got.length = 0;
    c0.sock.send(new Uint8Array(513), port, "127.0.0.1");
    c0.sock.send(BIG, port, "127.0.0.1");
    const full = new Uint8Array(512).fill(7);
    await waitFor(() => {
      c0.sock.send(full, port, "127.0.0.1");
      return c0.got.some((d) => d.length === 512);
    }, 5_000, "512-byte echo");
    await waitFor(async () => (await metric(em, "edgemux_listener_errors_total", `listener="u",code="DATAGRAM_TOO_LARGE"`)) >= 2, 5_000, "oversized counted");
    expect(c0.got.every((d) => d.length <= 512)).toBe(true);
    expect(await metric(em, "edgemux_route_errors_total", `route="echo",code="DATAGRAM_TOO_LARGE"`)).toBeGreaterThanOrEqual(1);

    // Idle: every flow ends after 1 s without traffic, with a log line, and the slots free up.
    await waitFor(async () => (await metric(em, "edgemux_listener_connections_active", `listener="u"`)) === 0, 10_000, "idle flows ended");
    const line = await em.waitForLine((l) => l.msg === "flow" && l.client === `127.0.0.1:${c0.sock.port}`);
    expect(line.route).toBe("echo");
    expect(line.backend).toBe(`127.0.0.1:${echo.port}`);
    expect(line.error).toBeNull();
    expect(Number(line.datagrams_in)).toBeGreaterThanOrEqual(2);
    expect(Number(line.dropped)).toBeGreaterThanOrEqual(1);
    // A new client now gets a flow.
    const late = cs[4]!;
    await waitFor(() => {
      late.sock.send(hello, port, "127.0.0.1");
      return late.got.length > 0;
    }, 5_000, "echo after idle");
    for (const c of cs) c.sock.close();
  }, 40_000);
});
