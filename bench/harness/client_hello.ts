/**
 * Builds a real TLS 1.3 ClientHello record (RFC 8446 §4.1.2) with a chosen
 * server_name, for the raw-TCP scenarios (bulk, idle) and the routing check:
 * every SNI router (edgemux, HAProxy req.ssl_sni, nginx ssl_preread,
 * sniproxy) must parse it exactly as it parses one from OpenSSL, and an
 * OpenSSL server answers it with a ServerHello. Pure: no I/O.
 */

export interface ClientHelloOptions {
  serverName: string;
  /** ALPN protocol ids; none when empty. */
  alpn?: readonly string[];
  /** 32 bytes for the random, 32 for the session id, 32 for the key share; fresh ones when absent. */
  entropy?: Uint8Array;
}

const CIPHER_SUITES = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030];
const SIG_ALGS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601];
const X25519 = 0x001d;
const SECP256R1 = 0x0017;

class Writer {
  private parts: number[] = [];
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v >> 8).u8(v);
  }
  u24(v: number): this {
    return this.u8(v >> 16).u8(v >> 8).u8(v);
  }
  bytes(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this.parts.push(b[i]! & 0xff);
    return this;
  }
  /** Writes `inner` prefixed by its length in `width` bytes. */
  vec(width: 1 | 2 | 3, inner: Writer): this {
    const n = inner.parts.length;
    if (n >= 2 ** (8 * width)) throw new RangeError(`vector of ${n} bytes does not fit a ${width}-byte length`);
    if (width === 1) this.u8(n);
    else if (width === 2) this.u16(n);
    else this.u24(n);
    return this.bytes(inner.parts);
  }
  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function ext(type: number, body: Writer): Writer {
  return new Writer().u16(type).vec(2, body);
}

/** One ClientHello in one TLS record (content type 22, legacy version 0x0301). */
export function buildClientHello(opts: ClientHelloOptions): Uint8Array {
  const name = new TextEncoder().encode(opts.serverName);
  // RFC 6066 §3: "HostName ... is represented as a byte string using ASCII encoding without a trailing dot."
  if (name.length === 0 || name.length > 255) throw new RangeError(`server name length ${name.length} not in 1..255`);
  const entropy = opts.entropy ?? crypto.getRandomValues(new Uint8Array(96));
  if (entropy.length < 96) throw new RangeError("entropy needs 96 bytes");

  const exts = new Writer();
  exts.bytes(ext(0, new Writer().vec(2, new Writer().u8(0).vec(2, new Writer().bytes(name)))).done());
  exts.bytes(ext(10, new Writer().vec(2, new Writer().u16(X25519).u16(SECP256R1))).done());
  exts.bytes(ext(11, new Writer().vec(1, new Writer().u8(0))).done());
  const sig = new Writer();
  for (const s of SIG_ALGS) sig.u16(s);
  exts.bytes(ext(13, new Writer().vec(2, sig)).done());
  if (opts.alpn && opts.alpn.length > 0) {
    const list = new Writer();
    for (const p of opts.alpn) list.vec(1, new Writer().bytes(new TextEncoder().encode(p)));
    exts.bytes(ext(16, new Writer().vec(2, list)).done());
  }
  exts.bytes(ext(43, new Writer().vec(1, new Writer().u16(0x0304).u16(0x0303))).done());
  exts.bytes(ext(45, new Writer().vec(1, new Writer().u8(1))).done());
  const share = new Writer().u16(X25519).vec(2, new Writer().bytes(entropy.subarray(64, 96)));
  exts.bytes(ext(51, new Writer().vec(2, share)).done());

  const suites = new Writer();
  for (const s of CIPHER_SUITES) suites.u16(s);
  const body = new Writer()
    .u16(0x0303)
    .bytes(entropy.subarray(0, 32))
    .vec(1, new Writer().bytes(entropy.subarray(32, 64)))
    .vec(2, suites)
    .vec(1, new Writer().u8(0))
    .vec(2, exts);
  const handshake = new Writer().u8(1).vec(3, body);
  return new Writer().u8(22).u16(0x0301).vec(2, handshake).done();
}
