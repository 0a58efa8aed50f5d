/**
 * Test helpers: build ClientHellos field by field (so a test can break exactly
 * one field), re-frame a handshake message into TLS records, and load the
 * captured fixtures. Used by src/proto/*_test.ts and bench/micro.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { concatBytes } from "../bytes.ts";

export const TESTDATA_DIR = import.meta.dirname;

/** Every captured hello in this folder, by name (file name without .bin). */
export function loadFixtures(): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const f of readdirSync(TESTDATA_DIR).sort()) {
    if (f.endsWith(".bin")) out.set(f.slice(0, -4), new Uint8Array(readFileSync(join(TESTDATA_DIR, f))));
  }
  return out;
}


const u8 = (...b: number[]) => new Uint8Array(b);
const u16 = (n: number) => u8(n >> 8, n & 0xff);
const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** opaque x<..2^8-1> / <..2^16-1> with the length prefix. */
export const vec8 = (body: Uint8Array) => concat([u8(body.length), body]);
export const vec16 = (body: Uint8Array) => concat([u16(body.length), body]);

export function extension(type: number, data: Uint8Array): Uint8Array {
  return concat([u16(type), vec16(data)]);
}

/** server_name extension data: one entry per name (host_name type 0 unless given). */
export function serverNameData(names: (string | Uint8Array | { type: number; name: Uint8Array })[]): Uint8Array {
  const entries = names.map((n) => {
    if (typeof n === "string") return concat([u8(0), vec16(ascii(n))]);
    if (n instanceof Uint8Array) return concat([u8(0), vec16(n)]);
    return concat([u8(n.type), vec16(n.name)]);
  });
  return vec16(concat(entries));
}

export function alpnData(ids: string[]): Uint8Array {
  return vec16(concat(ids.map((id) => vec8(ascii(id)))));
}

export function supportedVersionsData(versions: number[]): Uint8Array {
  return vec8(concat(versions.map(u16)));
}

export interface HelloFields {
  legacyVersion?: number;
  sessionId?: Uint8Array;
  cipherSuites?: Uint8Array;
  compression?: Uint8Array;
  /** Raw extensions (use `extension()`), or null for a hello with no extensions block at all. */
  extensions?: Uint8Array[] | null;
  /** Appended after the extensions block (to test trailing garbage). */
  trailing?: Uint8Array;
  /** Handshake msg_type; 1 = ClientHello. */
  msgType?: number;
}

/** A handshake message (4-byte header included) built from fields. */
export function buildHandshake(f: HelloFields = {}): Uint8Array {
  const extensions = f.extensions === undefined ? [extension(0, serverNameData(["example.com"]))] : f.extensions;
  const body = concat([
    u16(f.legacyVersion ?? 0x0303),
    new Uint8Array(32).fill(0xab), // random
    vec8(f.sessionId ?? new Uint8Array(32).fill(0xcd)),
    vec16(f.cipherSuites ?? u8(0x13, 0x01, 0x13, 0x02, 0xc0, 0x2f)),
    vec8(f.compression ?? u8(0)),
    extensions === null ? new Uint8Array(0) : vec16(concat(extensions)),
    f.trailing ?? new Uint8Array(0),
  ]);
  const n = body.length;
  return concat([u8(f.msgType ?? 1, n >> 16, (n >> 8) & 0xff, n & 0xff), body]);
}

/** Wraps `payload` in records of the given sizes (the last size repeats), content type 22 unless given. */
export function toRecords(payload: Uint8Array, sizes: number[] | number = 1 << 14, opts: { type?: number; version?: number } = {}): Uint8Array {
  const list = typeof sizes === "number" ? [sizes] : sizes;
  const parts: Uint8Array[] = [];
  let o = 0;
  let i = 0;
  while (o < payload.length) {
    const size = Math.min(list[Math.min(i++, list.length - 1)]!, payload.length - o);
    parts.push(recordHeader(opts.type ?? 22, size, opts.version ?? 0x0301), payload.subarray(o, o + size));
    o += size;
  }
  return concat(parts);
}

export function recordHeader(type: number, length: number, version = 0x0301): Uint8Array {
  return u8(type, version >> 8, version & 0xff, length >> 8, length & 0xff);
}

/**
 * The handshake bytes carried by the records at the start of `wire` (the
 * fixtures hold exactly the client's hello records), plus the first record's
 * version, for re-framing.
 */
export function unframe(wire: Uint8Array): { handshake: Uint8Array; version: number } {
  const parts: Uint8Array[] = [];
  let p = 0;
  while (p + 5 <= wire.length) {
    const len = (wire[p + 3]! << 8) | wire[p + 4]!;
    parts.push(wire.subarray(p + 5, p + 5 + len));
    p += 5 + len;
  }
  if (p !== wire.length) throw new Error("fixture does not end on a record boundary");
  return { handshake: concat(parts), version: (wire[1]! << 8) | wire[2]! };
}

/** Small seeded PRNG (mulberry32) so failures reproduce. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0; // modular: uint32 state
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Integer in [lo, hi]. */
export function randInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

/** Cuts `bytes` into consecutive views of random sizes 1..maxChunk. */
export function randomChunks(rand: () => number, bytes: Uint8Array, maxChunk: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let o = 0; o < bytes.length; ) {
    const n = Math.min(randInt(rand, 1, maxChunk), bytes.length - o);
    out.push(bytes.subarray(o, o + n));
    o += n;
  }
  return out;
}

/** The parts back to back (typed wide, as the tests compare it with views). */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}
