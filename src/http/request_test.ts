import { describe, expect, test } from "bun:test";
import { ProxyError } from "../errors/mod.ts";
import { hostName, parseTarget, routingPath } from "./request.ts";

describe("request targets (RFC 9112 §3.2)", () => {
  test("origin-form, asterisk-form, absolute-form", () => {
    expect(parseTarget("GET", "/a?b")).toEqual({ origin: "/a?b", authority: null });
    expect(parseTarget("OPTIONS", "*")).toEqual({ origin: "*", authority: null });
    expect(parseTarget("GET", "http://App.example:81/p?q")).toEqual({ origin: "/p?q", authority: "App.example:81" });
    expect(parseTarget("GET", "https://a.example")).toEqual({ origin: "/", authority: "a.example" });
    expect(parseTarget("GET", "http://a.example?x")).toEqual({ origin: "/?x", authority: "a.example" });
  });
  test("refused forms", () => {
    for (const [m, t] of [["GET", "*"], ["GET", "a.example:443"], ["GET", "ftp://a/"], ["GET", "http://u@a/"], ["GET", "http:///x"], ["GET", "/a#f"]]) {
      expect(() => parseTarget(m!, t!)).toThrow(ProxyError);
    }
  });
});

describe("Host → route name", () => {
  test("canonical, port dropped, IP literals match only *", () => {
    expect(hostName("App.Example.")).toBe("app.example");
    expect(hostName("app.example:8080")).toBe("app.example");
    expect(hostName("app.example:")).toBe("app.example");
    expect(hostName("127.0.0.1:80")).toBeNull();
    expect(hostName("[::1]:80")).toBeNull();
  });
  test("refused", () => {
    for (const h of ["a..b", "app.example:80x", "[::1", "a_b$c", "app.example:123456"]) expect(() => hostName(h)).toThrow(ProxyError);
  });
});

describe("the path routes see", () => {
  test("query cut, unreserved escapes decoded, others kept uppercase", () => {
    expect(routingPath("/a/b?x=1")).toBe("/a/b");
    expect(routingPath("/%70rivate/%7e")).toBe("/private/~");
    expect(routingPath("/a%2fb%2F")).toBe("/a%2Fb%2F");
    expect(routingPath("*")).toBe("*");
  });
  test("dot-segments are refused, also when encoded", () => {
    for (const p of ["/a/../b", "/./a", "/a/..", "/a/%2e%2e/b", "/%2E/"]) expect(() => routingPath(p)).toThrow(ProxyError);
    expect(routingPath("/a/...b/.c")).toBe("/a/...b/.c");
  });
});
