/**
 * Reverse tunnels end to end with real processes: `edgemux serve` (two
 * workers) with a tunnel listener and an SNI listener, `edgemux agent`
 * processes as destination and source, and real services (TCP echo, HTTP,
 * UDP echo, an HTTPS server reached by curl through a public SNI route).
 * Also: policy refusals (the agent prints the reason and exits 3), a raw
 * socket sending garbage (only its session dies), the WebSocket transport
 * (our agent, and Bun's own WebSocket client), PROXY headers, mTLS, and a
 * second implementation (Go + xtaci/smux) attached after the HTTP upgrade.
 * Runs on Bun, and on Deno with EDGEMUX_RUNTIME=deno (mTLS is Bun-only:
 * Deno's TLS listener cannot ask for client certificates).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import { MuxSession } from "../src/mux/mod.ts";
import { type Conn, type ConnHandler, detectRuntime, type UdpSocket } from "../src/runtime/mod.ts";
import { encodeTunnelMessage, TunnelMessageDecoder, type TunnelMessage } from "../src/proto/tunnel_control.ts";
import { upgradeRequest } from "../src/tunnel/transport/mod.ts";
import { type EdgemuxProcess, ROOT, run, startEdgemux } from "./support/edgemux.ts";
import { recordingServer, type RecordingServer } from "./support/net.ts";
import { testPki, type TlsBackend, tlsBackend } from "./support/tls.ts";
import { echoServer, edgeTls, roundTrip, runAgentToExit, startAgentProcess, until } from "./support/tunnel.ts";

const runtime = detectRuntime();

const onDeno = process.env.EDGEMUX_RUNTIME === "deno";
const hasGo = spawnSync("go", ["version"]).status === 0;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const hex = (s: string) => createHash("sha256").update(s).digest("hex");

const SECRETS = { dest: "dest-secret", src: "src-secret", denied: "denied-secret", narrow: "narrow-secret", go: "go-secret" };

function tokensToml(): string {
  return `
[[tokens]]
name = "dest"
sha256 = "${hex(SECRETS.dest)}"
roles = ["destination"]

[[tokens]]
name = "src"
sha256 = "${hex(SECRETS.src)}"
roles = ["source"]

[[tokens]]
name = "denied"
sha256 = "${hex(SECRETS.denied)}"
roles = ["destination", "source"]
deny = ["127.0.0.0/8"]

[[tokens]]
name = "narrow"
sha256 = "${hex(SECRETS.narrow)}"
roles = ["destination"]
services = ["web-*"]

[[tokens]]
name = "go"
sha256 = "${hex(SECRETS.go)}"
roles = ["destination", "source"]

[[tokens]]
name = "proxy-http"
sha256 = "${hex("proxy-http-secret")}"
roles = ["proxy"]
services = ["http"]

[[tokens]]
name = "proxy-echo"
sha256 = "${hex("proxy-echo-secret")}"
roles = ["proxy"]
services = ["echo"]

[[tokens]]
name = "agent-cert.test"
sha256 = "${hex("unused-" + Math.random())}"
roles = ["destination", "source"]
`;
}

function edgeToml(tls: { cert: string; key: string; ca: string }, ports: { tunnel?: number; sni?: number } = {}, extra = ""): string {
  return `
workers = 2
drain_timeout = "10s"
[log]
level = "debug"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "tunnel"
kind = "tunnel"
address = "127.0.0.1:${ports.tunnel ?? 0}"
handshake_timeout = "3s"
goaway_delay = "200ms"
[listeners.tls]
cert = "${tls.cert}"
key = "${tls.key}"
${onDeno ? "" : `client_ca = "${tls.ca}"\nclient_cert = "request"`}

[[listeners]]
name = "public"
kind = "sni"
address = "127.0.0.1:${ports.sni ?? 0}"

[[listeners]]
name = "fwd"
kind = "connect"
address = "127.0.0.1:0"
auth = "token"

[[routes]]
match = "app.test"
targets = ["tunnel:app"]

[[routes]]
match = "pp.test"
targets = ["tunnel:pp"]
proxy_protocol = "v2"
${tokensToml()}
${extra}`;
}

const children = new Set<EdgemuxProcess>();
let tls: { cert: string; key: string; ca: string };
let edge: EdgemuxProcess;
let dest: EdgemuxProcess;
let src: EdgemuxProcess;
let echo: ReturnType<typeof echoServer>;
let http: HttpServer;
let httpPort = 0;
let udpEcho: UdpSocket;
let app: TlsBackend;
let pp: RecordingServer;

function agentArgs(token: string, extra: string[]): string[] {
  const { port } = edge.hostPort("tunnel");
  return ["--edge", `localhost:${port}`, "--ca", tls.ca, "--token", token, "--reconnect-min", "50ms", "--reconnect-max", "500ms", ...extra];
}

async function agent(token: string, extra: string[]): Promise<EdgemuxProcess> {
  const p = await startAgentProcess(agentArgs(token, extra));
  children.add(p);
  return p;
}

function fwdPort(p: EdgemuxProcess, key: string): number {
  return Number(p.listeners[key]!.split(":").pop());
}

async function connected(p: EdgemuxProcess, after = 0): Promise<void> {
  let seen = 0;
  await p.waitForLine((l) => l.msg === "connected to the edge" && ++seen > after, 15_000);
}

beforeAll(async () => {
  tls = edgeTls();
  echo = echoServer();
  http = createHttpServer((req, res) => res.end(`hello from ${req.url}`));
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  httpPort = (http.address() as AddressInfo).port;
  udpEcho = await runtime.bindUdp({ hostname: "127.0.0.1", port: 0, onDatagram: (d, p, a) => udpEcho.send(d, p, a) });
  app = await tlsBackend("app.test");
  pp = await recordingServer({ onConn: (s) => s.end("pp-ok\n") });
  edge = await startEdgemux(edgeToml(tls), { workers: 2 });
  children.add(edge);
  dest = await agent(SECRETS.dest, [
    "--name", "dest",
    "--expose", `echo=127.0.0.1:${echo.port}`,
    "--expose", `http=127.0.0.1:${httpPort}`,
    "--expose", `dns=udp:127.0.0.1:${udpEcho.port}`,
    "--expose", `app=127.0.0.1:${app.port}`,
    "--expose", `pp=127.0.0.1:${pp.port}`,
    "--status", "127.0.0.1:0",
  ]);
  src = await agent(SECRETS.src, ["--name", "src", "--forward", "127.0.0.1:0=echo", "--forward", "127.0.0.1:0=http", "--forward-udp", "127.0.0.1:0=dns", "--status", "127.0.0.1:0"]);
  await Promise.all([connected(dest), connected(src)]);
}, 60_000);

afterAll(async () => {
  await Promise.all([...children].map((c) => c.stop()));
  echo?.close();
  http?.close();
  udpEcho?.close();
  await app?.close();
  await pp?.close();
});

describe("tunnel end to end", () => {
  test("TCP echo through source agent → edge → destination agent, 1 MiB", async () => {
    const data = randomBytes(1024 * 1024);
    expect(sha(await roundTrip(fwdPort(src, "tcp:echo"), data, 20_000))).toBe(sha(data));
  }, 30_000);

  test("HTTP through the tunnel", async () => {
    const r = await fetch(`http://127.0.0.1:${fwdPort(src, "tcp:http")}/path?q=1`);
    expect(await r.text()).toBe("hello from /path?q=1");
  }, 15_000);

  test("UDP echo through the tunnel", async () => {
    const replies = new Set<string>();
    const c = await runtime.bindUdp({ hostname: "127.0.0.1", port: 0, onDatagram: (d) => replies.add(new TextDecoder().decode(d)) });
    try {
      const port = fwdPort(src, "udp:dns");
      for (let i = 0; i < 100 && replies.size < 3; i++) {
        for (const m of ["a", "bb", "ccc"]) if (!replies.has(m)) c.send(new TextEncoder().encode(m), port, "127.0.0.1");
        await new Promise((r) => setTimeout(r, 30));
      }
      expect([...replies].sort()).toEqual(["a", "bb", "ccc"]);
    } finally {
      c.close();
    }
  }, 15_000);

  test("CONNECT <service>.tunnel through a connect listener reaches the service, for tokens that may", async () => {
    const { port } = edge.hostPort("fwd");
    const via = (secret: string) =>
      run("curl", ["-sS", "--max-time", "10", "-p", "-x", `http://127.0.0.1:${port}`, "--proxy-user", `me:${secret}`, "-o", "-", "-w", "\n%{http_connect}", "http://http.tunnel:80/via-connect"]);
    const ok = await via("proxy-http-secret");
    expect(ok.stdout).toBe("hello from /via-connect\n200");
    // A token whose services do not include "http" gets 403, and nothing reaches the service.
    const denied = await via("proxy-echo-secret");
    expect(denied.stdout.trim().endsWith("403")).toBe(true);
    const line = await edge.waitForLine((l) => l.msg === "tunnel" && l.identity === "proxy-echo");
    expect(line.error).toBe("SERVICE_DENIED");
  }, 20_000);

  test("curl reaches a tunnelled HTTPS server through a public SNI route (tunnel:app)", async () => {
    const { port } = edge.hostPort("public");
    const r = await run("curl", ["-sS", "--max-time", "10", "--cacert", testPki().caCertPath, "--resolve", `app.test:${port}:127.0.0.1`, `https://app.test:${port}/`]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("backend=app.test\n");
    const big = await run("curl", ["-sS", "--max-time", "20", "--cacert", testPki().caCertPath, "--resolve", `app.test:${port}:127.0.0.1`, `https://app.test:${port}/bytes/3000000`, "-o", "/dev/null", "-w", "%{size_download}"]);
    expect(big.stdout).toBe("3000000");
  }, 30_000);

  test("PROXY v2 header from the route reaches the tunnelled service with the client's address", async () => {
    const { port } = edge.hostPort("public");
    const before = pp.received.length;
    // Not TLS: the pp service just answers; what matters is the header in front of the ClientHello.
    const r = await run("curl", ["-sS", "--max-time", "5", "-k", "--resolve", `pp.test:${port}:127.0.0.1`, `https://pp.test:${port}/`]);
    expect(r.code).not.toBe(0); // "pp-ok" is not TLS
    await until(() => pp.received.length > before && pp.received[before]!.length > 0, "pp got bytes");
    const got = Buffer.concat(pp.received[before]!);
    expect(got.subarray(0, 12).toString("hex")).toBe("0d0a0d0a000d0a515549540a");
    expect(got[13]).toBe(0x11); // TCP over IPv4
    expect([...got.subarray(16, 20)]).toEqual([127, 0, 0, 1]);
  }, 15_000);

  test("sources on other workers reach the destination (cross-worker path)", async () => {
    // Which worker accepts an agent is the kernel's reuseport hash of its source port: start
    // sources four at a time until one lands beside the destination and one away from it
    // (a batch missing the other worker has odds 1/16; five batches all missing, about 1e-6).
    const sessions = () => edge.lines.filter((l) => l.msg === "tunnel session");
    const destWorker = sessions().findLast((l) => l.agent === "dest")!.worker;
    const extra: EdgemuxProcess[] = [];
    const spread: unknown[] = [];
    try {
      for (let batch = 0; batch < 5; batch++) {
        const started = await Promise.all(
          [0, 1, 2, 3].map(async (k) => {
            const name = `xsrc${batch}-${k}`;
            const p = await agent(SECRETS.src, ["--name", name, "--forward", "127.0.0.1:0=echo"]);
            extra.push(p);
            await connected(p);
            return { p, worker: (await edge.waitForLine((l) => l.msg === "tunnel session" && l.agent === name)).worker };
          }),
        );
        spread.push(...started.map((s) => s.worker));
        const away = started.find((s) => s.worker !== destWorker);
        if (!away) continue;
        const data = randomBytes(200_000);
        expect(sha(await roundTrip(fwdPort(away.p, "tcp:echo"), data))).toBe(sha(data));
        const beside = started.find((s) => s.worker === destWorker);
        if (beside) expect(sha(await roundTrip(fwdPort(beside.p, "tcp:echo"), data))).toBe(sha(data));
        return;
      }
      throw new Error(`twenty source agents all landed on the destination's worker ${destWorker}: ${JSON.stringify(spread)}`);
    } finally {
      for (const p of extra) {
        await p.stop();
        children.delete(p);
      }
    }
  }, 60_000);

  const refusals: [string, string, string[], string][] = [
    ["wrong token", "BAD_TOKEN", ["--token", "not-a-token", "--expose", "web-a=127.0.0.1:9"], "matches no"],
    ["wrong role", "ROLE_DENIED", ["--token", SECRETS.src, "--expose", "web-a=127.0.0.1:9"], "destination role"],
    ["denied CIDR", "CIDR_DENIED", ["--token", SECRETS.denied, "--expose", "web-a=127.0.0.1:9"], "not allowed for token 'denied'"],
    ["service name not allowed", "SERVICE_DENIED", ["--token", SECRETS.narrow, "--expose", "db=127.0.0.1:9"], "'db' is not allowed"],
  ];
  for (const [what, name, args, reason] of refusals) {
    test(`${what}: the agent prints ${name} with the reason and exits 3; the edge logs it`, async () => {
      const { port } = edge.hostPort("tunnel");
      const { code, p } = await runAgentToExit(["--edge", `localhost:${port}`, "--ca", tls.ca, "--name", `bad-${name.toLowerCase()}`, ...args]);
      expect(code).toBe(3);
      const line = p.lines.find((l) => l.msg.includes("refused this agent"));
      expect(line?.error).toBe(name);
      expect(String(line?.reason)).toContain(reason);
      await edge.waitForLine((l) => l.msg === "tunnel refused" && String(l.reason).includes(reason));
    }, 30_000);
  }

  test("a raw TLS client sending garbage after the upgrade: only its session dies", async () => {
    const { port } = edge.hostPort("tunnel");
    const closed = await new Promise<boolean>((resolve) => {
      const s = tlsConnect({ host: "127.0.0.1", port, servername: "localhost", ca: testPki().caCert }, () => {
        s.write(upgradeRequest({ host: "localhost", transport: "smux", token: SECRETS.src }));
        s.write(Buffer.from([2, 0, 0, 0, 3, 0, 0, 0, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7])); // SYN then a wrong-version frame
      });
      s.on("error", () => {});
      s.on("data", () => {}); // consume the 101: a paused node stream never emits 'end', so never 'close'
      s.on("close", () => resolve(true));
      setTimeout(() => resolve(false), 10_000);
    });
    expect(closed).toBe(true);
    await edge.waitForLine((l) => l.msg === "tunnel session protocol error");
    const data = randomBytes(100_000);
    expect(sha(await roundTrip(fwdPort(src, "tcp:echo"), data))).toBe(sha(data));
  }, 30_000);

  test("a malformed upgrade request gets 400 with the numbered code", async () => {
    const { port } = edge.hostPort("tunnel");
    const text = await new Promise<string>((resolve) => {
      let got = "";
      const s = tlsConnect({ host: "127.0.0.1", port, servername: "localhost", ca: testPki().caCert }, () => s.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
      s.on("data", (d) => (got += d));
      s.on("error", () => {});
      s.on("close", () => resolve(got));
    });
    expect(text).toStartWith("HTTP/1.1 400 ");
    expect(text).toContain("Edgemux-Error: 1\r\n");
  }, 15_000);

  test("WebSocket transport: an agent with --transport websocket relays like the upgrade one", async () => {
    const ws = await agent(SECRETS.src, ["--name", "ws-src", "--transport", "websocket", "--forward", "127.0.0.1:0=echo"]);
    await connected(ws);
    const data = randomBytes(500_000);
    expect(sha(await roundTrip(fwdPort(ws, "tcp:echo"), data))).toBe(sha(data));
    await edge.waitForLine((l) => l.msg === "tunnel session" && l.agent === "ws-src" && l.transport === "websocket");
  }, 30_000);

  test.skipIf(onDeno)("Bun's own WebSocket client speaks to the edge's WebSocket endpoint (RFC 6455 interop)", async () => {
    const { port } = edge.hostPort("tunnel");
    const sock = new WebSocket(`wss://localhost:${port}/edgemux/tunnel`, { tls: { ca: testPki().caCert }, protocols: ["edgemux-smux.v2"] } as never);
    const conn = new StdWebSocketConn(sock);
    await conn.opened;
    const mux = new MuxSession(conn, { client: true, version: 2, keepAliveIntervalMs: 0 });
    const ctl = mux.openStream();
    const msgs: TunnelMessage[] = [];
    const dec = new TunnelMessageDecoder();
    ctl.setHandler({ onData: (_c, d) => { dec.push(d); for (let m = dec.next(); m; m = dec.next()) msgs.push(m); }, onDrain() {}, onEnd() {}, onClose() {} });
    // A browser-style client cannot set Authorization: the token rides in hello.
    ctl.write(encodeTunnelMessage({ type: "hello", version: 1, agent: "bun-ws", roles: ["source"], services: [], token: SECRETS.src }));
    await until(() => msgs.length > 0, "welcome", 10_000);
    expect(msgs[0]!.type).toBe("welcome");
    // Open a stream to the echo service and round-trip through it.
    const s = mux.openStream();
    const got: Uint8Array[] = [];
    const sdec = new TunnelMessageDecoder();
    let answered: TunnelMessage | null = null;
    s.setHandler({
      onData: (_c, d) => {
        if (answered === null) {
          sdec.push(d);
          answered = sdec.next();
          got.push(...sdec.rest());
        } else got.push(d.slice());
      },
      onDrain() {},
      onEnd() {},
      onClose() {},
    });
    s.write(encodeTunnelMessage({ type: "open", service: "echo", proto: "tcp", client: "", server: "", proxy: "none" }));
    s.write(new TextEncoder().encode("over a real websocket"));
    await until(() => got.reduce((n, g) => n + g.length, 0) >= 21, "echo", 10_000);
    expect(answered as TunnelMessage | null).toEqual({ type: "ok" });
    expect(new TextDecoder().decode(Buffer.concat(got))).toBe("over a real websocket");
    mux.close();
  }, 30_000);

  test.skipIf(onDeno)("mTLS: an agent with a client certificate and no token authenticates as the token named by its identity", async () => {
    const c = testPki().issue("agent-cert.test");
    const p = await startAgentProcess(["--edge", `localhost:${edge.hostPort("tunnel").port}`, "--ca", tls.ca, "--cert", c.certPath, "--key", c.keyPath, "--name", "mtls", "--forward", "127.0.0.1:0=echo"]);
    children.add(p);
    await connected(p);
    const line = await edge.waitForLine((l) => l.msg === "tunnel session" && l.agent === "mtls");
    expect(line.token).toBe("agent-cert.test");
    const data = randomBytes(50_000);
    expect(sha(await roundTrip(fwdPort(p, "tcp:echo"), data))).toBe(sha(data));
  }, 30_000);

  test("status endpoint: state, services, forwards, bytes", async () => {
    const st = (await (await fetch(`http://${src.admin}/status`)).json()) as {
      state: string;
      forwards: { service: string; streams: number; bytes_out: number }[];
      session: { id: string } | null;
    };
    expect(st.state).toBe("connected");
    expect(st.session?.id).toBeString();
    const e = st.forwards.find((f) => f.service === "echo")!;
    expect(e.streams).toBeGreaterThan(0);
    expect(e.bytes_out).toBeGreaterThanOrEqual(1024 * 1024);
    const d = (await (await fetch(`http://${dest.admin}/status`)).json()) as { services: { name: string; streams: number }[] };
    expect(d.services.map((s) => s.name).sort()).toEqual(["app", "dns", "echo", "http", "pp"]);
    expect((await fetch(`http://${dest.admin}/healthz`)).status).toBe(200);
  }, 15_000);

  test("the edge's /status lists agent sessions and /metrics counts them; a stopped agent leaves both", async () => {
    const st = await edge.status();
    const d = st.tunnels.list.find((t) => t.agent === "dest")!;
    expect(d).toMatchObject({ listener: "tunnel", token: "dest", transport: "smux", roles: ["destination"] });
    expect(d.services.sort()).toEqual(["app", "dns", "echo", "http", "pp"]);
    expect(d.peer).toStartWith("127.0.0.1:");
    expect(Date.parse(d.since)).toBeLessThanOrEqual(Date.now());
    expect(st.tunnels.list.find((t) => t.agent === "src")).toMatchObject({ token: "src", roles: ["source"], services: [] });
    expect(st.tunnels.sessions).toBe(st.tunnels.list.length);

    const gauge = async (token: string) => {
      const text = await (await edge.adminGet("/metrics")).text();
      return Number(text.match(new RegExp(`^edgemux_tunnel_sessions_active\\{listener="tunnel",token="${token}"\\} (\\d+)$`, "m"))?.[1]);
    };
    const before = await gauge("src");
    expect(before).toBeGreaterThanOrEqual(1);
    expect(await gauge("narrow")).toBe(0); // every token with an agent role has a series

    // Session events reach the supervisor by message, a moment after the agent's own "connected".
    const listed = async () => (await edge.status()).tunnels.list.find((t) => t.agent === "status-probe");
    const settle = async (want: boolean) => {
      for (let i = 0; i < 100 && ((await listed()) !== undefined) !== want; i++) await new Promise((r) => setTimeout(r, 20));
    };
    const extra = await agent(SECRETS.src, ["--name", "status-probe", "--forward", "127.0.0.1:0=echo"]);
    await connected(extra);
    await settle(true);
    expect((await listed())?.token).toBe("src");
    expect(await gauge("src")).toBe(before + 1);
    await extra.stop();
    children.delete(extra);
    await settle(false);
    expect(await listed()).toBeUndefined();
    expect(await gauge("src")).toBe(before);
  }, 30_000);
});

describe.skipIf(!hasGo)("Go smux client (a second implementation)", () => {
  let bin = "";
  const goProcs = new Set<ChildProcess>();
  beforeAll(() => {
    const out = join(ROOT, ".tmp/go");
    const r = spawnSync("go", ["build", "-o", join(out, "tunnel_client"), "."], {
      cwd: join(ROOT, "test/go/tunnel"),
      encoding: "utf8",
      env: { ...process.env, GOPATH: "/usr/share/gocode", GO111MODULE: "off", GOFLAGS: "", GOPROXY: "off", GOCACHE: join(out, "cache") },
    });
    if (r.status !== 0) throw new Error(`building the Go tunnel client failed:\n${r.stderr}`);
    bin = join(out, "tunnel_client");
  }, 120_000);
  afterAll(() => {
    for (const p of goProcs) p.kill();
  });

  function goArgs(extra: string[]): string[] {
    return ["-edge", `127.0.0.1:${edge.hostPort("tunnel").port}`, "-ca", tls.ca, "-servername", "localhost", "-token", SECRETS.go, ...extra];
  }

  test("Go destination: our source agent reaches a service the Go client exposes", async () => {
    const g = spawn(bin, goArgs(["-mode", "destination", "-service", "go-echo", "-agent", "go-dest"]), { stdio: ["ignore", "pipe", "pipe"] });
    goProcs.add(g);
    let out = "";
    let err = "";
    g.stdout!.on("data", (d) => (out += d));
    g.stderr!.on("data", (d) => (err += d));
    await until(() => out.includes("READY") || g.exitCode !== null, "Go agent ready", 15_000);
    expect(err).toBe("");
    const p = await agent(SECRETS.src, ["--name", "src-to-go", "--forward", "127.0.0.1:0=go-echo"]);
    await connected(p);
    const data = randomBytes(300_000);
    // Go's stream has no half-close: it echoes until our FIN, then closes.
    expect(sha(await roundTrip(fwdPort(p, "tcp:go-echo"), data))).toBe(sha(data));
    g.kill();
  }, 60_000);

  test("Go source: 20 streams to our destination agent's echo, SHA-256 checked", async () => {
    const r = await run(bin, goArgs(["-mode", "source", "-service", "echo", "-agent", "go-src", "-streams", "20", "-bytes", "200000"]), { timeoutMs: 30_000 });
    const line = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(line).toMatchObject({ ok: true, streams: 20, error: "" });
  }, 60_000);
});

describe("edge restart and go-away drain", () => {
  test("SIGTERM: a running transfer finishes, agents get go-away, reconnect to the restarted edge, traffic resumes", async () => {
    const e1 = await startEdgemux(edgeToml(tls), { workers: 1 });
    children.add(e1);
    const ports = { tunnel: e1.hostPort("tunnel").port, sni: e1.hostPort("public").port };
    const args = (token: string, extra: string[]) => ["--edge", `localhost:${ports.tunnel}`, "--ca", tls.ca, "--token", token, "--reconnect-min", "50ms", "--reconnect-max", "300ms", ...extra];
    const d = await startAgentProcess(args(SECRETS.dest, ["--name", "rd", "--expose", `echo=127.0.0.1:${echo.port}`]));
    const s = await startAgentProcess(args(SECRETS.src, ["--name", "rs", "--forward", "127.0.0.1:0=echo"]));
    children.add(d);
    children.add(s);
    await Promise.all([connected(d), connected(s)]);
    const port = fwdPort(s, "tcp:echo");
    // A transfer in flight while the edge drains: it must complete.
    const data = randomBytes(16 * 1024 * 1024);
    const accepted = echo.accepted;
    const inFlight = roundTrip(port, data, 30_000);
    // The stream must be up (the echo service reached) before the drain starts: after a go-away the
    // agent refuses new local connections until its next session is welcomed.
    await until(() => echo.accepted > accepted, "transfer reached the service");
    e1.signal("SIGTERM");
    await s.waitForLine((l) => l.msg.includes("go-away"));
    await d.waitForLine((l) => l.msg.includes("go-away"));
    expect(sha(await inFlight)).toBe(sha(data));
    expect(await e1.waitExit(20_000)).toBe(0);
    children.delete(e1);
    // The agents keep retrying; a new edge on the same ports takes them back.
    const e2 = await startEdgemux(edgeToml(tls, ports), { workers: 1 });
    children.add(e2);
    await Promise.all([connected(d, 1), connected(s, 1)]);
    const again = randomBytes(300_000);
    expect(sha(await roundTrip(port, again))).toBe(sha(again));
    await e2.stop();
    children.delete(e2);
  }, 90_000);
});

/** A runtime Conn over the WHATWG WebSocket (test-only: interop with Bun's client). */
class StdWebSocketConn implements Conn {
  private handler: ConnHandler = { onData() {}, onDrain() {}, onEnd() {}, onClose() {} };
  readonly opened: Promise<void>;
  remoteAddress = "";
  remotePort = 0;
  localAddress = "";
  localPort = 0;
  constructor(private readonly ws: WebSocket) {
    ws.binaryType = "arraybuffer";
    this.opened = new Promise((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = (e) => reject(new Error(`websocket error ${String((e as ErrorEvent).message ?? "")}`));
    });
    ws.onmessage = (e) => this.handler.onData(this, new Uint8Array(e.data as ArrayBuffer));
    ws.onclose = () => this.handler.onClose(this);
  }
  get writableLength(): number {
    return this.ws.bufferedAmount;
  }
  write(d: Uint8Array): boolean {
    this.ws.send(d.slice());
    return this.ws.bufferedAmount < 1024 * 1024;
  }
  pause(): void {}
  resume(): void {}
  end(): void {
    this.ws.close();
  }
  close(): void {
    this.ws.close();
  }
  setHandler(h: ConnHandler): void {
    this.handler = h;
  }
  setNoDelay(): void {}
  tls() {
    return null;
  }
}
