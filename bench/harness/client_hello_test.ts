import { expect, test } from "bun:test";
import { parseClientHello } from "../../src/proto/mod.ts";
import { buildClientHello } from "./client_hello.ts";

/** An independent walk of the record, handshake and extension lengths. */
function walk(b: Uint8Array): { sni: string; extTypes: number[] } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  expect(b[0]).toBe(22);
  expect(dv.getUint16(3)).toBe(b.length - 5);
  expect(b[5]).toBe(1);
  expect((b[6]! << 16) | dv.getUint16(7)).toBe(b.length - 9);
  let p = 9 + 2 + 32;
  p += 1 + b[p]!; // session id
  p += 2 + dv.getUint16(p); // cipher suites
  p += 1 + b[p]!; // compression
  const extEnd = p + 2 + dv.getUint16(p);
  expect(extEnd).toBe(b.length);
  p += 2;
  let sni = "";
  const extTypes: number[] = [];
  while (p < extEnd) {
    const type = dv.getUint16(p);
    const len = dv.getUint16(p + 2);
    extTypes.push(type);
    if (type === 0) sni = new TextDecoder().decode(b.subarray(p + 4 + 5, p + 4 + len));
    p += 4 + len;
  }
  expect(p).toBe(extEnd);
  return { sni, extTypes };
}

test("builds a consistent ClientHello carrying the server name", () => {
  const hello = buildClientHello({ serverName: "localhost", alpn: ["http/1.1"] });
  const w = walk(hello);
  expect(w.sni).toBe("localhost");
  expect(w.extTypes).toEqual([0, 10, 11, 13, 16, 43, 45, 51]);
});

test("edgemux's own parser reads the same name, ALPN and versions", () => {
  const info = parseClientHello(buildClientHello({ serverName: "bench.test", alpn: ["h2", "http/1.1"] }));
  expect(info?.serverName).toBe("bench.test");
  expect(info?.alpn).toEqual(["h2", "http/1.1"]);
  expect(info?.supportedVersions).toEqual([0x0304, 0x0303]);
});

test("fixed entropy gives identical bytes; names are bounded", () => {
  const entropy = new Uint8Array(96).fill(7);
  expect(buildClientHello({ serverName: "a.b", entropy })).toEqual(buildClientHello({ serverName: "a.b", entropy }));
  expect(() => buildClientHello({ serverName: "" })).toThrow(RangeError);
  expect(() => buildClientHello({ serverName: "x".repeat(256) })).toThrow(RangeError);
  expect(() => buildClientHello({ serverName: "a", entropy: new Uint8Array(10) })).toThrow(RangeError);
});
