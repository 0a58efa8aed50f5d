import { describe, expect, test } from "bun:test";
import { ProxyError } from "../errors/mod.ts";
import { CidrSet, compileAccessList, formatCidr, parseAddressInto, parseCidr, parseCidrOrProblem } from "./cidr.ts";

function words(ip: string): number[] | null {
  const out = new Uint32Array(4);
  return parseAddressInto(ip, out) ? Array.from(out) : null;
}

describe("address parsing", () => {
  test("IPv4 is stored as IPv4-mapped IPv6", () => {
    expect(words("1.2.3.4")).toEqual([0, 0, 0xffff, 0x01020304]);
    expect(words("::ffff:1.2.3.4")).toEqual([0, 0, 0xffff, 0x01020304]);
    expect(words("::ffff:102:304")).toEqual([0, 0, 0xffff, 0x01020304]);
    expect(words("0:0:0:0:0:FFFF:0102:0304")).toEqual([0, 0, 0xffff, 0x01020304]);
  });

  test("IPv6 forms", () => {
    expect(words("::")).toEqual([0, 0, 0, 0]);
    expect(words("::1")).toEqual([0, 0, 0, 1]);
    expect(words("1::")).toEqual([0x00010000, 0, 0, 0]);
    expect(words("2001:db8::8:800:200c:417a")).toEqual([0x20010db8, 0, 0x00080800, 0x200c417a]);
    expect(words("1:2:3:4:5:6:7:8")).toEqual([0x00010002, 0x00030004, 0x00050006, 0x00070008]);
    expect(words("1:2:3:4:5:6:7::")).toEqual([0x00010002, 0x00030004, 0x00050006, 0x00070000]);
    expect(words("::2:3:4:5:6:7:8")).toEqual([0x00000002, 0x00030004, 0x00050006, 0x00070008]);
    expect(words("1:2:3:4:5:6:1.2.3.4")).toEqual([0x00010002, 0x00030004, 0x00050006, 0x01020304]);
    expect(words("fe80::1%eth0")).toEqual([0xfe800000, 0, 0, 1]);
  });

  test("malformed addresses are refused", () => {
    for (const bad of [
      "",
      "1.2.3",
      "1.2.3.4.5",
      "256.1.1.1",
      "01.2.3.4",
      "1..2.3",
      "1.2.3.4 ",
      "a.b.c.d",
      "1.2.3.4%eth0",
      ":",
      ":::",
      "1:2",
      ":1::",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7:8::",
      "12345::",
      "1:",
      "::1:",
      "g::",
      "::1.2.3",
      "1:2:3:4:5:6:7:1.2.3.4",
      "::1.2.3.4:5",
      "/var/run/x.sock",
    ]) {
      expect({ bad, parsed: words(bad) }).toEqual({ bad, parsed: null });
    }
  });
});

describe("CIDR parsing", () => {
  test("v4, v6, bare addresses", () => {
    expect(formatCidr(parseCidr("10.0.0.0/8", "f"))).toBe("10.0.0.0/8");
    expect(formatCidr(parseCidr("1.2.3.4", "f"))).toBe("1.2.3.4/32");
    expect(formatCidr(parseCidr("0.0.0.0/0", "f"))).toBe("0.0.0.0/0");
    expect(formatCidr(parseCidr("2001:DB8::/32", "f"))).toBe("2001:db8::/32");
    expect(formatCidr(parseCidr("::1", "f"))).toBe("::1/128");
    expect(formatCidr(parseCidr("::/0", "f"))).toBe("::/0");
    expect(parseCidr("10.0.0.0/8", "f").prefix).toBe(104);
  });

  test("malformed CIDRs throw CONFIG naming the field", () => {
    const cases: [string, RegExp][] = [
      ["10.0.0.0/33", /prefix length must be 0\.\.32/],
      ["::/129", /prefix length must be 0\.\.128/],
      ["10.0.0.0/", /prefix length/],
      ["10.0.0.0/08", /prefix length/],
      ["10.0.0.0/-1", /prefix length/],
      ["10.0.0.0/8/8", /prefix length/],
      ["10.0.0.1/8", /host bits .* did you mean 10\.0\.0\.0\/8\?/],
      ["2001:db8::1/32", /did you mean 2001:db8::\/32\?/],
      ["fe80::1%eth0", /zone/],
      ["example.com", /not an IPv4 or IPv6/],
      ["", /not an IPv4 or IPv6/],
    ];
    for (const [text, re] of cases) {
      let err: unknown;
      try {
        parseCidr(text, "access.allow[2]");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProxyError);
      expect((err as ProxyError).code).toBe("CONFIG");
      expect((err as ProxyError).message.startsWith("access.allow[2]: ")).toBe(true);
      expect((err as ProxyError).message).toMatch(re);
    }
    expect(typeof parseCidrOrProblem("10.0.0.0/8")).toBe("object");
  });

  test("compileAccessList names the list and index of a bad entry", () => {
    expect(() => compileAccessList({ allow: ["10.0.0.0/8", "::1", "300.0.0.0/8"], deny: [] })).toThrow(
      /^access\.allow\[2\]: /,
    );
    expect(() => compileAccessList({ allow: [], deny: ["x"] }, "tokens[0].clients")).toThrow(
      /^tokens\[0\]\.clients\.deny\[0\]: /,
    );
  });
});

describe("access decisions", () => {
  test("IPv4 rules match plain and IPv4-mapped clients", () => {
    const acl = compileAccessList({ allow: ["10.0.0.0/8", "192.168.1.7"], deny: [] });
    expect(acl.allows("10.1.2.3")).toBe(true);
    expect(acl.allows("::ffff:10.1.2.3")).toBe(true);
    expect(acl.allows("::ffff:a01:203")).toBe(true);
    expect(acl.allows("192.168.1.7")).toBe(true);
    expect(acl.allows("::ffff:192.168.1.7")).toBe(true);
    expect(acl.allows("192.168.1.8")).toBe(false);
    expect(acl.allows("11.0.0.1")).toBe(false);
    // Not IPv4-mapped: the IPv4-compatible form and plain IPv6 do not match IPv4 rules.
    expect(acl.allows("::10.1.2.3")).toBe(false);
    expect(acl.allows("2001:db8::1")).toBe(false);
  });

  test("IPv6 rules", () => {
    const acl = compileAccessList({ allow: ["2001:db8::/32", "::1"], deny: [] });
    expect(acl.allows("2001:db8:ffff::1")).toBe(true);
    expect(acl.allows("2001:db9::1")).toBe(false);
    expect(acl.allows("::1")).toBe(true);
    expect(acl.allows("127.0.0.1")).toBe(false);
    // A v6 rule over the mapped range covers IPv4 clients.
    const mapped = compileAccessList({ allow: ["::ffff:0:0/96"], deny: [] });
    expect(mapped.allows("8.8.8.8")).toBe(true);
    expect(mapped.allows("::8")).toBe(false);
  });

  test("deny wins over allow", () => {
    const acl = compileAccessList({ allow: ["10.0.0.0/8"], deny: ["10.9.0.0/16", "::ffff:10.8.0.0/120"] });
    expect(acl.allows("10.1.0.1")).toBe(true);
    expect(acl.allows("10.9.3.4")).toBe(false);
    expect(acl.allows("::ffff:10.9.3.4")).toBe(false);
    expect(acl.allows("10.8.0.200")).toBe(false);
    expect(acl.allows("10.8.1.0")).toBe(true);
  });

  test("empty allow list allows everything not denied", () => {
    const acl = compileAccessList({ allow: [], deny: ["203.0.113.0/24"] });
    expect(acl.allows("198.51.100.1")).toBe(true);
    expect(acl.allows("2001:db8::1")).toBe(true);
    expect(acl.allows("203.0.113.9")).toBe(false);
    const open = compileAccessList({ allow: [], deny: [] });
    expect(open.empty).toBe(true);
    expect(open.allows("1.1.1.1")).toBe(true);
  });

  test("0.0.0.0/0 and ::/0", () => {
    const v4only = compileAccessList({ allow: ["0.0.0.0/0"], deny: [] });
    expect(v4only.allows("1.2.3.4")).toBe(true);
    expect(v4only.allows("::1")).toBe(false);
    const all = compileAccessList({ allow: [], deny: ["::/0"] });
    expect(all.allows("1.2.3.4")).toBe(false);
    expect(all.allows("::1")).toBe(false);
  });

  test("a non-IP peer passes only when no rule is configured", () => {
    expect(compileAccessList({ allow: [], deny: [] }).allows("")).toBe(true);
    expect(compileAccessList({ allow: [], deny: ["10.0.0.0/8"] }).allows("")).toBe(false);
    expect(compileAccessList({ allow: ["10.0.0.0/8"], deny: [] }).allows("not-an-ip")).toBe(false);
  });
});

// ---------------------------------------------------------------------------
// Property test: random networks and addresses against a naive reference that
// works on 128-character bit strings built with split() and parseInt().

function naiveBits(ip: string): string | null {
  const groupBits = (g: string) => parseInt(g, 16).toString(2).padStart(16, "0");
  const v4Bits = (s: string) => s.split(".").map((p) => Number(p).toString(2).padStart(8, "0")).join("");
  if (!ip.includes(":")) return "0".repeat(80) + "1".repeat(16) + v4Bits(ip);
  let tail = "";
  let text = ip;
  const lastColon = ip.lastIndexOf(":");
  if (ip.slice(lastColon + 1).includes(".")) {
    tail = v4Bits(ip.slice(lastColon + 1));
    text = ip.slice(0, lastColon + 1) + "0:0"; // placeholder for the two groups
  }
  const [head, rest] = text.includes("::") ? text.split("::") : [text, null];
  const hs = head ? head.split(":") : [];
  const rs = rest === null ? [] : rest ? rest.split(":") : [];
  const zeros = rest === null ? 0 : 8 - hs.length - rs.length;
  const all = [...hs, ...Array(zeros).fill("0"), ...rs];
  if (all.length !== 8) return null;
  let bits = all.map(groupBits).join("");
  if (tail) bits = bits.slice(0, 96) + tail;
  return bits;
}

function naiveAllows(allow: string[], deny: string[], ip: string): boolean {
  const a = naiveBits(ip)!;
  const inList = (list: string[]) =>
    list.some((c) => {
      const [net, len] = c.split("/");
      const bits = naiveBits(net!)!;
      const v4 = !net!.includes(":");
      const n = len === undefined ? 128 : Number(len) + (v4 ? 96 : 0);
      return a.slice(0, n) === bits.slice(0, n);
    });
  if (inList(deny)) return false;
  return allow.length === 0 || inList(allow);
}

/** Deterministic PRNG (mulberry32) so a failure reproduces. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("property: matches a naive reference", () => {
  test("random rules and addresses (bounded)", () => {
    const rand = rng(0x5eed);
    const int = (n: number) => Math.floor(rand() * n);
    // Small alphabets so random addresses land inside random networks often.
    const v4 = () => [10, int(3), int(4), int(256)].join(".");
    const v6 = () => {
      const g = ["2001", "db8", int(3).toString(16), int(4).toString(16), "0", "0", "0", int(65536).toString(16)];
      // Sometimes compress the zero run, sometimes write it out.
      return rand() < 0.5 ? g.join(":") : `${g.slice(0, 4).join(":")}::${g[7]}`;
    };
    const network = (addr: string, isV4: boolean): string => {
      const len = isV4 ? 8 + int(25) : 16 + int(113);
      // Clear the host bits on the reference's bit string and print it back naively.
      const bits = naiveBits(addr)!;
      const n = isV4 ? 96 + len : len;
      const masked = bits.slice(0, n).padEnd(128, "0");
      if (isV4) {
        const o = [0, 1, 2, 3].map((k) => parseInt(masked.slice(96 + 8 * k, 104 + 8 * k), 2));
        return `${o.join(".")}/${len}`;
      }
      const g = [...Array(8).keys()].map((k) => parseInt(masked.slice(16 * k, 16 * k + 16), 2).toString(16));
      return `${g.join(":")}/${len}`;
    };
    let agreements = 0;
    let allowedSeen = 0;
    for (let round = 0; round < 200; round++) {
      const allow: string[] = [];
      const deny: string[] = [];
      for (let k = int(4); k > 0; k--) allow.push(rand() < 0.6 ? network(v4(), true) : network(v6(), false));
      for (let k = int(3); k > 0; k--) deny.push(rand() < 0.6 ? network(v4(), true) : network(v6(), false));
      const acl = compileAccessList({ allow, deny });
      for (let q = 0; q < 50; q++) {
        const r = rand();
        const ip = r < 0.4 ? v4() : r < 0.6 ? `::ffff:${v4()}` : v6();
        const want = naiveAllows(allow, deny, ip);
        const got = acl.allows(ip);
        if (got !== want) expect({ allow, deny, ip, got }).toEqual({ allow, deny, ip, got: want });
        agreements++;
        if (got) allowedSeen++;
      }
    }
    expect(agreements).toBe(200 * 50);
    // The generator must exercise both outcomes, or the test proves little.
    expect(allowedSeen).toBeGreaterThan(500);
    expect(allowedSeen).toBeLessThan(9500);
  });

  test("CidrSet.contains agrees with containsWords", () => {
    const set = CidrSet.parse(["10.0.0.0/8", "2001:db8::/48"], "x");
    const out = new Uint32Array(4);
    for (const ip of ["10.0.0.1", "11.0.0.1", "2001:db8:0:1::", "2001:db8:1::"]) {
      parseAddressInto(ip, out);
      expect(set.contains(ip)).toBe(set.containsWords(out));
    }
    expect(set.contains("10.0.0.1")).toBe(true);
    expect(set.contains("2001:db8:1::")).toBe(false);
  });
});
