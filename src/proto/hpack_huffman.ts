/**
 * The HPACK Huffman code (RFC 7541 §5.2 and Appendix B). The code is
 * canonical: codes of one length are consecutive and ordered by symbol, and
 * each length's first code follows the previous length's last. So the table
 * below is only the code length of each symbol (0..255, then EOS = 256), and
 * the codes are derived from it once, at module load.
 */

/** RFC 7541 Appendix B, the "len in bits" column, symbols 0..256. */
const CODE_LENGTHS = Uint8Array.of(
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
);

export const EOS = 256;
const MAX_LEN = 30;

/** Code of each symbol (right-aligned in its length). */
export const HUFFMAN_CODES = new Uint32Array(257);
/** Per length: the first code, the number of codes, and where that length's symbols start in SORTED. */
const FIRST_CODE = new Int32Array(MAX_LEN + 2);
const COUNT = new Int32Array(MAX_LEN + 2);
const START = new Int32Array(MAX_LEN + 2);
/** Symbols ordered by (length, symbol). */
const SORTED = new Uint16Array(257);

(function build() {
  for (let s = 0; s <= EOS; s++) COUNT[CODE_LENGTHS[s]!]!++;
  let code = 0;
  let start = 0;
  for (let len = 1; len <= MAX_LEN; len++) {
    FIRST_CODE[len] = code;
    START[len] = start;
    start += COUNT[len]!;
    code = (code + COUNT[len]!) << 1;
  }
  const next = FIRST_CODE.slice();
  const fill = START.slice();
  for (let s = 0; s <= EOS; s++) {
    const len = CODE_LENGTHS[s]!;
    HUFFMAN_CODES[s] = next[len]!++;
    SORTED[fill[len]!++] = s;
  }
})();

export function huffmanLength(s: number): number {
  return CODE_LENGTHS[s]!;
}

/** Bytes the Huffman form of `src` takes. */
export function huffmanEncodedLength(src: Uint8Array): number {
  let bits = 0;
  for (let i = 0; i < src.length; i++) bits += CODE_LENGTHS[src[i]!]!;
  return (bits + 7) >>> 3;
}

/** Writes the Huffman form of `src` at `out[off]`, padded with the EOS prefix (all ones). Returns the new offset. */
export function huffmanEncode(src: Uint8Array, out: Uint8Array, off: number): number {
  let acc = 0;
  let nbits = 0;
  for (let i = 0; i < src.length; i++) {
    const s = src[i]!;
    let len = CODE_LENGTHS[s]!;
    const code = HUFFMAN_CODES[s]!;
    // Feed at most 8 bits at a time so `acc` never exceeds 15 bits.
    while (len > 0) {
      const take = Math.min(8, len);
      acc = (acc << take) | ((code >>> (len - take)) & ((1 << take) - 1));
      nbits += take;
      len -= take;
      while (nbits >= 8) {
        nbits -= 8;
        out[off++] = (acc >>> nbits) & 0xff;
      }
      acc &= (1 << nbits) - 1;
    }
  }
  if (nbits > 0) out[off++] = ((acc << (8 - nbits)) | ((1 << (8 - nbits)) - 1)) & 0xff;
  return off;
}

/**
 * Decodes `src[start, end)` into latin1 text. Returns null on the errors RFC
 * 7541 §5.2 names: "A padding strictly longer than 7 bits MUST be treated as
 * a decoding error", padding that is not the most significant bits of EOS,
 * and "A Huffman-encoded string literal containing the EOS symbol MUST be
 * treated as a decoding error". Bit by bit over the canonical tables: header
 * strings on this path are short (an authority, a few trace headers).
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number): string | null {
  let out = "";
  let code = 0;
  let len = 0;
  /** All bits since the last symbol were ones (a valid EOS prefix, if it ends here). */
  let ones = true;
  for (let i = start; i < end; i++) {
    const byte = src[i]!;
    for (let b = 7; b >= 0; b--) {
      const bit = (byte >>> b) & 1;
      code = (code << 1) | bit;
      len++;
      if (bit === 0) ones = false;
      const idx = code - FIRST_CODE[len]!;
      if (idx >= 0 && idx < COUNT[len]!) {
        const s = SORTED[START[len]! + idx]!;
        if (s === EOS) return null;
        out += String.fromCharCode(s);
        code = 0;
        len = 0;
        ones = true;
      } else if (len >= MAX_LEN) return null;
    }
  }
  if (len > 7 || !ones) return null;
  return out;
}
