/**
 * Route patterns go through src/proto/hostname.ts (its own tests cover the
 * rules in depth); these check that config stores exactly the canonical form
 * the SNI listener derives from the wire.
 */
import { describe, expect, test } from "bun:test";
import { canonicalHostnameBytes } from "../proto/mod.ts";
import { canonicalHostname, canonicalPattern } from "./hostname.ts";
import { issuesOf, LISTENER } from "./test_util.ts";
import { parseConfig } from "./load.ts";

describe("route patterns are canonicalised", () => {
  test.each([
    ["example.com", "example.com"],
    ["Example.COM.", "example.com"],
    ["BÜCHER.example.", "xn--bcher-kva.example"],
    ["bücher.example", "xn--bcher-kva.example"],
    ["xn--bcher-kva.example", "xn--bcher-kva.example"],
    ["münchen.DE", "xn--mnchen-3ya.de"],
    ["ＥＸＡＭＰＬＥ.com", "example.com"],
    ["*.Bücher.Example", "*.xn--bcher-kva.example"],
    ["*.example.com.", "*.example.com"],
    ["*", "*"],
    ["localhost", "localhost"],
  ])("%s -> %s", (input, pattern) => {
    expect(canonicalPattern(input)).toEqual({ pattern });
    const stored = parseConfig(`${LISTENER}\n[[routes]]\nmatch = "${input}"\ntargets = ["127.0.0.1:1"]`).routes[0]!;
    expect(stored.match).toBe(pattern);
    expect(stored.name).toBe(pattern);
  });

  test("a stored hostname equals what the listener derives from the same name on the wire", () => {
    for (const [typed, wire] of [
      ["BÜCHER.example.", "xn--bcher-kva.EXAMPLE."],
      ["Api.Example.com", "API.example.COM"],
    ]) {
      const bytes = new TextEncoder().encode(wire);
      expect(canonicalHostname(typed)).toEqual({ name: canonicalHostnameBytes(bytes, 0, bytes.length)! });
    }
  });
});

describe("bad patterns name the field", () => {
  test.each([
    ["a.*.com", `routes[0].match: may use "*" only as the whole first label ("*.example.com") or alone ("*"), got "a.*.com"`],
    ["*example.com", `routes[0].match: may use "*" only as the whole first label ("*.example.com") or alone ("*"), got "*example.com"`],
    ["ex..com", `routes[0].match: has an empty label (two dots in a row), got "ex..com"`],
    ["xn--zz.com", `routes[0].match: has a label that is not valid punycode ("xn--zz"), got "xn--zz.com"`],
    ["127.0.0.1", `routes[0].match: must be a DNS name, not an IP address (RFC 6066: no IP literals in SNI), got "127.0.0.1"`],
    ["a/b.com", `routes[0].match: must not contain '/' at offset 1 (letters, digits, '-', '_' and '.' only), got "a/b.com"`],
    ["", "routes[0].match: must not be empty"],
  ])("%p", (match, issue) => {
    expect(issuesOf(`${LISTENER}\n[[routes]]\nmatch = "${match}"\ntargets = ["127.0.0.1:1"]`)).toEqual([issue]);
  });

  test("a match that is not a string", () => {
    expect(issuesOf(`${LISTENER}\n[[routes]]\nmatch = 7\ntargets = ["127.0.0.1:1"]`)).toEqual(["routes[0].match: must be a string, got 7"]);
  });
});
