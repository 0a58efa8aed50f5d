import { describe, expect, test } from "bun:test";
import { dataHeader, encodeEof, encodeExit, encodeMsg, encodeResize, type Frame, FrameDecoder } from "./frames.ts";

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Frames decoded from `bytes` pushed in pieces of `step`, DATA pieces joined per frame. */
function decodeAll(bytes: Uint8Array, step: number): unknown[] {
  const d = new FrameDecoder();
  const out: unknown[] = [];
  let data: number[] | null = null;
  const flush = () => {
    if (data !== null) out.push({ data });
    data = null;
  };
  for (let i = 0; i < bytes.length; i += step) {
    d.push(bytes.slice(i, i + step));
    for (let f: Frame | null; (f = d.next()) !== null;) {
      if (f.type === 0) (data ??= []).push(...f.data);
      else {
        flush();
        out.push(f);
      }
    }
  }
  flush();
  return out;
}

describe("remote stream frames", () => {
  const payload = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  const wire = concat([
    dataHeader(payload.length), payload,
    encodeMsg({ ready: true, offset: 12 }),
    encodeResize(132, 43),
    encodeEof(),
    encodeExit(-3),
  ]);

  test("golden header bytes", () => {
    expect([...encodeResize(80, 24)]).toEqual([2, 0, 0, 0, 4, 0, 80, 0, 24]);
    expect([...encodeExit(3)]).toEqual([4, 0, 0, 0, 4, 0, 0, 0, 3]);
    expect([...encodeEof()]).toEqual([3, 0, 0, 0, 0]);
    expect([...dataHeader(65536)]).toEqual([0, 0, 1, 0, 0]);
  });

  test("every split of the input decodes the same", () => {
    const want = decodeAll(wire, wire.length);
    expect(want).toEqual([
      { data: [...payload] },
      { type: 1, msg: { ready: true, offset: 12 } },
      { type: 2, cols: 132, rows: 43 },
      { type: 3 },
      { type: 4, status: -3 },
    ]);
    for (let step = 1; step < 40; step++) expect(decodeAll(wire, step)).toEqual(want);
  });

  test("random bytes only ever give frames or TUNNEL_PROTOCOL", () => {
    for (let i = 0; i < 2000; i++) {
      const d = new FrameDecoder();
      d.push(crypto.getRandomValues(new Uint8Array(1 + (i % 64))));
      try {
        while (d.next() !== null);
      } catch (e) {
        expect((e as { code: string }).code).toBe("TUNNEL_PROTOCOL");
      }
    }
  });
});
