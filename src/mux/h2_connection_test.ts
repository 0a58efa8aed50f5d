/**
 * The HTTP/2 engine end to end over in-memory connections: one side a
 * server, the other a client, both our H2Connection. Flow control, pausing,
 * resets, GOAWAY and protocol errors, with no sockets and no sleeps.
 */
import { describe, expect, test } from "bun:test";
import { memoryPair, type MemoryConn } from "../runtime/memory.ts";
import type { Conn, ConnHandler } from "../runtime/types.ts";
import type { ProxyError } from "../errors/mod.ts";
import { encodeData, encodeHeaders, encodeHeadersFrames, encodeSettings, encodeWindowUpdate, H2Code, CLIENT_PREFACE, H2FrameDecoder, FrameType, readU32 } from "../proto/mod.ts";
import { CONN_WINDOW, H2Connection, type H2ConnectionOwner, STREAM_WINDOW } from "./h2_connection.ts";
import type { H2Stream } from "./h2_stream.ts";

class Owner implements H2ConnectionOwner {
  headers: { s: H2Stream; fields: [string, string][]; tooLarge: boolean; end: boolean }[] = [];
  closedStreams: H2Stream[] = [];
  closed: ProxyError | null | undefined = undefined;
  onHeaders: ((s: H2Stream, fields: [string, string][]) => void) | null = null;
  onStreamHeaders(_c: H2Connection, s: H2Stream, fields: [string, string][], tooLarge: boolean, end: boolean): void {
    this.headers.push({ s, fields, tooLarge, end });
    this.onHeaders?.(s, fields);
  }
  onStreamClosed(_c: H2Connection, s: H2Stream): void {
    this.closedStreams.push(s);
  }
  onConnectionClosed(_c: H2Connection, err: ProxyError | null): void {
    this.closed = err;
  }
}

/** Collects a stream's bytes and events. */
class Sink implements ConnHandler {
  bytes = 0;
  chunks: Uint8Array[] = [];
  ended = false;
  closed = false;
  closeErr: Error | undefined;
  drains = 0;
  constructor(private readonly keep = true) {}
  onData(_c: Conn, d: Uint8Array): void {
    this.bytes += d.length;
    if (this.keep) this.chunks.push(d.slice());
  }
  onDrain(): void {
    this.drains++;
  }
  onEnd(): void {
    this.ended = true;
  }
  onClose(_c: Conn, err?: Error): void {
    this.closed = true;
    this.closeErr = err;
  }
  text(): string {
    return new TextDecoder().decode(Uint8Array.from(this.chunks.flatMap((c) => Array.from(c))));
  }
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

function pair(maxStreams = 100, maxHeaderListBytes = 16384) {
  const [a, b] = memoryPair({ highWater: 256 * 1024, maxChunk: 16 * 1024 });
  const so = new Owner();
  const co = new Owner();
  const server = new H2Connection(a, so, { role: "server", maxConcurrentStreams: maxStreams, maxHeaderListBytes });
  const client = new H2Connection(b, co, { role: "client", maxConcurrentStreams: 100, maxHeaderListBytes });
  server.start();
  client.start();
  return { a, b, server, client, so, co };
}

const CONNECT = (authority: string): [string, string][] => [[":method", "CONNECT"], [":authority", authority]];
const enc = new TextEncoder();

describe("HTTP/2 CONNECT over memory connections", () => {
  test("a request, a response, data both ways, half-close both ways", async () => {
    const { server, client, so, co } = pair();
    const cs = client.openStream(CONNECT("db.internal:5432"));
    const cSink = new Sink();
    cs.setHandler(cSink);
    await until(() => so.headers.length === 1, "request headers");
    expect(so.headers[0]!.fields).toEqual(CONNECT("db.internal:5432"));
    const ss = so.headers[0]!.s;
    const sSink = new Sink();
    ss.setHandler(sSink);
    server.respond(ss, [[":status", "200"]], false);
    await until(() => co.headers.length === 1, "response");
    expect(co.headers[0]!.fields).toEqual([[":status", "200"]]);
    expect(cs.write(enc.encode("ping"))).toBe(true);
    cs.end();
    await until(() => sSink.ended, "server sees END_STREAM");
    expect(sSink.text()).toBe("ping");
    ss.write(enc.encode("pong"));
    ss.end();
    await until(() => cSink.closed && sSink.closed, "both closed");
    expect(cSink.text()).toBe("pong");
    expect(cSink.closeErr).toBeUndefined();
    expect([server.activeStreams, client.activeStreams]).toEqual([0, 0]);
  });

  test("bulk beyond every window, with a reader that pauses: nothing lost, nothing over a window", async () => {
    const { server, client, so, co } = pair();
    const cs = client.openStream(CONNECT("bulk:1"));
    await until(() => so.headers.length === 1, "request");
    const ss = so.headers[0]!.s;
    let received = 0;
    let maxInbox = 0;
    let sum = 0;
    ss.setHandler({
      onData(_c, d) {
        received += d.length;
        for (let i = 0; i < d.length; i++) sum = (Math.imul(sum, 31) + d[i]!) >>> 0;
        // Pause now and then, as a relay does when its upstream is full.
        if (received % (3 * 1024 * 1024) < d.length) {
          ss.pause();
          setTimeout(() => ss.resume(), 2);
        }
        maxInbox = Math.max(maxInbox, ss.inboxBytes);
      },
      onDrain() {},
      onEnd() {},
      onClose() {},
    });
    server.respond(ss, [[":status", "200"]], false);
    await until(() => co.headers.length === 1, "response");
    const total = 3 * CONN_WINDOW + 12345;
    const chunk = new Uint8Array(100_000);
    for (let i = 0; i < chunk.length; i++) chunk[i] = i & 0xff;
    let sent = 0;
    let want = 0;
    await new Promise<void>((resolve) => {
      const pump = () => {
        while (sent < total) {
          const n = Math.min(chunk.length, total - sent);
          const part = chunk.subarray(0, n);
          for (let i = 0; i < n; i++) want = (Math.imul(want, 31) + part[i]!) >>> 0;
          sent += n;
          if (!cs.write(part)) return; // onDrain continues
        }
        cs.end();
        resolve();
      };
      cs.setHandler({ onData() {}, onDrain: pump, onEnd() {}, onClose() {} });
      pump();
    });
    await until(() => received === total, `all ${total} bytes (got ${received})`, 20_000);
    expect(sum).toBe(want);
    expect(maxInbox).toBeLessThanOrEqual(STREAM_WINDOW);
  }, 30_000);

  test("many concurrent streams; a reset stream does not disturb the others", async () => {
    const { server, client, so } = pair();
    so.onHeaders = (s) => {
      // Echo server.
      s.setHandler({
        onData(_c, d) {
          s.write(d);
        },
        onDrain() {},
        onEnd() {
          s.end();
        },
        onClose() {},
      });
      server.respond(s, [[":status", "200"]], false);
    };
    const sinks: Sink[] = [];
    const streams: H2Stream[] = [];
    for (let i = 0; i < 50; i++) {
      const cs = client.openStream(CONNECT(`s${i}:1`));
      const sink = new Sink();
      cs.setHandler(sink);
      cs.write(enc.encode(`hello ${i}`));
      streams.push(cs);
      sinks.push(sink);
    }
    streams[7]!.close(); // RST_STREAM CANCEL
    for (let i = 0; i < 50; i++) if (i !== 7) streams[i]!.end();
    await until(() => sinks.every((s) => s.closed), "all streams closed");
    for (let i = 0; i < 50; i++) {
      if (i === 7) continue;
      expect(sinks[i]!.text()).toBe(`hello ${i}`);
      expect(sinks[i]!.closeErr).toBeUndefined();
    }
    await until(() => server.activeStreams === 0, "server streams gone");
  });

  test("streams over the limit are refused with REFUSED_STREAM", async () => {
    const { client, so } = pair(2);
    const sinks: Sink[] = [];
    for (let i = 0; i < 3; i++) {
      const s = client.openStream(CONNECT(`x:${i + 1}`));
      const sink = new Sink();
      s.setHandler(sink);
      sinks.push(sink);
    }
    await until(() => sinks[2]!.closed, "third stream refused");
    expect(String(sinks[2]!.closeErr)).toContain("code 7");
    expect(so.headers).toHaveLength(2);
  });

  test("GOAWAY: no new streams, open ones finish, then the connection ends", async () => {
    const { server, client, so, co } = pair();
    const cs = client.openStream(CONNECT("a:1"));
    const sink = new Sink();
    cs.setHandler(sink);
    await until(() => so.headers.length === 1, "request");
    const ss = so.headers[0]!.s;
    server.respond(ss, [[":status", "200"]], false);
    server.goaway();
    await until(() => client.goawayReceived, "client sees GOAWAY");
    expect(client.canOpen).toBe(false);
    ss.write(enc.encode("last words"));
    ss.end();
    cs.end();
    await until(() => so.closed !== undefined && co.closed !== undefined, "both connections closed");
    expect(sink.text()).toBe("last words");
    expect(so.closed).toBeNull();
  });

  test("the header list bound flags a request, and the connection lives on", async () => {
    const { client, so } = pair(100, 1024);
    client.openStream([...CONNECT("a:1"), ["x-big", "v".repeat(2000)]]);
    client.openStream(CONNECT("b:2"));
    await until(() => so.headers.length === 2, "two requests");
    expect(so.headers[0]!.tooLarge).toBe(true);
    expect(so.headers[1]!.tooLarge).toBe(false);
    expect(so.headers[1]!.fields).toEqual(CONNECT("b:2"));
  });
});

describe("protocol errors from a raw peer", () => {
  /** A server H2Connection and a raw client end we write frames into. */
  async function rawServer() {
    const [a, b] = memoryPair();
    const so = new Owner();
    const server = new H2Connection(a, so, { role: "server", maxConcurrentStreams: 10, maxHeaderListBytes: 16384 });
    server.start();
    const got: { type: number; streamId: number; payload: Uint8Array }[] = [];
    let ended = false;
    const dec = new H2FrameDecoder({ maxFrameSize: 1 << 20, expectPreface: false });
    b.setHandler({
      onData(_c, d) {
        dec.push(d);
        for (let f = dec.next(); f !== null; f = dec.next()) got.push({ type: f.type, streamId: f.streamId, payload: f.payload.slice() });
      },
      onDrain() {},
      onEnd() {
        ended = true;
      },
      onClose() {
        ended = true;
      },
    });
    b.write(CLIENT_PREFACE);
    b.write(encodeSettings([]));
    return { server, so, raw: b as MemoryConn, got, isEnded: () => ended };
  }
  const goawayCode = (got: { type: number; payload: Uint8Array }[]) => {
    const g = got.find((f) => f.type === FrameType.GOAWAY);
    return g ? readU32(g.payload, 4) : null;
  };

  test.each([
    ["DATA on an idle stream", () => encodeData(1, enc.encode("x"), false, 16384), H2Code.PROTOCOL_ERROR],
    ["an even (server) stream id", () => encodeHeadersFrames(2, encodeHeaders(CONNECT("a:1")), false, 16384), H2Code.PROTOCOL_ERROR],
    ["WINDOW_UPDATE of 0 on the connection", () => encodeWindowUpdate(0, 0), H2Code.PROTOCOL_ERROR],
    ["a window past 2^31-1", () => encodeWindowUpdate(0, 0x7fffffff), H2Code.FLOW_CONTROL_ERROR],
    ["a bad HPACK block", () => encodeHeadersFrames(1, Uint8Array.of(0x80), false, 16384), H2Code.COMPRESSION_ERROR],
    ["a CONTINUATION out of nowhere", () => Uint8Array.of(0, 0, 1, 9, 4, 0, 0, 0, 1, 0x82), H2Code.PROTOCOL_ERROR],
    ["a frame bigger than our max frame size", () => { const f = new Uint8Array(9 + 70000); f.set([0x01, 0x11, 0x70, 6, 0, 0, 0, 0, 0]); return f; }, H2Code.FRAME_SIZE_ERROR],
  ])("%s → GOAWAY", async (_name, frame, code) => {
    const { raw, got, so } = await rawServer();
    raw.write(frame());
    await until(() => goawayCode(got) !== null && so.closed !== undefined, "GOAWAY");
    expect(goawayCode(got)).toBe(code);
  });

  test("a PING flood from a peer that does not read is cut off (bounded write queue)", async () => {
    const { raw, so, server } = await rawServer();
    await until(() => server.settled, "settings");
    raw.pause(); // never read our answers
    const ping = Uint8Array.of(0, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8);
    const burst = new Uint8Array(ping.length * 4096);
    for (let i = 0; i < 4096; i++) burst.set(ping, i * ping.length);
    for (let k = 0; k < 80 && so.closed === undefined; k++) {
      raw.write(burst);
      await new Promise((r) => setTimeout(r, 0));
    }
    await until(() => so.closed !== undefined, "connection cut off");
    expect((so.closed as { h2Code?: number })?.h2Code).toBe(H2Code.ENHANCE_YOUR_CALM);
  });

  test("a stream that overruns its window is reset, the connection lives", async () => {
    const { raw, got, so } = await rawServer();
    raw.write(encodeHeadersFrames(1, encodeHeaders(CONNECT("a:1")), false, 16384));
    await until(() => so.headers.length === 1, "request");
    so.headers[0]!.s.pause(); // a reader that never reads: nothing is re-granted
    // The peer ignores our window (we advertised STREAM_WINDOW): send more.
    const big = new Uint8Array(60000);
    for (let sent = 0; sent <= STREAM_WINDOW; sent += big.length) raw.write(encodeData(1, big, false, 65536));
    await until(() => got.some((f) => f.type === FrameType.RST_STREAM && f.streamId === 1), "RST_STREAM");
    const rst = got.find((f) => f.type === FrameType.RST_STREAM)!;
    expect(readU32(rst.payload, 0)).toBe(H2Code.FLOW_CONTROL_ERROR);
    expect(so.closed).toBeUndefined();
  });
});
