/**
 * The strict HTTP/1 head codec at work in a real `edgemux serve`: each bad
 * request is written raw on its own connection (over TLS to the tunnel
 * listener, plain to the CONNECT listener) and must get `400` and a close,
 * while a good request on another connection still works. Also: an agent
 * whose edge presents a certificate its CA did not sign reports the
 * certificate error, not a reset.
 * Runs on Bun, and on Deno with EDGEMUX_RUNTIME=deno.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import { upgradeRequest } from "../src/tunnel/transport/mod.ts";
import { type EdgemuxProcess, ROOT, startEdgemux, tempDir } from "./support/edgemux.ts";
import { echoServer, type EchoServer, rawRequest, within } from "./support/proxy.ts";
import { testPki } from "./support/tls.ts";
import { edgeTls, startAgentProcess } from "./support/tunnel.ts";

const hex = (s: string) => createHash("sha256").update(s).digest("hex");
const TOKEN = "strict-agent-secret";
const PROXY_TOKEN = "strict-proxy-secret";
const basic = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`).toString("base64")}`;

let em: EdgemuxProcess;
let echo: EchoServer;
const children = new Set<EdgemuxProcess>();
const dir = tempDir("edgemux-strict-");

beforeAll(async () => {
  const tls = edgeTls();
  echo = await echoServer();
  em = await startEdgemux(`
workers = 1
[log]
level = "info"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "tunnel"
kind = "tunnel"
address = "127.0.0.1:0"
handshake_timeout = "5s"
[listeners.tls]
cert = "${tls.cert}"
key = "${tls.key}"

[[listeners]]
name = "open"
kind = "connect"
address = "127.0.0.1:0"
handshake_timeout = "5s"

[[listeners]]
name = "auth"
kind = "connect"
address = "127.0.0.1:0"
handshake_timeout = "5s"
auth = "token"

[[tokens]]
name = "agent"
sha256 = "${hex(TOKEN)}"
roles = ["destination", "source"]

[[tokens]]
name = "proxy"
sha256 = "${hex(PROXY_TOKEN)}"

[egress]
allow_cidrs = ["127.0.0.1/32"]
allow_ports = ["*"]
`, { dir });
  children.add(em);
}, 60_000);

afterAll(async () => {
  await Promise.all([...children].map((c) => c.stop()));
  await echo?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Writes `request` raw over TLS to the tunnel listener; resolves with everything read until the edge closed. */
function tunnelExchange(request: string | Uint8Array, opts: { keepOpen?: boolean } = {}): Promise<{ text: string; closed: boolean }> {
  const { port } = em.hostPort("tunnel");
  return new Promise((resolve) => {
    let text = "";
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ text, closed });
    };
    const s = tlsConnect({ host: "127.0.0.1", port, servername: "localhost", ca: testPki().caCert }, () => s.write(request));
    s.setEncoding("latin1");
    s.on("data", (d: string) => {
      text += d;
      // A good upgrade stays open: its 101 is the answer.
      if (opts.keepOpen && text.includes("\r\n\r\n")) finish(false);
    });
    s.on("error", () => {});
    s.on("close", () => finish(true));
    const timer = setTimeout(() => finish(false), 10_000);
  });
}

const UP = "Connection: Upgrade\r\nUpgrade: edgemux-smux/2\r\n";
const AUTH = `Authorization: Bearer ${TOKEN}\r\n`;
const H = "Host: localhost\r\n";
const GET = "GET /edgemux/tunnel HTTP/1.1\r\n";

describe("tunnel listener: the upgrade request is read strictly", () => {
  const bad: [string, string][] = [
    ["bare LF line ends", `GET /edgemux/tunnel HTTP/1.1\nHost: localhost\nConnection: Upgrade\nUpgrade: edgemux-smux/2\nAuthorization: Bearer ${TOKEN}\n\n`],
    ["an obs-fold line", `${GET}${H}${UP}X-Folded: a\r\n b\r\n${AUTH}\r\n`],
    ["a NUL in a field value", `${GET}${H}${UP}X-A: a\x00b\r\n${AUTH}\r\n`],
    ["a DEL in a field value", `${GET}${H}${UP}X-A: a\x7fb\r\n${AUTH}\r\n`],
    ["a CR inside a field value", `${GET}${H}${UP}X-A: a\rb\r\n${AUTH}\r\n`],
    ["two Content-Length fields", `${GET}${H}${UP}Content-Length: 0\r\nContent-Length: 0\r\n${AUTH}\r\n`],
    ["conflicting Content-Length fields", `${GET}${H}${UP}Content-Length: 0\r\nContent-Length: 12\r\n${AUTH}\r\n`],
    ["Content-Length with Transfer-Encoding", `${GET}${H}${UP}Content-Length: 0\r\nTransfer-Encoding: chunked\r\n${AUTH}\r\n`],
    ["Transfer-Encoding on an upgrade", `${GET}${H}${UP}Transfer-Encoding: chunked\r\n${AUTH}\r\n0\r\n\r\n`],
    // Before the fix these 12 bytes were read as smux frames.
    ["a body on an upgrade", `${GET}${H}${UP}Content-Length: 12\r\n${AUTH}\r\nhello, body!`],
    ["no Host", `${GET}${UP}${AUTH}\r\n`],
    ["two Host fields", `${GET}${H}Host: other\r\n${UP}${AUTH}\r\n`],
  ];

  test("a good upgrade gets 101 before and after the bad ones; each bad one gets 400 and a close", async () => {
    const good = `${GET}${H}${UP}${AUTH}\r\n`;
    expect(new TextDecoder().decode(upgradeRequest({ host: "localhost", transport: "smux", token: TOKEN }))).toBe(
      `${GET}${H}${UP}${AUTH}\r\n`,
    );
    const before = await tunnelExchange(good, { keepOpen: true });
    expect(before.text).toStartWith("HTTP/1.1 101 ");

    const results = await Promise.all(bad.map(([, req]) => tunnelExchange(req)));
    results.forEach((r, i) => {
      const [name] = bad[i]!;
      expect(`${name}: ${r.text.slice(0, 24)}`).toBe(`${name}: HTTP/1.1 400 Bad Request`);
      expect(`${name}: closed=${r.closed}`).toBe(`${name}: closed=true`);
      expect(r.text).toContain("Edgemux-Error: 1\r\n");
      expect(r.text).toContain("Connection: close\r\n");
    });

    const after = await tunnelExchange(good, { keepOpen: true });
    expect(after.text).toStartWith("HTTP/1.1 101 ");
  }, 30_000);
});

describe("CONNECT listener: repeated fields and Host", () => {
  const target = () => `127.0.0.1:${echo.port}`;

  test("each bad request gets 400 and a close while an open tunnel keeps working", async () => {
    const open = em.hostPort("open").port;
    const auth = em.hostPort("auth").port;
    const good = await rawRequest(open, [`CONNECT ${target()} HTTP/1.1\r\nHost: ${target()}\r\n\r\n`]);
    expect(good.status).toBe(200);
    expect((await good.roundTrip("before")).toString()).toBe("before");

    const ok = basic("me", PROXY_TOKEN);
    const wrong = basic("me", "not-the-secret");
    const cases: [string, number, string][] = [
      // Before the fix: the first Content-Length (0) decided and the tunnel opened, while `Content-Length: 5` alone is refused.
      ["Content-Length 0 then 5", open, `CONNECT ${target()} HTTP/1.1\r\nHost: ${target()}\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello`],
      ["Content-Length 5 alone", open, `CONNECT ${target()} HTTP/1.1\r\nHost: ${target()}\r\nContent-Length: 5\r\n\r\nhello`],
      ["two Transfer-Encoding fields", open, `CONNECT ${target()} HTTP/1.1\r\nHost: ${target()}\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n`],
      ["no Host", open, `CONNECT ${target()} HTTP/1.1\r\n\r\n`],
      ["two Host fields", open, `CONNECT ${target()} HTTP/1.1\r\nHost: ${target()}\r\nHost: example.com:443\r\n\r\n`],
      // Before the fix: the first Proxy-Authorization decided (200 here, 407 the other way round).
      ["good then wrong Proxy-Authorization", auth, `CONNECT ${target()} HTTP/1.1\r\nHost: ${target()}\r\nProxy-Authorization: ${ok}\r\nProxy-Authorization: ${wrong}\r\n\r\n`],
      ["wrong then good Proxy-Authorization", auth, `CONNECT ${target()} HTTP/1.1\r\nHost: ${target()}\r\nProxy-Authorization: ${wrong}\r\nProxy-Authorization: ${ok}\r\n\r\n`],
      ["two Authorization fields", open, `CONNECT ${target()} HTTP/1.1\r\nHost: ${target()}\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n`],
    ];
    const results = await Promise.all(cases.map(([, port, req]) => rawRequest(port, [req])));
    results.forEach((t, i) => {
      const [name] = cases[i]!;
      expect(`${name}: ${t.status}`).toBe(`${name}: 400`);
      expect(t.head).toContain("Edgemux-Error: HTTP_BAD_REQUEST");
      expect(t.head).toContain("Connection: close");
    });
    await within(Promise.all(results.map((t) => t.closed)), 5000, "every refused connection closed");
    expect((await good.roundTrip("after")).toString()).toBe("after");
    good.socket.destroy();
  }, 30_000);

  test("what real clients send still works: one Proxy-Authorization, and HTTP/1.0 without Host", async () => {
    const withAuth = await rawRequest(em.hostPort("auth").port, [`CONNECT ${target()} HTTP/1.1\r\nHost: ${target()}\r\nProxy-Authorization: ${basic("me", PROXY_TOKEN)}\r\n\r\n`]);
    expect(withAuth.status).toBe(200);
    expect((await withAuth.roundTrip("auth")).toString()).toBe("auth");
    withAuth.socket.destroy();
    // RFC 9112 §3.2 requires Host of HTTP/1.1 requests only (see proto/http1_head.ts).
    const old = await rawRequest(em.hostPort("open").port, [`CONNECT ${target()} HTTP/1.0\r\n\r\n`]);
    expect(old.status).toBe(200);
    expect((await old.roundTrip("1.0")).toString()).toBe("1.0");
    old.socket.destroy();
  }, 30_000);
});

describe("agent: TLS verification of the edge", () => {
  test("an edge whose certificate the agent's CA did not sign: the agent reports the certificate error", async () => {
    const { port } = em.hostPort("tunnel");
    // Another CA (src/config/testdata/pki) than the one that signed the edge's certificate (test/support/tls.ts).
    const agent = await startAgentProcess([
      "--edge", `localhost:${port}`, "--ca", join(ROOT, "src/config/testdata/pki/ca.crt"), "--token", TOKEN,
      "--name", "wrong-ca", "--expose", `echo=127.0.0.1:${echo.port}`, "--reconnect-min", "50ms", "--reconnect-max", "200ms",
    ]);
    children.add(agent);
    const line = await agent.waitForLine((l) => l.msg === "cannot reach the edge; retrying", 15_000);
    expect(String(line.reason)).toMatch(/certificate/i);
    expect(String(line.reason)).not.toContain("closed the connection");
    expect(line.error).not.toBe("UPSTREAM_RESET");
    await agent.stop();
    children.delete(agent);
  }, 30_000);
});
