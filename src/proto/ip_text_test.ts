import { describe, expect, test } from "bun:test";
import { isIPv4, isIPv6 } from "node:net";
import { parseIPv4, parseIPv6, parseIPv6Groups } from "./ip_text.ts";

const v6 = (s: string): number[] | null => {
  const g = new Uint16Array(8);
  return parseIPv6Groups(s, 0, s.length, g) ? [...g] : null;
};

describe("IP text parsers (the one parser behind PROXY, CIDR rules and config values)", () => {
  test("IPv4: four decimal parts 0..255, no leading zeros, nothing else", () => {
    expect(parseIPv4("192.0.2.255", 0, 11)).toBe(0xc00002ff);
    expect(parseIPv4("x1.2.3.4y", 1, 8)).toBe(0x01020304);
    for (const bad of ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3", "1.2.3.4 ", "0x7f.0.0.1", "127.1", "1.2.3.-4"]) {
      expect(parseIPv4(bad, 0, bad.length)).toBe(-1);
    }
  });

  test("IPv6: groups, one '::', a dotted tail only at the end, exactly 128 bits", () => {
    expect(v6("::")).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(v6("1::")).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    expect(v6("::ffff:1.2.3.4")).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]);
    expect(v6("1:2:3:4:5:6:7::")).toEqual([1, 2, 3, 4, 5, 6, 7, 0]);
    expect(v6("1::2:3:4:5:6:7")).toEqual([1, 0, 2, 3, 4, 5, 6, 7]);
    expect(v6("ABCD:ef01:2345:6789:abcd:ef01:2345:6789")).toEqual([0xabcd, 0xef01, 0x2345, 0x6789, 0xabcd, 0xef01, 0x2345, 0x6789]);
    const bad = [":", ":::", "1:::2", ":1::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1::2::3", "1:2:3:4:5:6:7:8::", "12345::", "1.2.3.4::"];
    bad.push("::1.2.3", "::1.2.3.4:5", "fe80::1%eth0", "1:", "g::");
    for (const b of bad) {
      expect(v6(b)).toBeNull();
    }
    const dst = new Uint8Array(20);
    expect(parseIPv6("2001:db8::1", dst, 2)).toBe(true);
    expect([...dst.subarray(2, 6)]).toEqual([0x20, 0x01, 0x0d, 0xb8]);
    expect(dst[17]).toBe(1);
  });

  test("agrees with node:net on random strings over the address alphabet", () => {
    // Node accepts the same IPv6 forms; for IPv4 it also refuses leading zeros.
    const alphabet = "0123456789abcdefABCDEF:.";
    let seed = 0x9e3779b9;
    const rand = (n: number) => {
      seed = (Math.imul(seed ^ (seed >>> 15), 0x85ebca6b) + 0x6b43a9e5) >>> 0;
      return seed % n;
    };
    const samples = ["::", "::1", "1.2.3.4", "::ffff:10.0.0.1", "fe80::", "2001:db8:0:0:0:0:2:1"];
    for (let i = 0; i < 20_000; i++) {
      const base = samples[rand(samples.length)]!;
      const s = base.split("");
      for (let k = rand(4); k > 0; k--) {
        const at = rand(s.length + 1);
        if (rand(2) === 0) s.splice(at, 0, alphabet[rand(alphabet.length)]!);
        else s.splice(at, 1);
      }
      const text = s.join("");
      expect([text, parseIPv4(text, 0, text.length) >= 0]).toEqual([text, isIPv4(text)]);
      expect([text, v6(text) !== null]).toEqual([text, isIPv6(text)]);
    }
  });
});
