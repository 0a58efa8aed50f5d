import { describe, expect, test } from "bun:test";
import { ChunkQueue } from "./chunk_queue.ts";

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => i & 0xff);

describe("ChunkQueue", () => {
  test("reads within one chunk are views; reads across chunks are copies with the same bytes", () => {
    const data = bytes(64);
    for (let cut = 1; cut < data.length; cut++) {
      const q = new ChunkQueue();
      q.push(data.subarray(0, cut));
      q.push(data.subarray(cut));
      expect(q.length).toBe(64);
      const peeked = q.peek(10);
      expect([...peeked]).toEqual([...data.subarray(0, 10)]);
      expect(peeked.buffer === data.buffer).toBe(cut >= 10);
      q.skip(3);
      expect([...q.take(20)]).toEqual([...data.subarray(3, 23)]);
      expect(q.length).toBe(41);
      const rest = q.drain();
      expect([...Buffer.concat(rest.map((r) => Buffer.from(r)))]).toEqual([...data.subarray(23)]);
      expect(q.length).toBe(0);
    }
  });

  test("peek into a scratch buffer when the bytes span chunks", () => {
    const q = new ChunkQueue();
    q.push(new Uint8Array([1, 2]));
    q.push(new Uint8Array([3, 4, 5]));
    const scratch = new Uint8Array(4);
    expect(q.peek(4, scratch)).toBe(scratch);
    expect([...scratch]).toEqual([1, 2, 3, 4]);
    expect(q.length).toBe(5);
  });

  test("empty chunks are ignored; clear empties", () => {
    const q = new ChunkQueue();
    q.push(new Uint8Array(0));
    expect(q.length).toBe(0);
    q.push(bytes(5));
    q.clear();
    expect(q.length).toBe(0);
    expect(q.drain()).toEqual([]);
  });
});
