import { describe, expect, test } from "bun:test";
import { encodeWsClose, encodeWsFrame, unmask, WsFrameDecoder, WsOpcode, WsProtocolError, type WsEvent } from "./websocket.ts";

function events(d: WsFrameDecoder): WsEvent[] {
  const out: WsEvent[] = [];
  for (let i = 0; i < 100_000; i++) {
    const e = d.next();
    if (e === null) return out;
    out.push(e.type === "data" ? { type: "data", bytes: e.bytes.slice() } : e);
  }
  throw new Error("decoder did not stop");
}

function dataOf(evs: WsEvent[]): number[] {
  return evs.flatMap((e) => (e.type === "data" ? Array.from(e.bytes) : []));
}

describe("websocket frames", () => {
  test("RFC 6455 §5.7 examples: unmasked and masked 'Hello' (as binary)", () => {
    const unmasked = [0x82, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    const masked = [0x82, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    const c = new WsFrameDecoder("client");
    c.push(Uint8Array.from(unmasked));
    expect(dataOf(events(c))).toEqual([0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    const s = new WsFrameDecoder("server");
    s.push(Uint8Array.from(masked));
    expect(dataOf(events(s))).toEqual([0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    expect(Array.from(encodeWsFrame(WsOpcode.BINARY, Uint8Array.from([0x48, 0x65, 0x6c, 0x6c, 0x6f]), false))).toEqual(unmasked);
  });

  test("length forms 7, 16 and 64 bits round-trip, masked and not", () => {
    for (const n of [0, 1, 125, 126, 65535, 65536, 200_000]) {
      const p = new Uint8Array(n).map((_, i) => i * 7);
      for (const masked of [false, true]) {
        const f = encodeWsFrame(WsOpcode.BINARY, p, masked);
        const d = new WsFrameDecoder(masked ? "server" : "client");
        d.push(f);
        expect(dataOf(events(d))).toEqual(Array.from(p));
      }
    }
  });

  test("every split point: data streams through, controls come whole", () => {
    const frames = [
      encodeWsFrame(WsOpcode.BINARY, Uint8Array.of(1, 2, 3, 4, 5, 6, 7), true),
      encodeWsFrame(WsOpcode.PING, Uint8Array.of(9, 9), true),
      encodeWsFrame(WsOpcode.BINARY, new Uint8Array(300).fill(3), true),
      encodeWsClose(1000, "bye", true),
    ];
    const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let o = 0;
    for (const f of frames) {
      all.set(f, o);
      o += f.length;
    }
    for (let a = 0; a <= all.length; a++) {
      const d = new WsFrameDecoder("server");
      // The decoder unmasks in place: give each run its own copy.
      const copy = all.slice();
      d.push(copy.subarray(0, a));
      const got = events(d);
      d.push(copy.subarray(a));
      got.push(...events(d));
      expect(dataOf(got)).toEqual([1, 2, 3, 4, 5, 6, 7, ...new Array(300).fill(3)]);
      const ctl = got.filter((e) => e.type !== "data");
      expect(ctl).toEqual([{ type: "ping", payload: Uint8Array.of(9, 9) }, { type: "close", code: 1000, reason: "bye" }]);
    }
  });

  test("fragmented binary message: continuations carry data; a ping may come between", () => {
    const first = encodeWsFrame(WsOpcode.BINARY, Uint8Array.of(1, 2), false);
    first[0] = 0x02; // FIN clear
    const cont = encodeWsFrame(WsOpcode.CONTINUATION, Uint8Array.of(3), false);
    const ping = encodeWsFrame(WsOpcode.PING, new Uint8Array(0), false);
    const d = new WsFrameDecoder("client");
    for (const f of [first, ping, cont]) d.push(f);
    const evs = events(d);
    expect(dataOf(evs)).toEqual([1, 2, 3]);
    expect(evs.some((e) => e.type === "ping")).toBe(true);
  });

  test("protocol errors carry the close code and leave the decoder dead", () => {
    const cases: [Uint8Array, "server" | "client", number, RegExp][] = [
      [encodeWsFrame(WsOpcode.BINARY, Uint8Array.of(1), false), "server", 1002, /not masked/],
      [encodeWsFrame(WsOpcode.BINARY, Uint8Array.of(1), true), "client", 1002, /is masked/],
      [encodeWsFrame(WsOpcode.TEXT, Uint8Array.of(0x41), false), "client", 1003, /text/],
      [Uint8Array.of(0xc2, 0x00), "client", 1002, /reserved/],
      [Uint8Array.of(0x83, 0x00), "client", 1002, /opcode 3/],
      [Uint8Array.of(0x00, 0x00), "client", 1002, /continuation/],
      [Uint8Array.of(0x09, 0x00), "client", 1002, /fragmented control/],
      [Uint8Array.of(0x89, 126, 0, 126), "client", 1002, /control frame of 126/],
      [Uint8Array.of(0x82, 127, 0xff, 0, 0, 0, 0, 0, 0, 0), "client", 1009, /2\^53/],
      [Uint8Array.of(0x88, 0x01, 0x03), "client", 1002, /1-byte/],
    ];
    for (const [bytes, role, code, re] of cases) {
      const d = new WsFrameDecoder(role);
      d.push(bytes);
      let err: unknown;
      try {
        events(d);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(WsProtocolError);
      expect((err as WsProtocolError).closeCode).toBe(code);
      expect((err as Error).message).toMatch(re);
      expect(() => d.next()).toThrow(WsProtocolError);
    }
  });

  test("unmask matches the byte-wise definition at every alignment and offset", () => {
    const mask = Uint8Array.of(0x12, 0x34, 0x56, 0x78);
    for (let start = 0; start < 4; start++) {
      for (let off = 0; off < 4; off++) {
        const buf = new Uint8Array(64).map((_, i) => i);
        const view = buf.subarray(start, start + 37);
        const want = Array.from(view).map((b, i) => b ^ mask[(off + i) & 3]!);
        expect(unmask(view, mask, off)).toBe((off + 37) & 3);
        expect(Array.from(view)).toEqual(want);
      }
    }
  });

  test("random bytes only ever give events or WsProtocolError", () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xff;
    for (let i = 0; i < 3000; i++) {
      const d = new WsFrameDecoder(i % 2 ? "server" : "client");
      const b = new Uint8Array(1 + (rnd() % 48)).map(() => rnd());
      d.push(b);
      try {
        events(d);
      } catch (e) {
        expect(e).toBeInstanceOf(WsProtocolError);
      }
    }
  });
});
