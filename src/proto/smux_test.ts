import { describe, expect, test } from "bun:test";
import { ProxyError } from "../errors/mod.ts";
import {
  encodeSmuxHeader,
  encodeSmuxUpd,
  SMUX_HEADER_SIZE,
  SmuxCmd,
  SmuxFrameDecoder,
  type SmuxFrame,
} from "./smux.ts";

interface Plain {
  cmd: number;
  streamId: number;
  payload: number[];
}

function plain(f: SmuxFrame): Plain {
  return { cmd: f.cmd, streamId: f.streamId, payload: Array.from(f.payload) };
}

/** Decodes everything pushed so far; rethrows protocol errors. */
function drain(d: SmuxFrameDecoder): Plain[] {
  const out: Plain[] = [];
  for (let i = 0; i < 100_000; i++) {
    const f = d.next();
    if (f === null) return out;
    out.push(plain(f));
  }
  throw new Error("decoder did not stop");
}

// Written out by hand from DESIGN.md: version u8 | cmd u8 | length u16 LE | stream id u32 LE.
const GOLDEN: { name: string; version: 1 | 2; bytes: number[]; frame: Plain }[] = [
  { name: "v1 SYN stream 3", version: 1, bytes: [1, 0, 0, 0, 3, 0, 0, 0], frame: { cmd: 0, streamId: 3, payload: [] } },
  { name: "v1 FIN stream 2", version: 1, bytes: [1, 1, 0, 0, 2, 0, 0, 0], frame: { cmd: 1, streamId: 2, payload: [] } },
  {
    name: "v2 PSH 'hi' on stream 0x01020304",
    version: 2,
    bytes: [2, 2, 2, 0, 4, 3, 2, 1, 0x68, 0x69],
    frame: { cmd: 2, streamId: 0x01020304, payload: [0x68, 0x69] },
  },
  { name: "v1 NOP stream 0", version: 1, bytes: [1, 3, 0, 0, 0, 0, 0, 0], frame: { cmd: 3, streamId: 0, payload: [] } },
  {
    name: "v2 UPD consumed 65536 window 262144 on stream 5",
    version: 2,
    bytes: [2, 4, 8, 0, 5, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4, 0],
    frame: { cmd: 4, streamId: 5, payload: [0, 0, 1, 0, 0, 0, 4, 0] },
  },
  {
    name: "v2 PSH 0x0102-byte length, stream 0xfffffffe",
    version: 2,
    bytes: [2, 2, 0x02, 0x01, 0xfe, 0xff, 0xff, 0xff, ...new Array(0x0102).fill(7)],
    frame: { cmd: 2, streamId: 0xfffffffe, payload: new Array(0x0102).fill(7) },
  },
];

describe("smux frames: golden bytes", () => {
  for (const g of GOLDEN) {
    test(`encode ${g.name}`, () => {
      const out = new Uint8Array(g.bytes.length);
      if (g.frame.cmd === SmuxCmd.UPD) {
        const p = Uint8Array.from(g.frame.payload);
        const dv = new DataView(p.buffer);
        const end = encodeSmuxUpd(out, 0, g.version, g.frame.streamId, dv.getUint32(0, true), dv.getUint32(4, true));
        expect(end).toBe(16);
      } else {
        const end = encodeSmuxHeader(out, 0, g.version, g.frame.cmd, g.frame.payload.length, g.frame.streamId);
        expect(end).toBe(SMUX_HEADER_SIZE);
        out.set(g.frame.payload, SMUX_HEADER_SIZE);
      }
      expect(Array.from(out)).toEqual(g.bytes);
    });
    test(`decode ${g.name}`, () => {
      const d = new SmuxFrameDecoder(g.version);
      d.push(Uint8Array.from(g.bytes));
      expect(drain(d)).toEqual([g.frame]);
      expect(d.bufferedBytes).toBe(0);
    });
  }

  test("encodeSmuxHeader writes at an offset and leaves the rest alone", () => {
    const out = new Uint8Array(12).fill(0xaa);
    expect(encodeSmuxHeader(out, 2, 1, SmuxCmd.PSH, 0xffff, 0x80000001)).toBe(10);
    expect(Array.from(out)).toEqual([0xaa, 0xaa, 1, 2, 0xff, 0xff, 1, 0, 0, 0x80, 0xaa, 0xaa]);
  });
});

describe("smux frames: zero copy", () => {
  test("a frame inside one chunk is a view of that chunk", () => {
    const chunk = Uint8Array.from([2, 2, 3, 0, 3, 0, 0, 0, 1, 2, 3, 2, 2, 1, 0, 3, 0, 0, 0, 9]);
    const d = new SmuxFrameDecoder(2);
    d.push(chunk);
    const a = d.next()!;
    expect(a.payload.buffer).toBe(chunk.buffer);
    expect(a.payload.byteOffset).toBe(8);
    const payloadView = a.payload;
    const b = d.next()!;
    expect(b.payload.buffer).toBe(chunk.buffer);
    expect(Array.from(payloadView)).toEqual([1, 2, 3]);
    expect(Array.from(b.payload)).toEqual([9]);
    expect(d.next()).toBeNull();
  });

  test("a frame spanning chunks is copied once into its own buffer", () => {
    const bytes = Uint8Array.from([2, 2, 4, 0, 3, 0, 0, 0, 1, 2, 3, 4]);
    const d = new SmuxFrameDecoder(2);
    const first = bytes.slice(0, 10);
    const second = bytes.slice(10);
    d.push(first);
    expect(d.next()).toBeNull();
    d.push(second);
    const f = d.next()!;
    expect(f.payload.buffer).not.toBe(first.buffer);
    expect(f.payload.buffer).not.toBe(second.buffer);
    expect(Array.from(f.payload)).toEqual([1, 2, 3, 4]);
  });
});

/** A mixed sequence of valid frames for one version. */
function sampleStream(version: 1 | 2): { bytes: Uint8Array; frames: Plain[] } {
  const frames: Plain[] = [
    { cmd: SmuxCmd.SYN, streamId: 3, payload: [] },
    { cmd: SmuxCmd.PSH, streamId: 3, payload: [1, 2, 3, 4, 5] },
    { cmd: SmuxCmd.NOP, streamId: 0, payload: [] },
    { cmd: SmuxCmd.PSH, streamId: 3, payload: Array.from({ length: 300 }, (_, i) => i & 0xff) },
    { cmd: SmuxCmd.PSH, streamId: 3, payload: [] },
    { cmd: SmuxCmd.FIN, streamId: 3, payload: [] },
  ];
  if (version === 2) frames.splice(2, 0, { cmd: SmuxCmd.UPD, streamId: 3, payload: [0, 1, 0, 0, 0, 0, 1, 0] });
  const total = frames.reduce((n, f) => n + SMUX_HEADER_SIZE + f.payload.length, 0);
  const bytes = new Uint8Array(total);
  let o = 0;
  for (const f of frames) {
    o = encodeSmuxHeader(bytes, o, version, f.cmd, f.payload.length, f.streamId);
    bytes.set(f.payload, o);
    o += f.payload.length;
  }
  return { bytes, frames };
}

describe("smux frames: every split point", () => {
  for (const version of [1, 2] as const) {
    test(`v${version}: two chunks, every split`, () => {
      const { bytes, frames } = sampleStream(version);
      for (let cut = 0; cut <= bytes.length; cut++) {
        const d = new SmuxFrameDecoder(version);
        d.push(bytes.slice(0, cut));
        const got = drain(d);
        d.push(bytes.slice(cut));
        got.push(...drain(d));
        expect(got).toEqual(frames);
        expect(d.bufferedBytes).toBe(0);
      }
    });

    test(`v${version}: three chunks, every pair of splits`, () => {
      const { bytes, frames } = sampleStream(version);
      // Bound the work: the 300-byte payload dominates, so step the second cut.
      for (let a = 0; a <= bytes.length; a++) {
        for (let b = a; b <= bytes.length; b += 7) {
          const d = new SmuxFrameDecoder(version);
          // Push all three before decoding: the decoder must handle a queue of chunks.
          d.push(bytes.slice(0, a));
          d.push(bytes.slice(a, b));
          d.push(bytes.slice(b));
          expect(drain(d)).toEqual(frames);
        }
      }
    });

    test(`v${version}: one byte at a time`, () => {
      const { bytes, frames } = sampleStream(version);
      const d = new SmuxFrameDecoder(version);
      const got: Plain[] = [];
      for (const b of bytes) {
        d.push(Uint8Array.of(b));
        got.push(...drain(d));
      }
      expect(got).toEqual(frames);
    });
  }
});

function expectProtocolError(bytes: number[], version: 1 | 2, pattern: RegExp): void {
  const d = new SmuxFrameDecoder(version);
  d.push(Uint8Array.from(bytes));
  let err: unknown;
  try {
    drain(d);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ProxyError);
  expect((err as ProxyError).code).toBe("MUX_PROTOCOL");
  expect((err as ProxyError).message).toMatch(pattern);
  // Dead from now on: same error again, input ignored.
  d.push(Uint8Array.from([version, 3, 0, 0, 0, 0, 0, 0]));
  expect(() => d.next()).toThrow(err as Error);
  expect(d.error).toBe(err as ProxyError);
}

describe("smux frames: protocol errors", () => {
  test("wrong version", () => expectProtocolError([2, 3, 0, 0, 0, 0, 0, 0], 1, /version 2 on a version 1/));
  test("unknown command", () => expectProtocolError([2, 5, 0, 0, 7, 0, 0, 0], 2, /unknown command 5 on stream 7/));
  test("payload on SYN", () => expectProtocolError([1, 0, 1, 0, 3, 0, 0, 0, 9], 1, /SYN on stream 3 carries 1 payload/));
  test("payload on FIN", () => expectProtocolError([2, 1, 2, 0, 3, 0, 0, 0, 9, 9], 2, /FIN .* carries 2/));
  test("payload on NOP", () => expectProtocolError([2, 3, 1, 0, 0, 0, 0, 0, 0], 2, /NOP .* carries 1/));
  test("UPD shorter than 8", () => expectProtocolError([2, 4, 7, 0, 3, 0, 0, 0], 2, /UPD on stream 3 has length 7/));
  test("UPD longer than 8", () => expectProtocolError([2, 4, 9, 0, 3, 0, 0, 0], 2, /length 9; it must be 8/));
  test("the header is checked before its payload arrives", () => {
    expectProtocolError([1, 2, 0xff, 0xff, 3, 0, 0, 0, 1, 2, 3], 2, /version 1 on a version 2/);
  });
  test("frames before the bad one are returned first", () => {
    const d = new SmuxFrameDecoder(1);
    d.push(Uint8Array.from([1, 3, 0, 0, 0, 0, 0, 0, 1, 9, 0, 0, 0, 0, 0, 0]));
    expect(d.next()?.cmd).toBe(SmuxCmd.NOP);
    expect(() => d.next()).toThrow(/unknown command 9/);
  });
  test("v1 accepts UPD like Go does (the session ignores it)", () => {
    const d = new SmuxFrameDecoder(1);
    d.push(Uint8Array.from([1, 4, 8, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]));
    expect(d.next()?.cmd).toBe(SmuxCmd.UPD);
  });
  test("a full 65535-byte PSH is accepted (Go reads up to the u16 limit)", () => {
    const d = new SmuxFrameDecoder(2);
    const b = new Uint8Array(8 + 65535);
    encodeSmuxHeader(b, 0, 2, SmuxCmd.PSH, 65535, 3);
    d.push(b.subarray(0, 40000));
    expect(d.next()).toBeNull();
    d.push(b.subarray(40000));
    expect(d.next()?.payload.length).toBe(65535);
  });
});

/** Deterministic PRNG (mulberry32) so failures reproduce. */
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

describe("smux frames: property tests", () => {
  test("random bytes give only frames, null or MUX_PROTOCOL, then stay dead", () => {
    const r = rng(0x5eed);
    let errors = 0;
    let frames = 0;
    for (let iter = 0; iter < 3000; iter++) {
      const version = r() < 0.5 ? 1 : 2;
      const d = new SmuxFrameDecoder(version);
      // Mostly header-shaped junk (plausible version, command, short length) so
      // decoding gets past the header often, with fully random bytes mixed in.
      const parts: number[] = [];
      const count = Math.floor(r() * 12);
      for (let k = 0; k < count; k++) {
        if (r() < 0.2) {
          for (let i = Math.floor(r() * 20); i > 0; i--) parts.push(Math.floor(r() * 256));
          continue;
        }
        const ver = r() < 0.9 ? version : Math.floor(r() * 4);
        const cmd = Math.floor(r() * 7);
        const len = r() < 0.5 ? 0 : r() < 0.5 ? 8 : Math.floor(r() * 40);
        parts.push(ver, cmd, len, r() < 0.95 ? 0 : 1, ...[0, 0, 0, 0].map(() => Math.floor(r() * 256)));
        for (let i = 0; i < len; i++) parts.push(Math.floor(r() * 256));
      }
      const len = parts.length;
      const bytes = Uint8Array.from(parts);
      let err: unknown = null;
      let pushed = 0;
      try {
        while (pushed < len) {
          const n = 1 + Math.floor(r() * 40);
          d.push(bytes.subarray(pushed, pushed + n));
          pushed += n;
          for (let k = 0; k < 1000; k++) {
            const f = d.next();
            if (f === null) break;
            frames++;
            expect(f.cmd).toBeGreaterThanOrEqual(0);
            expect(f.cmd).toBeLessThanOrEqual(4);
            expect(f.payload.length).toBeLessThanOrEqual(65535);
          }
        }
      } catch (e) {
        err = e;
      }
      if (err !== null) {
        errors++;
        expect(err).toBeInstanceOf(ProxyError);
        expect((err as ProxyError).code).toBe("MUX_PROTOCOL");
        expect(() => d.next()).toThrow(err as Error);
        d.push(Uint8Array.of(version, 3, 0, 0, 0, 0, 0, 0));
        expect(() => d.next()).toThrow(err as Error);
        expect(d.bufferedBytes).toBe(0);
      } else {
        expect(d.bufferedBytes).toBeLessThan(8 + 65536);
      }
    }
    // The test must exercise both outcomes to mean anything.
    expect(errors).toBeGreaterThan(100);
    expect(frames).toBeGreaterThan(100);
  });

  test("random valid frame sequences survive random chunking unchanged", () => {
    const r = rng(42);
    for (let iter = 0; iter < 300; iter++) {
      const version = r() < 0.5 ? 1 : 2;
      const want: Plain[] = [];
      const parts: Uint8Array[] = [];
      const n = 1 + Math.floor(r() * 12);
      for (let i = 0; i < n; i++) {
        const cmds = version === 2 ? 5 : 4;
        const cmd = Math.floor(r() * cmds);
        const streamId = Math.floor(r() * 0xffffffff) >>> 0;
        let len = 0;
        if (cmd === SmuxCmd.PSH) len = r() < 0.1 ? 65535 : Math.floor(r() * 2000);
        if (cmd === SmuxCmd.UPD) len = 8;
        const frame = new Uint8Array(SMUX_HEADER_SIZE + len);
        encodeSmuxHeader(frame, 0, version, cmd, len, streamId);
        for (let k = 0; k < len; k++) frame[SMUX_HEADER_SIZE + k] = Math.floor(r() * 256);
        parts.push(frame);
        want.push({ cmd, streamId, payload: Array.from(frame.subarray(SMUX_HEADER_SIZE)) });
      }
      const all = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
      let o = 0;
      for (const p of parts) {
        all.set(p, o);
        o += p.length;
      }
      const d = new SmuxFrameDecoder(version);
      const got: Plain[] = [];
      for (let off = 0; off < all.length;) {
        const m = 1 + Math.floor(r() * 70000);
        d.push(all.subarray(off, off + m));
        off += m;
        got.push(...drain(d));
      }
      expect(got).toEqual(want);
    }
  });
});
