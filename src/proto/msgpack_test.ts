import { describe, expect, test } from "bun:test";
import { Packr, Unpackr } from "msgpackr";
import { decodeMsgpack, encodeMsgpack, MsgpackError } from "./msgpack.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");

// The options tunnel_control.ts used with msgpackr before this codec: plain maps, numbers for 64-bit integers.
const packr = new Packr({ useRecords: false, variableMapSize: true, encodeUndefinedAsNil: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: "number" });

const SAMPLES: unknown[] = [
  { type: "hello", version: 1, agent: "edge-3", roles: ["source", "destination"], services: [{ name: "web", proto: "tcp" }], token: "t0k" },
  { type: "welcome", session: "s-1", peer: "127.0.0.1:50000", edge: "e1" },
  { type: "open", service: "db", proto: "tcp", client: "[2001:db8::1]:443", server: "10.0.0.1:5432", proxy: "v2", conn: "w1.k3f9.2s" },
  { type: "goaway", reconnect_ms: 86_400_000, reason: "draining — bye" },
  { type: "error", code: 0xffff, message: "x".repeat(300) },
  [0, 1, 127, 128, 255, 256, 65535, 65536, 0xffffffff, -1, -32, -33, -128, -129, -32768, -32769, -0x80000000, 2 ** 40, -(2 ** 40), 1.5, -0.25, null, true, false],
  { s31: "a".repeat(31), s32: "b".repeat(32), s255: "c".repeat(255), s256: "d".repeat(256), s65536: "e".repeat(65536), emoji: "ü😀" },
  { arr16: Array.from({ length: 16 }, (_, i) => i), map16: Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])) },
  { bin: new Uint8Array([1, 2, 3]), empty: new Uint8Array(0), big: new Uint8Array(300) },
];

describe("msgpack", () => {
  test("golden bytes", () => {
    expect(hex(encodeMsgpack({ a: 1, b: [true, null], c: "hi" }))).toBe("83 a1 61 01 a1 62 92 c3 c0 a1 63 a2 68 69");
    expect(hex(encodeMsgpack(-33))).toBe("d0 df");
    expect(hex(encodeMsgpack(70000))).toBe("ce 00 01 11 70");
    expect(hex(encodeMsgpack(1.5))).toBe("cb 3f f8 00 00 00 00 00 00");
    expect(hex(encodeMsgpack({ gone: undefined, kept: 0 }))).toBe("81 a4 6b 65 70 74 00");
    expect(decodeMsgpack(new Uint8Array([0xcf, 0, 0, 0, 1, 0, 0, 0, 2]))).toBe(2 ** 32 + 2);
    expect(decodeMsgpack(new Uint8Array([0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]))).toBe(-2);
    expect(decodeMsgpack(new Uint8Array([0xca, 0x3f, 0xc0, 0, 0]))).toBe(1.5);
  });

  test("round trip, and interop with msgpackr both ways", () => {
    for (const v of SAMPLES) {
      expect(decodeMsgpack(encodeMsgpack(v))).toEqual(v as never);
      expect(unpackr.unpack(encodeMsgpack(v))).toEqual(v as never);
      expect(decodeMsgpack(packr.pack(v))).toEqual(v as never);
    }
  });

  test("every strict prefix of an encoding is a MsgpackError", () => {
    for (const v of SAMPLES.slice(0, 6)) {
      const b = encodeMsgpack(v);
      for (let i = 0; i < b.length; i++) expect(() => decodeMsgpack(b.subarray(0, i))).toThrow(MsgpackError);
    }
  });

  test("malformed input: trailing bytes, extension types, 0xc1, bad UTF-8, huge counts, __proto__, deep nesting", () => {
    const bad = [
      [0x01, 0x02],
      [0xd4, 0x01, 0x02],
      [0xc1],
      [0xa2, 0xc3, 0x28],
      [0xdd, 0xff, 0xff, 0xff, 0xff],
      [0xdf, 0xff, 0xff, 0xff, 0xff],
      [0xc6, 0xff, 0xff, 0xff, 0xff],
      [0x81, 0xa9, ...new TextEncoder().encode("__proto__"), 0x01],
      [0x81, 0xc3, 0x01],
      Array(40).fill(0x91).concat([0x01]),
    ];
    for (const b of bad) expect(() => decodeMsgpack(new Uint8Array(b))).toThrow(MsgpackError);
  });

  test("random bytes only ever give a value or MsgpackError", () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    for (let i = 0; i < 20_000; i++) {
      const b = Uint8Array.from({ length: 1 + (rnd() % 24) }, rnd);
      try {
        decodeMsgpack(b);
      } catch (e) {
        if (!(e instanceof MsgpackError)) throw e;
      }
    }
  });
});
