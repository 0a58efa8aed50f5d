/**
 * CRC32c (Castagnoli), for the PROXY v2 PP2_TYPE_CRC32C TLV.
 */
// Reflected polynomial 0x82F63B78, RFC 4960 Appendix B.

// Built on first use, not at module load: a 2048-step loop at load time wakes the optimizing JIT in
// every process that imports proto/ (the agent, the supervisor), which costs megabytes of resident
// memory for a TLV that most processes never compute.
let table: Uint32Array | null = null;

function crc32cTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

export function crc32cUpdate(crc: number, buf: Uint8Array, start: number, end: number): number {
  const t = (table ??= crc32cTable());
  for (let i = start; i < end; i++) crc = t[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return crc;
}

/** CRC32c of `data` (check value: crc32c("123456789") === 0xe3069283). */
export function crc32c(data: Uint8Array): number {
  return (crc32cUpdate(0xffffffff, data, 0, data.length) ^ 0xffffffff) >>> 0;
}

