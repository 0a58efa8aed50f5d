import { describe, expect, test } from "bun:test";
import { ProxyError } from "../errors/mod.ts";
import {
  encodeClosingResponse,
  fieldCount,
  fieldList,
  fieldValue,
  Http1RequestParser,
  Http1ResponseParser,
  type HttpRequestHead,
  type HttpResponseHead,
  listHasToken,
  reasonPhrase,
} from "./http1_head.ts";

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
    const bare = parseAll(bytes("POST http://a:1/ HTTP/1.0\r\n\r\n"))!;
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
    const exact = "CONNECT a:1 HTTP/1.0\r\nX: " + "a".repeat(1024 - 29) + "\r\n\r\n";
    expect(exact.length).toBe(1024);
    expect(parseAll(bytes(exact), 1024)).not.toBeNull();
    expect(codeOf(() => parseAll(bytes(exact + ""), 1023))).toBe("HTTP_HEADER_TOO_LARGE");
    // Leading empty lines count, so endless CRLFs are bounded too.
    expect(codeOf(() => parseAll(bytes("\r\n".repeat(600)), 1024))).toBe("HTTP_HEADER_TOO_LARGE");
  });

  test("too many fields is 431", () => {
    const p = new Http1RequestParser({ maxHeadBytes: 65536, maxFields: 3 });
    p.push(bytes("CONNECT a:1 HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"));
    expect(() => p.next()).toThrow("Request: more than 3 header fields");
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

describe("framing and singleton fields (every listener gets these)", () => {
  const H = "Host: a:1\r\n";
  test.each([
    ["no Host in HTTP/1.1", "CONNECT a:1 HTTP/1.1\r\n\r\n", /without a Host/],
    ["two Host fields", `CONNECT a:1 HTTP/1.1\r\n${H}${H}\r\n`, /more than one Host/i],
    ["two Host fields in HTTP/1.0", `CONNECT a:1 HTTP/1.0\r\n${H}Host: b:2\r\n\r\n`, /more than one Host/i],
    ["a Host that is not host[:port]", "CONNECT a:1 HTTP/1.1\r\nHost: a b\r\n\r\n", /Host is not/],
    ["Content-Length 0 then 5", `CONNECT a:1 HTTP/1.1\r\n${H}Content-Length: 0\r\nContent-Length: 5\r\n\r\n`, /Content-Length/],
    ["the same Content-Length twice", `CONNECT a:1 HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\n`, /Content-Length/],
    ["a Content-Length list", `CONNECT a:1 HTTP/1.1\r\n${H}Content-Length: 5, 5\r\n\r\n`, /digits/],
    ["a signed Content-Length", `CONNECT a:1 HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\n`, /digits/],
    ["Content-Length and Transfer-Encoding", `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n`, /Both/],
    ["two Transfer-Encoding fields", `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n`, /Transfer-Encoding/],
    ["Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", /HTTP\/1.0/],
    ["two Proxy-Authorization fields", `CONNECT a:1 HTTP/1.1\r\n${H}Proxy-Authorization: Basic dTpzZWNyZXQ=\r\nProxy-Authorization: Basic eDp5\r\n\r\n`, /Proxy-Authorization/],
    ["two Authorization fields", `GET / HTTP/1.1\r\n${H}Authorization: Bearer a\r\nauthorization: Bearer b\r\n\r\n`, /Authorization/],
  ])("%s: 400", (_name, text, re) => {
    let err: unknown;
    try {
      parseAll(bytes(text));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProxyError);
    expect((err as ProxyError).code).toBe("HTTP_BAD_REQUEST");
    expect((err as Error).message).toMatch(re);
  });

  test("what stays legal: HTTP/1.0 without Host, Content-Length 0, one Transfer-Encoding, list fields repeated", () => {
    expect(parseAll(bytes("CONNECT a:1 HTTP/1.0\r\n\r\n"))!.minorVersion).toBe(0);
    expect(fieldValue(parseAll(bytes(`CONNECT a:1 HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`))!, "content-length")).toBe("0");
    expect(fieldValue(parseAll(bytes(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`))!, "transfer-encoding")).toBe("chunked");
    const h = parseAll(bytes(`GET / HTTP/1.1\r\n${H}Connection: keep-alive\r\nConnection: Upgrade\r\nHost2: x\r\n\r\n`))!;
    expect(fieldList(h, "connection")).toBe("keep-alive, Upgrade");
    expect(listHasToken(fieldList(h, "connection"), "upgrade")).toBe(true);
    expect(listHasToken(fieldList(h, "nope"), "upgrade")).toBe(false);
    expect(fieldValue(parseAll(bytes("CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n"))!, "host")).toBe("[::1]:443");
  });
});

function parseResponse(input: Uint8Array, max = 16384): HttpResponseHead | null {
  const p = new Http1ResponseParser({ maxHeadBytes: max, errorCode: "TUNNEL_PROTOCOL" });
  p.push(input);
  return p.next();
}

const SWITCHING = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: edgemux-smux/2\r\n\r\n";

describe("responses", () => {
  test("golden: a 101, a refusal with a body behind it, an empty reason, obs-text and HTAB in the reason", () => {
    expect(parseResponse(bytes(SWITCHING))).toEqual({
      status: 101,
      reason: "Switching Protocols",
      minorVersion: 1,
      fields: [["connection", "Upgrade"], ["upgrade", "edgemux-smux/2"]],
      headBytes: SWITCHING.length,
    });
    const refusal = "HTTP/1.0 401 Unauthorized\r\nEdgemux-Error: 10\r\nContent-Length: 4\r\n\r\nbody";
    const p = new Http1ResponseParser({ maxHeadBytes: 1024, errorCode: "TUNNEL_PROTOCOL" });
    p.push(bytes(refusal));
    const h = p.next()!;
    expect([h.status, h.reason, h.minorVersion, fieldValue(h, "edgemux-error")]).toEqual([401, "Unauthorized", 0, "10"]);
    expect(new TextDecoder().decode(p.rest()[0])).toBe("body");
    expect(parseResponse(bytes("HTTP/1.1 502\r\n\r\n"))!.reason).toBe("");
    expect(parseResponse(bytes("HTTP/1.1 502 \r\n\r\n"))!.reason).toBe("");
    expect(parseResponse(Uint8Array.from("HTTP/1.1 200 \xc9a\tva\r\n\r\n", (c) => c.charCodeAt(0)))!.reason).toBe("\xc9a\tva");
  });

  test.each([
    ["HTTP/1.1 101 Switching Protocols\n\n"], // bare LF
    ["HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\n\r\n"],
    ["HTTP/1.1 101 OK\r\nA: b\r\n folded\r\n\r\n"], // obs-fold
    ["HTTP/1.1 101 OK\r\nA: b\x00\r\n\r\n"],
    ["HTTP/1.1 101 OK\r\nA: b\x7f\r\n\r\n"],
    ["HTTP/1.1 101 OK\r\nA: b\rc\r\n\r\n"],
    ["HTTP/1.1 101 O\x00K\r\n\r\n"],
    ["HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"],
    ["HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"],
    ["HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"],
    ["\r\nHTTP/1.1 101 OK\r\n\r\n"], // empty lines before a status line are not skipped (only before a request line)
    ["HTTP/1.1 1011 OK\r\n\r\n"],
    ["HTTP/1.1 99 OK\r\n\r\n"],
    ["HTTP/1.1  101 OK\r\n\r\n"],
    ["HTTP/2 101 OK\r\n\r\n"],
    ["http/1.1 101 OK\r\n\r\n"],
    ["HTTP/1.1 101 OK\r\nA : b\r\n\r\n"],
    ["GET / HTTP/1.1\r\nHost: a\r\n\r\n"],
  ])("%j is the configured error", (text) => {
    let err: unknown;
    try {
      parseResponse(Uint8Array.from(text, (c) => c.charCodeAt(0)));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProxyError);
    expect((err as ProxyError).code).toBe("TUNNEL_PROTOCOL");
    expect((err as ProxyError).source).toBe("upstream");
  });

  test("a response head over the bound fails without waiting for its end", () => {
    const p = new Http1ResponseParser({ maxHeadBytes: 64, errorCode: "TUNNEL_PROTOCOL" });
    p.push(bytes(`HTTP/1.1 101 OK\r\nX: ${"a".repeat(60)}`));
    expect(() => p.next()).toThrow(/over 64 bytes/);
  });
});

describe("responses we write", () => {
  test("one reason-phrase table, and a closing response that cannot be split", () => {
    expect([101, 400, 407, 429, 431, 503, 599].map(reasonPhrase)).toEqual(["Switching Protocols", "Bad Request", "Proxy Authentication Required", "Too Many Requests", "Request Header Fields Too Large", "Service Unavailable", "Error"]);
    const r = encodeClosingResponse(403, [["Edgemux-Reason", "no\r\nSet-Cookie: x"]], "denied\r\nX: y");
    const h = parseResponse(r)!;
    expect(h.status).toBe(403);
    expect(h.fields.map(([n]) => n)).toEqual(["edgemux-reason", "content-type", "content-length", "connection"]);
    expect(fieldValue(h, "edgemux-reason")).toBe("no??Set-Cookie: x");
    expect(new TextDecoder().decode(r.subarray(h.headBytes))).toBe("denied??X: y\n");
    expect(fieldValue(h, "content-length")).toBe(String(r.length - h.headBytes));
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
  test("responses: two chunks and byte at a time", () => {
    const resp = bytes(SWITCHING + "tail");
    const wantResp = parseResponse(resp);
    for (let i = 0; i <= resp.length; i++) {
      const p = new Http1ResponseParser({ maxHeadBytes: 1024, errorCode: "TUNNEL_PROTOCOL" });
      p.push(resp.subarray(0, i));
      let got = p.next();
      p.push(resp.subarray(i));
      got ??= p.next();
      expect(got).toEqual(wantResp);
      expect(new TextDecoder().decode(Uint8Array.from(p.rest().flatMap((r) => Array.from(r))))).toBe("tail");
    }
    const p = new Http1ResponseParser({ maxHeadBytes: 1024, errorCode: "TUNNEL_PROTOCOL" });
    let got: HttpResponseHead | null = null;
    for (let i = 0; i < resp.length && got === null; i++) {
      p.push(resp.subarray(i, i + 1));
      got = p.next();
      if (got !== null) expect(i).toBe(SWITCHING.length - 1);
    }
    expect(got).toEqual(wantResp);
  });
  test("a bad byte is refused at the byte it arrives, at any split", () => {
    for (const [make, text] of [
      [() => new Http1RequestParser({ maxHeadBytes: 1024 }), CURL.replace("User-Agent: curl", "User-Agent: cu\x00rl")],
      [() => new Http1ResponseParser({ maxHeadBytes: 1024, errorCode: "TUNNEL_PROTOCOL" }), SWITCHING.replace("Upgrade: edge", "Upgrade: ed\nge")],
    ] as [() => AnyParser, string][]) {
      const at = text.search(/[\x00\n](?<!\r\n)/);
      const input = bytes(text);
      for (let i = 0; i <= at; i++) {
        const p = make();
        p.push(input.subarray(0, i));
        expect(p.next()).toBeNull();
        p.push(input.subarray(i, at + 1));
        expect(() => p.next()).toThrow(ProxyError);
      }
    }
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

type AnyParser = Http1RequestParser | Http1ResponseParser;

/** Random, mostly message-shaped input through `make()` in random chunks: a head, null, or one of `codes`; never anything else. */
function fuzz(make: () => AnyParser, startLine: string, codes: string[], seed: number): { heads: number; errors: number } {
  const r = rng(seed);
  const alphabet = ["CONNECT ", "a:1", " ", "HTTP/1.1", "\r\n", "\r", "\n", "X: y", ":", "\t", "\x00", "\xff", "\x7f", "\r\n\r\n", "GET", "/", "101", "Host: h", "Content-Length: 0", "Transfer-Encoding: chunked", "Authorization: x"];
  let heads = 0;
  let errors = 0;
  for (let iter = 0; iter < 4000; iter++) {
    const p = make();
    const parts: number[] = [];
    const push = (t: string) => {
      for (const ch of t) parts.push(ch.charCodeAt(0));
    };
    // Mostly message-shaped (a valid start line, random field material, a final empty line) so heads complete often.
    if (r() < 0.6) push(startLine);
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
          // Whatever got through obeys the framing rules.
          expect(fieldCount(h, "content-length")).toBeLessThanOrEqual(1);
          expect(fieldCount(h, "content-length") + fieldCount(h, "transfer-encoding")).toBeLessThanOrEqual(1);
          break;
        }
      }
      expect(p.bufferedBytes).toBeLessThanOrEqual(all.length);
    } catch (e) {
      errors++;
      expect(e).toBeInstanceOf(ProxyError);
      expect(codes).toContain((e as ProxyError).code);
      expect(() => p.next()).toThrow();
    }
  }
  return { heads, errors };
}

describe("property: random input", () => {
  test("requests: random bytes give a head, null, or a typed error; never anything else, and bounded", () => {
    const { heads, errors } = fuzz(() => new Http1RequestParser({ maxHeadBytes: 256, maxFields: 8 }), "CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n", ["HTTP_BAD_REQUEST", "HTTP_HEADER_TOO_LARGE"], 7);
    expect(heads).toBeGreaterThan(20);
    expect(errors).toBeGreaterThan(500);
  });
  test("responses: the same", () => {
    const { heads, errors } = fuzz(() => new Http1ResponseParser({ maxHeadBytes: 256, maxFields: 8, errorCode: "TUNNEL_PROTOCOL" }), "HTTP/1.1 101 Switching Protocols\r\n", ["TUNNEL_PROTOCOL"], 11);
    expect(heads).toBeGreaterThan(20);
    expect(errors).toBeGreaterThan(500);
  });
});
