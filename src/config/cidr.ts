/**
 * CIDR blocks for the global access lists. Stored canonical as "addr/len"
 * (a bare address gets /32 or /128) so the router parses one form only.
 */

import { canonicalIp, formatIPv6 } from "./ip.ts";

export function canonicalCidr(text: string): { cidr: string } | { error: string } {
  const got = JSON.stringify(text.length > 80 ? text.slice(0, 80) + "…" : text);
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const ip = canonicalIp(addrText);
  if (ip === null) return { error: `must be an IP address or CIDR block ("10.0.0.0/8", "2001:db8::/32"), got ${got}` };
  const max = ip.family === 4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max) {
      return { error: `prefix length must be 0..${max}, got ${JSON.stringify(lenText)}` };
    }
    len = Number(lenText);
  }
  // Host bits below the prefix must be zero: "10.0.0.1/8" is almost always a typo.
  const net = ip.bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, len - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
  if (net.some((b, i) => b !== ip.bytes[i])) {
    const netText =
      ip.family === 4
        ? net.join(".")
        : formatIPv6(Array.from({ length: 8 }, (_, i) => (net[2 * i]! << 8) | net[2 * i + 1]!));
    return { error: `${got} has bits set past the /${len} prefix (did you mean "${netText}/${len}"?)` };
  }
  return { cidr: `${ip.text}/${len}` };
}
