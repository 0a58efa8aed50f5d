/**
 * `kind = "http"` end to end: a real `edgemux serve` with a plain, an HTTPS,
 * a redirecting and a proxy-trusting http listener in front of local HTTP
 * backends, driven by curl, a WebSocket client and raw sockets.
 * Runs on Bun, and on Deno with EDGEMUX_RUNTIME=deno.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { type EdgemuxProcess, run, startEdgemux, tempDir } from "./support/edgemux.ts";
import { testPki } from "./support/tls.ts";

const hex = (s: string | Uint8Array) => createHash("sha256").update(s).digest("hex");
const ALICE = "alice-secret-token";
const BOB = "bob-secret-token";

let em: EdgemuxProcess;
let backend: Server;
let backendPort = 0;
/** Connections the backend accepted (keep-alive reuse towards the upstream shows here). */
let backendConnections = 0;
let ws: { port: number; stop(force?: boolean): void };
const dir = tempDir("edgemux-http-");
let otherCertPath = "";
let otherKeyPath = "";
/** Deno.listenTls takes one certificate: no selection by SNI there (README). */
const SNI_SELECTION = process.env.EDGEMUX_RUNTIME !== "deno";

/** Deterministic bytes for downloads: block i of n bytes. */
function pattern(i: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let k = 0; k < n; k += 4) b[k] = (i * 31 + k) & 0xff;
  return b;
}

/** Answers with what it saw: method, url, the forwarded fields; POST /sha256 hashes the body as it streams in. */
function handle(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === "/sha256") {
    const h = createHash("sha256");
    let n = 0;
    req.on("data", (d: Buffer) => {
      h.update(d);
      n += d.length;
    });
    req.on("end", () => res.end(JSON.stringify({ sha256: h.digest("hex"), bytes: n, te: req.headers["transfer-encoding"] ?? null })));
    return;
  }
  if (req.url === "/hang") return; // never answers: request_timeout
  const big = /^\/bytes\/(\d+)$/.exec(req.url ?? "");
  if (big) {
    // Streamed with backpressure on the backend's side too.
    let left = Number(big[1]);
    let i = 0;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, 65_536);
        left -= n;
        if (!res.write(pattern(i++, n))) return void res.once("drain", pump);
      }
      res.end();
    };
    return pump();
  }
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({
    method: req.method,
    url: req.url,
    host: req.headers.host,
    xff: req.headers["x-forwarded-for"] ?? null,
    xfp: req.headers["x-forwarded-proto"] ?? null,
    xfh: req.headers["x-forwarded-host"] ?? null,
    forwarded: req.headers["forwarded"] ?? null,
    authorization: req.headers["authorization"] ?? null,
    connection: req.headers["connection"] ?? null,
  }));
}

beforeAll(async () => {
  backend = createServer(handle);
  backend.on("connection", () => backendConnections++);
  await new Promise<void>((r) => backend.listen(0, "127.0.0.1", r));
  backendPort = (backend.address() as AddressInfo).port;
  // The test process runs on Bun whichever runtime edgemux uses: Bun.serve is the WebSocket echo backend.
  const B = (globalThis as unknown as { Bun: { serve(o: unknown): { port: number; stop(force?: boolean): void } } }).Bun;
  ws = B.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req: Request, server: { upgrade(r: Request): boolean }) {
      if (server.upgrade(req)) return undefined;
      return new Response("not a websocket", { status: 400 });
    },
    websocket: { message(s: { send(m: string | Uint8Array): void }, m: string | Uint8Array) { s.send(m); } },
  });
  const pki = testPki();
  const cert = pki.issue("app.test", ["app.test", "*.wild.test"]);
  // A second certificate on the HTTPS listener, picked by SNI; its files are replaced during a test.
  const other = pki.issue("other.test");
  otherCertPath = join(dir, "other.crt");
  otherKeyPath = join(dir, "other.key");
  writeFileSync(otherCertPath, other.cert);
  writeFileSync(otherKeyPath, other.key);
  const b = `127.0.0.1:${backendPort}`;
  em = await startEdgemux(`
workers = 1
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "web"
kind = "http"
address = "127.0.0.1:0"
handshake_timeout = "1s"

[[listeners]]
name = "webs"
kind = "http"
address = "127.0.0.1:0"
[listeners.tls]
cert = "${cert.certPath}"
key = "${cert.keyPath}"
[[listeners.tls.certificates]]
cert = "${otherCertPath}"
key = "${otherKeyPath}"

[[listeners]]
name = "redir"
kind = "http"
address = "127.0.0.1:0"
redirect_https = true

[[listeners]]
name = "behind"
kind = "http"
address = "127.0.0.1:0"
trusted_proxies = ["127.0.0.0/8"]
request_timeout = "1s"

[[routes]]
name = "app"
match = "app.test"
listeners = ["web", "webs", "behind"]
targets = ["${b}"]
[routes.response_headers]
Strict-Transport-Security = "max-age=63072000"

[[routes]]
name = "private"
match = "app.test"
path_prefix = "/private"
listeners = ["web"]
targets = ["${b}"]
basic_auth = ["alice"]

[[routes]]
name = "other"
match = "other.test"
listeners = ["webs"]
targets = ["${b}"]

[[routes]]
name = "wild"
match = "*.wild.test"
listeners = ["web", "webs"]
targets = ["${b}"]

[[routes]]
name = "ws"
match = "ws.test"
listeners = ["web"]
targets = ["127.0.0.1:${ws.port}"]

[[routes]]
name = "offline"
match = "tun.test"
listeners = ["web"]
targets = ["tunnel:laptop"]

[[routes]]
name = "refused"
match = "down.test"
listeners = ["web"]
targets = ["127.0.0.1:1"]

[[tokens]]
name = "alice"
sha256 = "${hex(ALICE)}"
roles = ["http"]

[[tokens]]
name = "bob"
sha256 = "${hex(BOB)}"
roles = ["http"]
`, { dir });
}, 60_000);

afterAll(async () => {
  await em?.stop();
  backend?.closeAllConnections?.();
  await new Promise<void>((r) => (backend ? backend.close(() => r()) : r()));
  ws?.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

const port = (l: string) => em.hostPort(l).port;

async function curl(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return await run("curl", ["-sS", "--max-time", "20", ...args], { timeoutMs: 30_000 });
}

/** Writes `data` raw and reads until the edge closes (or `ms` pass): the whole answer and whether it closed. */
function rawExchange(p: number, data: (string | Uint8Array)[], ms = 10_000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect(p, "127.0.0.1");
    let text = "";
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ text, closed });
    };
    s.setEncoding("latin1");
    s.on("connect", () => {
      for (const d of data) s.write(d);
    });
    s.on("data", (d: string) => (text += d));
    s.on("error", () => {});
    s.on("close", () => finish(true));
    const timer = setTimeout(() => finish(false), ms);
  });
}

describe("plain HTTP", () => {
  test("routes by Host, sets the forwarded fields and the route's response fields; two URLs reuse one connection", async () => {
    const base = `http://127.0.0.1:${port("web")}`;
    const r = await curl(["-v", "-H", "Host: app.test", `${base}/one?x=1`, `${base}/two`]);
    expect(r.code).toBe(0);
    const [a, b] = r.stdout.split("}{").map((s, i) => JSON.parse(i === 0 ? `${s}}` : `{${s}`));
    expect(a).toMatchObject({ method: "GET", url: "/one?x=1", host: "app.test", xff: "127.0.0.1", xfp: "http", xfh: "app.test" });
    expect(a.forwarded).toBe('for=127.0.0.1;host=app.test;proto=http');
    expect(b.url).toBe("/two");
    expect(r.stderr).toMatch(/Re-using existing connection/);
    expect(r.stderr.toLowerCase()).toContain("strict-transport-security: max-age=63072000");
    const line = await em.waitForLine((l) => l.msg === "request" && l.path === "/two");
    expect(line).toMatchObject({ listener: "web", method: "GET", host: "app.test", status: 200, route: "app", upstream: `127.0.0.1:${backendPort}` });
    expect(typeof line.upstream_ms).toBe("number");
    expect(line.conn).toMatch(/^w\d+\./);
    expect(typeof line.duration_ms).toBe("number");
    expect(line.bytes_out as number).toBeGreaterThan(0);
  });

  test("upstream connections are reused across client connections", async () => {
    const before = backendConnections;
    for (let i = 0; i < 5; i++) {
      const r = await curl(["-H", "Host: app.test", `http://127.0.0.1:${port("web")}/seq${i}`]);
      expect(JSON.parse(r.stdout).url).toBe(`/seq${i}`);
    }
    expect(backendConnections - before).toBeLessThanOrEqual(1);
  });

  test("a wildcard route, and no route is 404 naming the cause", async () => {
    const w = await curl(["-H", "Host: a.b.wild.test", `http://127.0.0.1:${port("web")}/w`]);
    expect(JSON.parse(w.stdout).host).toBe("a.b.wild.test");
    const r = await curl(["-i", "-H", "Host: nothing.test", `http://127.0.0.1:${port("web")}/`]);
    expect(r.stdout).toStartWith("HTTP/1.1 404 Not Found");
    expect(r.stdout).toContain("Edgemux-Error: NO_ROUTE");
    expect(r.stdout).toContain("No route for host nothing.test");
  });

  test("incoming X-Forwarded-* and Forwarded from an untrusted client are replaced", async () => {
    const r = await curl([
      "-H", "Host: app.test",
      "-H", "X-Forwarded-For: 6.6.6.6",
      "-H", "X-Forwarded-Proto: https",
      "-H", "X-Forwarded-Host: evil.test",
      "-H", "Forwarded: for=6.6.6.6",
      `http://127.0.0.1:${port("web")}/xff`,
    ]);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ xff: "127.0.0.1", xfp: "http", xfh: "app.test", forwarded: "for=127.0.0.1;host=app.test;proto=http" });
  });

  test("from a trusted_proxies client they are kept and appended to", async () => {
    const r = await curl([
      "-H", "Host: app.test",
      "-H", "X-Forwarded-For: 203.0.113.9",
      "-H", "X-Forwarded-Proto: https",
      "-H", "Forwarded: for=203.0.113.9;proto=https",
      `http://127.0.0.1:${port("behind")}/xff`,
    ]);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ xff: "203.0.113.9, 127.0.0.1", xfp: "https", xfh: "app.test" });
    expect(j.forwarded).toBe("for=203.0.113.9;proto=https, for=127.0.0.1;host=app.test;proto=http");
  });

  test("a chunked upload streams through to the backend, checked by SHA-256", async () => {
    const data = new Uint8Array(8 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    const file = `${dir}/upload.bin`;
    writeFileSync(file, data);
    const r = await curl(["-H", "Host: app.test", "-H", "Transfer-Encoding: chunked", "--data-binary", `@${file}`, `http://127.0.0.1:${port("web")}/sha256`]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ sha256: hex(data), bytes: data.length, te: "chunked" });
    // And with a Content-Length.
    const r2 = await curl(["-H", "Host: app.test", "--data-binary", `@${file}`, `http://127.0.0.1:${port("web")}/sha256`]);
    expect(JSON.parse(r2.stdout)).toEqual({ sha256: hex(data), bytes: data.length, te: null });
  });

  test("a WebSocket upgrade is passed through and then relayed raw", async () => {
    const sock = new WebSocket(`ws://127.0.0.1:${port("web")}/chat`, { headers: { host: "ws.test" } } as never);
    sock.binaryType = "arraybuffer";
    const opened = new Promise<void>((res, rej) => {
      sock.onopen = () => res();
      sock.onerror = () => rej(new Error("websocket error"));
    });
    await opened;
    const got = new Promise<string>((res) => (sock.onmessage = (e) => res(String(e.data))));
    sock.send("hello through the edge");
    expect(await got).toBe("hello through the edge");
    sock.close();
  });

  test("a tunnel route whose agent is not connected answers 502 naming the cause", async () => {
    const r = await curl(["-i", "-H", "Host: tun.test", `http://127.0.0.1:${port("web")}/`]);
    expect(r.stdout).toStartWith("HTTP/1.1 502 Bad Gateway");
    expect(r.stdout).toMatch(/Edgemux-Error: SERVICE_(UNKNOWN|OFFLINE)/);
    expect(r.stdout).toContain("laptop");
  });

  test("a 32 MiB download streams through unchanged", async () => {
    const n = 32 * 1024 * 1024;
    const h = createHash("sha256");
    for (let i = 0, left = n; left > 0; i++, left -= 65_536) h.update(pattern(i, Math.min(left, 65_536)));
    const out = `${dir}/download.bin`;
    const r = await curl(["-o", out, "-w", "%{size_download}", "-H", "Host: app.test", `http://127.0.0.1:${port("web")}/bytes/${n}`]);
    expect(r.stdout).toBe(String(n));
    expect(createHash("sha256").update(readFileSync(out)).digest("hex")).toBe(h.digest("hex"));
  });

  test("an upstream that does not answer within request_timeout is 504", async () => {
    const r = await curl(["-i", "-H", "Host: app.test", `http://127.0.0.1:${port("behind")}/hang`]);
    expect(r.stdout).toStartWith("HTTP/1.1 504 Gateway Timeout");
    expect(r.stdout).toContain("Edgemux-Error: UPSTREAM_TIMEOUT");
  });

  test("a refused upstream is 502", async () => {
    const r = await curl(["-i", "-H", "Host: down.test", `http://127.0.0.1:${port("web")}/`]);
    expect(r.stdout).toStartWith("HTTP/1.1 502 Bad Gateway");
    expect(r.stdout).toContain("Edgemux-Error: UPSTREAM_CONNECT_REFUSED");
  });

  test("Basic auth: none or a wrong secret is 401, a token not on the route's list 403, alice passes and her secret stays here", async () => {
    const url = `http://127.0.0.1:${port("web")}/private/x`;
    const none = await curl(["-i", "-H", "Host: app.test", url]);
    expect(none.stdout).toStartWith("HTTP/1.1 401 Unauthorized");
    expect(none.stdout).toContain('WWW-Authenticate: Basic realm="edgemux"');
    const wrong = await curl(["-i", "-u", "alice:nope", "-H", "Host: app.test", url]);
    expect(wrong.stdout).toStartWith("HTTP/1.1 401 ");
    const bob = await curl(["-i", "-u", `bob:${BOB}`, "-H", "Host: app.test", url]);
    expect(bob.stdout).toStartWith("HTTP/1.1 403 ");
    const ok = await curl(["-u", `alice:${ALICE}`, "-H", "Host: app.test", url]);
    expect(JSON.parse(ok.stdout)).toMatchObject({ url: "/private/x", authorization: null });
    // The same path without the prefix's segment boundary goes to the open route.
    const open = await curl(["-H", "Host: app.test", `http://127.0.0.1:${port("web")}/privatex`]);
    expect(JSON.parse(open.stdout).url).toBe("/privatex");
    // An encoded spelling of the protected path cannot slip past it.
    const enc = await curl(["-i", "--path-as-is", "-H", "Host: app.test", `http://127.0.0.1:${port("web")}/%70rivate/x`]);
    expect(enc.stdout).toStartWith("HTTP/1.1 401 ");
    const dots = await curl(["-i", "--path-as-is", "-H", "Host: app.test", `http://127.0.0.1:${port("web")}/public/../private/x`]);
    expect(dots.stdout).toStartWith("HTTP/1.1 400 ");
  });

  test("redirect_https answers 301 to https://host/path", async () => {
    const r = await curl(["-i", "-H", "Host: app.test", `http://127.0.0.1:${port("redir")}/a/b?c=d`]);
    expect(r.stdout).toStartWith("HTTP/1.1 301 Moved Permanently");
    expect(r.stdout).toContain("Location: https://app.test/a/b?c=d");
  });
});

describe("strict parsing: smuggling attempts get 400 and a close, other clients are not disturbed", () => {
  const H = "Host: app.test\r\n";
  const bad: [string, string][] = [
    ["Content-Length with Transfer-Encoding", `POST /sha256 HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
    ["two Content-Length fields", `POST /sha256 HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!`],
    ["Transfer-Encoding other than chunked", `POST /sha256 HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`],
    ["an obs-fold line", `GET / HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n`],
    ["bare LF line ends", `GET / HTTP/1.1\nHost: app.test\n\n`],
    ["a chunk size that is not hex", `POST /sha256 HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n`],
    ["a chunk size with a sign", `POST /sha256 HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n`],
    ["chunk data longer than its size", `POST /sha256 HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n`],
    ["a chunk size line ended by a bare LF", `POST /sha256 HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n`],
    ["no Host", `GET / HTTP/1.1\r\n\r\n`],
    ["two Host fields", `GET / HTTP/1.1\r\n${H}Host: other.test\r\n\r\n`],
  ];

  test("each is answered 400 and closed; a good request before and after works", async () => {
    const good = `GET /good HTTP/1.1\r\n${H}Connection: close\r\n\r\n`;
    const before = await rawExchange(port("web"), [good]);
    expect(before.text).toStartWith("HTTP/1.1 200 ");
    const results = await Promise.all(bad.map(([, req]) => rawExchange(port("web"), [req])));
    results.forEach((r, i) => {
      const [name] = bad[i]!;
      expect(`${name}: ${r.text.slice(0, 24)}`).toBe(`${name}: HTTP/1.1 400 Bad Request`);
      expect(`${name}: closed=${r.closed}`).toBe(`${name}: closed=true`);
      // Exactly one response: nothing smuggled behind the refusal reached the backend.
      expect(`${name}: ${r.text.match(/(^|\n)HTTP\/1\.1 \d{3} /g)?.length}`).toBe(`${name}: 1`);
    });
    const after = await rawExchange(port("web"), [good]);
    expect(after.text).toStartWith("HTTP/1.1 200 ");
  });

  test("a head over max_header_bytes is 431; a slow head is 408", async () => {
    const big = await rawExchange(port("web"), [`GET / HTTP/1.1\r\n${H}X-Big: ${"a".repeat(20_000)}\r\n\r\n`]);
    expect(big.text).toStartWith("HTTP/1.1 431 ");
    expect(big.closed).toBe(true);
    const slow = await rawExchange(port("web"), [`GET / HTTP/1.1\r\n${H}`], 15_000);
    expect(slow.text).toStartWith("HTTP/1.1 408 ");
    expect(slow.closed).toBe(true);
  });

  test("pipelined requests are answered in order on one connection", async () => {
    const r = await rawExchange(port("web"), [`GET /p1 HTTP/1.1\r\n${H}\r\nGET /p2 HTTP/1.1\r\n${H}\r\nGET /p3 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`]);
    expect(r.closed).toBe(true);
    const urls = [...r.text.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1]);
    expect(urls).toEqual(["/p1", "/p2", "/p3"]);
  });
});

describe("HTTPS", () => {
  test("curl verifies the certificate and keeps the connection alive", async () => {
    const p = port("webs");
    const r = await curl([
      "-v", "--cacert", testPki().caCertPath,
      "--resolve", `app.test:${p}:127.0.0.1`,
      `https://app.test:${p}/s1`, `https://app.test:${p}/s2`,
    ]);
    expect(r.code).toBe(0);
    const [a, b] = r.stdout.split("}{").map((s, i) => JSON.parse(i === 0 ? `${s}}` : `{${s}`));
    expect(a).toMatchObject({ url: "/s1", xfp: "https", xfh: `app.test:${p}` });
    expect(a.forwarded).toBe(`for=127.0.0.1;host="app.test:${p}";proto=https`);
    expect(b.url).toBe("/s2");
    expect(r.stderr).toMatch(/Re-using existing connection/);
  });
});

/** The serial and subject of the certificate the listener serves for `name` (null: no SNI). */
async function servedCertificate(p: number, name: string | null): Promise<string> {
  const r = await run("sh", ["-c", `openssl s_client -connect 127.0.0.1:${p} ${name ? `-servername ${name}` : "-noservername"} </dev/null 2>/dev/null | openssl x509 -noout -serial -subject`], { timeoutMs: 15_000 });
  return r.stdout.trim();
}

describe("metrics", () => {
  test("per-route request counters by status class and the latency histogram", async () => {
    await curl(["-o", "/dev/null", "-H", "Host: app.test", `http://127.0.0.1:${port("web")}/m`]);
    await curl(["-o", "/dev/null", "-H", "Host: down.test", `http://127.0.0.1:${port("web")}/m`]);
    const metrics = await (await em.adminGet("/metrics")).text();
    const value = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? "NaN");
    expect(value(/^edgemux_http_requests_total\{route="app",code_class="2xx"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^edgemux_http_requests_total\{route="refused",code_class="5xx"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^edgemux_http_requests_total\{route="refused",code_class="2xx"\} (\d+)$/m)).toBe(0);
    const count = value(/^edgemux_http_request_duration_seconds_count\{route="app"\} (\d+)$/m);
    expect(count).toBeGreaterThanOrEqual(1);
    expect(value(/^edgemux_http_request_duration_seconds_bucket\{route="app",le="\+Inf"\} (\d+)$/m)).toBe(count);
  });
});

describe.skipIf(!SNI_SELECTION)("HTTPS: several certificates by SNI", () => {
  test("each name gets its certificate (curl verifies it); no SNI gets the first", async () => {
    const p = port("webs");
    const r = await curl(["--cacert", testPki().caCertPath, "--resolve", `other.test:${p}:127.0.0.1`, `https://other.test:${p}/o`]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).url).toBe("/o");
    expect(await servedCertificate(p, "other.test")).toContain("CN = other.test");
    expect(await servedCertificate(p, "app.test")).toContain("CN = app.test");
    expect(await servedCertificate(p, "x.wild.test")).toContain("CN = app.test");
    expect(await servedCertificate(p, "unknown.test")).toContain("CN = app.test");
    expect(await servedCertificate(p, null)).toContain("CN = app.test");
  });

  test("a replaced certificate file is picked up without a restart or SIGHUP; the expiry is in /metrics", async () => {
    const p = port("webs");
    const before = await servedCertificate(p, "other.test");
    const next = testPki().issue("other.test");
    // Replaced the way certbot and Kubernetes do it: new files renamed over the old ones.
    writeFileSync(`${otherKeyPath}.new`, next.key);
    writeFileSync(`${otherCertPath}.new`, next.cert);
    renameSync(`${otherKeyPath}.new`, otherKeyPath);
    renameSync(`${otherCertPath}.new`, otherCertPath);
    await em.waitForLine((l) => l.msg === "config reloaded" && em.lines.some((x) => x.msg === "certificate file changed; reloading"), 20_000);
    const after = await servedCertificate(p, "other.test");
    expect(after).toContain("CN = other.test");
    expect(after).not.toBe(before);
    const metrics = await (await em.adminGet("/metrics")).text();
    expect(metrics).toMatch(/^edgemux_tls_certificate_expiry_timestamp_seconds\{name="other\.test"\} \d{10}$/m);
    expect(metrics).toMatch(/^edgemux_tls_certificate_expiry_timestamp_seconds\{name="\*\.wild\.test"\} \d{10}$/m);
  }, 40_000);
});
