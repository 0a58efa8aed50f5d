/**
 * PROXY protocol versions 1 (text) and 2 (binary), sans-I/O.
 *
 * Spec: "The PROXY protocol, Versions 1 & 2", Willy Tarreau, revision
 * 2020/03/05 (haproxy doc/proxy-protocol.txt; Debian ships it as
 * /usr/share/doc/haproxy/proxy-protocol.txt.gz). Quoted sentences below come
 * from that text.
 *
 * Encoders write into a caller-owned buffer and return the byte count; they
 * allocate nothing on the TCP paths. `ProxyHeaderParser` is push-based: feed it
 * chunks, call `next()` until it returns the header, then take `rest()`, the
 * bytes that followed the header as views of the chunks you pushed.
 *
 * Address families on encode:
 * - "tcp4" with two IPv4 texts gives TCP4 / AF_INET.
 * - "tcp6", or "tcp4" where either address is IPv6 text, gives TCP6 /
 *   AF_INET6; an IPv4 address on that path is written as the IPv4-mapped
 *   address ::ffff:a.b.c.d. So mixed source/destination families always go
 *   out as TCP6 (the header carries one family for both ends).
 * - "unix" gives AF_UNIX stream in v2 (paths of at most 108 bytes, UTF-8) and
 *   "PROXY UNKNOWN\r\n" in v1, which has no unix family.
 * - "unknown" gives "PROXY UNKNOWN\r\n" in v1 and the LOCAL command with
 *   AF_UNSPEC in v2.
 *
 * On decode, `addresses` is null whenever the receiver must use the real
 * connection endpoints: v1 UNKNOWN, v2 LOCAL, v2 AF_UNSPEC, and v2 datagram
 * families (which this receiver does not implement and so treats as UNSPEC,
 * as the spec allows). IPv6 text comes out in RFC 5952 form (lowercase, the
 * longest zero run compressed, IPv4-mapped as ::ffff:a.b.c.d), so
 * decode(encode(x)) equals x when x is written that way.
 */

import { crc32c, crc32cUpdate } from "./crc32c.ts";
import { asciiString, ipv4Text, ipv6Text, isIPv6Text, parseIPv4, parseIPv6, writeDecimal, writeDottedQuad, writeIPv6 } from "./ip_text.ts";
export { crc32c };
import { ProxyError } from "../errors/mod.ts";

export interface ProxyAddresses {
  family: "tcp4" | "tcp6" | "unix" | "unknown";
  srcAddress: string;
  srcPort: number;
  dstAddress: string;
  dstPort: number;
}

export interface ProxyTlv {
  type: number;
  value: Uint8Array;
}

export interface ProxyHeader {
  version: 1 | 2;
  command: "proxy" | "local";
  /** Null when the real connection endpoints apply (see the file comment). */
  addresses: ProxyAddresses | null;
  /**
   * v2 TLVs in wire order, without PP2_TYPE_CRC32C (verified by the parser)
   * and PP2_TYPE_NOOP (ignored). Values are views of the header bytes, which
   * are views of the pushed chunks when the header arrived in one chunk: copy
   * a value you keep past the life of that chunk.
   */
  tlvs: ProxyTlv[];
}

export interface ProxyHeaderParserOptions {
  /** Which header the listener is configured for. There is no "none": the spec forbids guessing. */
  accept: "v1" | "v2" | "any";
  /** Bound on the v2 TLV area (header length minus addresses). Default 4096. */
  maxTlvBytes?: number;
}

export interface EncodeV2Options {
  /** Append a PP2_TYPE_CRC32C TLV holding the checksum of the whole header. */
  crc32c?: boolean;
}

/** Registered v2 TLV types (spec section 2.2). */
export const PP2_TYPE = {
  ALPN: 0x01,
  AUTHORITY: 0x02,
  CRC32C: 0x03,
  NOOP: 0x04,
  UNIQUE_ID: 0x05,
  SSL: 0x20,
  NETNS: 0x30,
  MIN_CUSTOM: 0xe0,
  MAX_CUSTOM: 0xef,
} as const;

/**
 * edgemux's TLV for the authenticated identity of the client (e.g. a SPIFFE
 * URI or token name, UTF-8), taken from the range the spec reserves:
 * "The following range of 16 type values is reserved for application-specific
 * data and will be never used by the PROXY Protocol."
 */
export const PP2_TYPE_EDGEMUX_IDENTITY = 0xe0;

/** "So a 108-byte buffer is always enough to store all the line and a trailing zero". */
export const PROXY_V1_MAX_LENGTH = 107;
/** Signature, version/command, family/protocol, length. */
export const PROXY_V2_FIXED_LENGTH = 16;
export const DEFAULT_MAX_TLV_BYTES = 4096;
export const PROXY_V2_SIGNATURE: Readonly<Uint8Array> = new Uint8Array([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);

// Wire family bytes (high nibble family, low nibble transport).
const FAM_UNSPEC = 0x00;
const FAM_TCP4 = 0x11;
const FAM_TCP6 = 0x21;
const FAM_UNIX_STREAM = 0x31;
const UNIX_PATH_BYTES = 108;
/** "an opaque byte sequence of up to 128 bytes" */
const UNIQUE_ID_MAX = 128;
const ZERO_CRC_FIELD = new Uint8Array(4);

const C_CR = 0x0d;
const C_LF = 0x0a;
const C_SPACE = 0x20;
const C_0 = 0x30;
const PROXY_SPACE = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20]; // "PROXY "

function downstream(message: string): ProxyError {
  return new ProxyError("PROXY_PROTOCOL", "downstream", message);
}

function badInput(message: string): ProxyError {
  return new ProxyError("PROXY_PROTOCOL", "internal", message);
}

// ---------------------------------------------------------------------------
// Encoders

function checkPort(p: number, which: string): void {
  if (!Number.isInteger(p) || p < 0 || p > 65535) {
    throw badInput(`PROXY header: ${which} port must be an integer in 0..65535, got ${p}`);
  }
}

function checkOffset(out: Uint8Array, offset: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset > out.length) {
    throw badInput(`PROXY header: offset ${offset} is outside the ${out.length}-byte output buffer`);
  }
}

function checkRoom(out: Uint8Array, offset: number, need: number): void {
  if (out.length - offset < need) {
    throw badInput(`PROXY header needs ${need} bytes, output buffer has ${out.length - offset} from offset ${offset}`);
  }
}

/** The wire family byte an address set is sent as (see the file comment). */
function wireFamily(a: ProxyAddresses): number {
  switch (a.family) {
    case "tcp4":
      return isIPv6Text(a.srcAddress) || isIPv6Text(a.dstAddress) ? FAM_TCP6 : FAM_TCP4;
    case "tcp6":
      return FAM_TCP6;
    case "unix":
      return FAM_UNIX_STREAM;
    case "unknown":
      return FAM_UNSPEC;
    default:
      throw badInput(`PROXY header: unknown address family '${(a as { family: unknown }).family}'`);
  }
}

function writeIPv4Binary(s: string, out: Uint8Array, pos: number, which: string): void {
  const v = parseIPv4(s, 0, s.length);
  if (v < 0) throw badInput(`PROXY header: ${which} address '${s}' is not an IPv4 dotted quad`);
  out[pos] = v >>> 24;
  out[pos + 1] = (v >>> 16) & 0xff;
  out[pos + 2] = (v >>> 8) & 0xff;
  out[pos + 3] = v & 0xff;
}

/** IPv6 text, or IPv4 text as ::ffff:a.b.c.d, into 16 bytes at out[pos]. */
function writeIPv6Binary(s: string, out: Uint8Array, pos: number, which: string): void {
  if (isIPv6Text(s)) {
    if (!parseIPv6(s, out, pos)) throw badInput(`PROXY header: ${which} address '${s}' is not valid IPv6 text`);
    return;
  }
  for (let k = 0; k < 10; k++) out[pos + k] = 0;
  out[pos + 10] = 0xff;
  out[pos + 11] = 0xff;
  writeIPv4Binary(s, out, pos + 12, which);
}

const v1Scratch = new Uint8Array(PROXY_V1_MAX_LENGTH);
const ip6Scratch = new Uint8Array(16);
const UNKNOWN_LINE = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20, 0x55, 0x4e, 0x4b, 0x4e, 0x4f, 0x57, 0x4e, C_CR, C_LF];

/** Writes the v1 line at out[pos]; out must have PROXY_V1_MAX_LENGTH bytes from pos. */
function writeV1(a: ProxyAddresses, out: Uint8Array, pos: number): number {
  const start = pos;
  const fam = wireFamily(a);
  if (fam === FAM_UNSPEC || fam === FAM_UNIX_STREAM) {
    // "Other, unsupported, or unknown protocols must be reported with the name
    // "UNKNOWN" ... For "UNKNOWN", the rest of the line before the CRLF may be
    // omitted by the sender"
    for (let k = 0; k < UNKNOWN_LINE.length; k++) out[pos++] = UNKNOWN_LINE[k]!;
    return pos - start;
  }
  checkPort(a.srcPort, "source");
  checkPort(a.dstPort, "destination");
  for (let k = 0; k < PROXY_SPACE.length; k++) out[pos++] = PROXY_SPACE[k]!;
  out[pos++] = 0x54; // T
  out[pos++] = 0x43; // C
  out[pos++] = 0x50; // P
  if (fam === FAM_TCP4) {
    out[pos++] = 0x34;
    out[pos++] = C_SPACE;
    writeIPv4Binary(a.srcAddress, ip6Scratch, 0, "source");
    pos = writeDottedQuad(out, pos, ip6Scratch, 0);
    out[pos++] = C_SPACE;
    writeIPv4Binary(a.dstAddress, ip6Scratch, 0, "destination");
    pos = writeDottedQuad(out, pos, ip6Scratch, 0);
  } else {
    out[pos++] = 0x36;
    out[pos++] = C_SPACE;
    // "IPv6 addresses must be indicated as series of sets of 4 hexadecimal
    // digits ... with the acceptance of one double colon sequence to replace
    // the largest acceptable range of consecutive zeroes": so hex groups only,
    // even for IPv4-mapped addresses.
    writeIPv6Binary(a.srcAddress, ip6Scratch, 0, "source");
    pos = writeIPv6(out, pos, ip6Scratch, 0, false);
    out[pos++] = C_SPACE;
    writeIPv6Binary(a.dstAddress, ip6Scratch, 0, "destination");
    pos = writeIPv6(out, pos, ip6Scratch, 0, false);
  }
  out[pos++] = C_SPACE;
  pos = writeDecimal(out, pos, a.srcPort);
  out[pos++] = C_SPACE;
  pos = writeDecimal(out, pos, a.dstPort);
  out[pos++] = C_CR;
  out[pos++] = C_LF;
  return pos - start;
}

/**
 * Writes the v1 text line for `a` at out[offset] and returns its length
 * (at most PROXY_V1_MAX_LENGTH). IPv6 addresses go out in RFC 5952 form, but
 * IPv4-mapped ones in hex groups (::ffff:c000:201), as the spec words it.
 * Throws ProxyError(PROXY_PROTOCOL, internal) for invalid addresses or ports
 * or a buffer that is too small; `out` may then hold a partial line.
 */
export function encodeProxyV1(a: ProxyAddresses, out: Uint8Array, offset = 0): number {
  checkOffset(out, offset);
  if (out.length - offset >= PROXY_V1_MAX_LENGTH) return writeV1(a, out, offset);
  // Short buffer: build in scratch, then copy what fits.
  const n = writeV1(a, v1Scratch, 0);
  checkRoom(out, offset, n);
  for (let i = 0; i < n; i++) out[offset + i] = v1Scratch[i]!;
  return n;
}

/** Length of the v1 line for `a` (validates `a` like encodeProxyV1). */
export function proxyV1Length(a: ProxyAddresses): number {
  return writeV1(a, v1Scratch, 0);
}

/** Total v2 header length for `a` with these TLVs (addresses are validated by the encoder, not here). */
export function proxyV2Length(a: ProxyAddresses, tlvs?: readonly ProxyTlv[], options?: EncodeV2Options): number {
  let len = v2AddressBlockLength(wireFamily(a));
  if (tlvs) for (const t of tlvs) len += 3 + t.value.length;
  if (options?.crc32c) len += 7;
  return PROXY_V2_FIXED_LENGTH + len;
}

const utf8 = new TextEncoder();

function writeUnixPath(path: string, out: Uint8Array, pos: number, which: string): void {
  if (path.indexOf("\0") >= 0) throw badInput(`PROXY header: ${which} unix path contains a NUL byte`);
  const slot = out.subarray(pos, pos + UNIX_PATH_BYTES);
  // "The addresses are exactly 108 bytes each."
  const { read, written } = utf8.encodeInto(path, slot);
  if (read !== path.length) throw badInput(`PROXY header: ${which} unix path is longer than ${UNIX_PATH_BYTES} bytes`);
  slot.fill(0, written);
}

/**
 * Writes a v2 header for `a` at out[offset] and returns its length (see
 * proxyV2Length). Command PROXY, except LOCAL with AF_UNSPEC for family
 * "unknown". TLVs are written in order; PP2_TYPE_CRC32C may not be passed in
 * `tlvs` (use `options.crc32c`, which appends it last and fills it in).
 * Throws ProxyError(PROXY_PROTOCOL, internal) on invalid input or a short buffer.
 */
export function encodeProxyV2(
  a: ProxyAddresses,
  out: Uint8Array,
  offset = 0,
  tlvs?: readonly ProxyTlv[],
  options?: EncodeV2Options,
): number {
  checkOffset(out, offset);
  const fam = wireFamily(a);
  const block = v2AddressBlockLength(fam);
  const crc = options?.crc32c === true;
  let len = block + (crc ? 7 : 0);
  if (tlvs) {
    for (const t of tlvs) {
      if (!Number.isInteger(t.type) || t.type < 0 || t.type > 255) {
        throw badInput(`PROXY v2 TLV type must be 0..255, got ${t.type}`);
      }
      if (t.type === PP2_TYPE.CRC32C) throw badInput("PROXY v2 TLV: pass { crc32c: true } instead of a CRC32C TLV");
      if (t.type === PP2_TYPE.UNIQUE_ID && t.value.length > UNIQUE_ID_MAX) {
        throw badInput(`PROXY v2 TLV UNIQUE_ID is ${t.value.length} bytes, the spec allows up to ${UNIQUE_ID_MAX}`);
      }
      len += 3 + t.value.length;
    }
  }
  // "The 15th and 16th bytes is the address length in bytes in network endian order."
  if (len > 0xffff) throw badInput(`PROXY v2 header body is ${len} bytes, the length field holds at most 65535`);
  const total = PROXY_V2_FIXED_LENGTH + len;
  checkRoom(out, offset, total);

  let pos = offset;
  for (let k = 0; k < 12; k++) out[pos++] = PROXY_V2_SIGNATURE[k]!;
  // "The sender should use this family when sending LOCAL commands"
  out[pos++] = fam === FAM_UNSPEC ? 0x20 : 0x21;
  out[pos++] = fam;
  out[pos++] = len >>> 8;
  out[pos++] = len & 0xff;
  if (fam === FAM_TCP4 || fam === FAM_TCP6) {
    checkPort(a.srcPort, "source");
    checkPort(a.dstPort, "destination");
    if (fam === FAM_TCP4) {
      writeIPv4Binary(a.srcAddress, out, pos, "source");
      writeIPv4Binary(a.dstAddress, out, pos + 4, "destination");
      pos += 8;
    } else {
      writeIPv6Binary(a.srcAddress, out, pos, "source");
      writeIPv6Binary(a.dstAddress, out, pos + 16, "destination");
      pos += 32;
    }
    out[pos++] = a.srcPort >>> 8;
    out[pos++] = a.srcPort & 0xff;
    out[pos++] = a.dstPort >>> 8;
    out[pos++] = a.dstPort & 0xff;
  } else if (fam === FAM_UNIX_STREAM) {
    writeUnixPath(a.srcAddress, out, pos, "source");
    writeUnixPath(a.dstAddress, out, pos + UNIX_PATH_BYTES, "destination");
    pos += 2 * UNIX_PATH_BYTES;
  }
  if (tlvs) {
    for (const t of tlvs) {
      out[pos++] = t.type;
      out[pos++] = t.value.length >>> 8;
      out[pos++] = t.value.length & 0xff;
      out.set(t.value, pos);
      pos += t.value.length;
    }
  }
  if (crc) {
    out[pos++] = PP2_TYPE.CRC32C;
    out[pos++] = 0;
    out[pos++] = 4;
    // "initialize the checksum field to '0's. - calculate the CRC32c checksum
    // of the PROXY header ... - put the resultant value into the checksum field"
    out[pos] = out[pos + 1] = out[pos + 2] = out[pos + 3] = 0;
    const v = (crc32cUpdate(0xffffffff, out, offset, offset + total) ^ 0xffffffff) >>> 0;
    out[pos++] = v >>> 24;
    out[pos++] = (v >>> 16) & 0xff;
    out[pos++] = (v >>> 8) & 0xff;
    out[pos++] = v & 0xff;
  }
  return total;
}

// ---------------------------------------------------------------------------
// Parser

const STATE_HEADER = 0;
const STATE_DONE = 1;
const STATE_FAILED = 2;

const utf8Decoder = new TextDecoder();

/**
 * Push-based receiver for one connection's PROXY header.
 *
 * `next()` returns the header once complete, null while more bytes are needed,
 * and throws ProxyError("PROXY_PROTOCOL", "downstream") as soon as the bytes
 * cannot be a valid header ("It is recommended to abort the connection as soon
 * as possible"). A failed parser keeps throwing the same error; after the
 * header, `next()` returns null and pushed chunks go to `rest()`.
 */
export class ProxyHeaderParser {
  readonly #accept: "v1" | "v2" | "any";
  readonly #maxTlvBytes: number;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #state = STATE_HEADER;
  #error: ProxyError | null = null;
  /** Total v2 header length once the fixed part has been validated, else 0. */
  #v2Total = 0;

  constructor(opts: ProxyHeaderParserOptions) {
    if (opts.accept !== "v1" && opts.accept !== "v2" && opts.accept !== "any") {
      throw badInput(`ProxyHeaderParser: accept must be "v1", "v2" or "any", got ${String(opts.accept)}`);
    }
    const max = opts.maxTlvBytes ?? DEFAULT_MAX_TLV_BYTES;
    if (!Number.isInteger(max) || max < 0 || max > 0xffff) {
      throw badInput(`ProxyHeaderParser: maxTlvBytes must be 0..65535, got ${max}`);
    }
    this.#accept = opts.accept;
    this.#maxTlvBytes = max;
  }

  /** True once the header has been returned by `next()`. */
  get done(): boolean {
    return this.#state === STATE_DONE;
  }

  /** Bytes held: the partial header before `done`, the unclaimed rest after. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  /** Queues a chunk (kept by reference, not copied). */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0 || this.#state === STATE_FAILED) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  next(): ProxyHeader | null {
    if (this.#state === STATE_DONE) return null;
    if (this.#state === STATE_FAILED) throw this.#error!;
    try {
      const h = this.#parse();
      if (h) this.#state = STATE_DONE;
      return h;
    } catch (err) {
      if (err instanceof ProxyError) {
        this.#state = STATE_FAILED;
        this.#error = err;
        this.#chunks = [];
        this.#buffered = 0;
      }
      throw err;
    }
  }

  /**
   * The bytes that followed the header, as views of the pushed chunks (no
   * copy), and hands them over: the parser keeps no reference afterwards.
   */
  rest(): Uint8Array[] {
    if (this.#state !== STATE_DONE) throw badInput("ProxyHeaderParser.rest() called before the header was complete");
    const r = this.#chunks;
    this.#chunks = [];
    this.#buffered = 0;
    return r;
  }

  #byteAt(i: number): number {
    for (const c of this.#chunks) {
      if (i < c.length) return c[i]!;
      i -= c.length;
    }
    return -1;
  }

  /**
   * Removes the first n bytes (n <= buffered) and returns them contiguous: a
   * view of the first chunk when it holds them all, else a copy (the only
   * allocation of header bytes, taken when a header spans chunks).
   */
  #take(n: number): Uint8Array {
    const first = this.#chunks[0]!;
    this.#buffered -= n;
    if (first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const joined = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const c = this.#chunks[0]!;
      const want = n - got;
      if (c.length <= want) {
        joined.set(c, got);
        got += c.length;
        this.#chunks.shift();
      } else {
        joined.set(c.subarray(0, want), got);
        got = n;
        this.#chunks[0] = c.subarray(want);
      }
    }
    return joined;
  }

  #parse(): ProxyHeader | null {
    if (this.#buffered === 0) return null;
    if (this.#v2Total > 0) return this.#parseV2Body();
    const b0 = this.#byteAt(0);
    // "if ... the 13 first bytes match the protocol signature block followed by
    // the protocol version 2 ... otherwise, if ... the 5 first characters match
    // the US-ASCII representation of "PROXY" then the protocol must be parsed as
    // version 1 ... otherwise the protocol is not covered by this specification
    // and the connection must be dropped."
    if (b0 === PROXY_V2_SIGNATURE[0] && this.#accept !== "v1") return this.#parseV2Fixed();
    if (b0 === PROXY_SPACE[0] && this.#accept !== "v2") return this.#parseV1();
    const want = this.#accept === "v1" ? "a v1 'PROXY ' line" : this.#accept === "v2" ? "the v2 signature" : "a PROXY header";
    throw downstream(`expected ${want}, connection starts with byte 0x${b0.toString(16).padStart(2, "0")}`);
  }

  #parseV1(): ProxyHeader | null {
    // Walk the chunks once looking for the end of the line.
    let i = 0;
    let prevCR = false;
    let lineEnd = -1;
    scan: for (const c of this.#chunks) {
      for (let k = 0; k < c.length; k++, i++) {
        const b = c[k]!;
        if (prevCR) {
          // "The receiver must not tolerate a single CR or LF character to end
          // the line when a complete CRLF sequence is expected."
          if (b !== C_LF) throw downstream("PROXY v1 line: CR not followed by LF");
          lineEnd = i + 1;
          break scan;
        }
        // "If the CRLF sequence is not found in the first 107 characters, the
        // receiver should declare the line invalid." (Only the LF may sit at index 106.)
        if (i >= PROXY_V1_MAX_LENGTH - 1) throw downstream(`PROXY v1 line: no CRLF in the first ${PROXY_V1_MAX_LENGTH} bytes`);
        if (i < PROXY_SPACE.length) {
          if (b !== PROXY_SPACE[i]) throw downstream("PROXY v1 line must start with 'PROXY '");
        } else if (b === C_CR) {
          prevCR = true;
        } else if (b === C_LF) {
          throw downstream("PROXY v1 line: LF without CR");
        } else if (b < 0x20 || b > 0x7e) {
          // "It consists in one line of US-ASCII text"
          throw downstream(`PROXY v1 line: byte 0x${b.toString(16).padStart(2, "0")} at ${i} is not printable US-ASCII`);
        }
      }
    }
    if (lineEnd < 0) return null;
    const line = this.#take(lineEnd);
    return parseV1Line(asciiString(line, 0, lineEnd - 2));
  }

  #parseV2Fixed(): ProxyHeader | null {
    // "The binary header format starts with a constant 12 bytes block
    // containing the protocol signature"; check what has arrived so far.
    const have = Math.min(this.#buffered, PROXY_V2_FIXED_LENGTH);
    for (let k = 0; k < have && k < 12; k++) {
      if (this.#byteAt(k) !== PROXY_V2_SIGNATURE[k]) throw downstream(`PROXY v2 signature mismatch at byte ${k}`);
    }
    if (have > 12) {
      const verCmd = this.#byteAt(12);
      // "it must always be sent as \x2 and the receiver must only accept this value."
      if (verCmd >>> 4 !== 2) throw downstream(`PROXY v2: version ${verCmd >>> 4}, only 2 is defined`);
      // "other values are unassigned and must not be emitted by senders.
      // Receivers must drop connections presenting unexpected values here."
      if ((verCmd & 0xf) > 1) throw downstream(`PROXY v2: unassigned command ${verCmd & 0xf}`);
    }
    if (have > 13) {
      const fam = this.#byteAt(13);
      // Family and transport: "other values are unspecified and must not be
      // emitted in version 2 of this protocol and must be rejected as invalid
      // by receivers." Pairings outside the list of "expected" protocol bytes
      // (e.g. 0x10) have no defined address length either, so they go too.
      if (fam >>> 4 > 3 || (fam & 0xf) > 2 || (fam !== 0 && (fam >>> 4 === 0 || (fam & 0xf) === 0))) {
        throw downstream(`PROXY v2: invalid family/protocol byte 0x${fam.toString(16).padStart(2, "0")}`);
      }
    }
    if (have < PROXY_V2_FIXED_LENGTH) return null;
    const verCmd = this.#byteAt(12);
    const fam = this.#byteAt(13);
    const len = (this.#byteAt(14) << 8) | this.#byteAt(15);
    let block = v2AddressBlockLength(fam);
    if (len < block) {
      // "When a sender presents a LOCAL connection, it should not present any
      // address ... Receivers MUST always consider this field to skip the
      // appropriate number of bytes": a short LOCAL block is skipped whole.
      if ((verCmd & 0xf) === 1) {
        throw downstream(`PROXY v2: length ${len} is shorter than the ${block}-byte address block of family 0x${fam.toString(16)}`);
      }
      block = len;
    }
    if (len - block > this.#maxTlvBytes) {
      throw downstream(`PROXY v2: ${len - block} bytes of TLVs exceed the limit of ${this.#maxTlvBytes}`);
    }
    // "Thus the length of the protocol header in bytes is always exactly 16 + this value."
    this.#v2Total = PROXY_V2_FIXED_LENGTH + len;
    return this.#parseV2Body();
  }

  #parseV2Body(): ProxyHeader | null {
    // "The receiver must not start to parse an address before the whole
    // address block is received."
    if (this.#buffered < this.#v2Total) return null;
    return parseV2Header(this.#take(this.#v2Total));
  }
}

function v2AddressBlockLength(fam: number): number {
  switch (fam >>> 4) {
    case 1:
      return 12; // "Address length is 2*4 + 2*2 = 12 bytes."
    case 2:
      return 36; // "Address length is 2*16 + 2*2 = 36 bytes."
    case 3:
      return 216; // "Address length is 2*108 = 216 bytes."
    default:
      return 0;
  }
}

function parsePort(s: string, which: string): number {
  // "represented as a decimal integer in the range [0..65535] inclusive.
  // Heading zeroes are not permitted in front of numbers"
  const n = s.length;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = s.charCodeAt(i) - C_0;
    if (d < 0 || d > 9) v = -1;
    if (v < 0) break;
    v = v * 10 + d;
  }
  if (n === 0 || n > 5 || v < 0 || v > 65535 || (n > 1 && s.charCodeAt(0) === C_0)) {
    throw downstream(`PROXY v1 line: ${which} port '${s}' is not a decimal in 0..65535 without heading zeroes`);
  }
  return v;
}

/** Parses the v1 line without its CRLF; the caller checked the "PROXY " prefix and the bytes. */
function parseV1Line(line: string): ProxyHeader {
  const protoEnd = line.indexOf(" ", 6);
  const proto = line.slice(6, protoEnd < 0 ? line.length : protoEnd);
  if (proto === "UNKNOWN") {
    // "the receiver must ignore anything presented before the CRLF is found."
    return { version: 1, command: "proxy", addresses: null, tlvs: [] };
  }
  // "As of version 1, only "TCP4" ... and "TCP6" ... are allowed."
  if (proto !== "TCP4" && proto !== "TCP6") {
    throw downstream(`PROXY v1 line: protocol '${proto.slice(0, 16)}' is not TCP4, TCP6 or UNKNOWN`);
  }
  // "exactly one space" between each field.
  const f = line.split(" ");
  if (f.length !== 6) throw downstream(`PROXY v1 ${proto} line needs 4 fields after the protocol separated by single spaces`);
  let src: string;
  let dst: string;
  if (proto === "TCP4") {
    if (parseIPv4(f[2]!, 0, f[2]!.length) < 0) throw downstream(`PROXY v1 line: source '${f[2]}' is not an IPv4 dotted quad`);
    if (parseIPv4(f[3]!, 0, f[3]!.length) < 0) throw downstream(`PROXY v1 line: destination '${f[3]}' is not an IPv4 dotted quad`);
    src = f[2]!; // strict parse: already canonical
    dst = f[3]!;
  } else {
    // "The advertised protocol family dictates what format to use."
    if (!isIPv6Text(f[2]!) || !parseIPv6(f[2]!, ip6Scratch, 0)) throw downstream(`PROXY v1 line: source '${f[2]}' is not IPv6 text`);
    src = ipv6Text(ip6Scratch, 0);
    if (!isIPv6Text(f[3]!) || !parseIPv6(f[3]!, ip6Scratch, 0)) throw downstream(`PROXY v1 line: destination '${f[3]}' is not IPv6 text`);
    dst = ipv6Text(ip6Scratch, 0);
  }
  const srcPort = parsePort(f[4]!, "source");
  const dstPort = parsePort(f[5]!, "destination");
  return {
    version: 1,
    command: "proxy",
    addresses: { family: proto === "TCP4" ? "tcp4" : "tcp6", srcAddress: src, srcPort, dstAddress: dst, dstPort },
    tlvs: [],
  };
}

function unixPath(h: Uint8Array, start: number): string {
  let end = start;
  while (end < start + UNIX_PATH_BYTES && h[end] !== 0) end++;
  return utf8Decoder.decode(h.subarray(start, end));
}

/** Parses a whole v2 header whose fixed part was validated by the parser. */
function parseV2Header(h: Uint8Array): ProxyHeader {
  const command = (h[12]! & 0xf) === 1 ? "proxy" : "local";
  const fam = h[13]!;
  const end = h.length;
  let block = v2AddressBlockLength(fam);
  if (block > end - PROXY_V2_FIXED_LENGTH) block = end - PROXY_V2_FIXED_LENGTH; // short LOCAL block
  let addresses: ProxyAddresses | null = null;
  if (command === "proxy") {
    // LOCAL: "discard the protocol block including the family which is ignored."
    // Datagram families: "A receiver is not required to implement other ones,
    // provided that it automatically falls back to the UNSPEC mode".
    const p = PROXY_V2_FIXED_LENGTH;
    if (fam === FAM_TCP4) {
      addresses = {
        family: "tcp4",
        srcAddress: ipv4Text(h, p),
        srcPort: (h[p + 8]! << 8) | h[p + 9]!,
        dstAddress: ipv4Text(h, p + 4),
        dstPort: (h[p + 10]! << 8) | h[p + 11]!,
      };
    } else if (fam === FAM_TCP6) {
      addresses = {
        family: "tcp6",
        srcAddress: ipv6Text(h, p),
        srcPort: (h[p + 32]! << 8) | h[p + 33]!,
        dstAddress: ipv6Text(h, p + 16),
        dstPort: (h[p + 34]! << 8) | h[p + 35]!,
      };
    } else if (fam === FAM_UNIX_STREAM) {
      addresses = {
        family: "unix",
        srcAddress: unixPath(h, p),
        srcPort: 0,
        dstAddress: unixPath(h, p + UNIX_PATH_BYTES),
        dstPort: 0,
      };
    }
  }

  const tlvs: ProxyTlv[] = [];
  let crcAt = -1;
  let pos = PROXY_V2_FIXED_LENGTH + block;
  while (pos < end) {
    // "The first byte is the Type of the vector. The second two bytes represent
    // the length in bytes of the value"
    if (end - pos < 3) throw downstream(`PROXY v2: ${end - pos} trailing bytes cannot hold a TLV`);
    const type = h[pos]!;
    const len = (h[pos + 1]! << 8) | h[pos + 2]!;
    const v = pos + 3;
    if (len > end - v) throw downstream(`PROXY v2: TLV 0x${type.toString(16)} of ${len} bytes overruns the header by ${len - (end - v)}`);
    pos = v + len;
    switch (type) {
      case PP2_TYPE.CRC32C:
        // "a 32-bit number storing the CRC32c checksum of the PROXY protocol header."
        if (len !== 4) throw downstream(`PROXY v2: CRC32C TLV must be 4 bytes, got ${len}`);
        if (crcAt >= 0) throw downstream("PROXY v2: more than one CRC32C TLV");
        crcAt = v;
        break;
      case PP2_TYPE.NOOP:
        break; // "The TLV of this type should be ignored when parsed."
      case PP2_TYPE.UNIQUE_ID:
        // "an opaque byte sequence of up to 128 bytes"
        if (len > UNIQUE_ID_MAX) throw downstream(`PROXY v2: UNIQUE_ID TLV is ${len} bytes, at most ${UNIQUE_ID_MAX} allowed`);
        tlvs.push({ type, value: h.subarray(v, pos) });
        break;
      default:
        tlvs.push({ type, value: h.subarray(v, pos) });
    }
  }
  if (crcAt >= 0) {
    // "replace the 32 bits of the checksum field in the received PROXY header
    // with all '0's and calculate a CRC32c checksum value of the whole PROXY
    // header. ... If it is not, the receiver MUST treat the TCP connection
    // providing the header as invalid." Computed around the field, without
    // writing into the caller's bytes.
    let c = crc32cUpdate(0xffffffff, h, 0, crcAt);
    c = crc32cUpdate(c, ZERO_CRC_FIELD, 0, 4); // the field, as four zero bytes
    c = (crc32cUpdate(c, h, crcAt + 4, end) ^ 0xffffffff) >>> 0;
    const got = ((h[crcAt]! << 24) | (h[crcAt + 1]! << 16) | (h[crcAt + 2]! << 8) | h[crcAt + 3]!) >>> 0;
    if (c !== got) throw downstream(`PROXY v2: CRC32C mismatch (header says 0x${got.toString(16)}, computed 0x${c.toString(16)})`);
  }
  return { version: 2, command, addresses, tlvs };
}
