import { describe, expect, test } from "bun:test";
import { ProxyError } from "../errors/mod.ts";
import {
  canonicalHostname,
  canonicalHostnameBytes,
  canonicalPattern,
  checkHostname,
  checkPattern,
  MAX_HOSTNAME_BYTES,
} from "./hostname.ts";
import { prng, randInt } from "./testdata/build_hello.ts";

const bytesOf = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const wire = (s: string) => {
  const b = bytesOf(s);
  return canonicalHostnameBytes(b, 0, b.length);
};

const label63 = "a".repeat(63);
/** 253 bytes: 3 × (63 + dot) + 61. */
const name253 = `${label63}.${label63}.${label63}.${"b".repeat(61)}`;

describe("canonicalHostnameBytes (wire names)", () => {
  test.each([
    ["example.com", "example.com"],
    ["WWW.Example.COM", "www.example.com"],
    ["example.com.", "example.com"],
    ["localhost", "localhost"],
    ["a_b.example", "a_b.example"],
    ["-a-.example", "-a-.example"],
    ["xn--bcher-kva.example", "xn--bcher-kva.example"],
    ["1.2.3.example", "1.2.3.example"],
    ["0x7f.com", "0x7f.com"],
    ["0xzz", "0xzz"],
    [label63 + ".com", label63 + ".com"],
    [name253, name253],
    [name253 + ".", name253],
  ])("%s -> %s", (input, want) => {
    expect(wire(input)).toBe(want);
  });

  test.each([
    [""],
    ["."],
    [".."],
    ["example.com.."],
    [".example.com"],
    ["a..b"],
    ["a.b.."],
    ["1.2.3.4"],
    ["127.1"],
    ["10"],
    ["0x7f.1"],
    ["a.0X1F"],
    ["example.0x"],
    ["[::1]"],
    ["::1"],
    ["exa mple.com"],
    ["a/b"],
    ["a\\b"],
    ["a:443"],
    ["a*.com"],
    ["a\u0000b"],
    ["b\u00fccher.de"],
    ["a".repeat(64) + ".com"],
    [name253 + "x"],
  ])("%j is refused", (input) => {
    expect(wire(input)).toBeNull();
  });

  test("reads only its window of the buffer", () => {
    const b = bytesOf("xxEXAMPLE.orgyy");
    expect(canonicalHostnameBytes(b, 2, 13)).toBe("example.org");
  });
});

describe("checkHostname / canonicalHostname (typed names)", () => {
  test.each([
    ["example.com", "example.com"],
    ["Example.COM.", "example.com"],
    ["Bücher.Example.", "xn--bcher-kva.example"],
    ["bücher.example", "xn--bcher-kva.example"],
    ["XN--BCHER-KVA.example", "xn--bcher-kva.example"],
    ["日本。jp", "xn--wgv71a.jp"],
    ["ＥＸＡＭＰＬＥ.com", "example.com"],
    ["faß.de", "xn--fa-hia.de"],
    ["a_b.example", "a_b.example"],
    [name253, name253],
  ])("%s -> %s", (input, want) => {
    expect(checkHostname(input)).toEqual({ name: want });
    expect(canonicalHostname(input)).toBe(want);
  });

  test.each([
    ["", "must not be empty"],
    [".", "has no labels"],
    [".example.com", "starts with a dot"],
    ["a..b", "has an empty label (two dots in a row)"],
    ["exa mple.com", "must not contain U+0020 at offset 3"],
    ["a/b.com", "must not contain '/' at offset 1"],
    ["ex%41mple.com", "must not contain '%'"],
    ["bü/cher.de", "must not contain '/' at offset 2"],
    ["bü%41.de", "must not contain '%'"],
    ["a\tb", "must not contain U+0009 at offset 1"],
    ["1.2.3.4", "not an IP address"],
    ["0x7f.1", "not an IP address"],
    ["[::1]", "must not contain '['"],
    ["xn--zz.com", "not valid punycode"],
    ["a".repeat(64) + ".com", "64-byte label, over the 63-byte limit"],
    [name253 + "x", "254 bytes long, over the 253-byte limit"],
    ["x".repeat(2000), "longer than 253 bytes"],
  ])("%j: %s", (input, why) => {
    const r = checkHostname(input);
    expect("error" in r && r.error).toContain(why);
    let err: unknown;
    try {
      canonicalHostname(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProxyError);
    expect((err as ProxyError).code).toBe("CONFIG");
    expect((err as ProxyError).message).toStartWith("hostname ");
    expect((err as ProxyError).message).toContain(why);
  });

  test("the error names the input", () => {
    expect(checkHostname("a..b")).toEqual({ error: 'has an empty label (two dots in a row), got "a..b"' });
  });

  test("agrees with the wire canonicaliser on random ASCII names", () => {
    const rand = prng(7);
    const alphabet = "abcXYZ019-_.. /:@\u0000\u007f";
    let agreed = 0;
    for (let i = 0; i < 5000; i++) {
      const n = randInt(rand, 0, i % 50 === 0 ? 300 : 14);
      let s = "";
      for (let j = 0; j < n; j++) s += alphabet[randInt(rand, 0, alphabet.length - 1)];
      if (i % 7 === 0) s = `${s}.0x${randInt(rand, 0, 255).toString(16)}`;
      const typed = checkHostname(s);
      const fromWire = wire(s);
      expect({ s, name: "name" in typed ? typed.name : null }).toEqual({ s, name: fromWire });
      if (fromWire !== null) agreed++;
    }
    expect(agreed).toBeGreaterThan(200); // valid names were generated too
  });
});

describe("checkPattern / canonicalPattern", () => {
  test.each([
    ["*", "*"],
    ["example.com", "example.com"],
    ["*.Example.COM.", "*.example.com"],
    ["*.bücher.example", "*.xn--bcher-kva.example"],
    ["*.com", "*.com"],
  ])("%s -> %s", (input, want) => {
    expect(checkPattern(input)).toEqual({ pattern: want });
    expect(canonicalPattern(input)).toBe(want);
  });

  test.each([
    ["a.*.com", 'may use "*" only'],
    ["*example.com", 'may use "*" only'],
    ["**.example.com", 'may use "*" only'],
    ["*.*.com", 'may use "*" only'],
    ["example.*", 'may use "*" only'],
    ["*.", 'needs a suffix after "*."'],
    ["*.1.2.3.4", "not an IP address"],
    ["", "must not be empty"],
    [`*.${name253.slice(1)}`, "matches no name"],
  ])("%j: %s", (input, why) => {
    const r = checkPattern(input);
    expect("error" in r && r.error).toContain(why);
    expect(() => canonicalPattern(input)).toThrow(why);
  });

  test("the longest wildcard that can match a name", () => {
    const suffix = name253.slice(2); // 251 bytes: "*." + suffix = 253
    expect(checkPattern(`*.${suffix}`)).toEqual({ pattern: `*.${suffix}` });
    expect(MAX_HOSTNAME_BYTES).toBe(253);
  });
});
