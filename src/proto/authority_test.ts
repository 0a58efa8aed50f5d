import { describe, expect, test } from "bun:test";
import { ProxyError } from "../errors/mod.ts";
import { canonicalIPv6, formatAuthority, parseAuthority, parseHost, parsePort } from "./authority.ts";

describe("parseAuthority", () => {
  test.each([
    ["example.com:443", { host: "example.com", kind: "name", port: 443 }],
    ["Example.COM.:8443", { host: "example.com", kind: "name", port: 8443 }],
    ["web.default.svc.cluster.local:80", { host: "web.default.svc.cluster.local", kind: "name", port: 80 }],
    ["10.0.0.1:22", { host: "10.0.0.1", kind: "ipv4", port: 22 }],
    ["[::1]:443", { host: "::1", kind: "ipv6", port: 443 }],
    ["[2001:DB8:0:0:0:0:0:1]:1", { host: "2001:db8::1", kind: "ipv6", port: 1 }],
    ["[::ffff:127.0.0.1]:65535", { host: "::ffff:7f00:1", kind: "ipv6", port: 65535 }],
  ])("%s", (text, want) => {
    expect(parseAuthority(text)).toEqual(want as never);
  });

  test.each([
    "example.com",
    "example.com:",
    "example.com:0",
    "example.com:65536",
    "example.com:0443",
    "example.com:+443",
    "example.com:44 3",
    ":443",
    "::1:443",
    "[::1]443",
    "[::1:443",
    "[1.2.3.4]:443",
    "127.1:443",
    "0x7f.0.0.1:443",
    "010.0.0.1:443",
    "256.0.0.1:443",
    "a..b:443",
    "a/b:443",
    "ex ample.com:443",
    "bücher.example:443",
    "user@host:443",
    "[fe80::1%eth0]:443",
    "x".repeat(300) + ":1",
  ])("refuses %j", (text) => {
    let err: unknown = null;
    try {
      parseAuthority(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProxyError);
    expect((err as ProxyError).code).toBe("HTTP_BAD_REQUEST");
  });

  test("format round-trips", () => {
    expect(formatAuthority(parseAuthority("[2001:db8::1]:443"))).toBe("[2001:db8::1]:443");
    expect(formatAuthority(parseAuthority("a.example:1"))).toBe("a.example:1");
  });
});

describe("hosts and ports", () => {
  test("parseHost takes IP literals with or without brackets", () => {
    expect(parseHost("127.0.0.1")).toEqual({ host: "127.0.0.1", kind: "ipv4" });
    expect(parseHost("::1")).toEqual({ host: "::1", kind: "ipv6" });
    expect(parseHost("[0:0::1]")).toEqual({ host: "::1", kind: "ipv6" });
    expect(parseHost("LOCALHOST")).toEqual({ host: "localhost", kind: "name" });
  });
  test("RFC 5952 forms", () => {
    expect(canonicalIPv6("2001:db8:0:0:1:0:0:1")).toBe("2001:db8::1:0:0:1");
    expect(canonicalIPv6("0:0:0:0:0:0:0:0")).toBe("::");
    expect(canonicalIPv6("1:0:0:0:0:0:0:0")).toBe("1::");
    expect(canonicalIPv6("1:2:3:4:5:6:7:8")).toBe("1:2:3:4:5:6:7:8");
    expect(canonicalIPv6("1:0:2:3:4:5:6:7")).toBe("1:0:2:3:4:5:6:7");
    expect(canonicalIPv6("1::2::3")).toBeNull();
    expect(canonicalIPv6("1:2:3:4:5:6:7:8:9")).toBeNull();
    expect(canonicalIPv6("12345::")).toBeNull();
    expect(canonicalIPv6("::1.2.3")).toBeNull();
  });
  test("ports", () => {
    expect([parsePort("1"), parsePort("65535"), parsePort("0"), parsePort("65536"), parsePort("01"), parsePort(""), parsePort("1e3")]).toEqual([1, 65535, -1, -1, -1, -1, -1]);
  });
});
