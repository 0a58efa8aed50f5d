import { describe, expect, test } from "bun:test";
import { ERROR_CODES, TlsAlert, tlsAlertFor } from "../errors/mod.ts";
import { type ClientHelloInfo, ClientHelloParser, parseClientHello, TlsParseError } from "./tls_client_hello.ts";
import {
  alpnData,
  buildHandshake,
  concat,
  extension,
  loadFixtures,
  prng,
  randInt,
  randomChunks,
  recordHeader,
  serverNameData,
  supportedVersionsData,
  toRecords,
  unframe,
} from "./testdata/build_hello.ts";

const TLS13 = [0x0304, 0x0303];
const TLS13_TO_10 = [0x0304, 0x0303, 0x0302, 0x0301];

/** What each captured client sent (scripts/capture_client_hellos.ts, testdata/manifest.json). */
const GOLDEN: Record<string, { serverName: string | null; alpn: string[]; supportedVersions: number[] | null }> = {
  openssl_tls13_sni_alpn: { serverName: "openssl.example.com", alpn: ["h2", "http/1.1"], supportedVersions: TLS13_TO_10 },
  openssl_tls12_sni_upper: { serverName: "mixed.case.example.org", alpn: [], supportedVersions: null },
  openssl_tls13_nosni: { serverName: null, alpn: [], supportedVersions: TLS13_TO_10 },
  openssl_big_alpn: {
    serverName: "big.example.net",
    alpn: Array.from({ length: 150 }, (_, i) => `proto-${i}`),
    supportedVersions: TLS13_TO_10,
  },
  curl_tls13_h2: { serverName: "curl.example.com", alpn: ["h2", "http/1.1"], supportedVersions: TLS13_TO_10 },
  curl_tls12_http11: { serverName: "www.curl.example.com", alpn: ["http/1.1"], supportedVersions: null },
  bun_tls_sni_alpn: { serverName: "bun.example.com", alpn: ["h2", "http/1.1"], supportedVersions: TLS13 },
  bun_tls_nosni: { serverName: null, alpn: ["http/1.1"], supportedVersions: TLS13 },
  bun_tls_pq_big: {
    serverName: "a-rather-long-service-name.eu-west.pq.bun.example.com",
    alpn: ["h2", "http/1.1", "acme-tls/1"],
    supportedVersions: TLS13,
  },
  bun_tls12_only: { serverName: "tls12.bun.example.com", alpn: ["http/1.1"], supportedVersions: null },
  bun_fetch: { serverName: "localhost", alpn: ["http/1.1"], supportedVersions: TLS13 },
  deno_tls_sni_alpn: { serverName: "deno.example.com", alpn: ["h2", "http/1.1"], supportedVersions: TLS13 },
  deno_fetch: { serverName: "localhost", alpn: ["h2", "http/1.1"], supportedVersions: TLS13 },
};

const FIXTURES = loadFixtures();

function expected(name: string, recordCount: number): ClientHelloInfo {
  const g = GOLDEN[name]!;
  const { handshake } = unframe(FIXTURES.get(name)!);
  return { ...g, legacyVersion: 0x0303, recordCount, helloLength: handshake.length };
}

/** The error `fn` throws; fails the test if it returns. */
function thrown(fn: () => unknown): TlsParseError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TlsParseError) return e;
    throw e;
  }
  throw new Error("expected a TlsParseError, got a result");
}

function expectError(bytes: Uint8Array, code: string, alert: number, opts?: { maxHelloBytes?: number }): TlsParseError {
  const err = thrown(() => parseClientHello(bytes, opts));
  expect(err.code).toBe(code as TlsParseError["code"]);
  expect(err.alert).toBe(alert);
  expect(err.source).toBe("downstream");
  return err;
}

const hello = (fields: Parameters<typeof buildHandshake>[0] = {}) => toRecords(buildHandshake(fields));

describe("captured ClientHellos", () => {
  test("every fixture has a golden expectation and vice versa", () => {
    expect([...FIXTURES.keys()].sort()).toEqual(Object.keys(GOLDEN).sort());
  });

  for (const name of Object.keys(GOLDEN)) {
    test(`${name}: one chunk, parsed in place`, () => {
      const wire = FIXTURES.get(name)!;
      const p = new ClientHelloParser();
      p.push(wire);
      expect(p.next()).toEqual(expected(name, 1));
      // Zero copy: the whole hello was in the first chunk, so no assembly buffer.
      expect((p as unknown as { body: Uint8Array | null }).body).toBeNull();
      expect(p.bufferedChunks()[0]).toBe(wire);
    });
  }

  test("the post-quantum fixture is over 1500 bytes and carries an X25519MLKEM768 key share", () => {
    const { handshake } = unframe(FIXTURES.get("bun_tls_pq_big")!);
    expect(FIXTURES.get("bun_tls_pq_big")!.length).toBeGreaterThan(1500);
    // Walk to key_share (51) and find group 0x11ec with its 1184 + 32 byte share.
    const b = handshake;
    let p = 4 + 2 + 32;
    p += 1 + b[p]!;
    p += 2 + ((b[p]! << 8) | b[p + 1]!);
    p += 1 + b[p]!;
    p += 2;
    const shares: Record<number, number> = {};
    while (p < b.length) {
      const type = (b[p]! << 8) | b[p + 1]!;
      const len = (b[p + 2]! << 8) | b[p + 3]!;
      if (type === 51) {
        for (let q = p + 6; q < p + 4 + len; ) {
          const group = (b[q]! << 8) | b[q + 1]!;
          const n = (b[q + 2]! << 8) | b[q + 3]!;
          shares[group] = n;
          q += 4 + n;
        }
      }
      p += 4 + len;
    }
    expect(shares[0x11ec]).toBe(1216);
  });
});

describe("reassembly", () => {
  for (const name of Object.keys(GOLDEN)) {
    test(`${name}: every two-chunk split`, () => {
      const wire = FIXTURES.get(name)!;
      const want = expected(name, 1);
      for (let i = 1; i < wire.length; i++) {
        const p = new ClientHelloParser();
        const a = wire.subarray(0, i);
        const b = wire.subarray(i);
        p.push(a);
        if (p.next() !== null) throw new Error(`split at ${i}: result before the hello was complete`);
        p.push(b);
        const got = p.next();
        if (got === null || got.serverName !== want.serverName || got.helloLength !== want.helloLength) {
          expect({ split: i, got }).toEqual({ split: i, got: want });
        }
        const chunks = p.bufferedChunks();
        if (chunks.length !== 2 || chunks[0] !== a || chunks[1] !== b || p.bufferedBytes !== wire.length) {
          throw new Error(`split at ${i}: buffered chunks are not the pushed ones`);
        }
      }
      // One full comparison at a split in the middle (the loop above compares the key fields).
      const p = new ClientHelloParser();
      p.push(wire.subarray(0, wire.length >> 1));
      p.push(wire.subarray(wire.length >> 1));
      expect(p.next()).toEqual(want);
    });

    test(`${name}: byte by byte`, () => {
      const wire = FIXTURES.get(name)!;
      const p = new ClientHelloParser();
      for (let i = 0; i < wire.length - 1; i++) {
        p.push(wire.subarray(i, i + 1));
        if (p.next() !== null) throw new Error(`result after ${i + 1} of ${wire.length} bytes`);
      }
      p.push(wire.subarray(wire.length - 1));
      expect(p.next()).toEqual(expected(name, 1));
      expect(concat(p.bufferedChunks())).toEqual(wire);
    });
  }

  test("random re-framing into records and random TCP chunking give the same result", () => {
    const rand = prng(0x5eed);
    // Bytes a TLS 1.3 client may send right after its hello (change_cipher_spec,
    // then early data): replayed, never parsed.
    const after = concat([recordHeader(20, 1, 0x0303), new Uint8Array([1]), recordHeader(23, 3, 0x0303), new Uint8Array([9, 9, 9])]);
    let cases = 0;
    for (const name of Object.keys(GOLDEN)) {
      const { handshake, version } = unframe(FIXTURES.get(name)!);
      for (let iter = 0; iter < 60; iter++) {
        const maxRecord = [1, 3, 17, 300, 1 << 14][iter % 5]!;
        const sizes: number[] = [];
        for (let left = handshake.length; left > 0; ) {
          const n = Math.min(randInt(rand, 1, maxRecord), left);
          sizes.push(n);
          left -= n;
        }
        const records = toRecords(handshake, sizes, { version });
        const wire = iter % 2 === 0 ? concat([records, after]) : records;
        const chunks = randomChunks(rand, wire, [1, 5, 64, 700, 4096][iter % 5]!);
        const p = new ClientHelloParser();
        let pushed = 0;
        let got: ClientHelloInfo | null = null;
        for (const c of chunks) {
          p.push(c);
          pushed += c.length;
          got = p.next();
          // A result exactly once the last hello byte is in, never before.
          if ((got !== null) !== (pushed >= records.length)) {
            throw new Error(`${name} iter ${iter}: result=${got !== null} after ${pushed} of ${records.length} record bytes`);
          }
        }
        expect(got).toEqual(expected(name, sizes.length));
        const buffered = p.bufferedChunks();
        expect(buffered.length).toBe(chunks.length);
        for (let i = 0; i < chunks.length; i++) if (buffered[i] !== chunks[i]) throw new Error("chunk replaced");
        expect(concat(buffered)).toEqual(wire);
        cases++;
      }
    }
    expect(cases).toBe(Object.keys(GOLDEN).length * 60);
  });

  test("a hello in 1-byte records is accepted; records are bounded by the hello length", () => {
    const hs = buildHandshake({ extensions: [extension(0, serverNameData(["one.example"]))] });
    const r = parseClientHello(toRecords(hs, 1))!;
    expect(r.recordCount).toBe(hs.length);
    expect(r.serverName).toBe("one.example");
  });

  test("bytes after the hello in the same record and chunk are buffered, not parsed", () => {
    const hs = buildHandshake();
    const wire = concat([toRecords(concat([hs, new Uint8Array([0xff, 0xff, 0xff])])), new Uint8Array([0, 0, 0])]);
    const p = new ClientHelloParser();
    p.push(wire);
    expect(p.next()!.serverName).toBe("example.com");
    expect(p.bufferedBytes).toBe(wire.length);
  });

  test("next() is idempotent after a result and sticky after an error", () => {
    const p = new ClientHelloParser();
    p.push(hello());
    const r = p.next();
    expect(p.next()).toBe(r);
    const q = new ClientHelloParser();
    q.push(new Uint8Array([23, 3, 3, 0, 1]));
    const e1 = thrown(() => q.next());
    q.push(hello());
    expect(thrown(() => q.next())).toBe(e1);
  });

  test("empty chunks are ignored", () => {
    const p = new ClientHelloParser();
    p.push(new Uint8Array(0));
    expect(p.next()).toBeNull();
    expect(p.bufferedChunks().length).toBe(0);
    p.push(hello());
    p.push(new Uint8Array(0));
    expect(p.next()!.serverName).toBe("example.com");
    expect(p.bufferedChunks().length).toBe(1);
  });
});

describe("record layer and bounds", () => {
  test("a handshake message over maxHelloBytes is refused from its header alone", () => {
    const wire = FIXTURES.get("openssl_big_alpn")!;
    const size = unframe(wire).handshake.length;
    const p = new ClientHelloParser({ maxHelloBytes: 1024 });
    p.push(wire.subarray(0, 9)); // record header + handshake header only
    const err = thrown(() => p.next());
    expect(err.code).toBe("TLS_HELLO_TOO_LARGE");
    expect(err.alert).toBe(TlsAlert.record_overflow);
    expect(err.message).toContain(`${size} bytes`);
    // The limit is inclusive.
    expect(parseClientHello(wire, { maxHelloBytes: size })!.helloLength).toBe(size);
    expectError(wire, "TLS_HELLO_TOO_LARGE", TlsAlert.record_overflow, { maxHelloBytes: size - 1 });
  });

  test("a record of 2^14 bytes is accepted, 2^14 + 1 is record_overflow", () => {
    const fill = (total: number) => {
      const base = buildHandshake({ extensions: [extension(0, serverNameData(["pad.example"]))] });
      // padding extension (21) grows the message to exactly `total` bytes.
      return buildHandshake({
        extensions: [extension(0, serverNameData(["pad.example"])), extension(21, new Uint8Array(total - base.length - 4))],
      });
    };
    const exact = fill(1 << 14);
    expect(exact.length).toBe(1 << 14);
    expect(parseClientHello(toRecords(exact, 1 << 14))!.recordCount).toBe(1);
    const over = fill((1 << 14) + 1);
    const wire = concat([recordHeader(22, over.length), over]);
    expectError(wire, "TLS_HELLO_TOO_LARGE", TlsAlert.record_overflow, { maxHelloBytes: 1 << 15 });
    // The same hello in two records is fine when the configured maximum allows it.
    expect(parseClientHello(toRecords(over, 1 << 14), { maxHelloBytes: 1 << 15 })!.recordCount).toBe(2);
    // Refused from the 5-byte record header, before the payload arrives.
    const p = new ClientHelloParser({ maxHelloBytes: 1 << 15 });
    p.push(wire.subarray(0, 5));
    expect(thrown(() => p.next()).alert).toBe(TlsAlert.record_overflow);
  });

  test("first record not a handshake: TLS_NOT_HANDSHAKE with unexpected_message", () => {
    const http = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expectError(http, "TLS_NOT_HANDSHAKE", TlsAlert.unexpected_message);
    expectError(concat([recordHeader(23, 5, 0x0303), new Uint8Array(5)]), "TLS_NOT_HANDSHAKE", TlsAlert.unexpected_message);
    expectError(new Uint8Array([21, 3, 3, 0, 2, 2, 40]), "TLS_NOT_HANDSHAKE", TlsAlert.unexpected_message);
    // Decided on the first byte.
    const p = new ClientHelloParser();
    p.push(new Uint8Array([0x47]));
    expect(thrown(() => p.next()).code).toBe("TLS_NOT_HANDSHAKE");
  });

  test("another record type between the hello's records: TLS_NOT_HANDSHAKE", () => {
    const hs = buildHandshake();
    const wire = concat([toRecords(hs.subarray(0, 10)), recordHeader(23, 1), new Uint8Array([0]), toRecords(hs.subarray(10))]);
    const err = expectError(wire, "TLS_NOT_HANDSHAKE", TlsAlert.unexpected_message);
    expect(err.message).toContain("record 2");
  });

  test("first handshake message is not a ClientHello: unexpected_message", () => {
    expectError(hello({ msgType: 2 }), "TLS_NOT_HANDSHAKE", TlsAlert.unexpected_message);
  });

  test("SSL 2.0 compatible ClientHello: TLS_UNSUPPORTED with protocol_version", () => {
    // RFC 5246 appendix E.2: msg_length (high bit set), msg_type 1, version 3.1, lengths...
    const v2 = new Uint8Array([0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x39]);
    expectError(v2, "TLS_UNSUPPORTED", TlsAlert.protocol_version);
    // High bit but not a CLIENT-HELLO: just not TLS.
    expectError(new Uint8Array([0x80, 0x10, 0x07]), "TLS_NOT_HANDSHAKE", TlsAlert.unexpected_message);
    const p = new ClientHelloParser();
    p.push(new Uint8Array([0x80, 0x2e]));
    expect(p.next()).toBeNull(); // needs the msg_type byte to tell
  });

  test("record version that is not 3.x: TLS_UNSUPPORTED", () => {
    expectError(toRecords(buildHandshake(), 1 << 14, { version: 0x0200 }), "TLS_UNSUPPORTED", TlsAlert.protocol_version);
    expectError(toRecords(buildHandshake(), 1 << 14, { version: 0xfefd }), "TLS_UNSUPPORTED", TlsAlert.protocol_version);
    // Any 3.x record version is fine (RFC 8446 §5.1: "MUST be ignored for all purposes").
    for (const v of [0x0300, 0x0301, 0x0303, 0x0304]) expect(parseClientHello(toRecords(buildHandshake(), 99, { version: v }))).not.toBeNull();
  });

  test("hello legacy_version that is not 3.x: TLS_UNSUPPORTED", () => {
    expectError(hello({ legacyVersion: 0x0200 }), "TLS_UNSUPPORTED", TlsAlert.protocol_version);
  });

  test("zero-length handshake record: decode_error", () => {
    const hs = buildHandshake();
    const wire = concat([toRecords(hs.subarray(0, 20)), recordHeader(22, 0), toRecords(hs.subarray(20))]);
    expectError(wire, "TLS_DECODE", TlsAlert.decode_error);
    expectError(recordHeader(22, 0), "TLS_DECODE", TlsAlert.decode_error);
  });

  test("handshake length shorter than the record is fine; longer than what follows waits", () => {
    const hs = buildHandshake();
    const p = new ClientHelloParser();
    p.push(toRecords(hs).subarray(0, 100));
    expect(p.next()).toBeNull();
  });

  test("maxHelloBytes must be a sane integer", () => {
    expect(() => new ClientHelloParser({ maxHelloBytes: 0 })).toThrow(RangeError);
    expect(() => new ClientHelloParser({ maxHelloBytes: 1.5 })).toThrow(RangeError);
    expect(() => new ClientHelloParser({ maxHelloBytes: 2 ** 25 })).toThrow(RangeError);
    expect(new ClientHelloParser().maxHelloBytes).toBe(16384);
  });
});

describe("ClientHello body", () => {
  const sni = (names: Parameters<typeof serverNameData>[0]) => extension(0, serverNameData(names));

  test("no extensions block (old TLS clients): no name, no ALPN", () => {
    expect(parseClientHello(hello({ extensions: null }))).toEqual({
      serverName: null,
      alpn: [],
      legacyVersion: 0x0303,
      supportedVersions: null,
      recordCount: 1,
      helloLength: buildHandshake({ extensions: null }).length,
    });
  });

  test("empty extensions block", () => {
    expect(parseClientHello(hello({ extensions: [] }))!.serverName).toBeNull();
  });

  test("server name is canonicalised", () => {
    expect(parseClientHello(hello({ extensions: [sni(["WWW.Example.COM."])] }))!.serverName).toBe("www.example.com");
    expect(parseClientHello(hello({ extensions: [sni(["a_b.example"])] }))!.serverName).toBe("a_b.example");
  });

  test("invalid server names get unrecognized_name", () => {
    for (const name of ["1.2.3.4", "exa mple.com", "a..b", ".", "..", "a/b", "[::1]", "x".repeat(64) + ".com", `${"a.".repeat(127)}ab`, "0x7f.1"]) {
      const err = expectError(hello({ extensions: [sni([name])] }), "TLS_BAD_SERVER_NAME", TlsAlert.unrecognized_name);
      expect(err.message).toContain("not a valid DNS hostname");
    }
    // Non-ASCII byte (a U-label sent raw instead of its A-label).
    const utf8 = new TextEncoder().encode("bücher.example");
    const err = expectError(hello({ extensions: [sni([utf8])] }), "TLS_BAD_SERVER_NAME", TlsAlert.unrecognized_name);
    expect(err.message).toContain("\\xc3\\xbc");
  });

  test("server_name structure errors are decode_error", () => {
    const dec = (exts: Uint8Array[]) => expectError(hello({ extensions: exts }), "TLS_DECODE", TlsAlert.decode_error);
    dec([sni(["a.example", "b.example"])]); // two host_name entries
    dec([sni(["a.example"]), sni(["b.example"])]); // two server_name extensions
    dec([sni([new Uint8Array(0)])]); // empty HostName
    dec([extension(0, new Uint8Array(0))]); // empty extension (only servers send that)
    dec([extension(0, new Uint8Array([0, 0]))]); // empty list
    dec([extension(0, new Uint8Array([0, 9, 0, 0, 3, 0x61, 0x62, 0x63]))]); // list length past the extension
    dec([extension(0, new Uint8Array([0, 4, 0, 0, 3, 0x61]))]); // name past the list
    dec([extension(0, new Uint8Array([0, 2, 0, 0]))]); // entry header cut short
  });

  test("unknown name types are skipped", () => {
    const ext = sni([{ type: 7, name: new Uint8Array([1, 2, 3]) }, "after.example"]);
    expect(parseClientHello(hello({ extensions: [ext] }))!.serverName).toBe("after.example");
    expect(parseClientHello(hello({ extensions: [sni([{ type: 7, name: new Uint8Array(4) }])] }))!.serverName).toBeNull();
  });

  test("ALPN ids and supported_versions", () => {
    const r = parseClientHello(
      hello({ extensions: [extension(16, alpnData(["h2", "http/1.1", "x\u00ff"])), extension(43, supportedVersionsData([0x0304, 0x7f1c]))] }),
    )!;
    expect(r.alpn).toEqual(["h2", "http/1.1", "x\u00ff"]);
    expect(r.supportedVersions).toEqual([0x0304, 0x7f1c]);
    const dec = (exts: Uint8Array[]) => expectError(hello({ extensions: exts }), "TLS_DECODE", TlsAlert.decode_error);
    dec([extension(16, new Uint8Array([0, 3, 1, 0x61, 0]))]); // empty protocol name
    dec([extension(16, new Uint8Array([0, 0]))]); // empty list
    dec([extension(16, new Uint8Array([0, 3, 5, 0x61, 0x62]))]); // name past the list
    dec([extension(16, alpnData(["h2"])), extension(16, alpnData(["h2"]))]);
    dec([extension(43, new Uint8Array([3, 3, 4, 3]))]); // odd
    dec([extension(43, new Uint8Array([0]))]); // empty
    dec([extension(43, new Uint8Array([4, 3, 4]))]); // past the extension
    dec([extension(43, supportedVersionsData([0x0304])), extension(43, supportedVersionsData([0x0304]))]);
  });

  test("fixed fields and the extensions block are bounded", () => {
    const dec = (fields: Parameters<typeof buildHandshake>[0]) => expectError(hello(fields), "TLS_DECODE", TlsAlert.decode_error);
    dec({ sessionId: new Uint8Array(33) });
    dec({ cipherSuites: new Uint8Array(0) });
    dec({ cipherSuites: new Uint8Array(3) });
    dec({ compression: new Uint8Array(0) });
    dec({ trailing: new Uint8Array([0]) }); // data after the extensions block
    dec({ extensions: null, trailing: new Uint8Array([0]) }); // one stray byte instead of a block
    dec({ extensions: [new Uint8Array([0, 16, 0])] }); // extension header cut short
    dec({ extensions: [new Uint8Array([0, 16, 0, 9, 0])] }); // extension past the block
    // Truncations of the body, with the handshake length telling the truth.
    // Every cut is a decode_error except the one right after
    // legacy_compression_methods, which is a valid hello without extensions.
    const full = buildHandshake();
    const noExtensions = buildHandshake({ extensions: null }).length - 4;
    for (let n = 0; n < full.length - 4; n++) {
      const body = full.subarray(4, 4 + n);
      const hs = concat([new Uint8Array([1, 0, n >> 8, n & 0xff]), body]);
      if (n === noExtensions) {
        expect(parseClientHello(toRecords(hs))!.serverName).toBeNull();
        continue;
      }
      const err = thrown(() => parseClientHello(toRecords(hs)));
      expect(err.alert).toBe(TlsAlert.decode_error);
    }
  });
});

describe("property: any input gives null, a result or a TlsParseError", () => {
  test("random bytes and mutated real hellos, in random chunks", () => {
    const rand = prng(20250601);
    const fixtures = [...FIXTURES.values()];
    const codes = new Set<string>(["TLS_DECODE", "TLS_NOT_HANDSHAKE", "TLS_HELLO_TOO_LARGE", "TLS_UNSUPPORTED", "TLS_BAD_SERVER_NAME"]);
    const alerts = new Set<number>([10, 22, 50, 70, 112]);
    const seen: Record<string, number> = {};
    const deadline = performance.now() + 8000;
    let iterations = 0;

    type Outcome = { kind: "null" } | { kind: "result"; r: ClientHelloInfo } | { kind: "error"; code: string; alert: number };
    const run = (bytes: Uint8Array, chunks: Uint8Array[], max: number): Outcome => {
      const p = new ClientHelloParser({ maxHelloBytes: max });
      let r: ClientHelloInfo | null = null;
      for (const c of chunks) {
        p.push(c);
        try {
          r = p.next();
        } catch (e) {
          if (!(e instanceof TlsParseError)) throw new Error(`non-TlsParseError on ${Buffer.from(bytes).toString("hex")}: ${e}`);
          if (!codes.has(e.code) || !alerts.has(e.alert)) throw new Error(`unexpected code/alert ${e.code}/${e.alert}`);
          let again: unknown = null;
          try {
            p.next();
          } catch (e2) {
            again = e2;
          }
          if (again !== e) throw new Error("error is not sticky");
          return { kind: "error", code: e.code, alert: e.alert };
        }
        if (r !== null) break;
      }
      if (r === null) return { kind: "null" };
      if (r.helloLength > max) throw new Error("result over maxHelloBytes");
      if (r.serverName !== null && !/^[a-z0-9_.-]{1,253}$/.test(r.serverName)) throw new Error(`bad name ${r.serverName}`);
      return { kind: "result", r };
    };

    while (iterations < 20000 && performance.now() < deadline) {
      iterations++;
      let bytes: Uint8Array;
      if (iterations % 3 === 0) {
        // Random bytes, often behind a plausible record and handshake header so
        // the body parser is reached too.
        const n = randInt(rand, 0, 400);
        bytes = new Uint8Array(n);
        for (let i = 0; i < n; i++) bytes[i] = randInt(rand, 0, 255);
        if (n >= 9 && rand() < 0.7) {
          const rec = randInt(rand, 1, n);
          bytes.set([22, 3, randInt(rand, 0, 4), rec >> 8, rec & 0xff, 1, 0, (n - 9) >> 8, (n - 9) & 0xff]);
        }
      } else {
        const src = fixtures[randInt(rand, 0, fixtures.length - 1)]!;
        if (rand() < 0.3) {
          const { handshake } = unframe(src);
          bytes = toRecords(handshake, randInt(rand, 1, 400));
        } else {
          bytes = src.slice();
        }
        const mutations = randInt(rand, 1, 4);
        for (let m = 0; m < mutations; m++) {
          const at = randInt(rand, 0, Math.max(0, bytes.length - 1));
          const kind = randInt(rand, 0, 4);
          if (kind === 0) bytes[at] = randInt(rand, 0, 255);
          else if (kind === 1) bytes[at] = bytes[at]! ^ (1 << randInt(rand, 0, 7));
          else if (kind === 2) bytes = bytes.subarray(0, at);
          else if (kind === 3) bytes = concat([bytes.subarray(0, at), bytes.subarray(at + randInt(rand, 1, 8))]);
          else bytes = concat([bytes.subarray(0, at), new Uint8Array(randInt(rand, 1, 8)).map(() => randInt(rand, 0, 255)), bytes.subarray(at)]);
        }
      }
      const max = rand() < 0.5 ? 16384 : randInt(rand, 4, 2048);
      // The same bytes whole and in random chunks must agree (zero-copy path vs assembling path).
      const whole = run(bytes, [bytes], max);
      const split = run(bytes, randomChunks(rand, bytes, randInt(rand, 1, 64)), max);
      if (whole.kind !== split.kind || JSON.stringify(whole) !== JSON.stringify(split)) {
        throw new Error(`chunking changed the outcome for ${Buffer.from(bytes).toString("hex")}: ${JSON.stringify(whole)} vs ${JSON.stringify(split)}`);
      }
      const key = whole.kind === "error" ? `${whole.code}/${whole.alert}` : whole.kind;
      seen[key] = (seen[key] ?? 0) + 1;
    }
    expect(iterations).toBeGreaterThanOrEqual(2000);
    // The generator reaches every outcome, so the test exercises each path.
    for (const key of ["null", "result", "TLS_DECODE/50", "TLS_BAD_SERVER_NAME/112", "TLS_NOT_HANDSHAKE/10", "TLS_UNSUPPORTED/70", "TLS_HELLO_TOO_LARGE/22"]) {
      if (!seen[key]) throw new Error(`outcome ${key} never seen: ${JSON.stringify(seen)}`);
    }
  });
});

describe("error model", () => {
  test("codes are shared error codes; the alert is the one errors/ maps the code to", () => {
    const e = thrown(() => parseClientHello(hello({ sessionId: new Uint8Array(33) })));
    expect(ERROR_CODES).toContain(e.code);
    expect(tlsAlertFor(e.code)).toBe(e.alert);
    expect(e.toRecord()).toEqual({ code: "TLS_DECODE", source: "downstream", message: e.message });
  });
});
