import { describe, expect, test } from "bun:test";
import { compileAccessList } from "../auth/mod.ts";
import { ProxyHeaderParser } from "../proto/mod.ts";
import { readInboundProxy } from "./inbound_proxy.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const open = compileAccessList({ allow: [], deny: [] });

describe("readInboundProxy", () => {
  test("a v1 header split over chunks names the client and hands back the rest untouched", () => {
    const p = new ProxyHeaderParser({ accept: "any" });
    expect(readInboundProxy(p, enc("PROXY TCP4 198.51.100.7 203.0.113.9 40001"), open)).toBeNull();
    const r = readInboundProxy(p, enc(" 443\r\nhello"), open)!;
    expect(r.client).toEqual({ address: "198.51.100.7", port: 40001 });
    expect(new TextDecoder().decode(Buffer.concat(r.rest.map((c) => Buffer.from(c))))).toBe("hello");
  });

  test("LOCAL / UNKNOWN headers keep the socket's peer", () => {
    const r = readInboundProxy(new ProxyHeaderParser({ accept: "v1" }), enc("PROXY UNKNOWN\r\n"), open)!;
    expect(r.client).toBeNull();
  });

  test("the access lists apply to the client the header names", () => {
    const deny = compileAccessList({ allow: [], deny: ["198.51.100.0/24"] });
    expect(() => readInboundProxy(new ProxyHeaderParser({ accept: "v1" }), enc("PROXY TCP4 198.51.100.7 203.0.113.9 1 2\r\n"), deny)).toThrow(
      expect.objectContaining({ code: "ACCESS_DENIED" }),
    );
  });

  test("a missing or malformed header is PROXY_PROTOCOL", () => {
    expect(() => readInboundProxy(new ProxyHeaderParser({ accept: "v1" }), enc("GET / HTTP/1.1\r\n"), open)).toThrow(
      expect.objectContaining({ code: "PROXY_PROTOCOL" }),
    );
  });
});
