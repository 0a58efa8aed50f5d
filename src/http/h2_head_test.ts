import { describe, expect, test } from "bun:test";
import { ProxyError } from "../errors/mod.ts";
import { h2ResponseFields, readH2Request } from "./h2_head.ts";

const req = (extra: [string, string][] = [], pseudo: [string, string][] = [[":method", "GET"], [":scheme", "https"], [":authority", "app.example:8443"], [":path", "/a?b=1"]]) =>
  readH2Request([...pseudo, ...extra]);

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    return (err as ProxyError).code;
  }
  return "ok";
}

describe("readH2Request", () => {
  test("an HTTP/2 request as an HTTP/1.1 head: Host from :authority first, cookie crumbs joined (RFC 9113 §8.2.3)", () => {
    const r = req([["accept", "*/*"], ["cookie", "a=1"], ["cookie", "b=2"], ["content-length", "5"]]);
    expect(r.head).toEqual({
      method: "GET",
      target: "/a?b=1",
      minorVersion: 1,
      fields: [["host", "app.example:8443"], ["accept", "*/*"], ["content-length", "5"], ["cookie", "a=1; b=2"]],
      headBytes: 0,
    });
    expect(r.authority).toBe("app.example:8443");
    expect(r.contentLength).toBe(5);
  });

  test("Host stands in for a missing :authority; neither means no Host", () => {
    const pseudo: [string, string][] = [[":method", "GET"], [":scheme", "https"], [":path", "/"]];
    expect(req([["host", "h.example"]], pseudo).authority).toBe("h.example");
    expect(req([], pseudo)).toMatchObject({ authority: null, head: { fields: [] } });
    expect(req([["host", "APP.example:8443"]]).head.fields[0]).toEqual(["host", "app.example:8443"]);
  });

  test("OPTIONS * is the one path that does not start with /", () => {
    expect(req([], [[":method", "OPTIONS"], [":scheme", "https"], [":authority", "a"], [":path", "*"]]).head.target).toBe("*");
    expect(codeOf(() => req([], [[":method", "GET"], [":scheme", "https"], [":authority", "a"], [":path", "*"]]))).toBe("HTTP_BAD_REQUEST");
  });

  test("malformed requests are 400 (§8.1.1, §8.2, §8.3), CONNECT is 405", () => {
    const bad: [string, () => unknown][] = [
      ["uppercase name", () => req([["Accept", "x"]])],
      ["connection-specific field", () => req([["connection", "keep-alive"]])],
      ["transfer-encoding", () => req([["transfer-encoding", "chunked"]])],
      ["te other than trailers", () => req([["te", "gzip"]])],
      ["value with CR", () => req([["x-a", "a\rb"]])],
      ["value with leading space", () => req([["x-a", " a"]])],
      ["pseudo after regular", () => req([["x-a", "1"], [":method", "GET"]])],
      ["repeated :path", () => req([[":path", "/x"]])],
      ["unknown pseudo", () => req([], [[":method", "GET"], [":scheme", "https"], [":path", "/"], [":protocol", "websocket"]])],
      ["no :scheme", () => req([], [[":method", "GET"], [":path", "/"]])],
      ["no :path", () => req([], [[":method", "GET"], [":scheme", "https"]])],
      ["no :method", () => req([], [[":scheme", "https"], [":path", "/"]])],
      ["empty :path", () => req([], [[":method", "GET"], [":scheme", "https"], [":path", ""]])],
      ["scheme ftp", () => req([], [[":method", "GET"], [":scheme", "ftp"], [":path", "/"]])],
      ["host differs from :authority", () => req([["host", "other.example"]])],
      ["authority with userinfo", () => req([], [[":method", "GET"], [":scheme", "https"], [":authority", "u@a.example"], [":path", "/"]])],
      ["content-length not digits", () => req([["content-length", "1e3"]])],
      ["content-length twice", () => req([["content-length", "1"], ["content-length", "1"]])],
      ["two host fields", () => req([["host", "app.example:8443"], ["host", "app.example:8443"]])],
    ];
    for (const [what, f] of bad) expect([what, codeOf(f)]).toEqual([what, "HTTP_BAD_REQUEST"]);
    expect(codeOf(() => req([], [[":method", "CONNECT"], [":authority", "a.example:443"]]))).toBe("HTTP_METHOD_NOT_ALLOWED");
  });

  test("random header lists only ever produce the typed error", () => {
    const names = [":method", ":path", ":scheme", ":authority", ":x", "host", "cookie", "te", "content-length", "A", "x-a", ""];
    const values = ["GET", "/", "https", "a.example", "", " x", "trailers", "12", "a\nb", "*"];
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
    for (let i = 0; i < 2000; i++) {
      const fields: [string, string][] = Array.from({ length: rnd(7) }, () => [names[rnd(names.length)]!, values[rnd(values.length)]!]);
      try {
        readH2Request(fields);
      } catch (err) {
        expect(err).toBeInstanceOf(ProxyError);
      }
    }
  });
});

describe("h2ResponseFields", () => {
  test(":status first, names lowercased, connection-specific fields dropped (§8.2.2)", () => {
    expect(h2ResponseFields(200, [["Content-Type", "text/plain"], ["transfer-encoding", "chunked"], ["Keep-Alive", "timeout=5"], ["Strict-Transport-Security", "max-age=1"]])).toEqual([
      [":status", "200"],
      ["content-type", "text/plain"],
      ["strict-transport-security", "max-age=1"],
    ]);
  });
});
