import { describe, expect, test } from "bun:test";
import { ProxyError } from "../errors/mod.ts";
import { encodeUdpFrame, UDP_FRAME_HEADER, udpFrame, UdpFrameDecoder } from "./udp_frame.ts";

function drain(d: UdpFrameDecoder): { port: number; payload: number[] }[] {
  const out: { port: number; payload: number[] }[] = [];
  for (let i = 0; i < 100_000; i++) {
    const r = d.next();
    if (r === null) return out;
    out.push({ port: r.port, payload: Array.from(r.payload) });
  }
  throw new Error("decoder did not stop");
}

// DESIGN.md: "port u16 BE | length u16 BE | bytes".
const GOLDEN = [
  { port: 53, payload: [0x68, 0x69], bytes: [0x00, 0x35, 0x00, 0x02, 0x68, 0x69] },
  { port: 0xfffe, payload: [], bytes: [0xff, 0xfe, 0x00, 0x00] },
  { port: 0x1234, payload: new Array(0x0102).fill(9), bytes: [0x12, 0x34, 0x01, 0x02, ...new Array(0x0102).fill(9)] },
];

describe("udp frames", () => {
  for (const g of GOLDEN) {
    test(`golden: port ${g.port}, ${g.payload.length} bytes`, () => {
      expect(Array.from(udpFrame(g.port, Uint8Array.from(g.payload)))).toEqual(g.bytes);
      const d = new UdpFrameDecoder();
      d.push(Uint8Array.from(g.bytes));
      expect(drain(d)).toEqual([{ port: g.port, payload: g.payload }]);
      expect(d.bufferedBytes).toBe(0);
    });
  }

  test("every split point of three records gives the same records", () => {
    const all = Uint8Array.from(GOLDEN.flatMap((g) => g.bytes));
    const want = GOLDEN.map((g) => ({ port: g.port, payload: g.payload }));
    for (let a = 0; a <= all.length; a++) {
      for (const b of [a, Math.min(all.length, a + 1), Math.min(all.length, a + 5)]) {
        const d = new UdpFrameDecoder();
        const got = [];
        for (const part of [all.subarray(0, a), all.subarray(a, b), all.subarray(b)]) {
          d.push(part);
          got.push(...drain(d));
        }
        expect(got).toEqual(want);
      }
    }
  });

  test("payload is a view of the pushed chunk when the record is inside it", () => {
    const buf = udpFrame(9, Uint8Array.of(1, 2, 3));
    const d = new UdpFrameDecoder();
    d.push(buf);
    const r = d.next()!;
    expect(r.payload.buffer).toBe(buf.buffer);
    expect(r.payload.byteOffset).toBe(UDP_FRAME_HEADER);
  });

  test("port 0 and records over the bound are protocol errors, and the decoder stays dead", () => {
    const d = new UdpFrameDecoder();
    d.push(Uint8Array.of(0, 0, 0, 1, 7));
    expect(() => d.next()).toThrow(/port 0/);
    expect(() => d.next()).toThrow(ProxyError);
    const small = new UdpFrameDecoder({ maxDatagram: 100 });
    small.push(Uint8Array.of(0, 1, 0, 101));
    try {
      small.next();
      throw new Error("no error");
    } catch (e) {
      expect((e as ProxyError).code).toBe("TUNNEL_PROTOCOL");
      expect((e as ProxyError).message).toContain("101 bytes");
    }
  });

  test("encoder refuses bad ports and oversize payloads", () => {
    const out = new Uint8Array(70_000);
    expect(() => encodeUdpFrame(out, 0, 0, new Uint8Array(1))).toThrow(/port/);
    expect(() => encodeUdpFrame(out, 0, 65536, new Uint8Array(1))).toThrow(/port/);
    expect(() => encodeUdpFrame(out, 0, 1, new Uint8Array(65536))).toThrow(/65535/);
  });

  test("random bytes only ever give records or TUNNEL_PROTOCOL", () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xff;
    for (let i = 0; i < 2000; i++) {
      const d = new UdpFrameDecoder({ maxDatagram: 512 });
      const n = 1 + (rnd() % 64);
      const b = new Uint8Array(n);
      for (let j = 0; j < n; j++) b[j] = rnd();
      d.push(b);
      try {
        drain(d);
      } catch (e) {
        expect(e).toBeInstanceOf(ProxyError);
        expect((e as ProxyError).code).toBe("TUNNEL_PROTOCOL");
      }
    }
  });
});
