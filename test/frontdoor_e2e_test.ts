/**
 * The front door end to end, on every single-tunnel listener kind (sni, tcp,
 * connect, socks5) and on `tunnel:NAME` targets:
 * - a client that sends its preamble, its data and FIN in one write, to a
 *   backend that answers only after EOF, gets the whole answer (the FIN used
 *   to be lost on the SNI path while the backend connection was being made);
 * - every kind logs the client's real address and port (Bun used to log ":0");
 * - the tcp listener: curl and iperf3 through it, a server that speaks first,
 *   a tunnel service reached from a public port, PROXY v2 accepted by HAProxy;
 * - SOCKS5: data pipelined behind the request (well past the old 4 KiB) arrives.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import net from "node:net";
import { join } from "node:path";
import { hashToken } from "../src/auth/mod.ts";
import { type EdgemuxProcess, run, startEdgemux, tempDir, waitFor } from "./support/edgemux.ts";
import { alertBytes, fixtureHello, rewriteSni } from "./support/net.ts";
import { edgeTls, startAgentProcess } from "./support/tunnel.ts";

const DEST = "dest-secret-frontdoor";
const HAPROXY = "/usr/sbin/haproxy";
const IPERF3 = ["/usr/bin/iperf3", "/bin/iperf3"].find((p) => existsSync(p)) ?? null;

/** A backend that reads until EOF, then answers "<n> <sha256>" of everything it got, then closes. */
function eofServer(): Promise<net.Server & { port: number }> {
  const s = net.createServer((c) => {
    const h = createHash("sha256");
    let n = 0;
    c.on("data", (d) => {
      n += d.length;
      h.update(d);
    });
    c.on("end", () => c.end(`${n} ${h.digest("hex")}\n`));
    c.on("error", () => {});
  });
  return new Promise((r) => s.listen(0, "127.0.0.1", () => r(Object.assign(s, { port: (s.address() as net.AddressInfo).port }))));
}

/** Sends `bytes` and FIN in one go; resolves with everything read until the server closes. */
function sendAndEnd(port: number, bytes: Uint8Array, timeoutMs = 10_000): Promise<{ reply: Buffer; localPort: number }> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, "127.0.0.1");
    const got: Buffer[] = [];
    const t = setTimeout(() => {
      c.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; got ${Buffer.concat(got).toString("latin1").slice(0, 200)}`));
    }, timeoutMs);
    let localPort = 0;
    c.on("connect", () => {
      localPort = c.localPort!;
      c.end(bytes);
    });
    c.on("data", (d: Buffer) => got.push(d));
    c.on("close", () => {
      clearTimeout(t);
      resolve({ reply: Buffer.concat(got), localPort });
    });
    c.on("error", () => {});
  });
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const concat = (...parts: Uint8Array[]) => Buffer.concat(parts.map((p) => Buffer.from(p)));
const payload = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);

let eof: Awaited<ReturnType<typeof eofServer>>;
let http: HttpServer;
let httpPort = 0;
let greeter: net.Server;
let greeterPort = 0;
let edge: EdgemuxProcess;
let agent: EdgemuxProcess;
const dirs: string[] = [];

function config(): string {
  const tls = edgeTls();
  return `
workers = 2
[admin]
address = "127.0.0.1:0"
[egress]
allow_hosts = ["*"]
allow_ports = ["1-65535"]
allow_private = true

[[listeners]]
name = "sni"
kind = "sni"
address = "127.0.0.1:0"

[[listeners]]
name = "tcp"
kind = "tcp"
address = "127.0.0.1:0"

[[listeners]]
name = "tcptun"
kind = "tcp"
address = "127.0.0.1:0"

[[listeners]]
name = "web"
kind = "tcp"
address = "127.0.0.1:0"

[[listeners]]
name = "greet"
kind = "tcp"
address = "127.0.0.1:0"

[[listeners]]
name = "connect"
kind = "connect"
address = "127.0.0.1:0"

[[listeners]]
name = "socks"
kind = "socks5"
address = "127.0.0.1:0"

[[listeners]]
name = "tunnel"
kind = "tunnel"
address = "127.0.0.1:0"
[listeners.tls]
cert = "${tls.cert}"
key = "${tls.key}"

[[tokens]]
name = "dest"
sha256 = "${hashToken(DEST)}"
roles = ["destination"]

[[routes]]
match = "fin.test"
listeners = ["sni"]
targets = ["127.0.0.1:${eof.port}"]

[[routes]]
match = "tunfin.test"
listeners = ["sni"]
targets = ["tunnel:eof"]

[[routes]]
match = "offline.test"
listeners = ["sni"]
targets = ["tunnel:nobody"]

[[routes]]
name = "tcp-eof"
match = "*"
listeners = ["tcp"]
targets = ["127.0.0.1:${eof.port}"]

[[routes]]
name = "tcp-tunnel"
match = "*"
listeners = ["tcptun"]
targets = ["tunnel:eof"]

[[routes]]
name = "tcp-web"
match = "*"
listeners = ["web"]
targets = ["127.0.0.1:1", "127.0.0.1:${httpPort}"]

[[routes]]
name = "tcp-greet"
match = "*"
listeners = ["greet"]
targets = ["127.0.0.1:${greeterPort}"]
`;
}

beforeAll(async () => {
  eof = await eofServer();
  http = createHttpServer((req, res) => res.end(`hello from ${req.url}`));
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  httpPort = (http.address() as net.AddressInfo).port;
  // A server that speaks first (SMTP, SSH, MySQL): its greeting must reach the client.
  greeter = net.createServer((c) => {
    c.write("220 greeter ready\r\n");
    c.on("data", (d) => c.end(`250 got ${d.toString().trim()}\r\n`));
    c.on("error", () => {});
  });
  await new Promise<void>((r) => greeter.listen(0, "127.0.0.1", r));
  greeterPort = (greeter.address() as net.AddressInfo).port;
  edge = await startEdgemux(config(), { workers: 2 });
  agent = await startAgentProcess(["--edge", `localhost:${edge.hostPort("tunnel").port}`, "--ca", edgeTls().ca, "--token", DEST, "--name", "eofd", "--expose", `eof=127.0.0.1:${eof.port}`]);
  await agent.waitForLine((l) => l.msg === "connected to the edge", 15_000);
  // The service is announced to every worker (a client may land on either).
  await waitFor(async () => {
    const s = (await edge.status()) as unknown as { tunnel?: { services?: unknown[] } };
    return JSON.stringify(s).includes('"eof"') || null;
  }, 10_000, "the eof service announced");
}, 60_000);

afterAll(async () => {
  await agent?.stop();
  await edge?.stop();
  eof?.close();
  http?.close();
  greeter?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("preamble + data + FIN in one write reach a backend that answers after EOF", () => {
  const data = payload(3000);

  test("sni → host:port and sni → tunnel:NAME", async () => {
    for (const name of ["fin.test", "tunfin.test"]) {
      const hello = rewriteSni(fixtureHello(), name);
      const { reply } = await sendAndEnd(edge.hostPort("sni").port, concat(hello, data));
      expect(reply.toString()).toBe(`${hello.length + data.length} ${sha(concat(hello, data))}\n`);
    }
  });

  test("tcp → host:port and tcp → tunnel:NAME", async () => {
    for (const l of ["tcp", "tcptun"]) {
      const { reply } = await sendAndEnd(edge.hostPort(l).port, data);
      expect(`${l}: ${reply.toString()}`).toBe(`${l}: ${data.length} ${sha(data)}\n`);
    }
  });

  test("HTTP/1.1 CONNECT", async () => {
    const head = new TextEncoder().encode(`CONNECT 127.0.0.1:${eof.port} HTTP/1.1\r\nHost: 127.0.0.1:${eof.port}\r\n\r\n`);
    const { reply } = await sendAndEnd(edge.hostPort("connect").port, concat(head, data));
    const text = reply.toString("latin1");
    expect(text).toStartWith("HTTP/1.1 200");
    expect(text.slice(text.indexOf("\r\n\r\n") + 4)).toBe(`${data.length} ${sha(data)}\n`);
  });

  test("SOCKS5, with 100 KiB pipelined behind the request (the old parser refused more than 4 KiB)", async () => {
    const big = payload(100 * 1024);
    const request = Uint8Array.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, eof.port >> 8, eof.port & 0xff]);
    const { reply } = await sendAndEnd(edge.hostPort("socks").port, concat(request, big));
    // Method choice (2 bytes), then the reply (10 bytes for an IPv4 BND.ADDR), then the backend's answer.
    expect([...reply.subarray(0, 4)]).toEqual([5, 0, 5, 0]);
    expect(reply.subarray(12).toString()).toBe(`${big.length} ${sha(big)}\n`);
  });
});

describe("a tunnel service no agent exposes", () => {
  test("sni: the client gets alert internal_error (DESIGN.md: the backend cannot be reached)", async () => {
    const { reply } = await sendAndEnd(edge.hostPort("sni").port, rewriteSni(fixtureHello(), "offline.test"));
    expect([...reply]).toEqual(alertBytes(80));
    const line = await edge.waitForLine((l) => l.msg === "connection" && l.sni === "offline.test");
    expect(line.error).toBe("SERVICE_UNKNOWN");
  });
});

describe("the client's address in logs", () => {
  test("every kind logs 127.0.0.1 and the client's own port", async () => {
    const cases: [string, Uint8Array][] = [
      ["sni", concat(rewriteSni(fixtureHello(), "fin.test"), payload(10))],
      ["tcp", payload(10)],
      ["connect", new TextEncoder().encode(`CONNECT 127.0.0.1:${eof.port} HTTP/1.1\r\nHost: x\r\n\r\n`)],
      ["socks", Uint8Array.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, eof.port >> 8, eof.port & 0xff])],
    ];
    for (const [listener, bytes] of cases) {
      const { localPort } = await sendAndEnd(edge.hostPort(listener).port, bytes);
      const line = await edge.waitForLine((l) => l.listener === listener && (l.msg === "connection" || l.msg === "tunnel") && String(l.client).endsWith(`:${localPort}`));
      expect(`${listener} ${line.client}`).toBe(`${listener} 127.0.0.1:${localPort}`);
    }
  });
});

describe("tcp listener", () => {
  test("curl through it, failing over from a dead target", async () => {
    for (let i = 0; i < 4; i++) {
      const r = await run("curl", ["-sS", "--max-time", "10", `http://127.0.0.1:${edge.hostPort("web").port}/n${i}`], { timeoutMs: 15_000 });
      expect(r.stdout).toBe(`hello from /n${i}`);
    }
    const line = await edge.waitForLine((l) => l.msg === "connection" && l.listener === "web" && l.backend === `127.0.0.1:${httpPort}`);
    expect(line.route).toBe("tcp-web");
  });

  test("a server that speaks first is heard before the client says anything", async () => {
    const got = await new Promise<string>((resolve, reject) => {
      const c = net.connect(edge.hostPort("greet").port, "127.0.0.1");
      let text = "";
      c.on("data", (d) => {
        text += d.toString();
        if (text === "220 greeter ready\r\n") c.write("HELO x\r\n");
      });
      c.on("close", () => resolve(text));
      c.on("error", reject);
      setTimeout(() => c.destroy(new Error(`timeout; got ${text}`)), 10_000);
    });
    expect(got).toBe("220 greeter ready\r\n250 got HELO x\r\n");
  });

  test.skipIf(IPERF3 === null)("iperf3 (TCP, 2 s, both directions) through it", async () => {
    // iperf3 cannot listen on port 0: take one the kernel just handed out.
    const port = await freePort();
    const s = spawn(IPERF3!, ["-s", "-B", "127.0.0.1", "-p", String(port)], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      await waitFor(() => canConnect(port), 10_000, "iperf3 server");
      const dir = tempDir("edgemux-iperf-");
      dirs.push(dir);
      const iperfEdge = await startEdgemux(`
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "perf"
kind = "tcp"
address = "127.0.0.1:0"
[[routes]]
match = "*"
listeners = ["perf"]
targets = ["127.0.0.1:${port}"]
`, { workers: 1, dir });
      try {
        for (const reverse of [[], ["-R"]]) {
          const r = await run(IPERF3!, ["-c", "127.0.0.1", "-p", String(iperfEdge.hostPort("perf").port), "-t", "2", "-J", ...reverse], { timeoutMs: 30_000 });
          expect(r.code).toBe(0);
          const j = JSON.parse(r.stdout) as { end: { sum_received: { bytes: number } } };
          expect(j.end.sum_received.bytes).toBeGreaterThan(1_000_000);
        }
      } finally {
        await iperfEdge.stop();
      }
    } finally {
      s.kill();
    }
  }, 60_000);

  test.skipIf(!existsSync(HAPROXY))("PROXY v2 out is accepted by HAProxy (accept-proxy), which sees the client's address", async () => {
    // HAProxy reads our v2 header strictly (accept-proxy) and re-encodes the client it names
    // as a v1 header (send-proxy) to the backend, which records it.
    const seen: string[] = [];
    const backend = net.createServer((c) => {
      let buf = Buffer.alloc(0);
      c.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        // v1 from HAProxy's send-proxy: "PROXY TCP4 <src> <dst> <sport> <dport>\r\n"
        const i = buf.indexOf("\r\n");
        if (i > 0 && seen.length === 0) {
          seen.push(buf.subarray(0, i).toString());
          c.end("through haproxy\n");
        }
      });
      c.on("error", () => {});
    });
    await new Promise<void>((r) => backend.listen(0, "127.0.0.1", r));
    const bport = (backend.address() as net.AddressInfo).port;
    const hport = await freePort();
    const dir = tempDir("edgemux-haproxy-");
    dirs.push(dir);
    const hcfg = join(dir, "haproxy.cfg");
    writeFileSync(hcfg, `global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 10s
  timeout server 10s
frontend f
  bind 127.0.0.1:${hport} accept-proxy
  default_backend b
backend b
  server s1 127.0.0.1:${bport} send-proxy
`);
    const h: ChildProcess = spawn(HAPROXY, ["-f", hcfg, "-db"], { stdio: ["ignore", "pipe", "pipe"] });
    let ppEdge: EdgemuxProcess | null = null;
    try {
      await waitFor(() => canConnect(hport), 10_000, "haproxy listening");
      ppEdge = await startEdgemux(`
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "pp"
kind = "tcp"
address = "127.0.0.1:0"
[[routes]]
match = "*"
listeners = ["pp"]
targets = ["127.0.0.1:${hport}"]
proxy_protocol = "v2"
`, { workers: 1, dir });
      const { reply, localPort } = await sendAndEnd(ppEdge.hostPort("pp").port, new TextEncoder().encode("hi\n"));
      expect(reply.toString()).toBe("through haproxy\n");
      expect(seen[0]).toBe(`PROXY TCP4 127.0.0.1 127.0.0.1 ${localPort} ${ppEdge.hostPort("pp").port}`);
    } finally {
      await ppEdge?.stop();
      h.kill();
      backend.close();
    }
  }, 60_000);
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean | null> {
  return new Promise((resolve) => {
    const c = net.connect(port, "127.0.0.1");
    c.on("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.on("error", () => resolve(null));
  });
}
