/**
 * A minimal DER (ITU-T X.690) encoder and reader: just what ACME needs to
 * build a PKCS#10 CSR and the TLS-ALPN-01 self-signed certificate, and to read
 * a certificate's validity and names back. Encoders return fresh bytes; the
 * reader hands out `subarray` views of the buffer it was given.
 *
 * Only definite-length, low-tag-number forms are produced or accepted
 * (X.690 §10.1: "The definite form of length encoding shall be used").
 */
import { concatBytes } from "../proto/mod.ts";

export class DerError extends Error {
  readonly code = "DER_MALFORMED";
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

const enc = new TextEncoder();

/** Bytes this module made (never a view of shared memory), as WebCrypto's BufferSource wants. */
export type Bytes = Uint8Array<ArrayBuffer>;

function lengthBytes(n: number): Bytes {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** One TLV: `tag` (a single identifier octet), then the DER length, then `content`. */
export function tlv(tag: number, ...content: Uint8Array[]): Bytes {
  const body = content.length === 1 ? content[0]! : concatBytes(content);
  return concatBytes([Uint8Array.of(tag), lengthBytes(body.length), body]);
}

export const seq = (...items: Uint8Array[]): Bytes => tlv(TAG.SEQUENCE, ...items);

/** SET OF: X.690 §11.6 wants the encodings sorted; we sort them. */
export function set(...items: Uint8Array[]): Bytes {
  const sorted = [...items].sort(compareBytes);
  return tlv(TAG.SET, ...sorted);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export const nul = (): Bytes => Uint8Array.of(TAG.NULL, 0);
export const bool = (v: boolean): Bytes => Uint8Array.of(TAG.BOOLEAN, 1, v ? 0xff : 0);
export const octets = (b: Uint8Array): Bytes => tlv(TAG.OCTET_STRING, b);
/** BIT STRING with no unused bits (keys and signatures are whole octets). */
export const bits = (b: Uint8Array): Bytes => tlv(TAG.BIT_STRING, Uint8Array.of(0), b);
export const utf8 = (s: string): Bytes => tlv(TAG.UTF8_STRING, enc.encode(s));
export const ia5 = (s: string): Bytes => tlv(TAG.IA5_STRING, enc.encode(s));

/**
 * INTEGER from unsigned big-endian magnitude bytes, or a small non-negative number.
 * X.690 §8.3.2: the first nine bits shall not be all ones or all zeros, so
 * leading zero octets go, and one comes back when the top bit is set
 * (the value is non-negative).
 */
export function int(v: number | Uint8Array): Bytes {
  let b: Uint8Array;
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0) throw new DerError(`INTEGER: only non-negative safe integers, got ${v}`);
    const out: number[] = [];
    for (let x = v; x > 0; x = Math.floor(x / 256)) out.unshift(x & 0xff);
    b = Uint8Array.from(out);
  } else {
    b = v;
  }
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  b = b.subarray(i);
  if (b.length === 0) b = Uint8Array.of(0);
  if (b[0]! & 0x80) b = concatBytes([Uint8Array.of(0), b]);
  return tlv(TAG.INTEGER, b);
}

/** OBJECT IDENTIFIER from dotted text ("1.2.840.10045.2.1"); X.690 §8.19. */
export function oid(dotted: string): Bytes {
  const arcs = dotted.split(".").map((a) => {
    if (!/^\d+$/.test(a)) throw new DerError(`OID: bad arc '${a}' in '${dotted}'`);
    return Number(a);
  });
  if (arcs.length < 2 || arcs[0]! > 2 || (arcs[0]! < 2 && arcs[1]! > 39)) throw new DerError(`OID: bad first arcs in '${dotted}'`);
  const out: number[] = [];
  const push = (n: number) => {
    const groups: number[] = [n & 0x7f];
    for (let x = Math.floor(n / 128); x > 0; x = Math.floor(x / 128)) groups.unshift(0x80 | (x & 0x7f));
    out.push(...groups);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  return tlv(TAG.OID, Uint8Array.from(out));
}

/** Context-specific EXPLICIT tag [n]: a constructed wrapper around one encoding. */
export const explicit = (n: number, inner: Uint8Array): Bytes => tlv(0xa0 | n, inner);

/** Context-specific IMPLICIT tag [n] over primitive content (e.g. GeneralName dNSName is [2] IA5String). */
export const implicitPrimitive = (n: number, content: Uint8Array): Bytes => tlv(0x80 | n, content);

/** Context-specific IMPLICIT tag [n] over constructed content (the CSR's `attributes [0] SET OF`). */
export const implicitConstructed = (n: number, ...content: Uint8Array[]): Bytes => tlv(0xa0 | n, ...content);

/**
 * RFC 5280 §4.1.2.5: "CAs conforming to this profile MUST always encode
 * certificate validity dates through the year 2049 as UTCTime; certificate
 * validity dates in 2050 or later MUST be encoded as GeneralizedTime."
 * Seconds precision, always Zulu.
 */
export function time(ms: number): Bytes {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const y = d.getUTCFullYear();
  const p2 = (n: number) => String(n).padStart(2, "0");
  const rest = `${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())}${p2(d.getUTCHours())}${p2(d.getUTCMinutes())}${p2(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(TAG.UTC_TIME, enc.encode(`${p2(y % 100)}${rest}`));
  return tlv(TAG.GENERALIZED_TIME, enc.encode(`${String(y).padStart(4, "0")}${rest}`));
}

// ---------------------------------------------------------------- reader

/** One element read from a buffer: its tag, and where its content lies. */
export interface Tlv {
  tag: number;
  /** The whole encoding (header and content). */
  start: number;
  /** First content byte. */
  contentStart: number;
  /** One past the last content byte (and the element). */
  end: number;
}

/** Reads the element at `offset`, bounded by `limit` (the enclosing element's end). */
export function readTlv(buf: Uint8Array, offset: number, limit: number = buf.length): Tlv {
  if (limit > buf.length) throw new DerError("limit past the buffer");
  if (offset + 2 > limit) throw new DerError(`truncated header at ${offset}`);
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError(`high tag numbers are not supported (at ${offset})`);
  let len = buf[offset + 1]!;
  let p = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    // X.690 §8.1.3.6: 0x80 is the indefinite form, which DER forbids.
    if (n === 0) throw new DerError(`indefinite length at ${offset}`);
    if (n > 4) throw new DerError(`length of ${n} octets at ${offset}`);
    if (p + n > limit) throw new DerError(`truncated length at ${offset}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    p += n;
  }
  // Bound every length by its enclosing length.
  if (p + len > limit) throw new DerError(`length ${len} at ${offset} runs past its container (ends at ${limit})`);
  return { tag, start: offset, contentStart: p, end: p + len };
}

/** The elements inside a constructed element. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.contentStart; p < parent.end;) {
    const t = readTlv(buf, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

/** A view of the element's content (shares memory with `buf`). */
export const contentView = (buf: Uint8Array, t: Tlv): Uint8Array => buf.subarray(t.contentStart, t.end);

/** Reads UTCTime or GeneralizedTime (the forms RFC 5280 allows: seconds, Zulu) as epoch ms. */
export function readTime(buf: Uint8Array, t: Tlv): number {
  const s = new TextDecoder().decode(contentView(buf, t));
  let m: RegExpMatchArray | null;
  let year: number;
  if (t.tag === TAG.UTC_TIME && (m = s.match(/^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/))) {
    const yy = Number(m[1]);
    // RFC 5280 §4.1.2.5.1: YY >= 50 is 19YY, YY < 50 is 20YY.
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (t.tag === TAG.GENERALIZED_TIME && (m = s.match(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/))) {
    year = Number(m[1]);
  } else {
    throw new DerError(`bad time '${s}' (tag ${t.tag})`);
  }
  return Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/** Dotted text of an OBJECT IDENTIFIER element. */
export function readOid(buf: Uint8Array, t: Tlv): string {
  if (t.tag !== TAG.OID) throw new DerError(`expected OID, got tag ${t.tag}`);
  const b = contentView(buf, t);
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < b.length; i++) {
    v = v * 128 + (b[i]! & 0x7f);
    if (!(b[i]! & 0x80)) {
      arcs.push(v);
      v = 0;
    }
  }
  if (arcs.length === 0) throw new DerError("empty OID");
  const first = arcs[0]!;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join(".");
}

// ---------------------------------------------------------------- ECDSA signatures

/**
 * WebCrypto signs ECDSA in the IEEE P1363 form (r || s, fixed width); X.509
 * and PKCS#10 want `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`
 * (RFC 3279 §2.2.3).
 */
export function ecdsaRawToDer(raw: Uint8Array): Bytes {
  if (raw.length % 2 !== 0) throw new DerError(`ECDSA signature of odd length ${raw.length}`);
  const h = raw.length / 2;
  return seq(int(raw.subarray(0, h)), int(raw.subarray(h)));
}

/** The inverse of `ecdsaRawToDer`, to `size` bytes per component (32 for P-256). */
export function ecdsaDerToRaw(der: Uint8Array, size = 32): Bytes {
  const top = readTlv(der, 0);
  if (top.tag !== TAG.SEQUENCE || top.end !== der.length) throw new DerError("ECDSA signature: not one SEQUENCE");
  const parts = children(der, top);
  if (parts.length !== 2 || parts.some((p) => p.tag !== TAG.INTEGER)) throw new DerError("ECDSA signature: want two INTEGERs");
  const out = new Uint8Array(size * 2);
  parts.forEach((p, i) => {
    let v = contentView(der, p);
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    if (v.length > size) throw new DerError("ECDSA signature: component too large");
    out.set(v, i * size + size - v.length);
  });
  return out;
}

// ---------------------------------------------------------------- PEM

export function toPem(label: string, der: Uint8Array): string {
  let b64 = "";
  // btoa over a binary string; chunked so a large input does not hit argument limits.
  for (let i = 0; i < der.length; i += 0x8000) b64 += String.fromCharCode(...der.subarray(i, i + 0x8000));
  b64 = btoa(b64);
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** Every PEM block with this label, in order, as DER. */
export function fromPem(pem: string, label: string): Bytes[] {
  const out: Bytes[] = [];
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, "g");
  for (const m of pem.matchAll(re)) {
    const bin = atob(m[1]!.replace(/\s+/g, ""));
    const b = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) b[i] = bin.charCodeAt(i);
    out.push(b);
  }
  return out;
}
