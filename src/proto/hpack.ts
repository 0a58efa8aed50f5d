/**
 * HPACK (RFC 7541), the header compression of HTTP/2, for a CONNECT proxy:
 * a full decoder (static and dynamic tables, Huffman) because peers use all
 * of it, and a small encoder that never adds to the peer's dynamic table
 * (indexed static fields and literals without indexing), which keeps our
 * side of the state trivially in sync.
 *
 * Bounds: the dynamic table is capped by the SETTINGS_HEADER_TABLE_SIZE we
 * advertise; every length is bounded by the block it sits in; integers are
 * refused past 2^28; and the decoded header list is capped (`maxListBytes`,
 * RFC 7541 §4.1 sizes: name + value + 32 per field). A block over the cap is
 * still decoded to the end, so the dynamic table stays in sync, but fields
 * past the cap are dropped and the result says `tooLarge` (the stream gets
 * 431, the connection lives). Strings are octets, held as latin1 text.
 */
import { H2Code, H2Error } from "./h2_frame.ts";
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from "./hpack_huffman.ts";

/** RFC 7541 Appendix A. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/** RFC 7541 §4.1: "The size of an entry is the sum of its name's length in octets ..., its value's length in octets, and 32." */
export const ENTRY_OVERHEAD = 32;
/** RFC 7540 §6.5.2 initial SETTINGS_HEADER_TABLE_SIZE. */
export const DEFAULT_TABLE_SIZE = 4096;
const MAX_INT = 1 << 28;

export interface HeaderBlock {
  /** Names as sent (HTTP/2 requires lowercase; the caller checks), in order. */
  fields: [string, string][];
  /** The list passed `maxListBytes`: fields past the cap were dropped. */
  tooLarge: boolean;
}

/** RFC 9113 §4.3: "A decoding error in a field block MUST be treated as a connection error of type COMPRESSION_ERROR." */
function compressionError(message: string): H2Error {
  return new H2Error(H2Code.COMPRESSION_ERROR, `HPACK: ${message}`);
}

const latin1 = (b: Uint8Array, s: number, e: number): string => {
  let out = "";
  for (let i = s; i < e; i += 8192) out += String.fromCharCode.apply(null, b.subarray(i, Math.min(e, i + 8192)) as unknown as number[]);
  return out;
};

export class HpackDecoder {
  /** Newest first. */
  private table: [string, string][] = [];
  private size = 0;
  private maxSize: number;

  /** `settingsMax`: the SETTINGS_HEADER_TABLE_SIZE we advertised (the ceiling for size updates). */
  constructor(private readonly settingsMax = DEFAULT_TABLE_SIZE, private readonly maxListBytes = 65536) {
    this.maxSize = settingsMax;
  }

  get tableSize(): number {
    return this.size;
  }
  get tableEntries(): number {
    return this.table.length;
  }

  /** Decodes one complete header block. Throws H2_PROTOCOL (COMPRESSION_ERROR): the connection is then unusable. */
  decode(b: Uint8Array): HeaderBlock {
    const fields: [string, string][] = [];
    let listBytes = 0;
    let tooLarge = false;
    let i = 0;
    let first = true;
    while (i < b.length) {
      const c = b[i]!;
      let name: string;
      let value: string;
      if (c & 0x80) {
        // §6.1 Indexed Header Field: "The index value of 0 is not used. It MUST be treated as a decoding error".
        const [idx, n] = readInt(b, i, 7);
        i = n;
        [name, value] = this.entry(idx);
      } else if ((c & 0xe0) === 0x20) {
        // §6.3 Dynamic Table Size Update: "MUST occur at the beginning of the first header block following the change".
        if (!first) throw compressionError("table size update after the first field of a block");
        const [size, n] = readInt(b, i, 5);
        i = n;
        // "The new maximum size MUST be lower than or equal to the limit determined by the protocol".
        if (size > this.settingsMax) throw compressionError(`table size update to ${size}, over our ${this.settingsMax}`);
        this.maxSize = size;
        this.evict(0);
        continue;
      } else {
        // §6.2: with incremental indexing (01), without (0000), never indexed (0001).
        const indexing = (c & 0xc0) === 0x40;
        const [idx, n] = readInt(b, i, indexing ? 6 : 4);
        i = n;
        if (idx === 0) {
          [name, i] = readString(b, i);
        } else name = this.entry(idx)[0];
        [value, i] = readString(b, i);
        if (indexing) this.insert(name, value);
      }
      first = false;
      listBytes += name.length + value.length + ENTRY_OVERHEAD;
      if (listBytes > this.maxListBytes) tooLarge = true;
      else fields.push([name, value]);
    }
    return { fields, tooLarge };
  }

  private entry(idx: number): [string, string] {
    if (idx === 0) throw compressionError("index 0");
    if (idx <= STATIC_TABLE.length) {
      const e = STATIC_TABLE[idx - 1]!;
      return [e[0], e[1]];
    }
    const d = this.table[idx - STATIC_TABLE.length - 1];
    // §2.3.3: "Indices strictly greater than the sum of the lengths of both tables MUST be treated as a decoding error."
    if (d === undefined) throw compressionError(`index ${idx} past the tables`);
    return d;
  }

  private insert(name: string, value: string): void {
    const sz = name.length + value.length + ENTRY_OVERHEAD;
    // §4.4: an entry larger than the table empties it and is not added.
    this.evict(sz);
    if (sz > this.maxSize) return;
    this.table.unshift([name, value]);
    this.size += sz;
  }

  /** Evicts oldest entries until `room` more octets fit. */
  private evict(room: number): void {
    while (this.table.length > 0 && this.size + room > this.maxSize) {
      const [n, v] = this.table.pop()!;
      this.size -= n.length + v.length + ENTRY_OVERHEAD;
    }
  }
}

/** §5.1 prefix integer at b[i] with an N-bit prefix. Returns [value, next offset]. */
function readInt(b: Uint8Array, i: number, prefix: number): [number, number] {
  const mask = (1 << prefix) - 1;
  let v = b[i]! & mask;
  i++;
  if (v < mask) return [v, i];
  let m = 0;
  for (;;) {
    if (i >= b.length) throw compressionError("integer runs past the block");
    const c = b[i++]!;
    v += (c & 0x7f) * 2 ** m;
    m += 7;
    if (v > MAX_INT) throw compressionError("integer too large");
    if ((c & 0x80) === 0) return [v, i];
  }
}

/** §5.2 string literal: H bit, 7-bit prefix length, octets. */
function readString(b: Uint8Array, i: number): [string, number] {
  if (i >= b.length) throw compressionError("string runs past the block");
  const huffman = (b[i]! & 0x80) !== 0;
  const [len, n] = readInt(b, i, 7);
  if (len > b.length - n) throw compressionError("string length past the block");
  const end = n + len;
  if (!huffman) return [latin1(b, n, end), end];
  const s = huffmanDecode(b, n, end);
  if (s === null) throw compressionError("bad Huffman string");
  return [s, end];
}

// ---- encoder ---------------------------------------------------------------------

/** Writes a §5.1 integer with an N-bit prefix; `first` holds the pattern bits above the prefix. */
function writeInt(out: number[], first: number, prefix: number, v: number): void {
  const mask = (1 << prefix) - 1;
  if (v < mask) {
    out.push(first | v);
    return;
  }
  out.push(first | mask);
  v -= mask;
  while (v >= 128) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

function writeString(out: number[], s: string): void {
  const raw = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) raw[i] = s.charCodeAt(i) & 0xff;
  const hlen = huffmanEncodedLength(raw);
  if (hlen < raw.length) {
    writeInt(out, 0x80, 7, hlen);
    const tmp = new Uint8Array(hlen);
    huffmanEncode(raw, tmp, 0);
    for (const x of tmp) out.push(x);
  } else {
    writeInt(out, 0, 7, raw.length);
    for (const x of raw) out.push(x);
  }
}

/** Name → static index of the first entry with that name, and "name\0value" → exact index. */
const STATIC_NAME = new Map<string, number>();
const STATIC_EXACT = new Map<string, number>();
STATIC_TABLE.forEach(([n, v], i) => {
  if (!STATIC_NAME.has(n)) STATIC_NAME.set(n, i + 1);
  if (v !== "") STATIC_EXACT.set(`${n}\0${v}`, i + 1);
});

/**
 * Encodes a header list: a static-table match is one indexed byte; anything
 * else is a literal without indexing (§6.2.2), Huffman-coded when shorter.
 * Stateless: our encoder never uses the dynamic table. Values are latin1
 * octets; callers pass only valid field text.
 */
export function encodeHeaders(fields: readonly (readonly [string, string])[]): Uint8Array {
  const out: number[] = [];
  for (const [name, value] of fields) {
    const exact = STATIC_EXACT.get(`${name}\0${value}`);
    if (exact !== undefined) {
      writeInt(out, 0x80, 7, exact);
      continue;
    }
    const idx = STATIC_NAME.get(name);
    if (idx !== undefined) writeInt(out, 0x00, 4, idx);
    else {
      out.push(0x00);
      writeString(out, name);
    }
    writeString(out, value);
  }
  return Uint8Array.from(out);
}
