import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { base64, sha1 } from "./sha1.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const utf8 = (s: string) => new TextEncoder().encode(s);

describe("sha1", () => {
  test("RFC 3174 test vectors", () => {
    expect(hex(sha1(utf8("abc")))).toBe("a9993e364706816aba3e25717850c26c9cd0d89d");
    expect(hex(sha1(utf8("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")))).toBe("84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    expect(hex(sha1(new Uint8Array(0)))).toBe("da39a3ee5e6b4b0d3255bfef95601890afd80709");
  });

  test("RFC 6455 §1.3's handshake example", () => {
    expect(base64(sha1(utf8("dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11")))).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });

  test("every length around the block boundaries matches node:crypto", () => {
    for (let n = 0; n < 200; n++) {
      const data = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
      expect(hex(sha1(data))).toBe(createHash("sha1").update(data).digest("hex"));
      expect(base64(data)).toBe(Buffer.from(data).toString("base64"));
    }
  });
});
