/** Byte helpers shared by the codecs and encoders. */

/**
 * One new buffer holding `parts` back to back (a copy: use it where a single
 * contiguous buffer is needed — one write, one signature input — not on a
 * per-chunk path). Its ArrayBuffer is its own, as WebCrypto's BufferSource wants.
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
