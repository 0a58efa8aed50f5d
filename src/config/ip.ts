/**
 * Strict IP literal parsing for config values. Written out rather than left to
 * `new URL()` because the WHATWG host parser accepts forms an operator never
 * means ("127.1", "0x7f.0.0.1") and silently rewrites them.
 */

/** Dotted-quad IPv4, four decimal octets 0..255, no leading zeros. */
export function parseIPv4(s: string): number[] | null {
  if (s.length > 15) return null;
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

/**
 * RFC 4291 §2.2 text forms: eight 16-bit hex pieces, one "::" for a run of
 * zeros, and an optional dotted-quad tail standing for the last two pieces.
 * Zone ids ("%eth0") are not accepted. Returns the 8 pieces.
 */
export function parseIPv6(s: string): number[] | null {
  if (s.length < 2 || s.length > 45) return null;
  const halves = s.split("::");
  if (halves.length > 2) return null;
  // The dotted-quad tail may only end the whole address.
  const side = (t: string, last: boolean): number[] | null => {
    if (t === "") return [];
    const out: number[] = [];
    const groups = t.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (last && i === groups.length - 1 && g.includes(".")) {
        const v4 = parseIPv4(g);
        if (v4 === null) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = side(halves[0]!, halves.length === 1);
  if (head === null) return null;
  if (halves.length === 1) return head.length === 8 ? head : null;
  const tail = side(halves[1]!, true);
  if (tail === null) return null;
  // "::" stands for at least one zero piece.
  const zeros = 8 - head.length - tail.length;
  if (zeros < 1) return null;
  return [...head, ...new Array<number>(zeros).fill(0), ...tail];
}

/** RFC 5952 §4 canonical text: lowercase, no leading zeros, the longest run (≥2) of zero pieces as "::". */
export function formatIPv6(p: readonly number[]): string {
  // §5: an IPv4-mapped address keeps its dotted tail.
  if (p.slice(0, 5).every((x) => x === 0) && p[5] === 0xffff) {
    return `::ffff:${p[6]! >> 8}.${p[6]! & 255}.${p[7]! >> 8}.${p[7]! & 255}`;
  }
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (p[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && p[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = p.map((x) => x.toString(16));
  if (bestAt < 0) return hex.join(":");
  return hex.slice(0, bestAt).join(":") + "::" + hex.slice(bestAt + bestLen).join(":");
}

/** Canonical text of an IPv4 or IPv6 literal, or null if `s` is neither. */
export function canonicalIp(s: string): { family: 4 | 6; text: string; bytes: number[] } | null {
  const v4 = parseIPv4(s);
  if (v4 !== null) return { family: 4, text: v4.join("."), bytes: v4 };
  const v6 = parseIPv6(s);
  if (v6 !== null) return { family: 6, text: formatIPv6(v6), bytes: v6.flatMap((x) => [x >> 8, x & 255]) };
  return null;
}
