import { describe, expect, test } from "bun:test";
import { ProxyError } from "../errors/mod.ts";
import { fieldCount, fieldValue, Http1RequestParser, type HttpRequestHead } from "./http1_request.ts";

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);

function parseAll(input: Uint8Array, max = 16384): HttpRequestHead | null {
  const p = new Http1RequestParser({ maxHeadBytes: max });
  p.push(input);
  return p.next();
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ProxyError);
    return (e as ProxyError).code;
  }
  return "ok";
}

// What curl sends for `curl -p -x http://127.0.0.1:3128 --proxy-user u:secret https://example.com/`.
const CURL = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nProxy-Authorization: Basic dTpzZWNyZXQ=\r\nUser-Agent: curl/7.88.1\r\nProxy-Connection: Keep-Alive\r\n\r\n";

describe("golden requests", () => {
  test("curl's CONNECT", () => {
    expect(parseAll(bytes(CURL))).toEqual({
      method: "CONNECT",
      target: "example.com:443",
      minorVersion: 1,
      fields: [
        ["host", "example.com:443"],
        ["proxy-authorization", "Basic dTpzZWNyZXQ="],
        ["user-agent", "curl/7.88.1"],
        ["proxy-connection", "Keep-Alive"],
      ],
      headBytes: CURL.length,
    });
  });

  test("HTTP/1.0, no fields, leading empty line, trimmed values, obs-text", () => {
    const h = parseAll(Uint8Array.from([...bytes("\r\nCONNECT [::1]:8443 HTTP/1.0\r\nX-A: \t v\xe9 \t\r\nx-a:\r\n\r\n")].map((c) => c)));
    expect(h).not.toBeNull();
    expect(h!.method).toBe("CONNECT");
    expect(h!.target).toBe("[::1]:8443");
    expect(h!.minorVersion).toBe(0);
    expect(fieldCount(h!, "x-a")).toBe(2);
    expect(fieldValue(h!, "x-a")).toBe("v\u00c3\u00a9");
    expect(fieldValue(h!, "nope")).toBeNull();
    const bare = parseAll(bytes("POST http://a:1/ HTTP/1.1\r\n\r\n"))!;
    expect([bare.method, bare.target, bare.fields]).toEqual(["POST", "http://a:1/", []]);
  });

  test("bytes after the head are kept as views for the tunnel", () => {
    const p = new Http1RequestParser({ maxHeadBytes: 1024 });
    const hello = Uint8Array.of(0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5);
    const all = new Uint8Array([...bytes(CURL), ...hello]);
    p.push(all.subarray(0, 20));
    expect(p.next()).toBeNull();
    p.push(all.subarray(20));
    expect(p.next()!.headBytes).toBe(CURL.length);
    expect(p.next()).toBeNull(); // returned once
    const rest = p.rest();
    expect(Array.from(rest.flatMap((r) => Array.from(r)))).toEqual(Array.from(hello));
    expect(rest[0]!.buffer).toBe(all.buffer); // a view, not a copy
  });
});

describe("refusals", () => {
  test.each([
    ["CONNECT a:1 HTTP/1.1\n\n", "HTTP_BAD_REQUEST"], // bare LF
    ["CONNECT a:1 HTTP/1.1\r\nA: b\n\r\n", "HTTP_BAD_REQUEST"],
    ["CONNECT a:1 HTTP/1.1\rX", "HTTP_BAD_REQUEST"], // CR not followed by LF
    ["CONNECT a:1 HTTP/1.1\r\nA: b\r\n c\r\n\r\n", "HTTP_BAD_REQUEST"], // obs-fold
    ["CONNECT a:1 HTTP/1.1\r\n A: b\r\n\r\n", "HTTP_BAD_REQUEST"],
    ["CONNECT a:1 HTTP/1.1\r\nA : b\r\n\r\n", "HTTP_BAD_REQUEST"], // space before colon
    ["CONNECT a:1 HTTP/1.1\r\nNoColon\r\n\r\n", "HTTP_BAD_REQUEST"],
    ["CONNECT a:1 HTTP/1.1\r\n: v\r\n\r\n", "HTTP_BAD_REQUEST"],
    ["CONNECT a:1 HTTP/1.1\r\nA: b\x00\r\n\r\n", "HTTP_BAD_REQUEST"],
    ["CONNECT a:1 HTTP/1.1\r\nA: \x7f\r\n\r\n", "HTTP_BAD_REQUEST"],
    ["CONNECT  a:1 HTTP/1.1\r\n\r\n", "HTTP_BAD_REQUEST"], // two spaces
    ["CONNECT a:1 HTTP/1.1 \r\n\r\n", "HTTP_BAD_REQUEST"],
    ["CONNECT a:1\r\n\r\n", "HTTP_BAD_REQUEST"],
    ["CONNECT a:1 HTTP/2.0\r\n\r\n", "HTTP_BAD_REQUEST"],
    ["CONNECT a:1 http/1.1\r\n\r\n", "HTTP_BAD_REQUEST"],
    ["CONN(ECT a:1 HTTP/1.1\r\n\r\n", "HTTP_BAD_REQUEST"],
    ["\x16\x03\x01\x02\x00\x01", "HTTP_BAD_REQUEST"], // a TLS ClientHello on a plain port: refused at the first byte
    ["PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP_BAD_REQUEST"],
  ])("%j", (text, code) => {
    expect(codeOf(() => parseAll(Uint8Array.from(text, (c) => c.charCodeAt(0))))).toBe(code);
  });

  test("a binary first byte fails at once, without waiting for a line end", () => {
    const p = new Http1RequestParser({ maxHeadBytes: 1024 });
    p.push(Uint8Array.of(0x16));
    expect(codeOf(() => p.next())).toBe("HTTP_BAD_REQUEST");
  });

  test("a head over the bound is 431 as soon as the bound is passed, even without a line end", () => {
    const p = new Http1RequestParser({ maxHeadBytes: 1024 });
    p.push(bytes("CONNECT a:1 HTTP/1.1\r\nX: " + "a".repeat(990)));
    expect(p.next()).toBeNull();
    p.push(bytes("a".repeat(20)));
    expect(codeOf(() => p.next())).toBe("HTTP_HEADER_TOO_LARGE");
    // Exactly at the bound is fine.
    const exact = "CONNECT a:1 HTTP/1.1\r\nX: " + "a".repeat(1024 - 29) + "\r\n\r\n";
    expect(exact.length).toBe(1024);
    expect(parseAll(bytes(exact), 1024)).not.toBeNull();
    expect(codeOf(() => parseAll(bytes(exact + ""), 1023))).toBe("HTTP_HEADER_TOO_LARGE");
    // Leading empty lines count, so endless CRLFs are bounded too.
    expect(codeOf(() => parseAll(bytes("\r\n".repeat(600)), 1024))).toBe("HTTP_HEADER_TOO_LARGE");
  });

  test("too many fields is 431", () => {
    const p = new Http1RequestParser({ maxHeadBytes: 65536, maxFields: 3 });
    p.push(bytes("CONNECT a:1 HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"));
    expect(codeOf(() => p.next())).toBe("HTTP_HEADER_TOO_LARGE");
  });

  test("after an error the parser stays dead and holds nothing", () => {
    const p = new Http1RequestParser({ maxHeadBytes: 1024 });
    p.push(bytes("CONNECT a:1 HTTP/1.1\n"));
    let first: unknown;
    try {
      p.next();
    } catch (e) {
      first = e;
    }
    expect(first).toBeInstanceOf(ProxyError);
    p.push(bytes(CURL));
    expect(() => p.next()).toThrow(first as Error);
    expect(p.bufferedBytes).toBe(0);
  });
});

describe("every split point", () => {
  const input = bytes(CURL + "tail");
  const want = parseAll(input);
  test("two chunks", () => {
    for (let i = 0; i <= input.length; i++) {
      const p = new Http1RequestParser({ maxHeadBytes: 1024 });
      p.push(input.subarray(0, i));
      let got = p.next();
      if (got === null) {
        p.push(input.subarray(i));
        got = p.next();
      } else p.push(input.subarray(i));
      expect(got).toEqual(want);
      expect(new TextDecoder().decode(Uint8Array.from(p.rest().flatMap((r) => Array.from(r))))).toBe("tail");
    }
  });
  test("byte at a time", () => {
    const p = new Http1RequestParser({ maxHeadBytes: 1024 });
    let got: HttpRequestHead | null = null;
    for (let i = 0; i < input.length && got === null; i++) {
      p.push(input.subarray(i, i + 1));
      got = p.next();
      if (got !== null) expect(i).toBe(CURL.length - 1);
    }
    expect(got).toEqual(want);
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

describe("property: random input", () => {
  test("random bytes give a head, null, or a typed error; never anything else, and bounded", () => {
    const r = rng(7);
    const alphabet = ["CONNECT ", "a:1", " ", "HTTP/1.1", "\r\n", "\r", "\n", "X: y", ":", "\t", "\x00", "\xff", "\r\n\r\n", "GET", "/"];
    let heads = 0;
    let errors = 0;
    for (let iter = 0; iter < 4000; iter++) {
      const p = new Http1RequestParser({ maxHeadBytes: 256, maxFields: 8 });
      const parts: number[] = [];
      const push = (t: string) => {
        for (const ch of t) parts.push(ch.charCodeAt(0));
      };
      // Mostly request-shaped (a valid request line, random field material, a final empty line) so heads complete often.
      if (r() < 0.6) push("CONNECT a:1 HTTP/1.1\r\n");
      const n = Math.floor(r() * (r() < 0.5 ? 6 : 40));
      for (let k = 0; k < n; k++) {
        if (r() < 0.1) parts.push(Math.floor(r() * 256));
        else push(alphabet[Math.floor(r() * alphabet.length)]!);
      }
      if (r() < 0.5) push("\r\n\r\n");
      const all = Uint8Array.from(parts);
      try {
        for (let off = 0; off < all.length;) {
          const m = 1 + Math.floor(r() * 16);
          p.push(all.subarray(off, off + m));
          off += m;
          const h = p.next();
          if (h !== null) {
            heads++;
            expect(h.headBytes).toBeLessThanOrEqual(256);
            expect(h.fields.length).toBeLessThanOrEqual(8);
            break;
          }
        }
        expect(p.bufferedBytes).toBeLessThanOrEqual(all.length);
      } catch (e) {
        errors++;
        expect(e).toBeInstanceOf(ProxyError);
        expect(["HTTP_BAD_REQUEST", "HTTP_HEADER_TOO_LARGE"]).toContain((e as ProxyError).code);
        expect(() => p.next()).toThrow();
      }
    }
    expect(heads).toBeGreaterThan(20);
    expect(errors).toBeGreaterThan(500);
  });
});
