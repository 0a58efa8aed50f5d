import { describe, expect, test } from "bun:test";
import type { HboneRouteConfig } from "../config/types.ts";
import { ProxyError } from "../errors/mod.ts";
import { forwardedFor, hboneAuthority } from "./hbone_pool.ts";
import { h2StatusFor } from "../errors/mod.ts";

const cfg = (o: Partial<HboneRouteConfig> = {}): HboneRouteConfig => ({
  certPath: "",
  keyPath: "",
  caPath: "",
  cert: "",
  key: "",
  ca: "",
  servername: null,
  authority: null,
  port: 0,
  ...o,
});

describe("the CONNECT authority of an HBONE route", () => {
  test("a fixed authority wins", () => {
    expect(hboneAuthority(cfg({ authority: "web.internal:443" }), "anything.example", 15443)).toBe("web.internal:443");
  });
  test("Istio outbound_.<port>_.<subset>_.<fqdn>", () => {
    expect(hboneAuthority(cfg(), "outbound_.8080_._.httpbin.default.svc.cluster.local", 15443)).toBe("httpbin.default.svc.cluster.local:8080");
    expect(hboneAuthority(cfg(), "outbound_.9080_.v1_.reviews.bookinfo.svc.cluster.local", 15443)).toBe("reviews.bookinfo.svc.cluster.local:9080");
    // Not a valid port: taken as a plain name.
    expect(hboneAuthority(cfg(), "outbound_.70000_._.x.local", 15443)).toBe("outbound_.70000_._.x.local:15443");
  });
  test("otherwise the SNI name with the route's port, or the listener's", () => {
    expect(hboneAuthority(cfg({ port: 443 }), "web.example", 15443)).toBe("web.example:443");
    expect(hboneAuthority(cfg(), "web.example", 15443)).toBe("web.example:15443");
  });
  test("no SNI and no fixed authority is NO_ROUTE", () => {
    expect(() => hboneAuthority(cfg(), null, 1)).toThrow(ProxyError);
  });
});

test("Forwarded for= (RFC 7239 §6): IPv6 quoted and bracketed, mapped IPv4 unmapped", () => {
  expect(forwardedFor("192.0.2.7")).toBe("for=192.0.2.7");
  expect(forwardedFor("::ffff:192.0.2.7")).toBe("for=192.0.2.7");
  expect(forwardedFor("2001:db8::1")).toBe('for="[2001:db8::1]"');
});

test("HTTP/2 statuses: 503 for every upstream failure, 401 or 407 for missing credentials", () => {
  expect(["UPSTREAM_CONNECT_REFUSED", "UPSTREAM_CONNECT_TIMEOUT", "UPSTREAM_DNS", "UPSTREAM_RESET", "LISTENER_FULL"].map((c) => h2StatusFor(c as never, false))).toEqual([503, 503, 503, 503, 503]);
  expect([h2StatusFor("AUTH_REQUIRED", false), h2StatusFor("AUTH_REQUIRED", true)]).toEqual([401, 407]);
  expect(["EGRESS_DENIED", "IDENTITY_DENIED", "AUTH_DENIED"].map((c) => h2StatusFor(c as never, false))).toEqual([403, 403, 403]);
  expect([h2StatusFor("HTTP_BAD_REQUEST", false), h2StatusFor("HTTP_METHOD_NOT_ALLOWED", false), h2StatusFor("HTTP_HEADER_TOO_LARGE", false)]).toEqual([400, 405, 431]);
});
