import { describe, expect, test } from "bun:test";
import { ProxyError } from "../errors/mod.ts";
import { BodyFramer, BodyKind, requestBodyOf, responseBodyOf } from "./body.ts";

const enc = new TextEncoder();
const chunked = () => new BodyFramer(BodyKind.Chunked, 0, "HTTP_BAD_REQUEST", "downstream", 64);

/** Feeds `text` in pieces cut at `cuts`; returns how many bytes belonged to the body and whether it ended. */
function run(f: BodyFramer, text: string, cuts: number[] = []): { body: number; done: boolean } {
  const b = enc.encode(text);
  let body = 0;
  let from = 0;
  for (const at of [...cuts, b.length]) {
    const piece = b.subarray(from, at);
    from = at;
    if (f.done) break;
    body += f.feed(piece);
  }
  return { body, done: f.done };
}

const GOOD = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n";

describe("chunked framing", () => {
  test("a whole body, then the next message is not taken", () => {
    const f = chunked();
    expect(run(f, GOOD + "GET / HTTP/1.1\r\n")).toEqual({ body: GOOD.length, done: true });
    expect(f.bytes).toBe(GOOD.length);
  });

  test("every split point gives the same end", () => {
    for (let i = 0; i <= GOOD.length; i++) {
      for (const j of [i, Math.min(GOOD.length, i + 3)]) {
        expect({ i, j, r: run(chunked(), GOOD + "NEXT", [i, j]) }).toEqual({ i, j, r: { body: GOOD.length, done: true } });
      }
    }
  });

  const bad: [string, string][] = [
    ["not hex", "zz\r\nhello\r\n0\r\n\r\n"],
    ["a sign", "+5\r\nhello\r\n0\r\n\r\n"],
    ["0x", "0x5\r\nhello\r\n0\r\n\r\n"],
    ["whitespace after the size", "5 \r\nhello\r\n0\r\n\r\n"],
    ["bare LF after the size", "5\nhello\r\n0\r\n\r\n"],
    ["data longer than the size", "3\r\nhello\r\n0\r\n\r\n"],
    ["data not followed by CRLF", "5\r\nhelloXX0\r\n\r\n"],
    ["too many digits", "00000000000001\r\nx\r\n0\r\n\r\n"],
    ["a control byte in an extension", "5;a=\x01\r\nhello\r\n0\r\n\r\n"],
    ["obs-fold in a trailer", "0\r\nX-A: 1\r\n  folded\r\n\r\n"],
    ["a trailer without a colon", "0\r\nX-A\r\n\r\n"],
    ["a trailer section too large", `0\r\nX-A: ${"a".repeat(100)}\r\n\r\n`],
    ["bare LF at the end", "0\r\n\n"],
  ];
  for (const [name, text] of bad) {
    test(`refused: ${name}`, () => {
      let err: unknown = null;
      try {
        run(chunked(), text);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProxyError);
      expect((err as ProxyError).code).toBe("HTTP_BAD_REQUEST");
    });
  }

  test("random bytes only ever end the body or raise the typed error", () => {
    let seed = 7;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 16) & 0xff;
    for (let k = 0; k < 2000; k++) {
      const b = new Uint8Array(1 + (rnd() % 64));
      for (let i = 0; i < b.length; i++) b[i] = k % 2 ? rnd() : "0123456789abcdef\r\n;"[rnd() % 19]!.charCodeAt(0);
      const f = chunked();
      try {
        const n = f.feed(b);
        expect(n).toBeLessThanOrEqual(b.length);
        if (!f.done) expect(n).toBe(b.length);
      } catch (e) {
        expect(e).toBeInstanceOf(ProxyError);
      }
    }
  });
});

describe("payload views (HTTP/2 towards the client frames the body itself)", () => {
  test("chunked: the content without chunk framing, at every split point", () => {
    const b = enc.encode(GOOD + "NEXT");
    for (let cut = 0; cut <= b.length; cut++) {
      const f = chunked();
      const payload: Uint8Array[] = [];
      f.feed(b.subarray(0, cut), payload);
      if (!f.done) f.feed(b.subarray(cut), payload);
      const text = payload.map((p) => new TextDecoder().decode(p)).join("");
      expect([cut, text, f.done]).toEqual([cut, "hello world", true]);
    }
  });

  test("a length: the body's bytes only", () => {
    const f = new BodyFramer(BodyKind.Length, 4, "HTTP_BAD_RESPONSE", "upstream");
    const payload: Uint8Array[] = [];
    expect(f.feed(enc.encode("abcdef"), payload)).toBe(4);
    expect(payload.map((p) => new TextDecoder().decode(p))).toEqual(["abcd"]);
  });
});

describe("Content-Length and until-close framing", () => {
  test("takes exactly the length across chunks", () => {
    const f = new BodyFramer(BodyKind.Length, 7, "HTTP_BAD_REQUEST", "downstream");
    expect(f.feed(enc.encode("abc"))).toBe(3);
    expect(f.done).toBe(false);
    expect(f.feed(enc.encode("defgNEXT"))).toBe(4);
    expect(f.done).toBe(true);
    expect(f.feed(enc.encode("more"))).toBe(0);
  });
  test("no body and length 0 are done at once; until-close takes everything", () => {
    expect(new BodyFramer(BodyKind.None, 0, "HTTP_BAD_REQUEST", "downstream").done).toBe(true);
    expect(new BodyFramer(BodyKind.Length, 0, "HTTP_BAD_REQUEST", "downstream").done).toBe(true);
    const f = new BodyFramer(BodyKind.UntilClose, 0, "HTTP_BAD_RESPONSE", "upstream");
    expect(f.feed(enc.encode("everything"))).toBe(10);
    expect(f.done).toBe(false);
  });
});

describe("which framing a message has (RFC 9112 §6.3)", () => {
  test("requests: chunked alone, a length, or none", () => {
    expect(requestBodyOf([["transfer-encoding", "Chunked"]])).toEqual({ kind: BodyKind.Chunked, length: 0 });
    expect(requestBodyOf([["content-length", "12"]])).toEqual({ kind: BodyKind.Length, length: 12 });
    expect(requestBodyOf([["content-length", "0"]])).toEqual({ kind: BodyKind.None, length: 0 });
    expect(requestBodyOf([])).toEqual({ kind: BodyKind.None, length: 0 });
    expect(() => requestBodyOf([["transfer-encoding", "gzip, chunked"]])).toThrow(ProxyError);
    expect(() => requestBodyOf([["transfer-encoding", "identity"]])).toThrow(ProxyError);
  });
  test("responses: HEAD, 1xx, 204, 304 have none; chunked last frames; other codings and no length run until close", () => {
    const cl: [string, string][] = [["content-length", "5"]];
    expect(responseBodyOf("HEAD", 200, cl).kind).toBe(BodyKind.None);
    expect(responseBodyOf("GET", 204, cl).kind).toBe(BodyKind.None);
    expect(responseBodyOf("GET", 304, cl).kind).toBe(BodyKind.None);
    expect(responseBodyOf("GET", 200, cl)).toEqual({ kind: BodyKind.Length, length: 5 });
    expect(responseBodyOf("GET", 200, [["transfer-encoding", "gzip, chunked"]]).kind).toBe(BodyKind.Chunked);
    expect(responseBodyOf("GET", 200, [["transfer-encoding", "gzip"]]).kind).toBe(BodyKind.UntilClose);
    expect(responseBodyOf("GET", 200, []).kind).toBe(BodyKind.UntilClose);
  });
});
