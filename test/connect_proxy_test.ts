/**
 * The HTTP/1.1 CONNECT and SOCKS5 listeners end to end: curl (`-p -x` and
 * `--socks5-hostname`, with and without credentials) through a real
 * `edgemux serve` to an HTTPS backend, and raw clients for every refusal.
 * Each bad request gets its documented answer and closes only itself: a
 * tunnel opened before them keeps working after them.
 * Runs on Bun, and on Deno with EDGEMUX_RUNTIME=deno.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { hashToken } from "../src/auth/mod.ts";
import { type EdgemuxProcess, run, startEdgemux, waitFor } from "./support/edgemux.ts";
import { deadPort } from "./support/net.ts";
import { echoServer, type EchoServer, rawRequest, within } from "./support/proxy.ts";
import { type TlsBackend, testPki, tlsBackend } from "./support/tls.ts";

let em: EdgemuxProcess;
let strict: EdgemuxProcess;
let web: TlsBackend;
let echo: EchoServer;
let dead: number;

beforeAll(async () => {
  web = await tlsBackend("localhost");
  echo = await echoServer();
  dead = await deadPort();
  em = await startEdgemux(`
workers = 2
[log]
level = "info"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "open"
kind = "connect"
address = "127.0.0.1:0"
handshake_timeout = "1s"
max_header_bytes = 2048
connect_timeout = "2s"

[[listeners]]
name = "auth"
kind = "connect"
address = "127.0.0.1:0"
auth = "token"

[[listeners]]
name = "socks"
kind = "socks5"
address = "127.0.0.1:0"
handshake_timeout = "1s"

[[listeners]]
name = "socksauth"
kind = "socks5"
address = "127.0.0.1:0"
auth = "token"

[[tokens]]
name = "ci"
sha256 = "${hashToken("s3cret")}"

[[tokens]]
name = "agent"
sha256 = "${hashToken("agent-secret")}"
roles = ["source"]

[egress]
allow_cidrs = ["127.0.0.1/32"]
allow_ports = ["*"]
`);
  // Default egress (no private addresses), every port: the SSRF checks.
  strict = await startEdgemux(`
workers = 1
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "open"
kind = "connect"
address = "127.0.0.1:0"
[[listeners]]
name = "socks"
kind = "socks5"
address = "127.0.0.1:0"
[egress]
allow_ports = ["*"]
`);
}, 60_000);

afterAll(async () => {
  await Promise.all([em?.stop(), strict?.stop()]);
  await Promise.all([web?.close(), echo?.close()]);
});

const curl = (args: string[]) => run("curl", ["-sS", "--max-time", "10", "--cacert", testPki().caCertPath, ...args]);
const url = () => `https://localhost:${web.port}/`;
const proxy = (name: string, p = em) => `http://127.0.0.1:${p.hostPort(name).port}`;

describe("HTTP/1.1 CONNECT with curl", () => {
  test("curl -p -x reaches the HTTPS backend through the tunnel", async () => {
    const r = await curl(["-p", "-x", proxy("open"), url()]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("backend=localhost\n");
  });

  test("token auth: 407 without or with a wrong token, 403 for a token without role proxy, 200 with Basic or Bearer", async () => {
    const code = async (extra: string[]) => (await curl(["-o", "/dev/null", "-w", "%{http_connect}", "-p", "-x", proxy("auth"), ...extra, url()])).stdout;
    expect(await code([])).toBe("407");
    expect(await code(["--proxy-user", "alice:wrong"])).toBe("407");
    expect(await code(["--proxy-user", "alice:agent-secret"])).toBe("403");
    expect(await code(["--proxy-user", "alice:s3cret"])).toBe("200");
    expect(await code(["--proxy-header", "Proxy-Authorization: Bearer s3cret"])).toBe("200");
    const line = await em.waitForLine((l) => l.msg === "tunnel" && l.listener === "auth" && l.user === "alice" && l.status === 200);
    expect(line.identity).toBe("ci");
    expect(line.proto).toBe("http/1.1");
    expect(line.destination).toBe(`localhost:${web.port}`);
    expect(line.address).toBe(`127.0.0.1:${web.port}`);
  });

  test("a 407 carries Proxy-Authenticate for Basic and Bearer", async () => {
    const t = await rawRequest(em.hostPort("auth").port, [`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: x\r\n\r\n`]);
    expect(t.status).toBe(407);
    expect(t.head).toContain('Proxy-Authenticate: Basic realm="edgemux"');
    expect(t.head).toContain('Proxy-Authenticate: Bearer realm="edgemux"');
    expect(t.head).toContain("Edgemux-Error: AUTH_REQUIRED");
    await within(t.closed, 5000, "close after 407");
  });

  test("a wrong token is a 407 too, but counted and logged as AUTH_INVALID, apart from a missing one", async () => {
    const t = await rawRequest(em.hostPort("auth").port, [`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer not-a-token\r\n\r\n`]);
    expect(t.status).toBe(407);
    expect(t.head).toContain("Edgemux-Error: AUTH_INVALID");
    await within(t.closed, 5000, "close after 407");
    const line = await em.waitForLine((l) => l.msg === "tunnel" && l.listener === "auth" && l.error === "AUTH_INVALID");
    expect(line.status).toBe(407);
  });
});

describe("refusals close only themselves", () => {
  test("bad requests get their status while an open tunnel keeps working", async () => {
    const port = em.hostPort("open").port;
    const good = await rawRequest(port, [`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`]);
    expect(good.status).toBe(200);
    expect((await good.roundTrip("before")).toString()).toBe("before");

    const cases: [string, (string | Uint8Array)[], number, string][] = [
      ["malformed request line", ["CONNECT  a:1 HTTP/1.1\r\n\r\n"], 400, "HTTP_BAD_REQUEST"],
      ["bare LF", [`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\nHost: 127.0.0.1:${echo.port}\n\n`], 400, "HTTP_BAD_REQUEST"],
      ["binary junk (a TLS ClientHello on a plain port)", [Uint8Array.of(0x16, 3, 1, 2, 0, 1, 0, 1, 0xfc)], 400, "HTTP_BAD_REQUEST"],
      ["oversized head", [`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\nX-Big: ${"a".repeat(3000)}\r\n\r\n`], 431, "HTTP_HEADER_TOO_LARGE"],
      ["not CONNECT", ["GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n"], 405, "HTTP_METHOD_NOT_ALLOWED"],
      ["CONNECT with content", [`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\nContent-Length: 5\r\n\r\nhello`], 400, "HTTP_BAD_REQUEST"],
      ["authority without a port", ["CONNECT 127.0.0.1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"], 400, "HTTP_BAD_REQUEST"],
      ["refused upstream", [`CONNECT 127.0.0.1:${dead} HTTP/1.1\r\nHost: 127.0.0.1:${dead}\r\n\r\n`], 502, "UPSTREAM_CONNECT_REFUSED"],
      ["private address outside allow_cidrs", [`CONNECT 127.0.0.2:${echo.port} HTTP/1.1\r\nHost: 127.0.0.2:${echo.port}\r\n\r\n`], 403, "EGRESS_DENIED"],
      ["a name that does not resolve", ["CONNECT nonexistent.invalid:443 HTTP/1.1\r\nHost: nonexistent.invalid:443\r\n\r\n"], 503, "UPSTREAM_DNS"],
    ];
    const results = await Promise.all(cases.map(([, req]) => rawRequest(port, req)));
    results.forEach((t, i) => {
      const [name, , status, code] = cases[i]!;
      expect(`${name}: ${t.status}`).toBe(`${name}: ${status}`);
      expect(t.head).toContain(`Edgemux-Error: ${code}`);
      expect(t.head).toContain("Connection: close");
    });
    await within(Promise.all(results.map((t) => t.closed)), 5000, "every refused connection closed");
    expect((await good.roundTrip("after")).toString()).toBe("after");
    good.socket.destroy();
  });

  test("slowloris: a head not complete within handshake_timeout gets 408 and is closed", async () => {
    const started = Date.now();
    const t = await rawRequest(em.hostPort("open").port, ["CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nX-Slow: "], 10_000);
    expect(t.status).toBe(408);
    expect(t.head).toContain("Edgemux-Error: HANDSHAKE_TIMEOUT");
    await within(t.closed, 5000, "close after 408");
    const ms = Date.now() - started;
    expect(ms).toBeGreaterThanOrEqual(950);
    expect(ms).toBeLessThan(5000);
  });

  test("bytes sent right behind the CONNECT head reach the upstream; POST with x-tun is a tunnel too", async () => {
    const port = em.hostPort("open").port;
    const early = await rawRequest(port, [`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\nearly-bytes`]);
    expect(early.status).toBe(200);
    expect((await early.roundTrip("", 11)).toString()).toBe("early-bytes");
    early.socket.destroy();
    const post = await rawRequest(port, [`POST http://tunnel/ HTTP/1.1\r\nHost: tunnel\r\nx-tun: 127.0.0.1:${echo.port}\r\n\r\n`]);
    expect(post.status).toBe(200);
    expect((await post.roundTrip("via-post")).toString()).toBe("via-post");
    post.socket.destroy();
  });

  test("stats count the tunnels and errors on the listener", async () => {
    await waitFor(async () => {
      const s = await em.status();
      const l = s.listeners.find((x) => x.name === "open")!;
      return l.accepted >= 10 && l.errors_total >= 10 && Object.keys(l.errors).length > 0 && l.bytes_in > 0;
    }, 10_000, "listener stats");
  });
});

describe("SOCKS5 with curl", () => {
  test("curl --socks5-hostname through a listener without auth", async () => {
    const r = await curl(["--socks5-hostname", `127.0.0.1:${em.hostPort("socks").port}`, url()]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("backend=localhost\n");
  });

  test("RFC 1929: the token as password; wrong ones are refused", async () => {
    const p = em.hostPort("socksauth").port;
    const ok = await curl(["--socks5-hostname", `127.0.0.1:${p}`, "--proxy-user", "bob:s3cret", url()]);
    expect(ok.stdout).toBe("backend=localhost\n");
    const bad = await curl(["--socks5-hostname", `127.0.0.1:${p}`, "--proxy-user", "bob:nope", url()]);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toBe("");
    const line = await em.waitForLine((l) => l.msg === "tunnel" && l.listener === "socksauth" && l.status === 0);
    expect([line.identity, line.user, line.proto]).toEqual(["ci", "bob", "socks5"]);
  });

  test("reply codes: command not supported, address type, refused, no acceptable method", async () => {
    const p = em.hostPort("socks").port;
    const ask = (bytes: number[], want: number) =>
      new Promise<number[]>((resolve, reject) => {
        const s = connect(p, "127.0.0.1");
        const got: number[] = [];
        const t = setTimeout(() => reject(new Error(`timeout, got ${got}`)), 5000);
        s.on("connect", () => s.write(Uint8Array.from(bytes)));
        s.on("data", (d: Buffer) => {
          got.push(...d);
          if (got.length >= want) {
            clearTimeout(t);
            s.destroy();
            resolve(got);
          }
        });
        s.on("close", () => {
          clearTimeout(t);
          resolve(got);
        });
        s.on("error", () => {});
      });
    const hello = [5, 1, 0];
    expect((await ask([...hello, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80], 12)).slice(0, 4)).toEqual([5, 0, 5, 7]); // BIND
    expect((await ask([...hello, 5, 1, 0, 9, 0, 0], 12)).slice(0, 4)).toEqual([5, 0, 5, 8]); // unknown ATYP
    expect((await ask([...hello, 5, 1, 0, 1, 127, 0, 0, 1, dead >> 8, dead & 255], 12)).slice(0, 4)).toEqual([5, 0, 5, 5]); // refused
    expect((await ask([...hello, 5, 1, 0, 1, 127, 0, 0, 2, 0, 80], 12)).slice(0, 4)).toEqual([5, 0, 5, 2]); // egress: not allowed
    expect(await ask([5, 1, 0], 2)).toEqual([5, 0]); // no authentication chosen
    const sa = em.hostPort("socksauth").port;
    const noAuth = await new Promise<number[]>((resolve) => {
      const s = connect(sa, "127.0.0.1");
      const got: number[] = [];
      s.on("connect", () => s.write(Uint8Array.of(5, 1, 0)));
      s.on("data", (d: Buffer) => got.push(...d));
      s.on("close", () => resolve(got));
      s.on("error", () => {});
    });
    expect(noAuth).toEqual([5, 0xff]);
  });
});

describe("SSRF: default egress refuses loopback by address and by name", () => {
  test("HTTP/1.1 CONNECT to 127.0.0.1 and to localhost: 403", async () => {
    for (const target of [`127.0.0.1:${echo.port}`, `localhost:${echo.port}`, `[::1]:${echo.port}`]) {
      const t = await rawRequest(strict.hostPort("open").port, [`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`]);
      expect(`${target} ${t.status}`).toBe(`${target} 403`);
      expect(t.head).toContain("Edgemux-Error: EGRESS_DENIED");
    }
  });

  test("SOCKS5 to localhost: reply 2 (not allowed by ruleset); curl fails", async () => {
    const r = await curl(["--socks5-hostname", `127.0.0.1:${strict.hostPort("socks").port}`, url()]);
    expect(r.code).not.toBe(0);
    const line = await strict.waitForLine((l) => l.msg === "tunnel" && l.proto === "socks5");
    expect([line.status, line.error]).toEqual([2, "EGRESS_DENIED"]);
  });
});
