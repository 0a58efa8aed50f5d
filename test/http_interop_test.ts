/**
 * The http listener against clients others wrote: curl (`--http2` and
 * `--http1.1` over HTTPS), Go's net/http (test/go/httpclient, HTTP/2 and
 * HTTP/1.1), headless Chromium; a plain-HTTP service behind an `edgemux
 * agent` reached through the listener; 1 GiB each way with checksums;
 * slowloris; and the HTTP/2 edges a real client does not show (limits,
 * refusals, a response cut off upstream, GOAWAY on drain) with the raw
 * client of test/support/h2raw.ts.
 * Runs on Bun, and on Deno with EDGEMUX_RUNTIME=deno.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { join } from "node:path";
import { Chromium, hasChromium } from "./support/cdp.ts";
import { type EdgemuxProcess, ROOT, run, startEdgemux, tempDir, waitFor } from "./support/edgemux.ts";
import { RawH2 } from "./support/h2raw.ts";
import { deadPort } from "./support/net.ts";
import { testPki } from "./support/tls.ts";
import { edgeTls, startAgentProcess } from "./support/tunnel.ts";

const hex = (s: string | Uint8Array) => createHash("sha256").update(s).digest("hex");
const DEST = "site-agent-secret";
const GiB = 1024 * 1024 * 1024;
/** Deterministic pseudo-random bytes (AES-CTR over zeros), the same stream for the test and the backend. */
const GEN = (n: number) => `openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000 < /dev/zero 2>/dev/null | head -c ${n}`;
const TITLE = "Served through an edgemux tunnel";

const dir = tempDir("edgemux-http-interop-");
let em: EdgemuxProcess;
let agent: EdgemuxProcess;
let backend: Server;
let site: Server;
let ca = "";
/** Responses to /held/* wait here until a test lets them go. */
const held: ServerResponse[] = [];

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? "/";
  if (url === "/sha256") {
    const h = createHash("sha256");
    let n = 0;
    req.on("data", (d: Buffer) => {
      h.update(d);
      n += d.length;
    });
    req.on("end", () => res.end(JSON.stringify({ sha256: h.digest("hex"), bytes: n, te: req.headers["transfer-encoding"] ?? null })));
    return;
  }
  const gen = /^\/gen\/(\d+)$/.exec(url);
  if (gen) {
    // Streamed from a pipe with backpressure (pipe() pauses the generator when the socket is full).
    const p = spawn("bash", ["-c", GEN(Number(gen[1]))], { stdio: ["ignore", "pipe", "ignore"] });
    res.writeHead(200, { "content-length": gen[1] });
    p.stdout.pipe(res);
    res.on("close", () => p.kill());
    return;
  }
  if (url.startsWith("/held/")) {
    held.push(res);
    return;
  }
  if (url === "/break") {
    // A response cut off after its head: the client must not take it for a whole one.
    res.writeHead(200, { "content-length": "1000000" });
    res.write(Buffer.alloc(1000, 0x61), () => res.socket?.destroy());
    return;
  }
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ method: req.method, url, host: req.headers.host, xfp: req.headers["x-forwarded-proto"] ?? null, cookie: req.headers.cookie ?? null }));
}

/** Lets every held response go. */
function releaseHeld(): void {
  for (const r of held.splice(0)) r.end("released");
}

async function listen(s: Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return (s.address() as AddressInfo).port;
}

beforeAll(async () => {
  backend = createServer(handle);
  const backendPort = await listen(backend);
  site = createServer((req, res) => {
    if (req.url === "/page.html") {
      res.setHeader("content-type", "text/html; charset=utf-8");
      res.end(`<!doctype html><html><head><title>${TITLE}</title></head><body><p>hello from the laptop</p></body></html>`);
      return;
    }
    res.end(`site ${req.url}`);
  });
  const sitePort = await listen(site);
  const pki = testPki();
  ca = pki.caCertPath;
  const cert = pki.issue("app.test", ["app.test", "tun.test", "down.test", "localhost"]);
  const tls = edgeTls();
  em = await startEdgemux(`
workers = 1
[admin]
address = "127.0.0.1:0"

[log]
connections = true

[[listeners]]
name = "webs"
kind = "http"
address = "127.0.0.1:0"
max_streams = 8
[listeners.tls]
cert = "${cert.certPath}"
key = "${cert.keyPath}"

[[listeners]]
name = "webs-idle"
kind = "http"
address = "127.0.0.1:0"
keepalive_timeout = "1s"
[listeners.tls]
cert = "${cert.certPath}"
key = "${cert.keyPath}"

[[listeners]]
name = "web"
kind = "http"
address = "127.0.0.1:0"
handshake_timeout = "2s"

[[listeners]]
name = "tunnel"
kind = "tunnel"
address = "127.0.0.1:0"
[listeners.tls]
cert = "${tls.cert}"
key = "${tls.key}"

[[routes]]
name = "app"
match = "app.test"
listeners = ["webs", "webs-idle", "web"]
targets = ["127.0.0.1:${backendPort}"]

[[routes]]
name = "site"
match = "tun.test"
listeners = ["webs", "web"]
targets = ["tunnel:site"]

[[routes]]
name = "down"
match = "down.test"
listeners = ["webs"]
targets = ["127.0.0.1:${await deadPort()}"]

[[tokens]]
name = "site-agent"
sha256 = "${hex(DEST)}"
roles = ["destination"]
`, { dir });
  agent = await startAgentProcess(["--edge", `localhost:${em.hostPort("tunnel").port}`, "--ca", tls.ca, "--token", DEST, "--name", "laptop", "--expose", `site=127.0.0.1:${sitePort}`]);
  await agent.waitForLine((l) => l.msg === "connected to the edge", 15_000);
}, 90_000);

afterAll(async () => {
  releaseHeld();
  await agent?.stop();
  await em?.stop();
  backend?.closeAllConnections?.();
  site?.closeAllConnections?.();
  await Promise.all([backend, site].map((s) => new Promise<void>((r) => (s ? s.close(() => r()) : r()))));
  rmSync(dir, { recursive: true, force: true });
});

const port = (l: string) => em.hostPort(l).port;
const https = (name: string) => `https://${name}:${port("webs")}`;
const resolve = (name: string) => ["--cacert", ca, "--resolve", `${name}:${port("webs")}:127.0.0.1`];

async function curl(args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return await run("curl", ["-sS", "--max-time", String(Math.floor(timeoutMs / 1000) - 2), ...args], { timeoutMs });
}

async function metric(re: RegExp): Promise<number> {
  const text = await (await em.adminGet("/metrics")).text();
  return Number(re.exec(text)?.[1] ?? "0"); // a route with no request yet has no series
}

describe("curl over HTTPS", () => {
  for (const [flag, proto, label] of [["--http2", "h2", "HTTP/2"], ["--http1.1", "http/1.1", "HTTP/1.1"]] as const) {
    test(`${flag}: twenty requests on one connection, routed by Host, logged and counted per route`, async () => {
      const before = await metric(/^edgemux_http_requests_total\{route="app",code_class="2xx"\} (\d+)$/m);
      const urls = Array.from({ length: 20 }, (_, i) => `${https("app.test")}/${proto}/${i}`);
      const r = await curl(["-v", flag, ...resolve("app.test"), "-b", "a=1; b=2", "-w", "\\n", ...urls]);
      expect(r.code).toBe(0);
      const bodies = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
      expect(bodies.map((b) => b.url)).toEqual(urls.map((u) => new URL(u).pathname));
      expect(bodies[0]).toMatchObject({ method: "GET", host: `app.test:${port("webs")}`, xfp: "https", cookie: "a=1; b=2" });
      expect(r.stderr).toContain(`using ${label}`);
      expect(r.stderr.match(/Re-using existing connection/g)?.length).toBe(19);
      const line = await em.waitForLine((l) => l.msg === "request" && l.path === `/${proto}/19`);
      expect(line).toMatchObject({ listener: "webs", proto, method: "GET", status: 200, route: "app", error: null });
      expect(line.bytes_out as number).toBeGreaterThan(0);
      const after = await waitFor(async () => {
        const n = await metric(/^edgemux_http_requests_total\{route="app",code_class="2xx"\} (\d+)$/m);
        return n >= before + 20 ? n : null;
      }, 10_000, "the route's request counter");
      expect(after).toBeGreaterThanOrEqual(before + 20);
    });
  }

  test("--http2: 64 MiB up without a length (chunked upstream) and 256 MiB down, checksums match", async () => {
    const up = new Uint8Array(64 * 1024 * 1024);
    for (let i = 0; i < up.length; i += 4096) up[i] = (i >>> 12) & 0xff;
    const r = await run("curl", ["-sS", "--http2", ...resolve("app.test"), "-T", "-", `${https("app.test")}/sha256`], { input: up, timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ sha256: hex(up), bytes: up.length, te: "chunked" });
    const n = 256 * 1024 * 1024;
    const want = await run("bash", ["-c", `${GEN(n)} | sha256sum`], { timeoutMs: 60_000 });
    const got = await run("bash", ["-c", `curl -sS --http2 --cacert ${ca} --resolve app.test:${port("webs")}:127.0.0.1 ${https("app.test")}/gen/${n} | sha256sum`], { timeoutMs: 60_000 });
    expect(got.stdout.slice(0, 64)).toBe(want.stdout.slice(0, 64));
    const line = await em.waitForLine((l) => l.msg === "request" && l.path === `/gen/${n}`);
    expect(line).toMatchObject({ proto: "h2", status: 200, bytes_out: n });
  }, 120_000);
});

const hasGo = spawnSync("go", ["version"]).status === 0;

describe.skipIf(!hasGo)("Go net/http client (test/go/httpclient)", () => {
  let bin = "";
  beforeAll(() => {
    const out = join(ROOT, ".tmp/go");
    const r = spawnSync("go", ["build", "-o", join(out, "httpclient"), "."], {
      cwd: join(ROOT, "test/go/httpclient"),
      encoding: "utf8",
      env: { ...process.env, GOPATH: "/usr/share/gocode", GO111MODULE: "off", GOFLAGS: "", GOPROXY: "off", GOCACHE: join(out, "cache") },
    });
    if (r.status !== 0) throw new Error(`building the Go http client failed:\n${r.stderr}`);
    bin = join(out, "httpclient");
  }, 120_000);

  for (const [proto, label] of [["h2", "HTTP/2.0"], ["http/1.1", "HTTP/1.1"]] as const) {
    test(`${proto}: twenty GETs and a 64 MiB POST on one connection, SHA-256 checked`, async () => {
      const args = ["-url", https("app.test"), "-connect", `127.0.0.1:${port("webs")}`, "-ca", ca, "-proto", proto, "-gets", "20", "-post", String(64 * 1024 * 1024)];
      const r = await run(bin, args, { timeoutMs: 60_000 });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.protos).toEqual({ [label]: 21 });
      expect(out.dials).toBe(1);
      expect(out.post_seen_bytes).toBe(64 * 1024 * 1024);
      expect(out.post_seen_sha256).toBe(out.post_sent_sha256);
    }, 90_000);
  }
});

describe("1 GiB each way (curl, HTTP/1.1), streamed with checksums", () => {
  let want = "";
  beforeAll(async () => {
    want = (await run("bash", ["-c", `${GEN(GiB)} | sha256sum`], { timeoutMs: 60_000 })).stdout.slice(0, 64);
  }, 70_000);

  test("upload: chunked, hashed by the backend as it arrives", async () => {
    const r = await run("bash", ["-c", `${GEN(GiB)} | curl -sS --max-time 170 -T - -H 'Host: app.test' http://127.0.0.1:${port("web")}/sha256`], { timeoutMs: 180_000 });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ sha256: want, bytes: GiB, te: "chunked" });
  }, 190_000);

  test("download: hashed by the client as it arrives", async () => {
    const r = await run("bash", ["-c", `set -o pipefail; curl -sS --max-time 170 -H 'Host: app.test' http://127.0.0.1:${port("web")}/gen/${GiB} | sha256sum`], { timeoutMs: 180_000 });
    expect(r.code).toBe(0);
    expect(r.stdout.slice(0, 64)).toBe(want);
  }, 190_000);

  test("no body was held whole: edgemux's peak RSS stayed far below a GiB", () => {
    const status = readFileSync(`/proc/${em.proc.pid}/status`, "utf8");
    const peakKiB = Number(/^VmHWM:\s+(\d+) kB$/m.exec(status)?.[1]);
    expect(peakKiB).toBeGreaterThan(0);
    expect(peakKiB).toBeLessThan(512 * 1024);
  });
});

describe("a plain-HTTP service behind an agent (tunnel:site)", () => {
  test("reached over HTTP/2, HTTPS HTTP/1.1 and plain HTTP", async () => {
    const h2 = await curl(["--http2", ...resolve("tun.test"), `${https("tun.test")}/a`]);
    expect(h2.stdout).toBe("site /a");
    const h1 = await curl(["--http1.1", ...resolve("tun.test"), `${https("tun.test")}/b`]);
    expect(h1.stdout).toBe("site /b");
    const plain = await curl(["-H", "Host: tun.test", `http://127.0.0.1:${port("web")}/c`]);
    expect(plain.stdout).toBe("site /c");
    const line = await em.waitForLine((l) => l.msg === "request" && l.path === "/a");
    expect(line).toMatchObject({ proto: "h2", status: 200, route: "site", upstream: "tunnel:site" });
  });

  test.skipIf(!hasChromium())("headless Chromium loads a page from it through the edge and the test reads its title", async () => {
    const browser = await Chromium.launch({ args: ["--ignore-certificate-errors", "--host-resolver-rules=MAP tun.test 127.0.0.1"] });
    try {
      const page = await browser.newPage();
      await page.goto(`${https("tun.test")}/page.html`);
      expect(await page.eval<string>("document.title")).toBe(TITLE);
      expect(await page.eval<string>("document.querySelector('p').textContent")).toBe("hello from the laptop");
      // Chromium offers h2 by ALPN: the page came over HTTP/2.
      const line = await em.waitForLine((l) => l.msg === "request" && l.path === "/page.html");
      expect(line).toMatchObject({ proto: "h2", status: 200, route: "site", upstream: "tunnel:site" });
    } finally {
      await browser.close();
    }
  }, 60_000);
});

describe("slowloris", () => {
  test("a client sending a header byte every second gets 408 after handshake_timeout; another client's requests keep succeeding", async () => {
    const slow = connect(port("web"), "127.0.0.1");
    let answer = "";
    let closed = false;
    slow.setEncoding("latin1");
    slow.on("data", (d: string) => (answer += d));
    slow.on("close", () => (closed = true));
    slow.on("error", () => {});
    await new Promise<void>((r) => slow.once("connect", () => r()));
    slow.write("GET /slow HTTP/1.1\r\nHost: app.test\r\n");
    const drip = "X-Slow: " + "a".repeat(60);
    let i = 0;
    const timer = setInterval(() => slow.write(drip[i++ % drip.length]!), 1000);
    const startedAt = Date.now();
    let good = 0;
    try {
      // Well-behaved requests on their own connections, one after another, until the slow one is answered.
      while (!closed) {
        const r = await curl(["-H", "Host: app.test", `http://127.0.0.1:${port("web")}/good/${good}`]);
        expect(JSON.parse(r.stdout).url).toBe(`/good/${good}`);
        good++;
        if (Date.now() - startedAt > 15_000) break;
      }
    } finally {
      clearInterval(timer);
      slow.destroy();
    }
    expect(closed).toBe(true);
    expect(answer).toStartWith("HTTP/1.1 408 ");
    expect(answer).toContain("HANDSHAKE_TIMEOUT");
    expect(good).toBeGreaterThan(2);
    // Closed once the head took longer than 2 s: about 2-3 s in, not at once, not much later.
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1_900);
  }, 30_000);
});

describe("HTTP/2 limits and failures (raw frames)", () => {
  const get = (authority: string, path: string, extra: [string, string][] = []): [string, string][] => [
    [":method", "GET"],
    [":scheme", "https"],
    [":authority", authority],
    [":path", path],
    ...extra,
  ];
  let h2: RawH2;
  beforeAll(async () => {
    h2 = await RawH2.open(port("webs"), { ca: testPki().caCert });
  });
  afterAll(() => h2?.close());

  test("refusals are status pages on the stream: no route 404, upstream down 502, malformed 400, header list too large 431", async () => {
    const cases: [[string, string][], number, string][] = [
      [get("nowhere.test", "/"), 404, "NO_ROUTE"],
      [get("down.test", "/"), 502, "UPSTREAM_CONNECT_REFUSED"],
      [get("app.test", "/", [["X-Upper", "1"]]), 400, "HTTP_BAD_REQUEST"],
      [get("app.test", "/", [["connection", "close"]]), 400, "HTTP_BAD_REQUEST"],
      [get("app.test", "/", [["x-big", "b".repeat(20_000)]]), 431, "HTTP_HEADER_TOO_LARGE"],
      [[[":method", "CONNECT"], [":authority", "app.test:443"]], 405, "HTTP_METHOD_NOT_ALLOWED"],
    ];
    for (const [fields, status, code] of cases) {
      const id = h2.request(fields, true);
      const s = await h2.wait(id, (s) => s.ended || s.reset !== null);
      expect([s.status, s.fields.find(([n]) => n === "edgemux-error")?.[1]]).toEqual([status, code]);
      expect(s.data.toString()).toContain(code);
    }
    // The connection is still good.
    const ok = await h2.wait(h2.request(get("app.test", "/after"), true), (s) => s.ended);
    expect(ok.status).toBe(200);
  });

  test("a response cut off upstream after its head is RST_STREAM INTERNAL_ERROR", async () => {
    const s = await h2.wait(h2.request(get("app.test", "/break"), true), (s) => s.reset !== null || s.ended);
    expect(s.status).toBe(200);
    expect(s.ended).toBe(false);
    expect(s.reset).toBe(2);
    const line = await em.waitForLine((l) => l.msg === "request" && l.path === "/break");
    expect(line).toMatchObject({ proto: "h2", status: 200, error: "UPSTREAM_RESET" });
  });

  test("max_streams: the stream over SETTINGS_MAX_CONCURRENT_STREAMS is refused (REFUSED_STREAM), the others are answered", async () => {
    const ids = Array.from({ length: 8 }, (_, i) => h2.request(get("app.test", `/held/${i}`), true));
    await waitFor(() => held.length === 8, 10_000, "eight held requests at the backend");
    const over = await h2.wait(h2.request(get("app.test", "/held/8"), true), (s) => s.reset !== null || s.ended);
    expect(over.reset).toBe(7);
    releaseHeld();
    for (const id of ids) {
      const s = await h2.wait(id, (s) => s.ended);
      expect([s.status, s.data.toString()]).toEqual([200, "released"]);
    }
  });

  test("a connection with no stream for keepalive_timeout gets GOAWAY NO_ERROR and is closed", async () => {
    const idle = await RawH2.open(port("webs-idle"), { ca: testPki().caCert });
    try {
      const s = await idle.wait(idle.request(get("app.test", "/before-idle"), true), (s) => s.ended);
      expect(s.status).toBe(200);
      await waitFor(() => idle.goaway !== null && idle.closed, 10_000, "GOAWAY and the close");
      expect(idle.goaway).toBe(0);
    } finally {
      idle.close();
    }
  });

  test("drain (SIGTERM): GOAWAY NO_ERROR, the stream under way finishes, then edgemux exits", async () => {
    const id = h2.request(get("app.test", "/held/drain"), true);
    await waitFor(() => held.length === 1, 10_000, "the held request at the backend");
    em.signal("SIGTERM");
    await waitFor(() => h2.goaway !== null, 10_000, "GOAWAY");
    expect(h2.goaway).toBe(0);
    releaseHeld();
    const s = await h2.wait(id, (s) => s.ended);
    expect([s.status, s.data.toString()]).toEqual([200, "released"]);
    expect(await em.waitExit(15_000)).toBe(0);
  }, 30_000);
});
