/**
 * Strict IP literals for config values, as arrays, and their canonical text.
 * The parsing is proto/ip_text.ts's, rather than `new URL()`'s: the WHATWG
 * host parser accepts forms an operator never means ("127.1", "0x7f.0.0.1")
 * and silently rewrites them.
 */

import { ipv6GroupsText, parseIPv4 as parseIPv4At, parseIPv6Groups } from "../proto/ip_text.ts";

/** Dotted-quad IPv4, four decimal octets 0..255, no leading zeros. */
export function parseIPv4(s: string): number[] | null {
  const v = parseIPv4At(s, 0, s.length);
  return v < 0 ? null : [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
}

/**
 * RFC 4291 §2.2 text forms: eight 16-bit hex pieces, one "::" for a run of
 * zeros, and an optional dotted-quad tail standing for the last two pieces.
 * Zone ids ("%eth0") are not accepted. Returns the 8 pieces.
 */
export function parseIPv6(s: string): number[] | null {
  const pieces = new Uint16Array(8);
  return parseIPv6Groups(s, 0, s.length, pieces) ? [...pieces] : null;
}

/** RFC 5952 §4 canonical text (IPv4-mapped with its dotted tail, §5). */
export function formatIPv6(p: readonly number[]): string {
  return ipv6GroupsText(p, true);
}

/** Canonical text of an IPv4 or IPv6 literal, or null if `s` is neither. */
export function canonicalIp(s: string): { family: 4 | 6; text: string; bytes: number[] } | null {
  const v4 = parseIPv4(s);
  if (v4 !== null) return { family: 4, text: v4.join("."), bytes: v4 };
  const v6 = parseIPv6(s);
  if (v6 !== null) return { family: 6, text: formatIPv6(v6), bytes: v6.flatMap((x) => [x >> 8, x & 255]) };
  return null;
}
