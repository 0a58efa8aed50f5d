/**
 * Bad input from one client gets its alert (or timeout) and closes only that
 * client: a good transfer running at the same time finishes intact.
 * Also: accept_proxy on a listener behind another proxy, and HAProxy as the
 * strict PROXY-protocol backend.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { type EdgemuxProcess, run, startEdgemux, tempDir, waitFor } from "./support/edgemux.ts";
import { alertBytes, deadPort, exchange, fixtureHello, rewriteSni } from "./support/net.ts";
import { type TlsBackend, testPki, tlsBackend } from "./support/tls.ts";

let a: TlsBackend;
let em: EdgemuxProcess;

beforeAll(async () => {
  a = await tlsBackend("a.test");
  em = await startEdgemux(`
workers = 2
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "sni"
kind = "sni"
address = "127.0.0.1:0"
handshake_timeout = "1s"
max_client_hello = 4096
[[listeners]]
name = "behind-lb"
kind = "sni"
address = "127.0.0.1:0"
accept_proxy = "any"
[[routes]]
match = "a.test"
targets = ["${a.address}"]
`);
});
afterAll(async () => {
  await em?.stop();
  await a?.close();
});

function download(bytes: number, rate: string) {
  const { port } = em.hostPort("sni");
  return run("curl", ["-sS", "--max-time", "30", "--limit-rate", rate, "--cacert", testPki().caCertPath, "--resolve", `a.test:${port}:127.0.0.1`, `https://a.test:${port}/bytes/${bytes}`], { timeoutMs: 40_000 });
}

describe("bad input closes only its own connection", () => {
  test("garbage, truncated, oversized and silent clients while a good transfer runs", async () => {
    const size = 1536 * 1024;
    const before = a.requests;
    const good = download(size, "1M");
    await waitFor(() => a.requests > before || null);
    const target = em.hostPort("sni");
    const hello = rewriteSni(fixtureHello(), "a.test");

    const [garbage, notHandshake, truncated, oversized, silent, badLength] = await Promise.all([
      // HTTP on a TLS port: not a handshake record → unexpected_message (RFC 8446 §6.2)
      exchange(target, ["GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"], { timeoutMs: 3000 }),
      // a TLS alert record instead of a handshake record → unexpected_message
      exchange(target, [new Uint8Array([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28])], { timeoutMs: 3000 }),
      // half a hello, then FIN
      exchange(target, [hello.subarray(0, 60)], { timeoutMs: 3000, end: true }),
      // a handshake message that claims more than max_client_hello (4096)
      exchange(target, [new Uint8Array([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x00, 0x3f, 0xfc, ...new Uint8Array(64)])], { timeoutMs: 3000 }),
      // connects and says nothing: cut off after handshake_timeout (1 s)
      exchange(target, [], { timeoutMs: 5000 }),
      // record length over 2^14
      exchange(target, [new Uint8Array([0x16, 0x03, 0x01, 0x48, 0x01, 0x01])], { timeoutMs: 3000 }),
    ]);
    expect([...garbage.data]).toEqual(alertBytes(10));
    expect(garbage.closed).toBe(true);
    expect([...notHandshake.data]).toEqual(alertBytes(10));
    expect(truncated.closed).toBe(true);
    expect(oversized.closed).toBe(true);
    expect([...oversized.data]).toEqual(alertBytes(22)); // record_overflow
    expect([...badLength.data]).toEqual(alertBytes(22));
    expect(silent.closed).toBe(true);
    expect(silent.ms).toBeGreaterThanOrEqual(900);
    expect(silent.ms).toBeLessThan(4000);

    const done = await good;
    expect(done.code).toBe(0);
    expect(done.stdout.length).toBe(size);
    expect(createHash("sha256").update(done.stdout).digest("hex")).toBe(createHash("sha256").update("a".repeat(size)).digest("hex"));

    const metrics = await (await em.adminGet("/metrics")).text();
    expect(metrics).toMatch(/edgemux_listener_errors_total\{listener="sni",code="HANDSHAKE_TIMEOUT"\} [1-9]/);
    expect(metrics).toMatch(/edgemux_listener_errors_total\{listener="sni",code="TLS_NOT_HANDSHAKE"\} [1-9]/);
  });

  test("a flood of garbage connections leaves the worker serving", async () => {
    const target = em.hostPort("sni");
    const rounds = await Promise.all(Array.from({ length: 200 }, (_, i) => exchange(target, [new Uint8Array(64).fill(i)], { timeoutMs: 3000 })));
    expect(rounds.every((r) => r.closed)).toBe(true);
    const { port } = em.hostPort("sni");
    const ok = await run("curl", ["-sS", "--cacert", testPki().caCertPath, "--resolve", `a.test:${port}:127.0.0.1`, `https://a.test:${port}/`]);
    expect(ok.stdout).toBe("backend=a.test\n");
  });
});

describe("accept_proxy (listener behind another load balancer)", () => {
  test("v1 and v2 headers are accepted; the claimed client is logged", async () => {
    const target = em.hostPort("behind-lb");
    const hello = rewriteSni(fixtureHello(), "a.test");
    const v1 = `PROXY TCP4 198.51.100.7 203.0.113.9 40001 443\r\n`;
    const r1 = await exchange(target, [v1, hello], { timeoutMs: 1500 });
    expect(r1.data[0]).toBe(0x16); // the backend's ServerHello came back
    const v2 = Buffer.concat([
      Buffer.from("0d0a0d0a000d0a515549540a", "hex"),
      Buffer.from([0x21, 0x11, 0x00, 12, 192, 0, 2, 33, 203, 0, 113, 9, 0x9c, 0x42, 0x01, 0xbb]),
    ]);
    const r2 = await exchange(target, [v2, hello], { timeoutMs: 1500 });
    expect(r2.data[0]).toBe(0x16);
    const lines = await waitFor(() => {
      const ls = em.lines.filter((l) => l.msg === "connection" && l.listener === "behind-lb");
      return ls.length >= 2 ? ls : null;
    });
    const clients = lines.map((l) => l.client).sort();
    expect(clients).toEqual(["192.0.2.33:40002", "198.51.100.7:40001"]);
  });

  test("a missing or malformed header closes the connection", async () => {
    const target = em.hostPort("behind-lb");
    const noHeader = await exchange(target, [rewriteSni(fixtureHello(), "a.test")], { timeoutMs: 3000 });
    expect(noHeader.closed).toBe(true);
    expect(noHeader.data.length).toBe(0);
    const bad = await exchange(target, ["PROXY TCP4 999.1.1.1 1.1.1.1 1 2\r\n"], { timeoutMs: 3000 });
    expect(bad.closed).toBe(true);
    expect(bad.data.length).toBe(0);
  });
});

const HAPROXY = "/usr/sbin/haproxy";

describe("PROXY protocol checked by HAProxy (strict accept-proxy backend)", () => {
  test.skipIf(!existsSync(HAPROXY))("v1 and v2 from edgemux are accepted and carry the client's address", async () => {
    for (const version of ["v1", "v2"] as const) {
      const dir = tempDir("edgemux-haproxy-");
      const hpPort = await deadPort();
      writeFileSync(join(dir, "haproxy.cfg"), `
global
  log stdout format raw local0
defaults
  mode tcp
  log global
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:${hpPort} accept-proxy
  log-format "client=%ci:%cp frontend=%fi:%fp"
  default_backend be
backend be
  server s1 ${a.address}
`);
      const hp = spawn(HAPROXY, ["-db", "-f", join(dir, "haproxy.cfg")], { stdio: ["ignore", "pipe", "pipe"] });
      let hpOut = "";
      hp.stdout.on("data", (d) => (hpOut += d));
      hp.stderr.on("data", (d) => (hpOut += d));
      const edge = await startEdgemux(`
[admin]
address = "off"
[[listeners]]
name = "sni"
kind = "sni"
address = "127.0.0.1:0"
[[routes]]
match = "a.test"
targets = ["127.0.0.1:${hpPort}"]
proxy_protocol = "${version}"
`, { workers: 1 });
      try {
        const { port } = edge.hostPort("sni");
        const r = await waitFor(async () => {
          const res = await run("curl", ["-sS", "--cacert", testPki().caCertPath, "--resolve", `a.test:${port}:127.0.0.1`, `https://a.test:${port}/`]);
          return res.stdout === "backend=a.test\n" ? res : null;
        }, 10_000, "haproxy to accept");
        expect(r.stdout).toBe("backend=a.test\n");
        // The successful connection (bytes came back): earlier attempts may have raced HAProxy's start-up.
        // (curl may end it with a TCP reset once it has its answer, so its error may be DOWNSTREAM_RESET.)
        const conn = await edge.waitForLine((l) => l.msg === "connection" && Number(l.bytes_out) > 1000);
        // HAProxy saw the address edgemux's client came from, and the listener's address as destination.
        const logged = await waitFor(() => hpOut.includes(`client=${conn.client} `) || null);
        expect(logged).toBe(true);
        expect(hpOut).toContain(`client=${conn.client} frontend=127.0.0.1:${port}`);
      } finally {
        await edge.stop();
        hp.kill("SIGTERM");
      }
    }
  });
});
