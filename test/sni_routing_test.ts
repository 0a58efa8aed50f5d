/**
 * SNI routing end to end with real clients (openssl s_client, curl) through a
 * real `edgemux serve` process to TLS backends that answer with their name.
 * Runs on Bun, and on Deno with EDGEMUX_RUNTIME=deno.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { type EdgemuxProcess, run, startEdgemux, tempDir } from "./support/edgemux.ts";
import { alertBytes, deadPort, exchange, fixtureHello, recordingServer, type RecordingServer, rewriteSni } from "./support/net.ts";
import { type TlsBackend, testPki, tlsBackend } from "./support/tls.ts";

let a: TlsBackend, b: TlsBackend, wild: TlsBackend, deep: TlsBackend, dflt: TlsBackend, unixB: TlsBackend, h2only: TlsBackend, dirB: TlsBackend;
let raw: RecordingServer;
let em: EdgemuxProcess;
let dir: string;
let sniDir: string;

async function curl(host: string, path = "/", extra: string[] = []): Promise<string> {
  const { port } = em.hostPort("sni");
  const r = await run("curl", ["-sS", "--max-time", "10", "--cacert", testPki().caCertPath, "--resolve", `${host}:${port}:127.0.0.1`, ...extra, `https://${host}:${port}${path}`]);
  if (r.code !== 0) throw new Error(`curl ${host} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  dir = tempDir();
  sniDir = join(dir, "sni.d");
  mkdirSync(sniDir);
  a = await tlsBackend("a.test");
  b = await tlsBackend("b.test");
  wild = await tlsBackend("x.wild.test", { names: ["*.wild.test"] });
  deep = await tlsBackend("x.deep.wild.test", { names: ["*.deep.wild.test"] });
  dflt = await tlsBackend("fallback.test", { names: ["other.test", "fallback.test"] });
  unixB = await tlsBackend("unix.test", { unixPath: join(dir, "unix.sock") });
  h2only = await tlsBackend("alpn.test", { alpn: ["h2", "http/1.1"] });
  dirB = await tlsBackend("dir.test", { unixPath: join(dir, "dir-backend.sock") });
  raw = await recordingServer();
  const dead = await deadPort();
  em = await startEdgemux(`
workers = 2
[log]
level = "info"
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "sni"
kind = "sni"
address = "127.0.0.1:0"
handshake_timeout = "2s"

[[routes]]
match = "a.test"
targets = ["${a.address}"]

[[routes]]
name = "b-with-failover"
match = "b.test"
targets = ["127.0.0.1:${dead}", "${b.address}"]
connect_timeout = "1s"

[[routes]]
match = "*.wild.test"
targets = ["${wild.address}"]

[[routes]]
match = "*.deep.wild.test"
targets = ["${deep.address}"]

[[routes]]
match = "unix.test"
targets = ["unix:${unixB.address}"]

[[routes]]
name = "alpn-h2"
match = "alpn.test"
alpn = ["h2"]
targets = ["${h2only.address}"]

[[routes]]
name = "alpn-plain"
match = "alpn.test"
targets = ["${a.address}"]

[[routes]]
name = "raw-proxy-v1"
match = "raw-v1.test"
targets = ["${raw.address}"]
proxy_protocol = "v1"

[[routes]]
name = "raw-proxy-v2"
match = "raw-v2.test"
targets = ["${raw.address}"]
proxy_protocol = "v2"

[[routes]]
name = "dir"
match = "*.dir.test"
directory = "${sniDir}"

[[routes]]
name = "default"
match = "*"
targets = ["${dflt.address}"]
`, { dir });
});

afterAll(async () => {
  await em?.stop();
  for (const s of [a, b, wild, deep, dflt, unixB, h2only, dirB, raw]) await s?.close();
});

describe("routing by SNI", () => {
  test("openssl s_client reaches the exact route's backend", async () => {
    const { port } = em.hostPort("sni");
    const r = await run("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", "a.test", "-CAfile", testPki().caCertPath, "-verify_return_error", "-quiet"], {
      input: "GET / HTTP/1.0\r\nHost: a.test\r\n\r\n",
    });
    expect(r.stdout).toContain("backend=a.test");
  });

  test("curl reaches the exact route's backend (certificate verified end to end)", async () => {
    expect(await curl("a.test")).toBe("backend=a.test\n");
  });

  test("wildcard: one or more labels; the longest suffix wins", async () => {
    expect(await curl("x.wild.test")).toBe("backend=x.wild.test\n");
    expect(await curl("x.deep.wild.test")).toBe("backend=x.deep.wild.test\n");
  });

  test("unknown names go to the default route", async () => {
    expect(await curl("other.test")).toBe("backend=fallback.test\n");
  });

  test("unix-socket backend", async () => {
    expect(await curl("unix.test")).toBe("backend=unix.test\n");
  });

  test("failover: a refused first target falls over to the next", async () => {
    for (let i = 0; i < 3; i++) expect(await curl("b.test")).toBe("backend=b.test\n");
  });

  test("ALPN condition picks the h2 route only for clients offering h2", async () => {
    expect(await curl("alpn.test", "/", ["--http2"]).catch((e) => String(e))).toContain("backend=alpn.test");
    // http/1.1-only client: the conditional route is skipped, the plain one (a.test's backend) answers,
    // whose certificate is for a.test: verification fails, which proves the route choice.
    const { port } = em.hostPort("sni");
    const r = await run("curl", ["-sS", "--max-time", "10", "--http1.1", "-k", "--resolve", `alpn.test:${port}:127.0.0.1`, `https://alpn.test:${port}/`]);
    expect(r.stdout).toBe("backend=a.test\n");
  });

  test("PROXY v1 and v2 headers precede the replayed ClientHello, untouched", async () => {
    const { port } = em.hostPort("sni");
    for (const [name, check] of [
      ["raw-v1.test", (buf: Buffer) => buf.toString("latin1").startsWith("PROXY TCP4 127.0.0.1 127.0.0.1 ")],
      ["raw-v2.test", (buf: Buffer) => buf.subarray(0, 12).equals(Buffer.from("0d0a0d0a000d0a515549540a", "hex")) && buf[12] === 0x21 && buf[13] === 0x11],
    ] as const) {
      const hello = rewriteSni(fixtureHello(), name);
      const before = raw.received.length;
      await exchange({ host: "127.0.0.1", port }, [hello], { timeoutMs: 1000 });
      const got = Buffer.concat(raw.received[before] ?? []);
      expect(check(got)).toBe(true);
      const headerLen = name === "raw-v1.test" ? got.indexOf("\r\n") + 2 : 16 + got.readUInt16BE(14);
      expect(got.subarray(headerLen).equals(Buffer.from(hello))).toBe(true);
      if (name === "raw-v1.test") {
        const fields = got.subarray(0, headerLen - 2).toString().split(" ");
        expect(fields[5]).toBe(String(port)); // destination port = the listener's
      }
    }
  });

  test("no SNI goes to the default route", async () => {
    const { port } = em.hostPort("sni");
    const r = await run("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-noservername", "-quiet"], { input: "GET / HTTP/1.0\r\n\r\n" });
    expect(r.stdout).toContain("backend=fallback.test");
  });
});

describe("directory mode (sniproxy compatible)", () => {
  test("a hostname added at run time is served without a reload; missing → unrecognized_name", async () => {
    const { port } = em.hostPort("sni");
    const missing = await exchange({ host: "127.0.0.1", port }, [rewriteSni(fixtureHello(), "new.dir.test")], { timeoutMs: 3000 });
    expect([...missing.data]).toEqual(alertBytes(112));
    mkdirSync(join(sniDir, "new.dir.test"));
    symlinkSync(dirB.address, join(sniDir, "new.dir.test", "tls-socket"));
    // The negative answer is cached for at most a second.
    const deadline = Date.now() + 5000;
    let body = "";
    while (Date.now() < deadline) {
      body = await curl("new.dir.test", "/", ["-k"]).catch(() => "");
      if (body) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(body).toBe("backend=dir.test\n");
  });

  test("send-proxy-v1 turns on PROXY v1 for that hostname", async () => {
    const { port } = em.hostPort("sni");
    const host = join(sniDir, "pp.dir.test");
    mkdirSync(host);
    const rec = await recordingServer({ unixPath: join(dir, "pp.sock") });
    symlinkSync(join(dir, "pp.sock"), join(host, "tls-socket"));
    writeFileSync(join(host, "send-proxy-v1"), "");
    await exchange({ host: "127.0.0.1", port }, [rewriteSni(fixtureHello(), "pp.dir.test")], { timeoutMs: 1000 });
    const got = Buffer.concat(rec.received[0] ?? []).toString("latin1");
    expect(got.startsWith("PROXY TCP4 127.0.0.1 127.0.0.1 ")).toBe(true);
    await rec.close();
  });
});

describe("refusals answer with the TLS alert DESIGN.md names", () => {
  test("no route and no default → unrecognized_name (112)", async () => {
    // This listener has a default route; use a second process without one.
    const other = await startEdgemux(`
[admin]
address = "off"
[[listeners]]
name = "sni"
kind = "sni"
address = "127.0.0.1:0"
[[routes]]
match = "only.test"
targets = ["${a.address}"]
`, { workers: 1 });
    try {
      const { port } = other.hostPort("sni");
      const r = await exchange({ host: "127.0.0.1", port }, [fixtureHello()], { timeoutMs: 3000 });
      expect([...r.data]).toEqual(alertBytes(112));
      expect(r.closed).toBe(true);
      const o = await run("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", "nowhere.test"], { input: "" });
      expect(o.stdout + o.stderr).toMatch(/unrecognized name|alert number 112/i);
    } finally {
      await other.stop();
    }
  });

  test("backend unreachable → internal_error (80)", async () => {
    const dead = await deadPort();
    const other = await startEdgemux(`
[admin]
address = "off"
[[listeners]]
name = "sni"
kind = "sni"
address = "127.0.0.1:0"
[[routes]]
match = "*"
targets = ["127.0.0.1:${dead}"]
connect_timeout = "1s"
`, { workers: 1 });
    try {
      const r = await exchange(other.hostPort("sni"), [fixtureHello()], { timeoutMs: 5000 });
      expect([...r.data]).toEqual(alertBytes(80));
    } finally {
      await other.stop();
    }
  });
});
