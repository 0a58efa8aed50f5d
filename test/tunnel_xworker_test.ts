/**
 * The cross-worker path in one process: two hubs (worker 0 and worker 1)
 * joined by a real MessageChannel, as the supervisor pairs workers. A source
 * agent on worker 0 reaches a destination agent held by worker 1.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import type { Agent } from "../src/agent/mod.ts";
import { type Conn, type ConnHandler, detectRuntime } from "../src/runtime/mod.ts";
import { createSessionCells } from "../src/stats/mod.ts";
import { PeerLink, XWORKER_WINDOW } from "../src/worker/peer_link.ts";
import { agentConfig, echoServer, roundTrip, startAgent, TestEdge, until } from "./support/tunnel.ts";

const runtime = detectRuntime();

const agents: Agent[] = [];
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const a of agents.splice(0)) a.stop();
  for (const c of cleanups.splice(0)) c();
});
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function pair(): { w0: TestEdge; w1: TestEdge; channel: MessageChannel } {
  const cells = createSessionCells(2);
  const w0 = new TestEdge(undefined, 0, cells);
  const w1 = new TestEdge(undefined, 1, cells);
  const channel = new MessageChannel();
  w0.hub.attachPeer(1, new PeerLink(0, 1, channel.port1, w0.hub));
  w1.hub.attachPeer(0, new PeerLink(1, 0, channel.port2, w1.hub));
  cleanups.push(() => {
    channel.port1.close();
    channel.port2.close();
  });
  return { w0, w1, channel };
}

describe("cross-worker tunnel streams", () => {
  test("the registry follows the peer's services; a source on worker 0 reaches a destination on worker 1", async () => {
    const { w0, w1 } = pair();
    const echo = echoServer();
    cleanups.push(() => echo.close());
    const d = startAgent(w1, agentConfig({ name: "d", token: "dest-token", exposes: [{ name: "echo", target: { kind: "tcp", hostname: "127.0.0.1", port: echo.port }, proxy: "none" }] }));
    const s = startAgent(w0, agentConfig({ name: "s", token: "src-token", forwards: [{ listen: { hostname: "127.0.0.1", port: 0 }, service: "echo", proto: "tcp" }] }));
    agents.push(d.agent, s.agent);
    await d.agent.start();
    const bound = await s.agent.start();
    await until(() => w0.hub.has("echo"), "worker 0 learned worker 1's service");
    expect(w0.hub.localServices()).toEqual({});
    expect(w1.hub.localServices()).toEqual({ echo: 1 });
    await until(() => s.agent.state === "connected", "source connected");
    const port = Number(bound.forwards[0]!.listen.split(":").pop());
    const data = randomBytes(4 * 1024 * 1024);
    expect(sha(await roundTrip(port, data, 15_000))).toBe(sha(data));
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => randomBytes(5000 + i)).map(async (x) => sha(await roundTrip(port, x)) === sha(x)));
    expect(many.every(Boolean)).toBe(true);
    const st = w0.hub.stats();
    expect(st.crossBytesOut).toBeGreaterThanOrEqual(data.length);
    expect(st.crossBytesIn).toBeGreaterThanOrEqual(data.length);
    // Batching: far fewer postMessage batches than messages is not asserted (timing), but messages were counted.
    expect(st.crossMessages).toBeGreaterThan(0);
    await until(() => w0.hub.stats().crossStreams === 0 && w1.hub.peerStreams === 0, "cross streams closed");
    // The destination leaves: worker 0 forgets the service.
    d.agent.stop();
    await until(() => !w0.hub.has("echo"), "worker 0 forgot the service");
  }, 30_000);

  test("backpressure: a consumer that stops reading holds the sender at the window", async () => {
    const { w0, w1 } = pair();
    // A service that accepts and never reads; it writes 8 MiB that the client will not read either.
    let serverConn: Conn | null = null;
    const sink = runtime.listen({
      address: { hostname: "127.0.0.1", port: 0 },
      onAccept(c): ConnHandler {
        serverConn = c;
        c.pause();
        return { onData() {}, onDrain() {}, onEnd() {}, onClose() {} };
      },
    });
    cleanups.push(() => sink.close());
    const d = startAgent(w1, agentConfig({ token: "dest-token", exposes: [{ name: "sink", target: { kind: "tcp", hostname: "127.0.0.1", port: sink.port }, proxy: "none" }] }));
    const s = startAgent(w0, agentConfig({ token: "src-token", forwards: [{ listen: { hostname: "127.0.0.1", port: 0 }, service: "sink", proto: "tcp" }] }));
    agents.push(d.agent, s.agent);
    await d.agent.start();
    const bound = await s.agent.start();
    await until(() => w0.hub.has("sink") && s.agent.state === "connected", "ready");
    const port = Number(bound.forwards[0]!.listen.split(":").pop());
    let written = 0;
    const block = new Uint8Array(64 * 1024);
    const client = await runtime.connect({ address: { hostname: "127.0.0.1", port }, handler: { onData() {}, onDrain() {}, onEnd() {}, onClose() {} } });
    cleanups.push(() => client.close());
    const pump = () => {
      for (let i = 0; i < 16 && written < 64 * 1024 * 1024; i++) {
        written += block.length;
        if (!client.write(block)) return;
      }
    };
    client.setHandler({ onData() {}, onDrain: pump, onEnd() {}, onClose() {} });
    pump();
    await until(() => serverConn !== null, "service accepted");
    // Let the pipeline fill (socket buffers, mux windows, the cross-worker window) until nothing moves for 300 ms.
    let last = -1;
    let still = 0;
    for (let i = 0; i < 1000 && still < 30; i++) {
      await new Promise((r) => setTimeout(r, 10));
      const now = w0.hub.stats().crossBytesOut;
      still = now === last ? still + 1 : 0;
      last = now;
    }
    expect(still).toBe(30);
    const crossed = w0.hub.stats().crossBytesOut;
    // Without backpressure the client would have pushed all 64 MiB through; held back, what crossed is
    // the receiving side's buffers (the service's socket, the agent's stream window) plus one window here.
    expect(written).toBeLessThan(64 * 1024 * 1024);
    expect(crossed).toBeLessThan(16 * 1024 * 1024);
    expect(crossed).toBeGreaterThan(XWORKER_WINDOW / 2);
  }, 30_000);

  test("a chunk that is a view into a bigger buffer (a node Buffer from a socket) crosses as exactly its bytes, and the big buffer stays usable", async () => {
    const { w0, w1 } = pair();
    const got: Uint8Array[] = [];
    let serverSide: Conn | null = null;
    const sink = runtime.listen({
      address: { hostname: "127.0.0.1", port: 0 },
      onAccept(c): ConnHandler {
        serverSide = c;
        return { onData: (_c, d) => got.push(d.slice()), onDrain() {}, onEnd() {}, onClose() {} };
      },
    });
    cleanups.push(() => sink.close());
    const d = startAgent(w1, agentConfig({ token: "dest-token", exposes: [{ name: "sink", target: { kind: "tcp", hostname: "127.0.0.1", port: sink.port }, proxy: "none" }] }));
    agents.push(d.agent);
    await d.agent.start();
    await until(() => w0.hub.has("sink"), "learned");
    const conn = await w0.hub.open({ service: "sink", proto: "tcp", client: "", server: "", proxy: "none" }, 2000);
    conn.setHandler({ onData() {}, onDrain() {}, onEnd() {}, onClose() {} });
    conn.resume();
    const big = Buffer.from("HEADER--payload-bytes--TRAILER");
    const view = big.subarray(8, 23); // a node Buffer view, like Bun's socket chunks
    conn.write(view);
    await until(() => got.reduce((n, g) => n + g.length, 0) >= 15, "bytes at the service");
    expect(Buffer.concat(got).toString()).toBe("payload-bytes--");
    expect(big.toString()).toBe("HEADER--payload-bytes--TRAILER"); // not detached, not changed
    expect(serverSide).not.toBeNull();
    conn.close();
  }, 15_000);

  test("the peer worker goes away: its services vanish and open cross streams fail", async () => {
    const { w0, w1 } = pair();
    const echo = echoServer();
    cleanups.push(() => echo.close());
    const d = startAgent(w1, agentConfig({ token: "dest-token", exposes: [{ name: "echo", target: { kind: "tcp", hostname: "127.0.0.1", port: echo.port }, proxy: "none" }] }));
    agents.push(d.agent);
    await d.agent.start();
    await until(() => w0.hub.has("echo"), "learned");
    const conn = await w0.hub.open({ service: "echo", proto: "tcp", client: "192.0.2.1:5000", server: "", proxy: "none" }, 2000);
    expect(conn.remoteAddress).toBe("192.0.2.1");
    let closedErr: Error | undefined | null = null;
    conn.setHandler({ onData() {}, onDrain() {}, onEnd() {}, onClose: (_c, e) => (closedErr = e) });
    conn.resume();
    w0.hub.detachPeer(1);
    await until(() => closedErr !== null, "cross stream closed");
    expect(closedErr).toBeInstanceOf(Error);
    expect(w0.hub.has("echo")).toBe(false);
    await expect(w0.hub.open({ service: "echo", proto: "tcp", client: "", server: "", proxy: "none" }, 500)).rejects.toMatchObject({ code: "SERVICE_UNKNOWN" });
  }, 15_000);
});
