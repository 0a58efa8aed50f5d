import { describe, expect, test } from "bun:test";
import { ProxyError } from "../errors/mod.ts";
import { encodeHeaders, HpackDecoder, STATIC_TABLE } from "./hpack.ts";
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from "./hpack_huffman.ts";

const hex = (s: string) => Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!.map((h) => parseInt(h, 16)));
const latin = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

describe("RFC 7541 Appendix C", () => {
  test("C.3: requests without Huffman, one decoder (dynamic table carries over)", () => {
    const d = new HpackDecoder();
    expect(d.decode(hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d")).fields).toEqual([
      [":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"],
    ]);
    expect(d.tableSize).toBe(57);
    expect(d.decode(hex("8286 84be 5808 6e6f 2d63 6163 6865")).fields).toEqual([
      [":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"], ["cache-control", "no-cache"],
    ]);
    expect(d.tableSize).toBe(110);
    expect(d.decode(hex("8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65")).fields).toEqual([
      [":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"], ["custom-key", "custom-value"],
    ]);
    expect([d.tableSize, d.tableEntries]).toEqual([164, 3]);
  });

  test("C.4: the same requests with Huffman", () => {
    const d = new HpackDecoder();
    expect(d.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")).fields[3]).toEqual([":authority", "www.example.com"]);
    expect(d.decode(hex("8286 84be 5886 a8eb 1064 9cbf")).fields[4]).toEqual(["cache-control", "no-cache"]);
    expect(d.decode(hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")).fields[4]).toEqual(["custom-key", "custom-value"]);
    expect(d.tableSize).toBe(164);
  });

  test("Huffman encoder reproduces the RFC's strings", () => {
    const enc = (s: string) => {
      const src = latin(s);
      const out = new Uint8Array(huffmanEncodedLength(src));
      expect(huffmanEncode(src, out, 0)).toBe(out.length);
      return Array.from(out);
    };
    expect(enc("www.example.com")).toEqual(Array.from(hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff")));
    expect(enc("no-cache")).toEqual(Array.from(hex("a8eb 1064 9cbf")));
    expect(enc("custom-key")).toEqual(Array.from(hex("25a8 49e9 5ba9 7d7f")));
    expect(enc("custom-value")).toEqual(Array.from(hex("25a8 49e9 5bb8 e8b4 bf")));
  });
});

describe("Huffman", () => {
  test("every byte value round-trips, alone and in runs", () => {
    for (let s = 0; s < 256; s++) {
      for (const n of [1, 2, 7, 8, 9]) {
        const src = new Uint8Array(n).fill(s);
        const out = new Uint8Array(huffmanEncodedLength(src));
        huffmanEncode(src, out, 0);
        expect(huffmanDecode(out, 0, out.length)).toBe(String.fromCharCode(s).repeat(n));
      }
    }
  });

  test("padding rules: more than 7 bits, or not ones, is an error", () => {
    // "a" is 00011 (5 bits): padded with 111 → 0x1f.
    expect(huffmanDecode(Uint8Array.of(0x1f), 0, 1)).toBe("a");
    expect(huffmanDecode(Uint8Array.of(0x18), 0, 1)).toBeNull(); // padding 000
    expect(huffmanDecode(Uint8Array.of(0x1f, 0xff), 0, 2)).toBeNull(); // 11 bits of padding
    expect(huffmanDecode(Uint8Array.of(0xff, 0xff, 0xff, 0xff), 0, 4)).toBeNull(); // EOS
    expect(huffmanDecode(Uint8Array.of(), 0, 0)).toBe("");
  });
});

describe("decoder rules and bounds", () => {
  const err = (b: Uint8Array, d = new HpackDecoder()) => {
    try {
      d.decode(b);
    } catch (e) {
      expect(e).toBeInstanceOf(ProxyError);
      expect((e as ProxyError).code).toBe("H2_PROTOCOL");
      expect((e as { h2Code: number }).h2Code).toBe(9);
      return true;
    }
    return false;
  };
  test("index 0, an index past the tables, and truncations are COMPRESSION_ERROR", () => {
    expect(err(Uint8Array.of(0x80))).toBe(true);
    expect(err(Uint8Array.of(0xbe))).toBe(true); // 62: dynamic table empty
    expect(err(Uint8Array.of(0xff, 0x80))).toBe(true); // integer runs past the block
    expect(err(Uint8Array.of(0x00, 0x05, 0x61))).toBe(true); // string longer than the block
    expect(err(Uint8Array.of(0x40))).toBe(true); // literal without its name
    expect(err(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0x0f))).toBe(true); // integer too large
  });
  test("table size update: only first in the block, only up to our setting", () => {
    expect(err(Uint8Array.of(0x82, 0x20))).toBe(true);
    expect(err(hex("3fe2 1f"))).toBe(true); // 4097 > 4096
    expect(err(hex("3fe1 1f"))).toBe(false); // 4096 is fine
    const d = new HpackDecoder();
    d.decode(hex("4001 6101 62")); // a: b, indexed
    expect(d.tableEntries).toBe(1);
    expect(d.decode(Uint8Array.of(0x20, 0x82)).fields).toEqual([[":method", "GET"]]); // size 0 evicts everything
    expect(d.tableEntries).toBe(0);
  });
  test("eviction keeps the table within its size", () => {
    const d = new HpackDecoder(100);
    const lit = (n: string, v: string) => [0x40, n.length, ...latin(n), v.length, ...latin(v)];
    d.decode(Uint8Array.from([...lit("aa", "bb"), ...lit("cc", "dd"), ...lit("ee", "ff")])); // 36 each: only two fit
    expect([d.tableEntries, d.tableSize]).toEqual([2, 72]);
    expect(d.decode(Uint8Array.of(0xbe, 0xbf)).fields).toEqual([["ee", "ff"], ["cc", "dd"]]);
    // An entry bigger than the table empties it.
    d.decode(Uint8Array.from(lit("x".repeat(40), "y".repeat(40))));
    expect(d.tableEntries).toBe(0);
  });
  test("a list over maxListBytes is decoded to the end (table in sync) but flagged and truncated", () => {
    const d = new HpackDecoder(4096, 100);
    // 10 references to one indexed 60-byte entry: 10x amplification is cut at the cap.
    const lit = [0x40, 10, ...latin("k".repeat(10)), 18, ...latin("v".repeat(18))];
    const r = d.decode(Uint8Array.from([...lit, ...new Array(10).fill(0xbe)]));
    expect(r.tooLarge).toBe(true);
    expect(r.fields).toHaveLength(1);
    expect(d.tableEntries).toBe(1);
    expect(d.decode(Uint8Array.of(0xbe)).fields).toEqual([["k".repeat(10), "v".repeat(18)]]);
  });
});

describe("encoder", () => {
  test("static matches are one byte, the rest literals without indexing; our decoder reads them back", () => {
    const fields: [string, string][] = [[":status", "200"], [":status", "503"], ["server", "edgemux"], ["x-trace", "a".repeat(200)], [":method", "CONNECT"], [":authority", "web.example:443"]];
    const b = encodeHeaders(fields);
    expect(b[0]).toBe(0x88);
    expect(b[1]).toBe(0x08); // literal without indexing, name index 8 (:status)
    const d = new HpackDecoder();
    expect(d.decode(b).fields).toEqual(fields);
    expect(d.tableEntries).toBe(0); // nothing was indexed
  });
  test("every static entry round-trips", () => {
    const d = new HpackDecoder();
    expect(d.decode(encodeHeaders(STATIC_TABLE.map(([n, v]) => [n, v]))).fields).toEqual(STATIC_TABLE.map(([n, v]) => [n, v]));
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

test("property: random blocks decode or throw COMPRESSION_ERROR, and the table stays bounded", () => {
  const r = rng(1234);
  let ok = 0;
  let bad = 0;
  for (let iter = 0; iter < 5000; iter++) {
    const d = new HpackDecoder(256, 1024);
    const n = Math.floor(r() * 60);
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = r() < 0.3 ? [0x40, 0x82, 0x01, 0x61, 0x00, 0x20, 0xbe][Math.floor(r() * 7)]! : Math.floor(r() * 256);
    try {
      const res = d.decode(b);
      ok++;
      let size = 0;
      for (const [k, v] of res.fields) size += k.length + v.length + 32;
      expect(size).toBeLessThanOrEqual(1024);
    } catch (e) {
      bad++;
      expect((e as ProxyError).code).toBe("H2_PROTOCOL");
    }
    expect(d.tableSize).toBeLessThanOrEqual(256);
  }
  expect(ok).toBeGreaterThan(100);
  expect(bad).toBeGreaterThan(100);
});
