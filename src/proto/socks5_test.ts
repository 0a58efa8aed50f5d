import { describe, expect, test } from "bun:test";
import { encodeAuthStatus, encodeMethodChoice, encodeReply, MAX_SOCKS_MESSAGE, Socks5Parser, SocksError, type SocksPhase } from "./socks5.ts";

const enc = new TextEncoder();

// What curl --socks5-hostname -U user:secret sends for example.com:443, phase by phase.
const GREETING = [5, 2, 0, 2];
const AUTH = [1, 4, ...enc.encode("user"), 6, ...enc.encode("secret")];
const REQ_DOMAIN = [5, 1, 0, 3, 11, ...enc.encode("example.com"), 0x01, 0xbb];
const REQ_V4 = [5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90];
const REQ_V6 = [5, 1, 0, 4, ...new Array(15).fill(0), 1, 0, 80];

function run(bytes: number[], phases: SocksPhase[], split?: number[]): unknown[] {
  const p = new Socks5Parser();
  const data = Uint8Array.from(bytes);
  const cuts = [0, ...(split ?? []), data.length];
  const out: unknown[] = [];
  let phase = 0;
  for (let c = 1; c < cuts.length; c++) {
    p.push(data.subarray(cuts[c - 1], cuts[c]));
    while (phase < phases.length) {
      const m = p.next(phases[phase] as "greeting");
      if (m === null) break;
      out.push(m);
      phase++;
    }
  }
  out.push(Array.from(p.rest()));
  return out;
}

const ALL = [...GREETING, ...AUTH, ...REQ_DOMAIN, 0x16, 3, 1];
const ALL_WANT = [
  { kind: "greeting", methods: [0, 2] },
  { kind: "auth", username: "user", password: "secret" },
  { kind: "request", command: 1, host: "example.com", hostKind: "name", port: 443 },
  [0x16, 3, 1],
];

describe("golden messages", () => {
  test("greeting, auth, domain request and pipelined payload", () => {
    expect(run(ALL, ["greeting", "auth", "request"])).toEqual(ALL_WANT);
  });
  test("IPv4 and IPv6 requests", () => {
    expect(run(REQ_V4, ["request"])).toEqual([{ kind: "request", command: 1, host: "127.0.0.1", hostKind: "ipv4", port: 8080 }, []]);
    expect(run(REQ_V6, ["request"])).toEqual([{ kind: "request", command: 1, host: "::1", hostKind: "ipv6", port: 80 }, []]);
  });
  test("a domain that is an IP literal (curl --socks5-hostname 127.0.0.1) is read as the IP", () => {
    const req = [5, 1, 0, 3, 9, ...enc.encode("127.0.0.1"), 0, 80];
    expect(run(req, ["request"])[0]).toEqual({ kind: "request", command: 1, host: "127.0.0.1", hostKind: "ipv4", port: 80 });
  });
  test("BIND and UDP ASSOCIATE parse; the listener answers them with reply 7", () => {
    expect(run([5, 2, 0, 1, 1, 2, 3, 4, 0, 1], ["request"])[0]).toMatchObject({ command: 2 });
  });
  test("encoders", () => {
    expect(Array.from(encodeMethodChoice(2))).toEqual([5, 2]);
    expect(Array.from(encodeMethodChoice(0xff))).toEqual([5, 0xff]);
    expect(Array.from(encodeAuthStatus(true))).toEqual([1, 0]);
    expect(Array.from(encodeAuthStatus(false))).toEqual([1, 1]);
    expect(Array.from(encodeReply(0, { address: "127.0.0.1", port: 40000 }))).toEqual([5, 0, 0, 1, 127, 0, 0, 1, 0x9c, 0x40]);
    expect(Array.from(encodeReply(0, { address: "::ffff:10.0.0.2", port: 1 }))).toEqual([5, 0, 0, 1, 10, 0, 0, 2, 0, 1]);
    expect(Array.from(encodeReply(0, { address: "::1", port: 443 }))).toEqual([5, 0, 0, 4, ...new Array(15).fill(0), 1, 1, 0xbb]);
    expect(Array.from(encodeReply(0, { address: "2001:db8::1:2", port: 2 }))).toEqual([5, 0, 0, 4, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 2]);
    expect(Array.from(encodeReply(5, null))).toEqual([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
  });
});

describe("every split point", () => {
  test("two chunks", () => {
    for (let i = 0; i <= ALL.length; i++) expect(run(ALL, ["greeting", "auth", "request"], [i])).toEqual(ALL_WANT);
  });
  test("three chunks", () => {
    for (let i = 0; i <= ALL.length; i += 3) {
      for (let j = i; j <= ALL.length; j++) expect(run(ALL, ["greeting", "auth", "request"], [i, j])).toEqual(ALL_WANT);
    }
  });
});

describe("refusals carry the reply code", () => {
  test.each([
    [[4, 1, 0, 80, 127, 0, 0, 1, 0], "greeting", 1], // SOCKS4
    [[5, 0], "greeting", 1],
    [[2, 1, 0x61, 1, 0x62], "auth", 1],
    [[1, 0, 1, 0x61], "auth", 1],
    [[1, 1, 0x61, 0], "auth", 1],
    [[5, 1, 0, 9, 0, 0], "request", 8], // unknown address type
    [[5, 1, 1, 1, 1, 2, 3, 4, 0, 80], "request", 1], // reserved byte
    [[4, 1, 0, 1, 1, 2, 3, 4, 0, 80], "request", 1],
    [[5, 1, 0, 3, 0, 0, 80], "request", 1],
    [[5, 1, 0, 3, 3, 0x61, 0x2f, 0x62, 0, 80], "request", 4], // "a/b" is no host
    [[5, 1, 0, 1, 1, 2, 3, 4, 0, 0], "request", 1], // port 0
  ])("%j as %s", (bytes, phase, reply) => {
    const p = new Socks5Parser();
    p.push(Uint8Array.from(bytes as number[]));
    let err: unknown;
    try {
      p.next(phase as "greeting");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SocksError);
    expect((err as SocksError).code).toBe("SOCKS_PROTOCOL");
    expect((err as SocksError).reply).toBe(reply as number);
    expect(() => p.next("request")).toThrow(err as Error);
    expect(p.bufferedBytes).toBe(0);
  });

  test("an incomplete message is at most MAX_SOCKS_MESSAGE bytes; data pipelined behind the request is the caller's (any size)", () => {
    // Every length field is one byte: the longest message (auth) is 513 bytes.
    const auth = Uint8Array.from([1, 255, ...new Uint8Array(255).fill(97), 255, ...new Uint8Array(255).fill(98)]);
    expect(auth.length).toBe(MAX_SOCKS_MESSAGE);
    const p = new Socks5Parser();
    p.push(Uint8Array.from([5, 1, 2]));
    expect(p.next("greeting")).not.toBeNull();
    p.push(auth.subarray(0, MAX_SOCKS_MESSAGE - 1));
    expect(p.next("auth")).toBeNull();
    p.push(auth.subarray(MAX_SOCKS_MESSAGE - 1));
    expect(p.next("auth")?.password).toBe("b".repeat(255));
    const pipelined = new Uint8Array(100_000).fill(7);
    p.push(Uint8Array.from([5, 1, 0, 1, 127, 0, 0, 1, 0, 80, ...pipelined.subarray(0, 10)]));
    p.push(pipelined.subarray(10));
    expect(p.next("request")?.port).toBe(80);
    expect(p.rest().length).toBe(pipelined.length);
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

test("property: random bytes give messages, null or SOCKS_PROTOCOL; nothing else", () => {
  const r = rng(99);
  let ok = 0;
  let errs = 0;
  for (let iter = 0; iter < 5000; iter++) {
    const p = new Socks5Parser();
    const base = r() < 0.5 ? ALL : [...REQ_V4, ...REQ_V6];
    const bytes = base.map((b) => (r() < 0.05 ? Math.floor(r() * 256) : b));
    const phases: SocksPhase[] = base === ALL ? ["greeting", "auth", "request"] : ["request", "request"];
    let k = 0;
    try {
      for (let off = 0; off < bytes.length;) {
        const n = 1 + Math.floor(r() * 8);
        p.push(Uint8Array.from(bytes.slice(off, off + n)));
        off += n;
        while (k < phases.length) {
          const m = p.next(phases[k] as "request");
          if (m === null) break;
          if (m.kind === "request") expect(m.port).toBeGreaterThan(0);
          k++;
        }
      }
      ok++;
    } catch (e) {
      errs++;
      expect(e).toBeInstanceOf(SocksError);
      expect([1, 4, 8]).toContain((e as SocksError).reply);
    }
  }
  expect(ok).toBeGreaterThan(500);
  expect(errs).toBeGreaterThan(500);
});
