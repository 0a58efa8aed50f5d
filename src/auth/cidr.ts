/**
 * CIDR lists: the global allow/deny lists that run before any other work on
 * a connection, and (later) per-token client restrictions.
 *
 * Every address lives in one 128-bit space held as four uint32 words, most
 * significant first. An IPv4 address a.b.c.d is stored as the IPv4-mapped
 * IPv6 address ::ffff:a.b.c.d (RFC 4291 §2.5.5.2), and an IPv4 rule a.b.c.d/n
 * as ::ffff:a.b.c.d/(96+n). So a client that Bun reports as "::ffff:1.2.3.4"
 * (IPv4 on a dual-stack socket) and one reported as "1.2.3.4" are the same
 * value, and both match IPv4 rules without a special case on the hot path.
 *
 * Parsing is proto/ip_text.ts's, over charCodeAt: no regex, no split, and a
 * client address is parsed into a shared scratch array, so a check allocates
 * nothing.
 */

import { ProxyError } from "../errors/mod.ts";
import { ipv6GroupsText, parseIPv4, parseIPv6Groups } from "../proto/mod.ts";

/** A parsed network: `words & mask === words` (host bits are zero). */
export interface Cidr {
  /** Network address, four uint32 words, most significant first. */
  readonly words: readonly [number, number, number, number];
  /** Prefix length in the 128-bit space (an IPv4 /8 is 104). */
  readonly prefix: number;
  /** True when written as IPv4, so it formats back as IPv4. */
  readonly v4: boolean;
}

const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const SLASH = 0x2f;
const PERCENT = 0x25;

/** Scratch for the eight 16-bit groups of an IPv6 address. */
const groups = new Uint16Array(8);

/** IPv6 text in s[start, end) (proto/ip_text.ts rules) into four words. */
function parseV6(s: string, start: number, end: number, out: Uint32Array): boolean {
  if (!parseIPv6Groups(s, start, end, groups)) return false;
  for (let w = 0; w < 4; w++) out[w] = ((groups[2 * w]! << 16) | groups[2 * w + 1]!) >>> 0;
  return true;
}

/**
 * Parses a client address as a runtime reports it ("1.2.3.4", "::1",
 * "::ffff:1.2.3.4", "fe80::1%eth0": the zone is ignored) into four words.
 * Returns false when it is not an IP address (e.g. a unix socket peer).
 */
export function parseAddressInto(s: string, out: Uint32Array): boolean {
  let end = s.length;
  let colon = false;
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === COLON) colon = true;
    else if (c === PERCENT) {
      end = i;
      break;
    }
  }
  if (!colon) {
    if (end !== s.length) return false; // a zone on IPv4 text
    const v4 = parseIPv4(s, 0, end);
    if (v4 < 0) return false;
    out[0] = 0;
    out[1] = 0;
    out[2] = 0xffff;
    out[3] = v4;
    return true;
  }
  return parseV6(s, 0, end, out);
}

function maskWord(prefix: number, w: number): number {
  const bits = prefix - 32 * w;
  if (bits >= 32) return 0xffffffff;
  if (bits <= 0) return 0;
  return (0xffffffff << (32 - bits)) >>> 0;
}

/** Formats four words as text: dotted quad for IPv4-mapped when `v4`, else RFC 5952 IPv6. */
export function formatWords(words: ArrayLike<number>, v4: boolean): string {
  if (v4) {
    const a = words[3]! >>> 0;
    return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
  }
  const g: number[] = [];
  for (let w = 0; w < 4; w++) g.push(words[w]! >>> 16, words[w]! & 0xffff);
  return ipv6GroupsText(g, false);
}

/**
 * Parses "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128).
 * Returns the network or a sentence saying what is wrong. Host bits must be
 * zero ("10.0.0.1/8" is refused with the network it probably meant), so a
 * typo cannot silently widen or shift a rule.
 */
export function parseCidrOrProblem(text: string): Cidr | string {
  const slash = text.indexOf("/");
  const addrEnd = slash < 0 ? text.length : slash;
  const words = new Uint32Array(4);
  let v4 = true;
  for (let i = 0; i < addrEnd; i++) {
    const c = text.charCodeAt(i);
    if (c === COLON) v4 = false;
    else if (c === PERCENT) return `a zone ("%...") is not allowed in a rule: ${JSON.stringify(text)}`;
  }
  if (v4) {
    const a = parseIPv4(text, 0, addrEnd);
    if (a < 0) return `not an IPv4 or IPv6 address or CIDR: ${JSON.stringify(text)}`;
    words[2] = 0xffff;
    words[3] = a;
  } else if (!parseV6(text, 0, addrEnd, words)) {
    return `not an IPv4 or IPv6 address or CIDR: ${JSON.stringify(text)}`;
  }
  const max = v4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const digits = text.length - slash - 1;
    bits = 0;
    for (let i = slash + 1; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c < ZERO || c > NINE) {
        bits = -1;
        break;
      }
      bits = bits * 10 + (c - ZERO);
    }
    if (digits === 0 || digits > 3 || bits < 0 || (digits > 1 && text.charCodeAt(slash + 1) === ZERO) || bits > max) {
      return `prefix length must be 0..${max}, got ${JSON.stringify(text.slice(slash + 1))} in ${JSON.stringify(text)}`;
    }
  }
  const prefix = v4 ? 96 + bits : bits;
  let hostBits = false;
  for (let w = 0; w < 4; w++) {
    const m = maskWord(prefix, w);
    if ((words[w]! & ~m) !== 0) hostBits = true;
    words[w] = (words[w]! & m) >>> 0;
  }
  if (hostBits) {
    return `host bits are set in ${JSON.stringify(text)}; did you mean ${formatWords(words, v4)}/${bits}?`;
  }
  return { words: [words[0]!, words[1]!, words[2]!, words[3]!], prefix, v4 };
}

/** Like `parseCidrOrProblem` but throws `ProxyError("CONFIG")` naming `field`. */
export function parseCidr(text: string, field: string): Cidr {
  const r = parseCidrOrProblem(text);
  if (typeof r === "string") throw new ProxyError("CONFIG", "internal", `${field}: ${r}`);
  return r;
}

/** Formats a network back to text ("10.0.0.0/8", "2001:db8::/32"). */
export function formatCidr(c: Cidr): string {
  return `${formatWords(c.words, c.v4)}/${c.v4 ? c.prefix - 96 : c.prefix}`;
}

/**
 * A compiled list of networks. `containsWords` is the hot path: a linear scan
 * over a flat Uint32Array of (network, mask) words, four masked compares per
 * rule with an early exit on the first word that differs. Lists here are
 * tens of rules, where a scan beats a trie.
 */
export class CidrSet {
  /** Per rule: 4 network words then 4 mask words. */
  private readonly data: Uint32Array;
  readonly size: number;

  constructor(readonly cidrs: readonly Cidr[]) {
    this.size = cidrs.length;
    this.data = new Uint32Array(cidrs.length * 8);
    for (let r = 0; r < cidrs.length; r++) {
      const c = cidrs[r]!;
      for (let w = 0; w < 4; w++) {
        this.data[r * 8 + w] = c.words[w]!;
        this.data[r * 8 + 4 + w] = maskWord(c.prefix, w);
      }
    }
  }

  /** Parses each entry; the first malformed one throws naming `field[i]`. */
  static parse(list: readonly string[], field: string): CidrSet {
    return new CidrSet(list.map((text, i) => parseCidr(text, `${field}[${i}]`)));
  }

  /** Whether the address (four words from `parseAddressInto`) is in any network. */
  containsWords(a: Uint32Array): boolean {
    const d = this.data;
    const a0 = a[0]!;
    const a1 = a[1]!;
    const a2 = a[2]!;
    const a3 = a[3]!;
    for (let o = 0; o < d.length; o += 8) {
      // `>>> 0` keeps the AND unsigned so it compares equal to the stored uint32.
      if ((a3 & d[o + 7]!) >>> 0 !== d[o + 3]) continue;
      if ((a2 & d[o + 6]!) >>> 0 !== d[o + 2]) continue;
      if ((a1 & d[o + 5]!) >>> 0 !== d[o + 1]) continue;
      if ((a0 & d[o + 4]!) >>> 0 !== d[o]) continue;
      return true;
    }
    return false;
  }

  /** Parses `ip` and tests it; an unparseable address is in no network. */
  contains(ip: string): boolean {
    return parseAddressInto(ip, scratch) && this.containsWords(scratch);
  }
}

/** Scratch for one client address; checks are synchronous, so one is enough. */
const scratch = new Uint32Array(4);

export interface AccessLists {
  allow: readonly string[];
  deny: readonly string[];
}

/**
 * The global access decision. Deny wins, then allow; an empty allow list
 * allows everything that is not denied.
 *
 * A peer address that is not an IP (a unix socket peer reports "" or a path)
 * passes only when both lists are empty: with any rule configured, an address
 * we cannot place is refused rather than waved through.
 */
export class AccessList {
  constructor(
    readonly allowSet: CidrSet,
    readonly denySet: CidrSet,
  ) {}

  /** True when no rule is configured (the check can be skipped). */
  get empty(): boolean {
    return this.allowSet.size === 0 && this.denySet.size === 0;
  }

  allows(ip: string): boolean {
    if (this.allowSet.size === 0 && this.denySet.size === 0) return true;
    if (!parseAddressInto(ip, scratch)) return false;
    return this.allowsWords(scratch);
  }

  /** Same decision for an address already parsed with `parseAddressInto`. */
  allowsWords(a: Uint32Array): boolean {
    if (this.denySet.containsWords(a)) return false;
    return this.allowSet.size === 0 || this.allowSet.containsWords(a);
  }
}

/**
 * Compiles `{ allow, deny }`. Malformed entries throw
 * `ProxyError("CONFIG", "internal", "<field>.allow[2]: ...")`.
 */
export function compileAccessList(lists: AccessLists, field = "access"): AccessList {
  return new AccessList(CidrSet.parse(lists.allow, `${field}.allow`), CidrSet.parse(lists.deny, `${field}.deny`));
}
