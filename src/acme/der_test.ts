import { describe, expect, test } from "bun:test";
import {
  children,
  DerError,
  ecdsaDerToRaw,
  ecdsaRawToDer,
  fromPem,
  int,
  octets,
  oid,
  readOid,
  readTime,
  readTlv,
  seq,
  set,
  tlv,
  time,
  toPem,
  utf8,
} from "./der.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const unhex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));

describe("der encoder: golden bytes", () => {
  test.each([
    [0, "020100"],
    [1, "020101"],
    [127, "02017f"],
    [128, "02020080"],
    [256, "02020100"],
    [65535, "020300ffff"],
  ])("INTEGER %d", (n, want) => expect(hex(int(n))).toBe(want));

  test("INTEGER from bytes: leading zeros go, a sign byte comes when the top bit is set", () => {
    expect(hex(int(unhex("0000ff")))).toBe("020200ff");
    expect(hex(int(unhex("00007f")))).toBe("02017f");
    expect(hex(int(new Uint8Array(0)))).toBe("020100");
    expect(() => int(-1)).toThrow(DerError);
  });

  test.each([
    ["1.2.840.10045.2.1", "06072a8648ce3d0201"], // id-ecPublicKey
    ["1.2.840.10045.3.1.7", "06082a8648ce3d030107"], // prime256v1
    ["1.3.6.1.5.5.7.1.31", "06082b0601050507011f"], // id-pe-acmeIdentifier (RFC 8737)
    ["2.5.29.17", "0603551d11"], // subjectAltName
    ["2.999.3", "0603883703"], // X.690 §8.19.5 example
  ])("OID %s", (dotted, want) => {
    const b = oid(dotted);
    expect(hex(b)).toBe(want);
    expect(readOid(b, readTlv(b, 0))).toBe(dotted);
  });

  test("bad OIDs are refused", () => {
    expect(() => oid("1")).toThrow(DerError);
    expect(() => oid("3.1")).toThrow(DerError);
    expect(() => oid("1.40")).toThrow(DerError);
    expect(() => oid("1.x")).toThrow(DerError);
  });

  test("lengths: short form below 128, long form above", () => {
    expect(hex(octets(new Uint8Array(127))).slice(0, 4)).toBe("047f");
    expect(hex(octets(new Uint8Array(128))).slice(0, 6)).toBe("048180");
    expect(hex(octets(new Uint8Array(300))).slice(0, 8)).toBe("0482012c");
    expect(hex(octets(new Uint8Array(70000))).slice(0, 10)).toBe("0483011170");
  });

  test("UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)", () => {
    const t1 = Date.UTC(2026, 0, 2, 3, 4, 5, 678);
    expect(hex(time(t1))).toBe("170d" + hex(new TextEncoder().encode("260102030405Z")));
    const t2 = Date.UTC(2050, 11, 31, 23, 59, 59);
    expect(hex(time(t2))).toBe("180f" + hex(new TextEncoder().encode("20501231235959Z")));
    expect(readTime(time(t1), readTlv(time(t1), 0))).toBe(Date.UTC(2026, 0, 2, 3, 4, 5));
    expect(readTime(time(t2), readTlv(time(t2), 0))).toBe(t2);
    const t3 = Date.UTC(1999, 5, 1);
    expect(readTime(time(t3), readTlv(time(t3), 0))).toBe(t3);
  });

  test("SET OF is sorted (X.690 §11.6)", () => {
    expect(hex(set(int(2), int(1)))).toBe("3106020101020102");
  });

  test("a nested structure reads back", () => {
    const b = seq(int(5), seq(utf8("a"), octets(Uint8Array.of(1, 2))), tlv(0x82, Uint8Array.of(9)));
    const top = readTlv(b, 0);
    expect(top.end).toBe(b.length);
    const kids = children(b, top);
    expect(kids.map((k) => k.tag)).toEqual([0x02, 0x30, 0x82]);
    expect(children(b, kids[1]!).map((k) => k.tag)).toEqual([0x0c, 0x04]);
  });
});

describe("der reader: bad input", () => {
  const good = seq(int(5), seq(utf8("hello"), octets(new Uint8Array(200))));

  test("every strict prefix throws DerError (truncation is never read past)", () => {
    for (let n = 0; n < good.length; n++) {
      const prefix = good.subarray(0, n);
      expect(() => {
        const top = readTlv(prefix, 0);
        const walk = (t: ReturnType<typeof readTlv>) => {
          if (t.tag & 0x20) for (const c of children(prefix, t)) walk(c);
        };
        walk(top);
      }).toThrow(DerError);
    }
  });

  test("indefinite length and oversized length fields are refused", () => {
    expect(() => readTlv(unhex("3080 0000"), 0)).toThrow(/indefinite/);
    expect(() => readTlv(unhex("0485 0100000000"), 0)).toThrow(DerError);
    expect(() => readTlv(unhex("1f01 00"), 0)).toThrow(/high tag/);
  });

  test("a child longer than its parent is refused", () => {
    // SEQUENCE of length 3 whose child claims 5 bytes.
    expect(() => children(unhex("3003 0405 0102030405"), readTlv(unhex("3003 0405 0102030405"), 0, 5))).toThrow(DerError);
  });

  test("random bytes only ever produce DerError", () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let i = 0; i < 2000; i++) {
      const b = Uint8Array.from({ length: 1 + Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256));
      try {
        const walk = (t: ReturnType<typeof readTlv>, depth: number) => {
          if (t.tag & 0x20 && depth < 20) for (const c of children(b, t)) walk(c, depth + 1);
        };
        walk(readTlv(b, 0), 0);
      } catch (e) {
        expect(e).toBeInstanceOf(DerError);
      }
    }
  });
});

describe("ECDSA signature forms", () => {
  test("raw r||s to DER and back, with high bits and leading zeros", () => {
    const raw = new Uint8Array(64);
    raw[0] = 0x80; // r has its top bit set: DER needs a 00 sign byte
    raw[31] = 1;
    raw[32] = 0; // s starts with zeros: DER drops them
    raw[33] = 0;
    raw[34] = 0x12;
    raw[63] = 0x34;
    const der = ecdsaRawToDer(raw);
    const top = readTlv(der, 0);
    const [r, s] = children(der, top);
    expect(r!.end - r!.contentStart).toBe(33);
    expect(s!.end - s!.contentStart).toBe(30);
    expect(hex(ecdsaDerToRaw(der))).toBe(hex(raw));
  });

  test("WebCrypto signatures survive raw → DER → raw and still verify", async () => {
    const keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const msg = new TextEncoder().encode("edgemux");
    for (let i = 0; i < 20; i++) {
      const raw = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, msg));
      const back = ecdsaDerToRaw(ecdsaRawToDer(raw));
      expect(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, keys.publicKey, back, msg)).toBe(true);
    }
  });
});

test("PEM round trip, several blocks", () => {
  const a = new Uint8Array(100).map((_, i) => i);
  const b = new Uint8Array(3).fill(7);
  const pem = toPem("CERTIFICATE", a) + toPem("CERTIFICATE", b) + toPem("PRIVATE KEY", b);
  expect(pem.split("\n").every((l) => l.length <= 64)).toBe(true);
  const got = fromPem(pem, "CERTIFICATE");
  expect(got.map(hex)).toEqual([hex(a), hex(b)]);
  expect(fromPem(pem, "PRIVATE KEY").length).toBe(1);
});
