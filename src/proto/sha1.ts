/**
 * SHA-1 (RFC 3174), for one thing only: the WebSocket handshake's
 * `Sec-WebSocket-Accept = base64(SHA-1(key + GUID))` (RFC 6455 §4.2.2), a
 * 60-byte input once per tunnel session. A few dozen lines here keep the
 * agent from loading `node:crypto` (megabytes of resident memory) for it.
 * Not for anything that needs collision resistance.
 */

const rotl = (x: number, n: number) => (x << n) | (x >>> (32 - n));

/** The 20-byte digest of `data`. */
export function sha1(data: Uint8Array): Uint8Array {
  // RFC 3174 §4: append 0x80, zero-pad to 56 mod 64, then the bit length as a 64-bit big-endian integer.
  const padded = new Uint8Array(((data.length + 8) >>> 6 << 6) + 64);
  padded.set(data);
  padded[data.length] = 0x80;
  const view = new DataView(padded.buffer);
  const bits = data.length * 8;
  view.setUint32(padded.length - 8, Math.floor(bits / 0x1_0000_0000));
  view.setUint32(padded.length - 4, bits >>> 0);
  let h0 = 0x67452301, h1 = 0xefcdab89, h2 = 0x98badcfe, h3 = 0x10325476, h4 = 0xc3d2e1f0;
  const w = new Int32Array(80);
  for (let off = 0; off < padded.length; off += 64) {
    for (let t = 0; t < 16; t++) w[t] = view.getInt32(off + t * 4);
    for (let t = 16; t < 80; t++) w[t] = rotl(w[t - 3]! ^ w[t - 8]! ^ w[t - 14]! ^ w[t - 16]!, 1);
    let a = h0, b = h1, c = h2, d = h3, e = h4;
    for (let t = 0; t < 80; t++) {
      const f = t < 20 ? ((b & c) | (~b & d)) + 0x5a827999 : t < 40 ? (b ^ c ^ d) + 0x6ed9eba1 : t < 60 ? ((b & c) | (b & d) | (c & d)) + 0x8f1bbcdc : (b ^ c ^ d) + 0xca62c1d6;
      // All additions are modulo 2^32: `| 0` keeps them in int32.
      const tmp = (rotl(a, 5) + f + e + w[t]!) | 0;
      e = d;
      d = c;
      c = rotl(b, 30);
      b = a;
      a = tmp;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
  }
  const out = new Uint8Array(20);
  const o = new DataView(out.buffer);
  [h0, h1, h2, h3, h4].forEach((h, i) => o.setInt32(i * 4, h));
  return out;
}

/** Standard base64 (with padding) of `bytes`. */
export function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return btoa(s);
}
