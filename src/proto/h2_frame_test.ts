import { describe, expect, test } from "bun:test";
import { ProxyError } from "../errors/mod.ts";
import {
  CLIENT_PREFACE,
  encodeData,
  encodeGoaway,
  encodeHeadersFrames,
  encodePing,
  encodeRstStream,
  encodeSettings,
  encodeSettingsAck,
  encodeWindowUpdate,
  Flag,
  FrameType,
  H2Code,
  H2Error,
  H2FrameDecoder,
  readU32,
} from "./h2_frame.ts";

interface Plain {
  type: number;
  flags: number;
  streamId: number;
  payload: number[];
}

/** Decodes everything, merging DATA pieces back into whole frames (with flow totals). */
function decodeAll(chunks: Uint8Array[], preface = false, maxFrameSize = 16384): { frames: Plain[]; flow: number } {
  const d = new H2FrameDecoder({ maxFrameSize, expectPreface: preface });
  const frames: Plain[] = [];
  let flow = 0;
  let open: Plain | null = null;
  for (const c of chunks) {
    d.push(c);
    for (let k = 0; k < 100_000; k++) {
      const f = d.next();
      if (f === null) break;
      if (f.type === FrameType.DATA) {
        flow += f.flowBytes;
        open ??= { type: 0, flags: 0, streamId: f.streamId, payload: [] };
        open.payload.push(...f.payload);
        if (f.last) {
          open.flags = f.flags;
          frames.push(open);
          open = null;
        } else expect(f.flags & Flag.END_STREAM).toBe(0);
        continue;
      }
      frames.push({ type: f.type, flags: f.flags, streamId: f.streamId, payload: Array.from(f.payload) });
    }
  }
  expect(open).toBeNull();
  return { frames, flow };
}

const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

describe("golden frames", () => {
  test("encoders write RFC 9113 layouts", () => {
    expect(Array.from(encodeSettings([[3, 100], [4, 4 << 20]]))).toEqual([0, 0, 12, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100, 0, 4, 0, 0x40, 0, 0]);
    expect(Array.from(encodeSettingsAck())).toEqual([0, 0, 0, 4, 1, 0, 0, 0, 0]);
    expect(Array.from(encodeWindowUpdate(3, 0x7fffffff))).toEqual([0, 0, 4, 8, 0, 0, 0, 0, 3, 0x7f, 0xff, 0xff, 0xff]);
    expect(Array.from(encodeRstStream(0x7fffffff, H2Code.CONNECT_ERROR))).toEqual([0, 0, 4, 3, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 10]);
    expect(Array.from(encodeGoaway(5, 0, "x"))).toEqual([0, 0, 9, 7, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0x78]);
    expect(Array.from(encodePing(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8), true))).toEqual([0, 0, 8, 6, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(encodeData(1, Uint8Array.of(0x61, 0x62), true, 16384))).toEqual([0, 0, 2, 0, 1, 0, 0, 0, 1, 0x61, 0x62]);
    expect(readU32(Uint8Array.of(0xff, 0, 0, 1), 0)).toBe(0xff000001);
  });

  test("DATA and HEADERS split at the peer's frame size", () => {
    const d = encodeData(7, new Uint8Array(10).fill(1), true, 4);
    expect(decodeAll([d]).frames.map((f) => [f.type, f.flags, f.payload.length])).toEqual([[0, 0, 4], [0, 0, 4], [0, 1, 2]]);
    const h = encodeHeadersFrames(9, new Uint8Array(9).fill(2), true, 4);
    expect(decodeAll([h]).frames.map((f) => [f.type, f.flags, f.streamId, f.payload.length])).toEqual([
      [FrameType.HEADERS, Flag.END_STREAM, 9, 4],
      [FrameType.CONTINUATION, 0, 9, 4],
      [FrameType.CONTINUATION, Flag.END_HEADERS, 9, 1],
    ]);
    expect(decodeAll([encodeData(1, new Uint8Array(0), true, 16)]).frames).toEqual([{ type: 0, flags: 1, streamId: 1, payload: [] }]);
  });

  test("the preface, then SETTINGS; a stream id's reserved bit is ignored", () => {
    const settings = encodeSettings([[4, 65535]]);
    const weird = Uint8Array.of(0, 0, 0, 4, 1, 0x80, 0, 0, 0);
    expect(decodeAll([cat(CLIENT_PREFACE, settings, weird)], true).frames).toEqual([
      { type: 4, flags: 0, streamId: 0, payload: Array.from(settings.subarray(9)) },
      { type: 4, flags: 1, streamId: 0, payload: [] },
    ]);
  });

  test("padded DATA: padding is stripped and counted for flow control", () => {
    // length 8: pad length 3, data "hell"? no: 1 + 4 + 3 = 8.
    const f = Uint8Array.of(0, 0, 8, 0, Flag.PADDED | Flag.END_STREAM, 0, 0, 0, 1, 3, 0x68, 0x65, 0x6c, 0x6c, 0, 0, 0);
    expect(decodeAll([f])).toEqual({ frames: [{ type: 0, flags: Flag.PADDED | Flag.END_STREAM, streamId: 1, payload: [0x68, 0x65, 0x6c, 0x6c] }], flow: 8 });
  });
});

describe("DATA streams through without copies", () => {
  test("pieces are views of the pushed chunk", () => {
    const frame = encodeData(3, new Uint8Array(1000).fill(9), false, 16384);
    const d = new H2FrameDecoder({ maxFrameSize: 16384, expectPreface: false });
    d.push(frame.subarray(0, 500));
    const a = d.next()!;
    expect([a.payload.length, a.last, a.payload.buffer === frame.buffer]).toEqual([491, false, true]);
    expect(d.next()).toBeNull();
    d.push(frame.subarray(500));
    const b = d.next()!;
    expect([b.payload.length, b.last]).toEqual([509, true]);
  });
});

describe("every split point", () => {
  const all = cat(
    CLIENT_PREFACE,
    encodeSettings([[3, 100]]),
    encodeHeadersFrames(1, Uint8Array.of(0x82, 0x87), false, 16384),
    Uint8Array.of(0, 0, 6, 0, Flag.PADDED, 0, 0, 0, 1, 2, 1, 2, 3, 0, 0), // padded DATA
    encodeData(1, Uint8Array.of(4, 5, 6), true, 16384),
    encodeWindowUpdate(0, 1000),
    encodePing(new Uint8Array(8), false),
  );
  const want = decodeAll([all], true);
  test("two chunks", () => {
    for (let i = 0; i <= all.length; i++) expect(decodeAll([all.subarray(0, i), all.subarray(i)], true)).toEqual(want);
  });
  test("three chunks", () => {
    for (let i = 0; i <= all.length; i += 2) {
      for (let j = i; j <= all.length; j += 3) expect(decodeAll([all.subarray(0, i), all.subarray(i, j), all.subarray(j)], true)).toEqual(want);
    }
  });
  test("byte by byte", () => {
    expect(decodeAll(Array.from(all, (_, k) => all.subarray(k, k + 1)), true)).toEqual(want);
  });
});

describe("connection errors", () => {
  const code = (bytes: Uint8Array, preface = false, max = 16384): number | null => {
    const d = new H2FrameDecoder({ maxFrameSize: max, expectPreface: preface });
    d.push(bytes);
    try {
      while (d.next() !== null);
    } catch (e) {
      expect(e).toBeInstanceOf(H2Error);
      expect((e as ProxyError).code).toBe("H2_PROTOCOL");
      expect(() => d.next()).toThrow(e as Error);
      return (e as H2Error).h2Code;
    }
    return null;
  };
  test.each([
    ["not the preface", Uint8Array.from("GET / HTTP/1.1\r\n", (c) => c.charCodeAt(0)), true, H2Code.PROTOCOL_ERROR],
    ["frame over our max size", Uint8Array.of(0, 0x40, 1, 1, 4, 0, 0, 0, 1), false, H2Code.FRAME_SIZE_ERROR],
    ["DATA on stream 0", Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0), false, H2Code.PROTOCOL_ERROR],
    ["padding as long as the frame", Uint8Array.of(0, 0, 2, 0, 8, 0, 0, 0, 1, 2, 0), false, H2Code.PROTOCOL_ERROR],
    ["PADDED with no pad length", Uint8Array.of(0, 0, 0, 0, 8, 0, 0, 0, 1), false, H2Code.FRAME_SIZE_ERROR],
  ])("%s", (_name, bytes, preface, want) => {
    expect(code(bytes, preface)).toBe(want);
  });
});

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("property: random bytes give frames, null or H2Error; buffering stays bounded", () => {
  const r = rng(77);
  let frames = 0;
  let errors = 0;
  for (let iter = 0; iter < 3000; iter++) {
    const d = new H2FrameDecoder({ maxFrameSize: 64, expectPreface: false });
    const parts: number[] = [];
    const n = Math.floor(r() * 10);
    for (let k = 0; k < n; k++) {
      const len = r() < 0.9 ? Math.floor(r() * 40) : Math.floor(r() * 300);
      parts.push(0, len >> 8, len & 255, Math.floor(r() * 11), Math.floor(r() * 256), 0, 0, 0, Math.floor(r() * 4));
      for (let i = 0; i < len; i++) parts.push(Math.floor(r() * 256));
      if (r() < 0.1) parts.push(Math.floor(r() * 256));
    }
    const all = Uint8Array.from(parts);
    try {
      for (let off = 0; off < all.length;) {
        const m = 1 + Math.floor(r() * 50);
        d.push(all.subarray(off, off + m));
        off += m;
        for (let k = 0; k < 1000; k++) {
          const f = d.next();
          if (f === null) break;
          frames++;
          if (f.type !== FrameType.DATA) expect(f.payload.length).toBeLessThanOrEqual(64);
        }
        // Non-DATA frames wait for their whole payload (at most 64 + 9 bytes); DATA never waits.
        expect(d.bufferedBytes).toBeLessThan(64 + 9 + 50);
      }
    } catch (e) {
      errors++;
      expect(e).toBeInstanceOf(H2Error);
    }
  }
  expect(frames).toBeGreaterThan(1000);
  expect(errors).toBeGreaterThan(300);
});
