/**
 * Bun's QUIC adapter (`Runtime.quic`, src/runtime/quic_bun.ts) over real QUIC
 * on 127.0.0.1, port 0, with openssl-made certificates: streams with
 * SHA-256-checked payloads, half-close, reset codes, connection close codes,
 * idle timeout and keep-alive, backpressure, datagrams, ALPN, client
 * certificates, pinning, and an fd leak check. Deno has no `Runtime.quic`
 * (src/runtime/deno.ts says why): skipped there.
 */
import { describe, expect, test } from "bun:test";
import { createHash, X509Certificate } from "node:crypto";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Conn, ConnHandler } from "../src/runtime/mod.ts";
import type { QuicCloseInfo, QuicListener, QuicListenOptions, QuicSession, QuicSessionHandler, QuicStream } from "../src/runtime/quic_types.ts";
import { ProxyError } from "../src/errors/mod.ts";
import { testPki } from "./support/tls.ts";
import { waitFor } from "./support/edgemux.ts";

const isBun = (globalThis as { Bun?: unknown }).Bun !== undefined;
const quic = isBun ? (await import("../src/runtime/bun.ts")).bunRuntime.quic! : null;
const ALPN = "edgemux/1";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const fdCount = () => readdirSync("/proc/self/fd").length;

function certs() {
  const pki = testPki();
  const server = pki.issue("localhost", ["localhost", "IP:127.0.0.1"]);
  const client = pki.issue("agent-1", ["URI:spiffe://edgemux/agent-1"]);
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
    "-subj", "/CN=self-pinned", "-addext", "subjectAltName=DNS:peer.invalid", "-keyout", "self.key", "-out", "self.crt",
  ], { cwd: pki.dir, stdio: ["ignore", "pipe", "pipe"] });
  const self = { cert: readFileSync(join(pki.dir, "self.crt"), "utf8"), key: readFileSync(join(pki.dir, "self.key"), "utf8") };
  return { ca: pki.caCert, server, client, self };
}
const C = isBun ? certs() : null!;
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

/** Records what one stream receives; sends a payload with backpressure; echoes if asked. */
class Peer implements ConnHandler {
  chunks: Uint8Array[] = [];
  bytes = 0;
  ended = false;
  closed = false;
  err: Error | undefined = undefined;
  drains = 0;
  /** Writes refused, and the most bytes `writableLength` showed after a write. */
  refusals = 0;
  maxHeld = 0;
  private toSend: Uint8Array | null = null;
  private sendOff = 0;
  private endAfter = false;
  constructor(readonly echo = false, readonly keep = true) {}

  onData(c: Conn, chunk: Uint8Array): void {
    this.bytes += chunk.byteLength;
    if (this.keep) this.chunks.push(chunk);
    if (this.echo && !c.write(chunk)) c.pause();
  }
  onDrain(c: Conn): void {
    this.drains++;
    if (this.echo) c.resume();
    this.pump(c);
  }
  onEnd(c: Conn): void {
    this.ended = true;
    if (this.echo) c.end();
  }
  onClose(_c: Conn, err?: Error): void {
    this.closed = true;
    this.err = err;
  }
  /** Writes `data` in 64 KiB pieces, waiting for onDrain whenever write says so, then FIN if `end`. */
  send(c: Conn, data: Uint8Array, end = true): void {
    this.toSend = data;
    this.sendOff = 0;
    this.endAfter = end;
    this.pump(c);
  }
  private pump(c: Conn): void {
    const d = this.toSend;
    if (d === null) return;
    while (this.sendOff < d.byteLength) {
      const piece = d.subarray(this.sendOff, Math.min(this.sendOff + 65536, d.byteLength));
      this.sendOff += piece.byteLength;
      const ok = c.write(piece);
      this.maxHeld = Math.max(this.maxHeld, c.writableLength);
      if (!ok) {
        this.refusals++;
        return;
      }
    }
    this.toSend = null;
    if (this.endAfter) c.end();
  }
  all(): Uint8Array {
    const out = new Uint8Array(this.bytes);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.byteLength;
    }
    return out;
  }
  text(): string {
    return new TextDecoder().decode(this.all());
  }
}

/** A session handler that records everything and hands incoming streams to `onStream`. */
class SessionLog implements QuicSessionHandler {
  streams: QuicStream[] = [];
  peers: Peer[] = [];
  datagrams: Uint8Array[] = [];
  closeInfo: QuicCloseInfo | null = null;
  constructor(private readonly onStreamFn: (s: QuicSession, st: QuicStream, log: SessionLog) => void = echoStream) {}
  onStream(s: QuicSession, st: QuicStream): void {
    this.streams.push(st);
    this.onStreamFn(s, st, this);
  }
  onDatagram(s: QuicSession, d: Uint8Array): void {
    this.datagrams.push(d);
    if (this.onStreamFn === echoStream) s.sendDatagram(d);
  }
  onClose(_s: QuicSession, info: QuicCloseInfo): void {
    this.closeInfo = info;
  }
}
function echoStream(_s: QuicSession, st: QuicStream, log: SessionLog): void {
  const p = new Peer(true, false);
  log.peers.push(p);
  st.setHandler(p);
}

interface Server {
  listener: QuicListener;
  sessions: QuicSession[];
  logs: SessionLog[];
}
async function server(over: Partial<QuicListenOptions> = {}, onStream?: (s: QuicSession, st: QuicStream, log: SessionLog) => void): Promise<Server> {
  const sessions: QuicSession[] = [];
  const logs: SessionLog[] = [];
  const listener = await quic!.listen({
    hostname: "127.0.0.1",
    port: 0,
    cert: C.server.cert,
    key: C.server.key,
    alpn: [ALPN],
    onSession(s) {
      const log = new SessionLog(onStream);
      s.setHandler(log);
      sessions.push(s);
      logs.push(log);
    },
    ...over,
  });
  return { listener, sessions, logs };
}
async function dial(port: number, over: Partial<Parameters<NonNullable<typeof quic>["connect"]>[0]> = {}): Promise<{ s: QuicSession; log: SessionLog }> {
  const s = await quic!.connect({ hostname: "127.0.0.1", port, servername: "localhost", ca: C.ca, alpn: ALPN, ...over });
  const log = new SessionLog(() => {});
  s.setHandler(log);
  return { s, log };
}
function payload(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}
async function echoOver(s: QuicSession, data: Uint8Array): Promise<Peer> {
  const p = new Peer();
  const st = s.openStream(p);
  p.send(st, data);
  await waitFor(() => p.closed || null, 30_000, `stream ${st.id} closed (got ${p.bytes}/${data.byteLength})`);
  return p;
}

describe.skipIf(!isBun)("Bun QUIC adapter", () => {
  test("importing the runtime does not load node:quic", () => {
    const r = Bun.spawnSync([process.execPath, "-e", `await import(${JSON.stringify(join(import.meta.dir, "../src/runtime/mod.ts"))}); console.log("ok")`], { stderr: "pipe" });
    expect(r.stdout.toString().trim()).toBe("ok");
    expect(r.stderr.toString()).not.toContain("quic");
  });

  test("1 stream and 100 concurrent streams echo SHA-256-equal payloads", async () => {
    const srv = await server();
    const { s } = await dial(srv.listener.port);
    expect(s.tls().alpn).toBe(ALPN);
    expect(s.remotePort).toBe(srv.listener.port);
    const one = payload(1 << 20, 1);
    const p1 = await echoOver(s, one);
    expect(p1.err).toBeUndefined();
    expect(p1.ended).toBe(true);
    expect(sha(p1.all())).toBe(sha(one));
    const inputs = Array.from({ length: 100 }, (_, i) => payload(256 * 1024, i + 2));
    const peers = await Promise.all(inputs.map((d) => echoOver(s, d)));
    peers.forEach((p, i) => {
      expect(p.err).toBeUndefined();
      expect(sha(p.all())).toBe(sha(inputs[i]!));
    });
    s.close(0, "done");
    srv.listener.close();
  }, 60_000);

  test("half-close both ways", async () => {
    // Server replies only after the client's FIN, then ends; then the reverse.
    const srv = await server({}, (_s, st, log) => {
      const p = new Peer(false, true);
      log.peers.push(p);
      st.setHandler({
        onData: (c, d) => p.onData(c, d),
        onDrain: (c) => p.onDrain(c),
        onEnd: (c) => {
          p.onEnd(c);
          p.send(c, new TextEncoder().encode(p.text() === "first" ? "after your FIN" : "?"));
        },
        onClose: (c, e) => p.onClose(c, e),
      });
    });
    const { s } = await dial(srv.listener.port);
    const a = new Peer();
    const sa = s.openStream(a);
    a.send(sa, new TextEncoder().encode("first"));
    await waitFor(() => a.closed || null, 10_000, "client-FIN-first stream closed");
    expect(a.err).toBeUndefined();
    expect(a.ended).toBe(true);
    expect(a.text()).toBe("after your FIN");

    // Server FIN first: the server ends at once; the client still sends afterwards, the server still reads.
    const srv2 = await server({}, (_s, st, log) => {
      const p = new Peer(false, true);
      log.peers.push(p);
      st.setHandler(p);
      p.send(st, new TextEncoder().encode("server done"));
    });
    const { s: s2 } = await dial(srv2.listener.port);
    const b = new Peer();
    const sb = s2.openStream(b);
    sb.write(new TextEncoder().encode("hello"));
    await waitFor(() => b.ended || null, 10_000, "server FIN seen by the client");
    expect(b.text()).toBe("server done");
    b.send(sb, new TextEncoder().encode(" and more after your FIN"));
    await waitFor(() => b.closed || null, 10_000, "server-FIN-first stream closed");
    await waitFor(() => srv2.logs[0]?.peers[0]?.closed || null, 10_000, "server side closed");
    expect(b.err).toBeUndefined();
    expect(srv2.logs[0]!.peers[0]!.text()).toBe("hello and more after your FIN");
    expect(srv2.logs[0]!.peers[0]!.err).toBeUndefined();
    s.close(0, "");
    s2.close(0, "");
    srv.listener.close();
    srv2.listener.close();
  }, 30_000);

  test("a stream reset carries its code to the peer, both directions", async () => {
    const srv = await server({}, (_s, st, log) => {
      const p = new Peer(false, true);
      log.peers.push(p);
      st.setHandler(p);
      // The second stream is reset by the server once it has the first bytes.
      if (log.streams.length === 2) st.write(new TextEncoder().encode("partial")), setTimeout(() => st.reset(43), 20);
    });
    const { s } = await dial(srv.listener.port);
    const a = new Peer();
    const sa = s.openStream(a);
    sa.write(new TextEncoder().encode("some bytes"));
    await waitFor(() => srv.logs[0]?.peers[0]?.bytes || null, 10_000, "server got bytes");
    sa.reset(42);
    const sp = srv.logs[0]!.peers[0]!;
    await waitFor(() => sp.closed || null, 10_000, "server stream closed by the reset");
    expect(sp.err).toBeInstanceOf(ProxyError);
    expect((sp.err as ProxyError).code).toBe("DOWNSTREAM_RESET");
    expect(srv.logs[0]!.streams[0]!.resetCode).toBe(42);
    await waitFor(() => a.closed || null, 10_000, "client stream closed");
    expect(a.err).toBeUndefined();

    const b = new Peer();
    const sb = s.openStream(b);
    sb.write(new TextEncoder().encode("x"));
    await waitFor(() => b.closed || null, 10_000, "client stream reset by the server");
    expect(b.text()).toBe("partial");
    expect((b.err as ProxyError).code).toBe("UPSTREAM_RESET");
    expect(sb.resetCode).toBe(43);
    expect(b.err!.message).toContain("43");
    s.close(0, "");
    srv.listener.close();
  }, 30_000);

  test("connection close code and reason reach the peer; its streams are cut", async () => {
    const srv = await server();
    const { s, log } = await dial(srv.listener.port);
    const a = new Peer();
    const sa = s.openStream(a);
    sa.write(new Uint8Array(10));
    await waitFor(() => srv.logs[0]?.peers[0]?.bytes === undefined ? null : srv.sessions[0], 10_000, "server has the stream");
    srv.sessions[0]!.close(4660, "going away");
    await waitFor(() => log.closeInfo, 10_000, "client session closed");
    expect(log.closeInfo).toEqual({ code: 4660, reason: "going away", kind: "app", local: false });
    expect(srv.logs[0]!.closeInfo).toEqual({ code: 4660, reason: "going away", kind: "app", local: true });
    await waitFor(() => a.closed || null, 5_000, "client stream closed");
    expect((a.err as ProxyError).code).toBe("UPSTREAM_RESET");
    expect(s.sendDatagram(new Uint8Array(1))).toBe(false);
    srv.listener.close();
  }, 20_000);

  test("idle timeout closes both ends with kind idle; keep-alive keeps it open", async () => {
    const srv = await server();
    const t0 = performance.now();
    const { s, log } = await dial(srv.listener.port, { idleTimeoutMs: 1000 });
    const { s: kept, log: keptLog } = await dial(srv.listener.port, { idleTimeoutMs: 1000, keepAliveMs: 300 });
    await waitFor(() => log.closeInfo, 10_000, "idle session closed");
    expect(log.closeInfo!.kind).toBe("idle");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(900);
    await waitFor(() => srv.logs[0]?.closeInfo, 10_000, "server side of the idle session closed");
    expect(srv.logs[0]!.closeInfo!.kind).toBe("idle");
    // Well past the idle timeout: the keep-alive session is still open and carries a stream.
    await Bun.sleep(Math.max(0, 2500 - (performance.now() - t0)));
    expect(keptLog.closeInfo).toBeNull();
    const p = await echoOver(kept, new TextEncoder().encode("still here"));
    expect(p.text()).toBe("still here");
    expect(s.maxDatagramSize).toBe(0);
    kept.close(0, "");
    srv.listener.close();
  }, 20_000);

  test("backpressure: a slow reader holds the writer (write false, onDrain later, bounded buffer)", async () => {
    // The reader pauses after every chunk and resumes 10 ms later.
    const srv = await server({}, (_s, st, log) => {
      const p = new Peer(false, false);
      log.peers.push(p);
      st.setHandler({
        onData(c, d) {
          p.onData(c, d);
          c.pause();
          setTimeout(() => c.resume(), 10);
        },
        onDrain: (c) => p.onDrain(c),
        onEnd: (c) => p.onEnd(c),
        onClose: (c, e) => p.onClose(c, e),
      });
    });
    const { s } = await dial(srv.listener.port);
    const w = new Peer();
    const st = s.openStream(w);
    const data = payload(4 * 1024 * 1024, 9);
    w.send(st, data);
    const sp = () => srv.logs[0]?.peers[0];
    await waitFor(() => sp()?.ended || null, 30_000, `slow reader got FIN (${sp()?.bytes} bytes)`);
    expect(sp()!.bytes).toBe(data.byteLength);
    expect(w.refusals).toBeGreaterThan(0);
    expect(w.drains).toBeGreaterThan(0);
    // node:quic's 64 KiB buffer, overshot by at most one 64 KiB write, plus the refused chunk we keep.
    expect(w.maxHeld).toBeLessThanOrEqual(3 * 64 * 1024);
    s.close(0, "");
    srv.listener.close();
  }, 40_000);

  test("known limit of Bun 1.4.5: a paused reader does not hold the sender", async () => {
    // node:quic extends the flow-control window as packets arrive, not as the application reads:
    // the receiving process buffers what a paused reader does not take (src/runtime/quic_bun_stream.ts).
    // When this starts failing, Bun got receive-side flow control: make it the assertion.
    const srv = await server({ streamWindow: 256 * 1024, connectionWindow: 1024 * 1024 }, (_s, st, log) => {
      const p = new Peer(false, false);
      log.peers.push(p);
      st.setHandler(p);
      st.pause();
    });
    const { s } = await dial(srv.listener.port);
    const w = new Peer();
    const st = s.openStream(w);
    const total = 8 * 1024 * 1024; // 32 stream windows
    w.send(st, new Uint8Array(total), false);
    await waitFor(() => (st.writableLength === 0 && w.drains > 0) || null, 20_000, "everything handed to QUIC");
    await waitFor(() => s.rttMs() > 0 || null, 1000, "rtt");
    expect(srv.logs[0]!.peers[0]!.bytes).toBeLessThanOrEqual(64 * 1024 * 2);
    s.close(0, "");
    srv.listener.close();
  }, 40_000);

  test("datagrams round-trip; oversize ones are refused", async () => {
    const srv = await server();
    const { s, log } = await dial(srv.listener.port);
    const max = s.maxDatagramSize;
    expect(max).toBeGreaterThan(1000);
    expect(s.sendDatagram(new Uint8Array(max + 1))).toBe(false);
    expect(s.sendDatagram(new Uint8Array(0))).toBe(false);
    const d = payload(max, 7);
    // Datagrams may be lost: resend until one comes back.
    await waitFor(() => {
      if (log.datagrams.length > 0) return true;
      s.sendDatagram(d);
      return null;
    }, 5_000, "a datagram echoed");
    expect(sha(log.datagrams[0]!)).toBe(sha(d));
    s.close(0, "");
    srv.listener.close();
  }, 20_000);

  test("ALPN mismatch is refused", async () => {
    const srv = await server();
    const err = await dial(srv.listener.port, { alpn: "other/1" }).then(() => null, (e) => e);
    expect(err).toBeInstanceOf(ProxyError);
    expect(err.code).toBe("UPSTREAM_CONNECT_REFUSED");
    expect(srv.sessions.length).toBe(0);
    srv.listener.close();
  }, 20_000);

  test("requestCert: the server reads the client certificate; a client without one is refused", async () => {
    const srv = await server({ ca: C.ca, requestCert: true });
    const { s } = await dial(srv.listener.port, { cert: C.client.cert, key: C.client.key });
    await echoOver(s, new TextEncoder().encode("hi"));
    const t = srv.sessions[0]!.tls();
    expect(t.authorized).toBe(true);
    expect(t.peerCertificate!.uris).toEqual(["spiffe://edgemux/agent-1"]);
    expect(t.peerCertificate!.subjectCN).toBe("agent-1");
    const fp = createHash("sha256").update(t.peerCertificate!.raw!).digest("hex");
    expect(fp).toBe(fingerprint(C.client.cert).replaceAll(":", "").toLowerCase());
    expect(s.tls().peerCertificate!.dnsNames).toEqual(["localhost"]);
    s.close(0, "");

    // TLS 1.3: the client may finish its handshake before the server refuses; either way it gets no service.
    const refused = await dial(srv.listener.port).then(
      async ({ s, log }) => {
        const p = new Peer();
        s.openStream(p).write(new Uint8Array(1));
        await waitFor(() => log.closeInfo, 10_000, "refused session closed");
        return log.closeInfo!.kind;
      },
      (e) => (e as ProxyError).code,
    );
    expect(["UPSTREAM_CONNECT_REFUSED", "transport"]).toContain(refused);
    expect(srv.sessions.length).toBe(1);
    srv.listener.close();
  }, 20_000);

  test("pinning accepts the pinned certificate and refuses another", async () => {
    const srv = await server({ cert: C.self.cert, key: C.self.key });
    // Not signed by our CA: refused without a pin.
    const unpinned = await dial(srv.listener.port).then(() => null, (e) => e);
    expect(unpinned?.code).toBe("UPSTREAM_CONNECT_REFUSED");
    const { s } = await dial(srv.listener.port, { pinSha256: fingerprint(C.self.cert) });
    expect(s.tls().authorized).toBe(true);
    expect(s.tls().peerCertificate!.subjectCN).toBe("self-pinned");
    expect((await echoOver(s, new TextEncoder().encode("pinned"))).text()).toBe("pinned");
    s.close(0, "");
    const wrong = await dial(srv.listener.port, { pinSha256: "00".repeat(32) }).then(() => null, (e) => e);
    expect(wrong).toBeInstanceOf(ProxyError);
    expect(wrong.message).toContain("pinned");
    // The server sees the client close with CRYPTO_ERROR bad_certificate.
    await waitFor(() => srv.logs.find((l) => l.closeInfo?.code === 0x12a) ?? null, 10_000, "server saw the pin refusal");
    srv.listener.close();
  }, 20_000);

  test("fd count returns to its start after many sessions and streams", async () => {
    const warm = await server();
    const { s: ws } = await dial(warm.listener.port);
    await echoOver(ws, new Uint8Array(10));
    ws.close(0, "");
    warm.listener.close();
    await Bun.sleep(100);
    const start = fdCount();
    const srv = await server();
    const clients: { s: QuicSession; log: SessionLog }[] = [];
    for (let i = 0; i < 20; i++) clients.push(await dial(srv.listener.port));
    await Promise.all(clients.flatMap(({ s }) => Array.from({ length: 5 }, (_, j) => echoOver(s, payload(4096, j)))));
    expect(fdCount()).toBeGreaterThan(start);
    for (const { s } of clients) s.close(0, "bye");
    await waitFor(() => clients.every(({ log }) => log.closeInfo) || null, 10_000, "clients closed");
    await waitFor(() => srv.logs.every((l) => l.closeInfo) || null, 10_000, "server sessions closed");
    srv.listener.close();
    await waitFor(() => fdCount() <= start || null, 10_000, `fd count back to ${start} (now ${fdCount()})`);
  }, 60_000);
});
