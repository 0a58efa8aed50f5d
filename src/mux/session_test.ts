import { describe, expect, test } from "bun:test";
import { ProxyError } from "../errors/mod.ts";
import { SmuxCmd } from "../proto/smux.ts";
import { memoryPair } from "../runtime/mod.ts";
import { MuxSession } from "./session.ts";
import type { MuxStream } from "./stream.ts";
import { concat, echo, frame, pump, rawPeer, Recorder, sessionPair, turns, waitFor } from "./test_helpers.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

describe("mux session: wire bytes", () => {
  test("open + write + end leaves in one batch: SYN, PSH, FIN (v2, client ids start at 3)", async () => {
    const { session, frames, writes } = rawPeer(2, { client: true });
    const s = session.openStream();
    expect(s.id).toBe(3);
    s.write(enc("hi"));
    s.end();
    await waitFor(() => frames.length === 3, "three frames");
    expect(writes.length).toBe(1);
    expect(Array.from(writes[0]!)).toEqual([2, 0, 0, 0, 3, 0, 0, 0, 2, 2, 2, 0, 3, 0, 0, 0, 0x68, 0x69, 2, 1, 0, 0, 3, 0, 0, 0]);
    expect(session.openStream().id).toBe(5);
  });

  test("server ids are even from 2; v1 frames carry version 1", async () => {
    const { session, frames } = rawPeer(1, { client: false });
    const s = session.openStream();
    expect(s.id).toBe(2);
    expect(session.openStream().id).toBe(4);
    await waitFor(() => frames.length === 2, "two SYNs");
    expect(frames).toEqual([
      { cmd: SmuxCmd.SYN, streamId: 2, payload: [] },
      { cmd: SmuxCmd.SYN, streamId: 4, payload: [] },
    ]);
  });

  test("v2 receiver sends UPD(consumed, maxStreamBuffer) on its first read and after each half window", async () => {
    const { raw, session, frames } = rawPeer(2, { client: false, maxStreamBuffer: 1000, maxReceiveBuffer: 10_000 });
    const got = new Recorder();
    session.onStream = (s) => s.setHandler(got);
    raw.write(concat([frame(2, SmuxCmd.SYN, 3), frame(2, SmuxCmd.PSH, 3, new Uint8Array(10))]));
    await waitFor(() => frames.length === 1, "first UPD");
    // consumed 10, window 1000 (little endian)
    expect(frames[0]).toEqual({ cmd: SmuxCmd.UPD, streamId: 3, payload: [10, 0, 0, 0, 0xe8, 3, 0, 0] });
    raw.write(frame(2, SmuxCmd.PSH, 3, new Uint8Array(499)));
    await turns(3);
    expect(frames.length).toBe(1); // 499 < half window since the last UPD
    raw.write(frame(2, SmuxCmd.PSH, 3, new Uint8Array(1)));
    await waitFor(() => frames.length === 2, "second UPD");
    expect(frames[1]).toEqual({ cmd: SmuxCmd.UPD, streamId: 3, payload: [0xfe, 1, 0, 0, 0xe8, 3, 0, 0] }); // 510 = 0x1fe
    expect(got.bytes).toBe(510);
  });

  test("v1 receiver never sends UPD and ignores one it receives, like Go", async () => {
    const { raw, session, frames } = rawPeer(1, { client: false });
    const got = new Recorder();
    session.onStream = (s) => s.setHandler(got);
    raw.write(concat([frame(1, SmuxCmd.SYN, 3), frame(1, SmuxCmd.PSH, 3, enc("abc")), frame(1, SmuxCmd.UPD, 3, new Uint8Array(8))]));
    await waitFor(() => got.bytes === 3, "data");
    await turns(3);
    expect(frames.length).toBe(0);
    expect(session.closed).toBe(false);
  });

  test("keepalive: NOP on stream 0 every interval, driven by tick()", async () => {
    const { session, frames } = rawPeer(2, { client: true, keepAliveIntervalMs: 10_000, keepAliveTimeoutMs: 30_000 });
    session.tick(1000);
    session.tick(10_999);
    await turns(2);
    expect(frames.length).toBe(0);
    session.tick(11_000);
    await waitFor(() => frames.length === 1, "NOP");
    expect(frames[0]).toEqual({ cmd: SmuxCmd.NOP, streamId: 0, payload: [] });
  });
});

describe("mux session: streams end to end", () => {
  for (const version of [1, 2] as const) {
    test(`v${version}: echo with half-close, both sides forget the stream`, async () => {
      const { client, server } = sessionPair(version);
      const accepted: MuxStream[] = [];
      server.onStream = (s) => {
        accepted.push(s);
        echo(s);
      };
      const s = client.openStream();
      const got = new Recorder();
      s.setHandler(got);
      s.write(enc("hello "));
      s.write(enc("world"));
      s.end();
      await waitFor(() => got.closed, "client stream closed");
      expect(got.text()).toBe("hello world");
      expect(got.ended).toBe(true);
      expect(got.closeErr).toBeUndefined();
      expect(accepted.length).toBe(1);
      expect(accepted[0]!.id).toBe(3);
      await waitFor(() => server.numStreams === 0, "server forgets");
      expect(client.numStreams).toBe(0);
      expect(s.write(enc("late"))).toBe(false);
    });

    test(`v${version}: 4 MiB with tiny chunks on the wire reassembles exactly, many streams at once`, async () => {
      const { client, server } = sessionPair(version, {}, {}, { maxChunk: 1000, highWater: 16 * 1024 });
      server.onStream = echo;
      const results = await Promise.all(
        [0, 1, 2, 3].map(async (i) => {
          const data = randomBytes(1024 * 1024 + i * 777, i + 1);
          const s = client.openStream();
          const got = new Recorder();
          s.setHandler(got);
          await pump(s, data, 50_000, got);
          s.end();
          await waitFor(() => got.closed, `stream ${i} closed`, 20_000);
          return Buffer.compare(got.data(), data) === 0;
        }),
      );
      expect(results).toEqual([true, true, true, true]);
      expect(client.stats().framesIn).toBeGreaterThan(100);
    });
  }

  test("half-close: the side that sent FIN still receives", async () => {
    const { client, server } = sessionPair(2);
    let srv: MuxStream | null = null;
    const srvGot = new Recorder();
    server.onStream = (s) => {
      srv = s;
      s.setHandler(srvGot);
    };
    const s = client.openStream();
    const got = new Recorder();
    s.setHandler(got);
    s.write(enc("request"));
    s.end();
    await waitFor(() => srvGot.ended, "server sees FIN");
    expect(srvGot.text()).toBe("request");
    expect(srvGot.closed).toBe(false);
    srv!.write(enc("reply 1 "));
    srv!.write(enc("reply 2"));
    await waitFor(() => got.bytes === 15, "client reads after its own FIN");
    expect(got.closed).toBe(false);
    srv!.end();
    await waitFor(() => got.closed && srvGot.closed, "both closed");
    expect(got.text()).toBe("reply 1 reply 2");
  });

  test("v2 half-close: after the peer's FIN, a 1 MiB reply still flows through window updates", async () => {
    const { client, server } = sessionPair(2);
    const reply = randomBytes(1024 * 1024, 3);
    server.onStream = (s) => {
      const rec = new Recorder();
      rec.onChunk = () => {};
      s.setHandler(rec);
      const orig = rec.onEnd.bind(rec);
      rec.onEnd = () => {
        orig();
        void pump(s, reply, 60_000, rec).then(() => s.end());
      };
    };
    const s = client.openStream();
    const got = new Recorder();
    s.setHandler(got);
    s.write(enc("send me a megabyte"));
    s.end();
    await waitFor(() => got.closed, "reply complete", 10_000);
    expect(got.closeErr).toBeUndefined();
    expect(Buffer.compare(got.data(), reply)).toBe(0);
  });

  test("a stream whose peer sent FIN and never opens its window is closed after keepAliveTimeoutMs", async () => {
    const p = rawPeer(2, { client: true, keepAliveIntervalMs: 1000, keepAliveTimeoutMs: 5000 });
    const s = p.session.openStream();
    const rec = new Recorder();
    s.setHandler(rec);
    // More than Go's initial window of 256 KiB: the rest waits for an UPD that never comes.
    s.write(new Uint8Array(200_000));
    s.write(new Uint8Array(200_000));
    await waitFor(() => p.frames.filter((f) => f.cmd === SmuxCmd.PSH).reduce((n, f) => n + f.payload.length, 0) === 262144, "window used");
    p.raw.write(frame(2, SmuxCmd.FIN, 3));
    await waitFor(() => rec.ended, "FIN delivered");
    // The first tick after the FIN starts the clock (t = 0); the stream may wait until t = 5000.
    for (let t = 0; t < 5000; t += 1000) {
      p.raw.write(frame(2, SmuxCmd.NOP, 0)); // the session itself stays alive
      await turns(2);
      p.session.tick(t);
      expect(rec.closed).toBe(false);
    }
    p.raw.write(frame(2, SmuxCmd.NOP, 0));
    await turns(2);
    p.session.tick(5000);
    expect(rec.closed).toBe(true);
    expect(rec.closeErr?.message).toMatch(/opened no window for 5000 ms; 137856 bytes undelivered/);
    expect(p.session.closed).toBe(false);
    await waitFor(() => p.frames.some((f) => f.cmd === SmuxCmd.FIN), "our FIN");
  });

  test("close() drops queued bytes, sends FIN, later data for the id is discarded", async () => {
    const { client, server } = sessionPair(2);
    const srvGot = new Recorder();
    let srv: MuxStream | null = null;
    server.onStream = (s) => {
      srv = s;
      s.setHandler(srvGot);
    };
    const s = client.openStream();
    const got = new Recorder();
    s.setHandler(got);
    s.write(enc("x"));
    await waitFor(() => srvGot.bytes === 1, "first byte");
    s.write(enc("never sent"));
    s.close();
    expect(got.closed).toBe(true);
    expect(client.numStreams).toBe(0);
    await waitFor(() => srvGot.ended, "server sees FIN");
    expect(srvGot.bytes).toBe(1);
    srv!.write(enc("to nobody"));
    await waitFor(() => client.stats().bytesDiscarded === 9, "discarded on the client");
    expect(got.bytes).toBe(0);
  });

  test("a consumer paused in onStream gets the bytes after resume()", async () => {
    const { client, server } = sessionPair(2);
    const got = new Recorder();
    let srv: MuxStream | null = null;
    server.onStream = (s) => {
      srv = s;
      s.pause();
      s.setHandler(got);
    };
    const s = client.openStream();
    s.write(enc("early"));
    s.end();
    await waitFor(() => srv !== null && srv.bufferedBytes === 5, "buffered");
    await turns(2);
    expect(got.bytes).toBe(0);
    expect(got.ended).toBe(false);
    srv!.resume();
    await waitFor(() => got.ended, "delivered after resume");
    expect(got.text()).toBe("early");
  });
});

describe("mux session: flow control and backpressure", () => {
  test("v2: a paused consumer holds at most the initial window; the sender stops, then resumes", async () => {
    const { client, server } = sessionPair(2);
    let srv: MuxStream | null = null;
    const srvGot = new Recorder();
    server.onStream = (s) => {
      srv = s;
      s.pause();
      s.setHandler(srvGot);
    };
    const s = client.openStream();
    const cliRec = new Recorder();
    s.setHandler(cliRec);
    const data = randomBytes(2 * 1024 * 1024, 7);
    const done = pump(s, data, 32 * 1024, cliRec);
    // No read means no UPD: the peer may send 262144 bytes (Go's initialPeerWindow) and no more.
    await waitFor(() => srv !== null && srv.bufferedBytes === 262144, "window filled");
    await turns(10);
    expect(srv!.bufferedBytes).toBe(262144);
    expect(server.stats().recvBuffered).toBe(262144);
    expect(s.writableLength).toBeGreaterThan(0);
    srv!.resume();
    await done;
    s.end();
    await waitFor(() => srvGot.ended, "all data", 10_000);
    expect(Buffer.compare(srvGot.data(), data)).toBe(0);
    expect(cliRec.drains).toBeGreaterThan(0);
  });

  test("v1: a paused consumer fills the session receive buffer, then the session stops reading", async () => {
    const { client, server } = sessionPair(1, {}, { maxReceiveBuffer: 128 * 1024, maxStreamBuffer: 64 * 1024 });
    let srv: MuxStream | null = null;
    const srvGot = new Recorder();
    server.onStream = (s) => {
      srv = s;
      s.pause();
      s.setHandler(srvGot);
    };
    const s = client.openStream();
    const cliRec = new Recorder();
    s.setHandler(cliRec);
    const data = randomBytes(1024 * 1024, 9);
    const done = pump(s, data, 16 * 1024, cliRec);
    await waitFor(() => server.stats().readPaused, "read paused");
    await turns(10);
    // Bounded: the limit plus what was already in flight (one delivery of the memory conn).
    expect(srv!.bufferedBytes).toBeGreaterThanOrEqual(128 * 1024);
    expect(srv!.bufferedBytes).toBeLessThan(128 * 1024 + 128 * 1024);
    srv!.resume();
    await done;
    s.end();
    await waitFor(() => srvGot.ended, "all data", 10_000);
    expect(Buffer.compare(srvGot.data(), data)).toBe(0);
    expect(server.stats().readPaused).toBe(false);
  });

  test("write() returns false at the stream high-water mark and onDrain follows", async () => {
    const { client, server } = sessionPair(2, { streamHighWater: 10_000, maxStreamPending: 100_000 });
    server.onStream = (s) => s.setHandler(new Recorder());
    const s = client.openStream();
    const rec = new Recorder();
    s.setHandler(rec);
    expect(s.write(new Uint8Array(9_999))).toBe(true);
    expect(s.write(new Uint8Array(1))).toBe(false);
    expect(s.writableLength).toBe(10_000);
    await waitFor(() => rec.drains === 1, "drain");
    expect(s.writableLength).toBe(0);
  });

  test("a writer that ignores backpressure past maxStreamPending gets its stream closed with an error", async () => {
    const { client, server } = sessionPair(2, { streamHighWater: 1000, maxStreamPending: 4000 });
    server.onStream = (s) => s.setHandler(new Recorder());
    const s = client.openStream();
    const rec = new Recorder();
    s.setHandler(rec);
    s.write(new Uint8Array(3000));
    expect(s.write(new Uint8Array(1001))).toBe(false);
    expect(rec.closed).toBe(true);
    expect((rec.closeErr as ProxyError).code).toBe("INTERNAL");
    expect(rec.closeErr!.message).toMatch(/maxStreamPending 4000/);
    expect(client.closed).toBe(false);
  });
});

describe("mux session: limits and errors", () => {
  test("maxStreams: a SYN past the limit is refused with FIN, the session lives on", async () => {
    const { client, server } = sessionPair(2, {}, { maxStreams: 2 });
    server.onStream = echo;
    const recs = [0, 1, 2].map(() => new Recorder());
    const streams = recs.map((r) => {
      const s = client.openStream();
      s.setHandler(r);
      return s;
    });
    await waitFor(() => recs[2]!.ended, "third stream refused");
    expect(server.stats().streamsRefused).toBe(1);
    expect(server.numStreams).toBe(2);
    for (const [i, s] of streams.slice(0, 2).entries()) {
      s.write(enc(`s${i}`));
      s.end();
    }
    await waitFor(() => recs[0]!.closed && recs[1]!.closed, "two echoes");
    expect(recs[0]!.text()).toBe("s0");
    expect(recs[1]!.text()).toBe("s1");
    expect(() => {
      const c2 = sessionPair(2, { maxStreams: 1 }).client;
      c2.openStream();
      c2.openStream();
    }).toThrow(/maxStreams 1/);
  });

  test("a protocol error ends that session only, with MUX_PROTOCOL", async () => {
    const bad = rawPeer(2, { client: false });
    const srvRec = new Recorder();
    bad.session.onStream = (s) => s.setHandler(srvRec);
    let closedWith: ProxyError | undefined;
    bad.session.onClosed = (_s, err) => (closedWith = err);
    const good = sessionPair(2);
    good.server.onStream = echo;

    bad.raw.write(frame(2, SmuxCmd.SYN, 3));
    await waitFor(() => bad.session.numStreams === 1, "stream open");
    bad.raw.write(Uint8Array.from([2, 9, 0, 0, 3, 0, 0, 0]));
    await waitFor(() => bad.session.closed, "bad session closed");
    expect(closedWith?.code).toBe("MUX_PROTOCOL");
    expect(closedWith?.source).toBe("downstream");
    expect(closedWith?.message).toMatch(/unknown command 9/);
    expect((srvRec.closeErr as ProxyError).code).toBe("MUX_PROTOCOL");
    await waitFor(() => bad.rec.closed, "its connection closed");

    const s = good.client.openStream();
    const got = new Recorder();
    s.setHandler(got);
    s.write(enc("still fine"));
    s.end();
    await waitFor(() => got.closed, "good session works");
    expect(got.text()).toBe("still fine");
  });

  const cases: [string, 1 | 2, boolean, Uint8Array[], RegExp][] = [
    ["SYN with the wrong parity", 2, false, [frame(2, SmuxCmd.SYN, 4)], /SYN for stream 4: the client opens odd/],
    ["SYN for stream 0", 1, true, [frame(1, SmuxCmd.SYN, 0)], /SYN for stream 0/],
    ["wrong version", 2, false, [frame(1, SmuxCmd.NOP, 0)], /version 1 on a version 2/],
    [
      "UPD consuming more than was sent",
      2,
      false,
      [frame(2, SmuxCmd.SYN, 3), frame(2, SmuxCmd.UPD, 3, [1, 0, 0, 0, 0, 0, 1, 0])],
      /consumed 1 bytes but only 0/,
    ],
    [
      "a v2 peer that ignores the window of a paused stream",
      2,
      false,
      [frame(2, SmuxCmd.SYN, 3), ...Array.from({ length: 20 }, () => frame(2, SmuxCmd.PSH, 3, new Uint8Array(30_000)))],
      /beyond its window \(limit 524288\)/,
    ],
  ];
  for (const [name, version, client, frames, pattern] of cases) {
    test(`protocol error: ${name}`, async () => {
      const p = rawPeer(version, { client });
      p.session.onStream = (s) => s.pause();
      for (const f of frames) p.raw.write(f);
      await waitFor(() => p.session.closed, "session closed");
      expect(p.session.closeError?.code).toBe("MUX_PROTOCOL");
      expect(p.session.closeError?.message).toMatch(pattern);
    });
  }

  test("tolerated like Go: SYN for an open stream, FIN/PSH/UPD for unknown ids, empty PSH", async () => {
    const p = rawPeer(2, { client: false });
    const got = new Recorder();
    let accepted = 0;
    p.session.onStream = (s) => {
      accepted++;
      s.setHandler(got);
    };
    p.raw.write(concat([
      frame(2, SmuxCmd.SYN, 3),
      frame(2, SmuxCmd.SYN, 3),
      frame(2, SmuxCmd.PSH, 3, []),
      frame(2, SmuxCmd.FIN, 7),
      frame(2, SmuxCmd.PSH, 9, [1, 2]),
      frame(2, SmuxCmd.UPD, 11, new Uint8Array(8)),
      frame(2, SmuxCmd.NOP, 5),
      frame(2, SmuxCmd.PSH, 3, [42]),
    ]));
    await waitFor(() => got.bytes === 1, "data");
    expect(accepted).toBe(1);
    expect(p.session.closed).toBe(false);
    expect(p.session.stats().bytesDiscarded).toBe(2);
  });

  test("no onStream handler: every SYN is refused", async () => {
    const p = rawPeer(2, { client: false });
    p.raw.write(frame(2, SmuxCmd.SYN, 3));
    await waitFor(() => p.frames.length === 1, "refusal");
    expect(p.frames[0]).toEqual({ cmd: SmuxCmd.FIN, streamId: 3, payload: [] });
  });

  test("keepalive timeout via tick(): nothing received for the timeout closes the session", async () => {
    const { client, server } = sessionPair(2, {}, { keepAliveIntervalMs: 10_000, keepAliveTimeoutMs: 30_000 });
    server.onStream = echo;
    const rec = new Recorder();
    const s = client.openStream();
    s.setHandler(rec);
    server.tick(0);
    s.write(enc("ping"));
    await waitFor(() => rec.bytes === 4, "echo");
    server.tick(20_000); // data arrived since the last tick: the clock restarts here
    server.tick(49_999);
    expect(server.closed).toBe(false);
    server.tick(50_000);
    expect(server.closed).toBe(true);
    expect(server.closeError?.code).toBe("IDLE_TIMEOUT");
    expect(server.closeError?.message).toMatch(/nothing received from the peer for 30000 ms/);
    await waitFor(() => client.closed, "peer sees the connection close");
    expect((rec.closeErr as ProxyError).code).toBe("UPSTREAM_RESET");
  });

  test("keepalive NOPs keep an idle session alive", async () => {
    const { client, server } = sessionPair(2, { keepAliveIntervalMs: 10_000, keepAliveTimeoutMs: 30_000 }, {
      keepAliveIntervalMs: 10_000,
      keepAliveTimeoutMs: 30_000,
    });
    for (let t = 0; t <= 120_000; t += 10_000) {
      client.tick(t);
      server.tick(t);
      await waitFor(() => server.stats().framesIn >= t / 10_000 && client.stats().framesIn >= t / 10_000, `NOP at ${t}`);
    }
    expect(client.closed || server.closed).toBe(false);
  });

  test("closing the session closes its streams with an error and the peer's", async () => {
    const { client, server } = sessionPair(2);
    const srvRec = new Recorder();
    server.onStream = (s) => s.setHandler(srvRec);
    const s = client.openStream();
    const rec = new Recorder();
    s.setHandler(rec);
    s.write(enc("x"));
    await waitFor(() => srvRec.bytes === 1, "open");
    client.close();
    expect(rec.closed).toBe(true);
    expect((rec.closeErr as ProxyError).code).toBe("UPSTREAM_RESET");
    await waitFor(() => srvRec.closed, "peer stream closed");
    expect((srvRec.closeErr as ProxyError).code).toBe("DOWNSTREAM_RESET");
    expect(() => client.openStream()).toThrow(/session is closed/);
  });

  test("options are checked like Go's VerifyConfig", () => {
    const [a] = memoryPair();
    expect(() => new MuxSession(a, { client: true, maxFrameSize: 70000 })).toThrow(/maxFrameSize: must be an integer 1..65535, got 70000/);
    expect(() => new MuxSession(a, { client: true, maxStreamBuffer: 8 << 20 })).toThrow(/must not exceed maxReceiveBuffer/);
    expect(() => new MuxSession(a, { client: true, keepAliveIntervalMs: 5000, keepAliveTimeoutMs: 1000 })).toThrow(/keepAliveTimeoutMs/);
    expect(() => new MuxSession(a, { client: true, version: 3 as 2 })).toThrow(/version: must be 1 or 2/);
  });
});

describe("mux session: fair scheduling", () => {
  for (const version of [1, 2] as const) {
    test(`v${version}: a small request is answered while a bulk stream has megabytes queued`, async () => {
      // Big queues and windows so that neither backpressure nor flow control hides the
      // scheduler: a FIFO writer would make the small stream wait for all 8 MiB.
      const big = {
        streamHighWater: 8 << 20,
        maxStreamPending: 16 << 20,
        sessionHighWater: 32 << 20,
        maxStreamBuffer: 16 << 20,
        maxReceiveBuffer: 32 << 20,
      };
      const { client, server } = sessionPair(version, big, big, { highWater: 64 * 1024 });
      let bulkAtServer = 0;
      server.onStream = (s) => {
        if (s.id === 3) s.setHandler({ onData: (_c, d) => (bulkAtServer += d.length), onDrain() {}, onEnd() {}, onClose() {} });
        else echo(s);
      };
      const bulk = client.openStream();
      bulk.setHandler(new Recorder());
      bulk.write(new Uint8Array(8 << 20));
      // Past Go's initial window of 256 KiB, so v2 runs on the 16 MiB window.
      await waitFor(() => bulkAtServer > 1 << 20, "bulk flowing", 10_000);
      const small = client.openStream();
      const got = new Recorder();
      small.setHandler(got);
      const before = bulkAtServer;
      small.write(enc("GET /"));
      small.end();
      await waitFor(() => got.closed, "small request answered", 10_000);
      const bulkMeanwhile = bulkAtServer - before;
      expect(got.text()).toBe("GET /");
      // Round-robin: the request waits for about one frame per busy stream, not for the queue.
      expect(bulkMeanwhile).toBeLessThan(1 << 20);
      expect(bulkAtServer).toBeLessThan(8 << 20);
    });
  }
});
