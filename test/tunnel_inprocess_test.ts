/**
 * The edge ⇄ agent protocol in one process: edge sessions over memory pairs,
 * real agents (src/agent), real local services on 127.0.0.1. Covers the
 * relay between a source and a destination, every policy refusal (the agent
 * prints the reason and exits or retries), go-away, UDP, the file server, and
 * a peer sending garbage (only its session dies).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, realpathSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Agent, EXIT_REFUSED, resolveInside } from "../src/agent/mod.ts";
import { type ConnHandler, detectRuntime } from "../src/runtime/mod.ts";
import { encodeTunnelMessage, TunnelErrorCode, TunnelMessageDecoder } from "../src/proto/tunnel_control.ts";
import { MuxSession } from "../src/mux/mod.ts";
import { upgradeRequest } from "../src/tunnel/transport/mod.ts";
import { agentConfig, echoServer, roundTrip, startAgent, TestEdge, until } from "./support/tunnel.ts";

const runtime = detectRuntime();

const agents: Agent[] = [];
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const a of agents.splice(0)) a.stop();
  for (const c of cleanups.splice(0)) c();
});

function track<T extends { agent: Agent }>(a: T): T {
  agents.push(a.agent);
  return a;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("tunnel, in process", () => {
  test("source → edge → destination → TCP echo, 2 MiB both ways, half-close passes through", async () => {
    const edge = new TestEdge();
    const echo = echoServer();
    cleanups.push(() => echo.close());
    const d = track(startAgent(edge, agentConfig({ name: "dest", token: "dest-token", exposes: [{ name: "echo", target: { kind: "tcp", hostname: "127.0.0.1", port: echo.port }, proxy: "none" }] })));
    const s = track(startAgent(edge, agentConfig({ name: "src", token: "src-token", forwards: [{ listen: { hostname: "127.0.0.1", port: 0 }, service: "echo", proto: "tcp" }] })));
    await d.agent.start();
    const bound = await s.agent.start();
    await until(() => d.agent.state === "connected" && s.agent.state === "connected", "both agents connected");
    expect(edge.hub.has("echo")).toBe(true);
    const port = Number(bound.forwards[0]!.listen.split(":").pop());
    const data = randomBytes(2 * 1024 * 1024);
    const got = await roundTrip(port, data);
    expect(got.length).toBe(data.length);
    expect(sha(got)).toBe(sha(data));
    await until(() => edge.find("tunnel stream", (l) => l.service === "echo") !== undefined, "stream log line");
    const line = edge.find("tunnel stream")!;
    expect(line.bytes_in).toBe(data.length);
    expect(line.bytes_out).toBe(data.length);
    const st = s.agent.status() as { forwards: { streams: number; bytes_out: number }[] };
    expect(st.forwards[0]!.streams).toBe(1);
    expect(st.forwards[0]!.bytes_out).toBe(data.length);
  }, 20_000);

  test("a local client that closes while the service is still sending leaves nothing behind (no stuck stream, no buffered bytes)", async () => {
    const edge = new TestEdge();
    // A service that streams until its peer closes, like bench/tools/tcp_backend.ts in bulk mode.
    const block = new Uint8Array(64 * 1024);
    const firehose = runtime.listen({
      address: { hostname: "127.0.0.1", port: 0 },
      onAccept(): ConnHandler {
        return {
          onData(c) {
            const pump = () => {
              for (let i = 0; i < 64; i++) if (!c.write(block)) return;
              setTimeout(pump, 0);
            };
            pump();
          },
          onDrain(c) {
            for (let i = 0; i < 64; i++) if (!c.write(block)) return;
          },
          onEnd(c) {
            c.close();
          },
          onClose() {},
        };
      },
    });
    cleanups.push(() => firehose.close());
    const both = track(startAgent(edge, agentConfig({
      token: "both-token",
      exposes: [{ name: "echo", target: { kind: "tcp", hostname: "127.0.0.1", port: firehose.port }, proxy: "none" }],
      forwards: [{ listen: { hostname: "127.0.0.1", port: 0 }, service: "echo", proto: "tcp" }],
    })));
    const bound = await both.agent.start();
    await until(() => both.agent.state === "connected", "connected");
    const port = Number(bound.forwards[0]!.listen.split(":").pop());
    for (let round = 0; round < 6; round++) {
      let got = 0;
      const c = await runtime.connect({ address: { hostname: "127.0.0.1", port }, handler: { onData: (_c, d) => (got += d.length), onDrain() {}, onEnd() {}, onClose() {} } });
      c.write(Uint8Array.of(1));
      await until(() => got > 2 * 1024 * 1024, "bytes flowing");
      c.close(); // abruptly, with the service still sending
    }
    // Every stream ends; the agent's session holds no bytes for a consumer that is gone.
    await until(() => (both.agent.session?.mux.numStreams ?? 0) === 1 && both.agent.session!.mux.stats().recvBuffered === 0, "streams gone, nothing buffered", 10_000);
    await until(() => [...edge.sessions].every((s) => (s as unknown as { mux: { numStreams: number } }).mux.numStreams === 1), "edge streams gone", 10_000);
  }, 30_000);

  test("a unix-socket service, with a PROXY v1 header from the expose option", async () => {
    const edge = new TestEdge();
    const dir = mkdtempSync(join(tmpdir(), "edgemux-unix-"));
    const path = join(dir, "svc.sock");
    const seen: Uint8Array[] = [];
    const l = runtime.listen({
      address: { unix: path },
      onAccept(): ConnHandler {
        return {
          onData(c, d) {
            seen.push(d.slice());
            if (!new TextDecoder().decode(Buffer.concat(seen)).endsWith("ping")) return;
            c.write(new TextEncoder().encode("pong"));
            c.end();
          },
          onDrain() {},
          onEnd() {},
          onClose() {},
        };
      },
    });
    cleanups.push(() => l.close());
    const both = track(startAgent(edge, agentConfig({
      token: "both-token",
      exposes: [{ name: "echo", target: { kind: "unix", path }, proxy: "v1" }],
      forwards: [{ listen: { hostname: "127.0.0.1", port: 0 }, service: "echo", proto: "tcp" }],
    })));
    const bound = await both.agent.start();
    await until(() => both.agent.state === "connected", "connected");
    const got = await roundTrip(Number(bound.forwards[0]!.listen.split(":").pop()), new TextEncoder().encode("ping"));
    expect(new TextDecoder().decode(got)).toBe("pong");
    const first = new TextDecoder().decode(Buffer.concat(seen));
    // The client of record is the source agent as the edge saw it (127.0.0.1 here).
    expect(first).toMatch(/^PROXY TCP4 127\.0\.0\.1 \S+ \d+ \d+\r\nping$/);
  }, 10_000);

  test("50 concurrent streams through one pair of sessions", async () => {
    const edge = new TestEdge();
    const echo = echoServer();
    cleanups.push(() => echo.close());
    const both = track(startAgent(edge, agentConfig({
      name: "both",
      token: "both-token",
      exposes: [{ name: "echo", target: { kind: "tcp", hostname: "127.0.0.1", port: echo.port }, proxy: "none" }],
      forwards: [{ listen: { hostname: "127.0.0.1", port: 0 }, service: "echo", proto: "tcp" }],
    })));
    const bound = await both.agent.start();
    await until(() => both.agent.state === "connected", "connected");
    const port = Number(bound.forwards[0]!.listen.split(":").pop());
    const inputs = Array.from({ length: 50 }, (_, i) => randomBytes(1000 + i * 997));
    const outs = await Promise.all(inputs.map((d) => roundTrip(port, d)));
    outs.forEach((o, i) => expect(sha(o)).toBe(sha(inputs[i]!)));
  }, 20_000);

  const refusals: [string, string, () => Parameters<typeof agentConfig>[0], number, string][] = [
    ["wrong token", "BAD_TOKEN", () => ({ token: "nope", exposes: [{ name: "web-a", target: { kind: "tcp", hostname: "127.0.0.1", port: 9 }, proxy: "none" }] }), TunnelErrorCode.BAD_TOKEN, "matches no"],
    ["no token", "AUTH_REQUIRED", () => ({ token: null, exposes: [{ name: "web-a", target: { kind: "tcp", hostname: "127.0.0.1", port: 9 }, proxy: "none" }] }), TunnelErrorCode.AUTH_REQUIRED, "no token"],
    ["wrong role", "ROLE_DENIED", () => ({ token: "src-token", exposes: [{ name: "web-a", target: { kind: "tcp", hostname: "127.0.0.1", port: 9 }, proxy: "none" }] }), TunnelErrorCode.ROLE_DENIED, "destination role"],
    ["service name outside the pattern", "SERVICE_DENIED", () => ({ token: "both-token", exposes: [{ name: "db", target: { kind: "tcp", hostname: "127.0.0.1", port: 9 }, proxy: "none" }] }), TunnelErrorCode.SERVICE_DENIED, "'db' is not allowed"],
    ["denied CIDR", "CIDR_DENIED", () => ({ token: "denied-token", exposes: [{ name: "web-a", target: { kind: "tcp", hostname: "127.0.0.1", port: 9 }, proxy: "none" }] }), TunnelErrorCode.CIDR_DENIED, "127.0.0.1"],
  ];
  for (const [what, name, cfg, code, reason] of refusals) {
    test(`${what}: edge logs ${name}, agent prints it and exits ${EXIT_REFUSED}`, async () => {
      const edge = new TestEdge();
      const a = track(startAgent(edge, agentConfig(cfg())));
      await a.agent.start();
      expect(await a.agent.exited).toBe(EXIT_REFUSED);
      const edgeLine = edge.find("tunnel refused");
      expect(edgeLine?.code).toBe(code);
      expect(String(edgeLine?.reason)).toContain(reason);
      const agentLine = a.lines.find((l) => l.msg.includes("refused this agent"));
      expect(agentLine?.error).toBe(name);
      expect(String(agentLine?.reason)).toContain(reason);
      expect(a.agent.state).toBe("refused");
    }, 10_000);
  }

  test("too many sessions for a token: refused with SESSION_LIMIT and retried, admitted once the first leaves", async () => {
    const edge = new TestEdge();
    const exp = [{ name: "web-a", target: { kind: "tcp" as const, hostname: "127.0.0.1", port: 9 }, proxy: "none" as const }];
    const first = track(startAgent(edge, agentConfig({ name: "first", token: "one-token", exposes: exp })));
    await first.agent.start();
    await until(() => first.agent.state === "connected", "first connected");
    const second = track(startAgent(edge, agentConfig({ name: "second", token: "one-token", exposes: exp })));
    await second.agent.start();
    await until(() => second.lines.some((l) => l.error === "SESSION_LIMIT"), "second refused with SESSION_LIMIT");
    expect(second.agent.state).not.toBe("refused");
    first.agent.stop();
    await until(() => second.agent.state === "connected", "second connected after the first left");
  }, 10_000);

  test("go-away: streams finish, agent reconnects after the delay, traffic resumes", async () => {
    const edge = new TestEdge();
    const echo = echoServer();
    cleanups.push(() => echo.close());
    const both = track(startAgent(edge, agentConfig({
      name: "both",
      token: "both-token",
      exposes: [{ name: "echo", target: { kind: "tcp", hostname: "127.0.0.1", port: echo.port }, proxy: "none" }],
      forwards: [{ listen: { hostname: "127.0.0.1", port: 0 }, service: "echo", proto: "tcp" }],
    })));
    const bound = await both.agent.start();
    await until(() => both.agent.state === "connected", "connected");
    const port = Number(bound.forwards[0]!.listen.split(":").pop());
    const first = edge.sessions.size;
    edge.goAwayAll();
    await until(() => both.lines.some((l) => l.msg.includes("go-away")), "agent saw go-away");
    await until(() => both.agent.state === "connected" && both.agent.reconnects >= 1, "reconnected");
    const data = randomBytes(100_000);
    expect(sha(await roundTrip(port, data))).toBe(sha(data));
    expect(first).toBe(1);
  }, 10_000);

  test("edge gone: the agent retries with backoff and comes back", async () => {
    const edge = new TestEdge();
    const a = track(startAgent(edge, agentConfig({ token: "dest-token", exposes: [{ name: "web-a", target: { kind: "tcp", hostname: "127.0.0.1", port: 9 }, proxy: "none" }] })));
    await a.agent.start();
    await until(() => a.agent.state === "connected", "connected");
    edge.closeAll();
    await until(() => a.lines.some((l) => l.msg.includes("session lost")), "agent noticed");
    await until(() => a.agent.state === "connected" && a.agent.reconnects >= 1, "reconnected");
  }, 10_000);

  test("backoff grows exponentially with jitter and is capped", () => {
    const edge = new TestEdge();
    const a = startAgent(edge, agentConfig({ reconnectMinMs: 100, reconnectMaxMs: 1000, token: "x", exposes: [] }));
    // random() = 0.5: delay = d/2 + d/4 = 0.75 d.
    expect([0, 1, 2, 3, 4, 10].map((n) => a.agent.backoffDelay(n))).toEqual([75, 150, 300, 600, 750, 750]);
  });

  test("unknown service: the source's local client is closed and the reason logged", async () => {
    const edge = new TestEdge();
    const s = track(startAgent(edge, agentConfig({ token: "src-token", forwards: [{ listen: { hostname: "127.0.0.1", port: 0 }, service: "nobody", proto: "tcp" }] })));
    const bound = await s.agent.start();
    await until(() => s.agent.state === "connected", "connected");
    const got = await roundTrip(Number(bound.forwards[0]!.listen.split(":").pop()), new Uint8Array(10));
    expect(got.length).toBe(0);
    await until(() => s.lines.some((l) => l.error === "SERVICE_UNKNOWN"), "agent logged SERVICE_UNKNOWN");
  }, 10_000);

  test("UDP: datagrams to a UDP echo through source and destination agents", async () => {
    const edge = new TestEdge();
    const echo = await runtime.bindUdp({ hostname: "127.0.0.1", port: 0, onDatagram: (d, p, a) => echo.send(d, p, a) });
    cleanups.push(() => echo.close());
    const both = track(startAgent(edge, agentConfig({
      token: "both-token",
      exposes: [{ name: "udp-echo", target: { kind: "udp", hostname: "127.0.0.1", port: echo.port }, proxy: "none" }],
      forwards: [{ listen: { hostname: "127.0.0.1", port: 0 }, service: "udp-echo", proto: "udp" }],
    })));
    const bound = await both.agent.start();
    await until(() => both.agent.state === "connected", "connected");
    const fwdPort = Number(bound.forwards[0]!.listen.split(":").pop());
    const replies: string[] = [];
    const client = await runtime.bindUdp({ hostname: "127.0.0.1", port: 0, onDatagram: (d) => replies.push(new TextDecoder().decode(d)) });
    cleanups.push(() => client.close());
    // UDP may drop the first datagrams while the stream opens (bounded queue keeps them here); resend until answered.
    for (let i = 0; i < 50 && replies.length < 3; i++) {
      for (const m of ["one", "two", "three"]) if (!replies.includes(m)) client.send(new TextEncoder().encode(m), fwdPort, "127.0.0.1");
      await until(() => true, "tick");
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(new Set(replies)).toEqual(new Set(["one", "two", "three"]));
  }, 10_000);

  test("file server: GET a file and a 404, HEAD, no escape with ..", async () => {
    const edge = new TestEdge();
    const dir = mkdtempSync(join(tmpdir(), "edgemux-files-"));
    writeFileSync(join(dir, "index.html"), "<h1>hello</h1>");
    const both = track(startAgent(edge, agentConfig({
      token: "both-token",
      exposes: [{ name: "site", target: { kind: "files", dir }, proxy: "none" }],
      forwards: [{ listen: { hostname: "127.0.0.1", port: 0 }, service: "site", proto: "tcp" }],
    })));
    const bound = await both.agent.start();
    await until(() => both.agent.state === "connected", "connected");
    const base = `http://${bound.forwards[0]!.listen}`;
    const r = await fetch(`${base}/`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe("<h1>hello</h1>");
    expect((await fetch(`${base}/missing.txt`)).status).toBe(404);
    // The URL parser folds %2e%2e; what reaches the server stays inside the directory.
    expect((await fetch(`${base}/%2e%2e/etc/passwd`)).status).toBe(404);
    const head = await fetch(`${base}/index.html`, { method: "HEAD" });
    expect(head.headers.get("content-length")).toBe("14");
    expect(resolveInside(dir, "/../etc/passwd")).toBeNull();
    expect(resolveInside(dir, "/a/%2e%2e/%2e%2e/x")).toBeNull();
    expect(resolveInside(dir, "/index.html")).toBe(join(realpathSync(dir), "index.html"));
  }, 10_000);

  test("garbage after the upgrade kills only that session", async () => {
    const edge = new TestEdge();
    const echo = echoServer();
    cleanups.push(() => echo.close());
    const both = track(startAgent(edge, agentConfig({
      token: "both-token",
      exposes: [{ name: "echo", target: { kind: "tcp", hostname: "127.0.0.1", port: echo.port }, proxy: "none" }],
      forwards: [{ listen: { hostname: "127.0.0.1", port: 0 }, service: "echo", proto: "tcp" }],
    })));
    const bound = await both.agent.start();
    await until(() => both.agent.state === "connected", "connected");
    const raw = edge.accept();
    let closed = false;
    raw.setHandler({ onData() {}, onDrain() {}, onEnd() {}, onClose: () => (closed = true) });
    raw.write(upgradeRequest({ host: "e", transport: "smux", token: "both-token" }));
    raw.write(new Uint8Array([9, 9, 9, 9, 9, 9, 9, 9, 9, 9]));
    await until(() => closed, "garbage session closed");
    expect(edge.find("tunnel session protocol error")?.error).toBe("MUX_PROTOCOL");
    const data = randomBytes(50_000);
    expect(sha(await roundTrip(Number(bound.forwards[0]!.listen.split(":").pop()), data))).toBe(sha(data));
  }, 10_000);

  test("a malformed hello is a protocol error for that session only", async () => {
    const edge = new TestEdge();
    const raw = edge.accept();
    const got: Uint8Array[] = [];
    let closed = false;
    raw.setHandler({ onData: (_c, d) => got.push(d.slice()), onDrain() {}, onEnd() {}, onClose: () => (closed = true) });
    raw.write(upgradeRequest({ host: "e", transport: "smux", token: "dest-token" }));
    await until(() => got.length > 0, "101");
    // Speak smux ourselves and send a control message that is not msgpack.
    const mux = new MuxSession(raw, { client: true, version: 2, keepAliveIntervalMs: 0 });
    const ctl = mux.openStream();
    const dec = new TunnelMessageDecoder();
    const msgs: unknown[] = [];
    ctl.setHandler({ onData: (_c, d) => { dec.push(d); for (let m = dec.next(); m; m = dec.next()) msgs.push(m); }, onDrain() {}, onEnd() {}, onClose() {} });
    ctl.write(Uint8Array.of(0, 0, 0, 2, 0xc1, 0xc1));
    await until(() => msgs.length > 0 || closed, "error answer");
    expect(msgs[0]).toMatchObject({ type: "error", code: TunnelErrorCode.PROTOCOL });
    expect(encodeTunnelMessage({ type: "ok" }).length).toBeGreaterThan(0);
  }, 10_000);
});
