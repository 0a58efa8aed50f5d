/**
 * MessagePack (https://github.com/msgpack/msgpack/blob/master/spec.md), the
 * subset the tunnel's control messages use: nil, booleans, integers, floats,
 * strings, binary, arrays and maps with string keys. Any msgpack peer reads
 * what this writes; this reads everything but extension types (and the
 * timestamp extension), which no edgemux message carries.
 *
 * Sans-I/O and synchronous: `encodeMsgpack(value)` returns a fresh buffer,
 * `decodeMsgpack(bytes)` a value or throws MsgpackError. A few hundred lines
 * here instead of a general library keep every process that speaks the tunnel
 * protocol (the agent above all) from loading one: memory at rest matters on
 * small devices.
 */

export class MsgpackError extends Error {}

/** Nesting bound when decoding: control messages nest three levels; a hostile peer must not blow the stack. */
const MAX_DEPTH = 32;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

// ---------------------------------------------------------------- encoding

class Writer {
  buf = new Uint8Array(256);
  view = new DataView(this.buf.buffer);
  n = 0;

  reserve(k: number): void {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(x: number): void {
    this.reserve(1);
    this.buf[this.n++] = x;
  }
  u16(x: number): void {
    this.reserve(2);
    this.view.setUint16(this.n, x);
    this.n += 2;
  }
  u32(x: number): void {
    this.reserve(4);
    this.view.setUint32(this.n, x);
    this.n += 4;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }
}

function writeValue(w: Writer, v: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw new MsgpackError(`nested deeper than ${MAX_DEPTH} levels`);
  if (v === null || v === undefined) return w.u8(0xc0);
  if (v === false) return w.u8(0xc2);
  if (v === true) return w.u8(0xc3);
  if (typeof v === "number") return writeNumber(w, v);
  if (typeof v === "string") return writeString(w, v);
  if (v instanceof Uint8Array) {
    if (v.length < 0x100) w.u8(0xc4), w.u8(v.length);
    else if (v.length < 0x10000) w.u8(0xc5), w.u16(v.length);
    else w.u8(0xc6), w.u32(v.length);
    return w.bytes(v);
  }
  if (Array.isArray(v)) {
    writeLength(w, v.length, 0x90, 0xdc);
    for (const x of v) writeValue(w, x, depth + 1);
    return;
  }
  if (typeof v === "object") {
    // Keys whose value is undefined are left out, as JSON.stringify does.
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    writeLength(w, entries.length, 0x80, 0xde);
    for (const [k, x] of entries) {
      writeString(w, k);
      writeValue(w, x, depth + 1);
    }
    return;
  }
  throw new MsgpackError(`cannot encode a ${typeof v}`);
}

/** fixarray/fixmap (`fix | n`, n < 16), else the 16- or 32-bit form (`c16`, `c16 + 1`). */
function writeLength(w: Writer, n: number, fix: number, c16: number): void {
  if (n < 16) w.u8(fix | n);
  else if (n < 0x10000) w.u8(c16), w.u16(n);
  else w.u8(c16 + 1), w.u32(n);
}

function writeNumber(w: Writer, x: number): void {
  if (Number.isInteger(x) && x >= -0x8000_0000 && x <= 0xffff_ffff) {
    if (x >= 0) {
      if (x < 0x80) w.u8(x);
      else if (x < 0x100) w.u8(0xcc), w.u8(x);
      else if (x < 0x10000) w.u8(0xcd), w.u16(x);
      else w.u8(0xce), w.u32(x);
    } else {
      if (x >= -32) w.u8(x & 0xff);
      else if (x >= -0x80) w.u8(0xd0), w.u8(x & 0xff);
      else if (x >= -0x8000) w.u8(0xd1), w.u16(x & 0xffff);
      else w.u8(0xd2), w.u32(x >>> 0);
    }
    return;
  }
  // Everything else (fractions, integers past 32 bits, NaN, ±Infinity) as float 64: exact for any JavaScript number.
  w.u8(0xcb);
  w.reserve(8);
  w.view.setFloat64(w.n, x);
  w.n += 8;
}

function writeString(w: Writer, s: string): void {
  const b = utf8Encoder.encode(s);
  if (b.length < 32) w.u8(0xa0 | b.length);
  else if (b.length < 0x100) w.u8(0xd9), w.u8(b.length);
  else if (b.length < 0x10000) w.u8(0xda), w.u16(b.length);
  else w.u8(0xdb), w.u32(b.length);
  w.bytes(b);
}

/** The msgpack form of `value` in a fresh buffer. Throws MsgpackError for values msgpack has no form for. */
export function encodeMsgpack(value: unknown): Uint8Array {
  const w = new Writer();
  writeValue(w, value, 0);
  return w.buf.slice(0, w.n);
}

// ---------------------------------------------------------------- decoding

class Reader {
  pos = 0;
  readonly view: DataView;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  /** Every length is bounded by the bytes that are left before anything is allocated. */
  need(k: number): void {
    if (k > this.buf.length - this.pos) throw new MsgpackError(`truncated: needs ${k} more bytes at offset ${this.pos}, has ${this.buf.length - this.pos}`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const x = this.view.getUint16(this.pos);
    this.pos += 2;
    return x;
  }
  u32(): number {
    this.need(4);
    const x = this.view.getUint32(this.pos);
    this.pos += 4;
    return x;
  }
  take(k: number): Uint8Array {
    this.need(k);
    const b = this.buf.subarray(this.pos, this.pos + k);
    this.pos += k;
    return b;
  }
}

function readString(r: Reader, n: number): string {
  try {
    return utf8Decoder.decode(r.take(n));
  } catch (e) {
    if (e instanceof MsgpackError) throw e;
    throw new MsgpackError(`a string at offset ${r.pos - n} is not UTF-8`);
  }
}

function readArray(r: Reader, n: number, depth: number): unknown[] {
  // Each element takes at least one byte: a count past the bytes left is malformed, not a reason to allocate.
  r.need(n);
  const out = new Array<unknown>(n);
  for (let i = 0; i < n; i++) out[i] = readValue(r, depth + 1);
  return out;
}

function readMap(r: Reader, n: number, depth: number): Record<string, unknown> {
  r.need(n * 2);
  const out: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const k = readValue(r, depth + 1);
    if (typeof k !== "string" && typeof k !== "number") throw new MsgpackError("a map key must be a string or a number");
    const key = String(k);
    // A key named __proto__ would set the object's prototype through the plain assignment below.
    if (key === "__proto__") throw new MsgpackError("map key __proto__ refused");
    out[key] = readValue(r, depth + 1);
  }
  return out;
}

function readValue(r: Reader, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new MsgpackError(`nested deeper than ${MAX_DEPTH} levels`);
  const t = r.u8();
  if (t < 0x80) return t; // positive fixint
  if (t < 0x90) return readMap(r, t & 0x0f, depth);
  if (t < 0xa0) return readArray(r, t & 0x0f, depth);
  if (t < 0xc0) return readString(r, t & 0x1f);
  if (t >= 0xe0) return t - 0x100; // negative fixint
  const v = r.view;
  switch (t) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      return r.take(r.u8()).slice();
    case 0xc5:
      return r.take(r.u16()).slice();
    case 0xc6:
      return r.take(r.u32()).slice();
    case 0xca: {
      r.need(4);
      const x = v.getFloat32(r.pos);
      r.pos += 4;
      return x;
    }
    case 0xcb: {
      r.need(8);
      const x = v.getFloat64(r.pos);
      r.pos += 8;
      return x;
    }
    case 0xcc:
      return r.u8();
    case 0xcd:
      return r.u16();
    case 0xce:
      return r.u32();
    case 0xcf: {
      // 64-bit integers become numbers (exact up to 2^53), as the tunnel's codec always read them.
      const hi = r.u32();
      return hi * 0x1_0000_0000 + r.u32();
    }
    case 0xd0:
      return (r.u8() << 24) >> 24;
    case 0xd1:
      return (r.u16() << 16) >> 16;
    case 0xd2:
      return r.u32() | 0;
    case 0xd3: {
      const hi = r.u32() | 0;
      return hi * 0x1_0000_0000 + r.u32();
    }
    case 0xd9:
      return readString(r, r.u8());
    case 0xda:
      return readString(r, r.u16());
    case 0xdb:
      return readString(r, r.u32());
    case 0xdc:
      return readArray(r, r.u16(), depth);
    case 0xdd:
      return readArray(r, r.u32(), depth);
    case 0xde:
      return readMap(r, r.u16(), depth);
    case 0xdf:
      return readMap(r, r.u32(), depth);
    default:
      // 0xc1 is never used; 0xc7-0xc9 and 0xd4-0xd8 are extension types.
      throw new MsgpackError(t === 0xc1 ? "byte 0xc1 is never used in msgpack" : `extension type 0x${t.toString(16)} is not supported`);
  }
}

/** Decodes exactly one value filling all of `bytes`. Throws MsgpackError for malformed or trailing input. */
export function decodeMsgpack(bytes: Uint8Array): unknown {
  const r = new Reader(bytes);
  const v = readValue(r, 0);
  if (r.pos !== bytes.length) throw new MsgpackError(`${bytes.length - r.pos} bytes after the value`);
  return v;
}
