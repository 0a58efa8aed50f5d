/**
 * IP address text: strict parsers that read strings by char code without
 * allocating (the PROXY codec, the CIDR matcher and the config validator all
 * use them), and formatters that write ASCII into caller buffers (RFC 5952
 * for IPv6).
 */
const C_COLON = 0x3a;
const C_DOT = 0x2e;
const C_0 = 0x30;

/** Strict dotted quad in s[start, end): returns the address as uint32, or -1. */
export function parseIPv4(s: string, start: number, end: number): number {
  let acc = 0;
  let i = start;
  for (let part = 0; part < 4; part++) {
    const first = i;
    let v = 0;
    while (i < end) {
      const d = s.charCodeAt(i) - C_0;
      if (d < 0 || d > 9) break;
      v = v * 10 + d;
      if (++i - first > 3) return -1;
    }
    // "exactly 4 integers in the range [0..255] inclusive ... Heading zeroes
    // are not permitted in front of numbers"
    if (i === first || v > 255 || (i - first > 1 && s.charCodeAt(first) === C_0)) return -1;
    acc = acc * 256 + v;
    if (part < 3) {
      // "separated by exactly one dot between each other"
      if (i >= end || s.charCodeAt(i) !== C_DOT) return -1;
      i++;
    }
  }
  return i === end ? acc : -1;
}

export function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/**
 * IPv6 text in s[start, end) (1-4 hex digits per group, at most one "::", an
 * optional trailing dotted quad as inet_pton accepts; no zone id) into the
 * eight 16-bit groups of `out`. False if invalid (`out` is then undefined).
 * "The total number of decoded bits must exactly be 128."
 */
export function parseIPv6Groups(s: string, start: number, end: number, out: Uint16Array): boolean {
  if (end - start < 2 || end - start > 45) return false; // 45 = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
  let i = start;
  let w = 0;
  let gap = -1;
  if (s.charCodeAt(i) === C_COLON) {
    if (s.charCodeAt(i + 1) !== C_COLON) return false;
    gap = 0;
    i += 2;
  }
  while (i < end) {
    if (w === 8) return false;
    const first = i;
    let v = 0;
    while (i < end && i - first < 5) {
      const h = hexValue(s.charCodeAt(i));
      if (h < 0) break;
      v = v * 16 + h;
      i++;
    }
    if (i < end && s.charCodeAt(i) === C_DOT) {
      // "the 'd's are the decimal values of the four low-order 8-bit pieces": the last piece only.
      if (w > 6) return false;
      const v4 = parseIPv4(s, first, end);
      if (v4 < 0) return false;
      out[w++] = v4 >>> 16;
      out[w++] = v4 & 0xffff;
      i = end;
      break;
    }
    if (i === first || i - first > 4) return false;
    out[w++] = v;
    if (i === end) break;
    if (s.charCodeAt(i) !== C_COLON) return false;
    i++;
    if (i < end && s.charCodeAt(i) === C_COLON) {
      // "with the acceptance of one double colon sequence"
      if (gap >= 0) return false;
      gap = w;
      i++;
    } else if (i === end) {
      return false; // a single trailing colon
    }
  }
  if (gap < 0) {
    if (w !== 8) return false;
  } else {
    if (w > 7) return false; // "::" stands for at least one zero group
    const tail = w - gap;
    for (let k = 0; k < tail; k++) out[7 - k] = out[w - 1 - k]!;
    for (let k = gap; k < 8 - tail; k++) out[k] = 0;
  }
  return true;
}

const groups = new Uint16Array(8); // scratch for parseIPv6; single-threaded use only

/** IPv6 text (as parseIPv6Groups) into 16 bytes at dst[off]. False if invalid. */
export function parseIPv6(s: string, dst: Uint8Array, off: number): boolean {
  if (!parseIPv6Groups(s, 0, s.length, groups)) return false;
  for (let k = 0; k < 8; k++) {
    dst[off + 2 * k] = groups[k]! >>> 8;
    dst[off + 2 * k + 1] = groups[k]! & 0xff;
  }
  return true;
}

/** Writes 0..65535 in decimal without heading zeroes; returns the new position. */
export function writeDecimal(out: Uint8Array, pos: number, v: number): number {
  if (v >= 10000) out[pos++] = C_0 + ((v / 10000) | 0);
  if (v >= 1000) out[pos++] = C_0 + (((v / 1000) | 0) % 10);
  if (v >= 100) out[pos++] = C_0 + (((v / 100) | 0) % 10);
  if (v >= 10) out[pos++] = C_0 + (((v / 10) | 0) % 10);
  out[pos++] = C_0 + (v % 10);
  return pos;
}

export function writeDottedQuad(out: Uint8Array, pos: number, b: Uint8Array, off: number): number {
  for (let k = 0; k < 4; k++) {
    if (k > 0) out[pos++] = C_DOT;
    pos = writeDecimal(out, pos, b[off + k]!);
  }
  return pos;
}

const MAPPED_PREFIX = [C_COLON, C_COLON, 0x66, 0x66, 0x66, 0x66, C_COLON]; // "::ffff:"
const HEX = [0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66];

/**
 * RFC 5952 text of the 16 bytes at b[off] written as ASCII into out[pos];
 * returns the new position. `dottedMapped` writes IPv4-mapped addresses as
 * ::ffff:a.b.c.d (RFC 5952 section 5); without it they stay in hex groups.
 */
export function writeIPv6(out: Uint8Array, pos: number, b: Uint8Array, off: number, dottedMapped: boolean): number {
  let zeroPrefix = true;
  for (let k = 0; k < 10; k++) if (b[off + k] !== 0) zeroPrefix = false;
  if (dottedMapped && zeroPrefix && b[off + 10] === 0xff && b[off + 11] === 0xff) {
    for (let k = 0; k < MAPPED_PREFIX.length; k++) out[pos++] = MAPPED_PREFIX[k]!;
    return writeDottedQuad(out, pos, b, off + 12);
  }
  // Longest run of two or more zero groups, the first one on a tie.
  let bestAt = -1;
  let bestLen = 1;
  for (let k = 0; k < 8; ) {
    if (b[off + 2 * k] === 0 && b[off + 2 * k + 1] === 0) {
      let e = k;
      while (e < 8 && b[off + 2 * e] === 0 && b[off + 2 * e + 1] === 0) e++;
      if (e - k > bestLen) {
        bestAt = k;
        bestLen = e - k;
      }
      k = e;
    } else k++;
  }
  for (let k = 0; k < 8; k++) {
    if (k === bestAt) {
      out[pos++] = C_COLON;
      out[pos++] = C_COLON;
      k += bestLen - 1;
      continue;
    }
    if (k > 0 && k !== bestAt + bestLen) out[pos++] = C_COLON;
    const v = (b[off + 2 * k]! << 8) | b[off + 2 * k + 1]!;
    let started = false;
    for (let shift = 12; shift >= 0; shift -= 4) {
      const d = (v >>> shift) & 0xf;
      if (d !== 0 || started || shift === 0) {
        out[pos++] = HEX[d]!;
        started = true;
      }
    }
  }
  return pos;
}

const textScratch = new Uint8Array(64); // formatter scratch for decoded address text

export function asciiString(b: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i++) s += String.fromCharCode(b[i]!);
  return s;
}

export function ipv4Text(b: Uint8Array, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

export function ipv6Text(b: Uint8Array, off: number): string {
  return asciiString(textScratch, 0, writeIPv6(textScratch, 0, b, off, true));
}

/**
 * RFC 5952 text of eight 16-bit groups: lowercase, no leading zeros, the
 * longest run of two or more zero groups (the first on a tie) as "::"; with
 * `dottedMapped`, an IPv4-mapped address as ::ffff:a.b.c.d (§5). The one
 * formatter every IPv6 text in edgemux comes from.
 */
export function ipv6GroupsText(groups: ArrayLike<number>, dottedMapped: boolean): string {
  const b = groupScratch;
  for (let k = 0; k < 8; k++) {
    b[2 * k] = (groups[k]! >>> 8) & 0xff;
    b[2 * k + 1] = groups[k]! & 0xff;
  }
  return asciiString(textScratch, 0, writeIPv6(textScratch, 0, b, 0, dottedMapped));
}

const groupScratch = new Uint8Array(16);

export function isIPv6Text(s: string): boolean {
  return s.indexOf(":") >= 0;
}


/** Bun reports IPv4 peers of a dual-stack socket as ::ffff:a.b.c.d; logs and PROXY headers want the IPv4 form. */
export function unmapV4(addr: string): string {
  return addr.startsWith("::ffff:") && addr.includes(".") ? addr.slice(7) : addr;
}

/** "host:port", or "[v6]:port" for an IPv6 literal (RFC 3986 §3.2.2 brackets). */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** A peer's "ip:port" ("[v6]:port", IPv4-mapped shown as IPv4); "" when the address is unknown. */
export function formatPeer(addr: string, port: number): string {
  const a = unmapV4(addr);
  return a === "" ? "" : formatHostPort(a, port);
}
