/**
 * Hostname canonicalisation, shared by the ClientHello parser (bytes off the
 * wire) and by config validation and `edgemux hostname NAME` (strings a person
 * typed). Both produce the same canonical form, so a route written as
 * "Bücher.Example." matches the SNI "xn--bcher-kva.example".
 *
 * The canonical form:
 * - ASCII only: internationalised names are A-labels ("xn--..."). On the wire
 *   RFC 6066 §3 says "HostName" ... "is represented as a byte string using
 *   ASCII encoding", so a non-ASCII byte there is invalid; a typed name is
 *   converted with IDNA (`domainToASCII` from node:url).
 * - lowercase (ASCII case folding: DNS names compare case-insensitively);
 * - one trailing dot removed (RFC 6066: "without a trailing dot"; we accept and
 *   drop one, as DNS does, rather than refuse the client);
 * - labels are 1..63 bytes, the whole name at most 253 bytes (RFC 1035 §2.3.4
 *   and §3.1: 255 octets on the wire = 253 characters of text);
 * - characters `a-z 0-9 - _ .` only.
 *   Decision on `_`: accepted. It is not a valid LDH hostname character, but
 *   real names carry it (S3-style bucket hosts, internal service names), browsers
 *   and dlundquist/sniproxy accept it, and it is harmless for us: the safety
 *   properties that matter (no `/`, no empty or `..` label, so a name is always
 *   a safe single path component for sniproxy-style directory routes; one
 *   spelling per name) hold with or without it. Hyphens are likewise accepted at
 *   any position in a label, as browsers do.
 * - not an IP address: RFC 6066 §3 "Literal IPv4 and IPv6 addresses are not
 *   permitted in "HostName"". IPv6 literals fail the character set (`:`); a
 *   name whose last label is all digits, or "0x" and hex digits, is refused,
 *   which covers every IPv4 spelling the URL and inet_aton parsers accept
 *   ("10.0.0.1", "127.1", "0x7f.1") and matches RFC 3696 §2 (a top-level
 *   domain is never all-numeric).
 */
import { domainToASCII } from "node:url";
import { ProxyError } from "../errors/mod.ts";

export const MAX_HOSTNAME_BYTES = 253;
export const MAX_LABEL_BYTES = 63;

const DOT = 0x2e;

/**
 * The fast canonicaliser used on the ClientHello hot path: reads the host_name
 * bytes `buf[start..end)` and returns the canonical name, or null when they are
 * not a valid hostname.
 */
export function canonicalHostnameBytes(buf: Uint8Array, start: number, end: number): string | null {
  if (end > start && buf[end - 1] === DOT) end--; // one trailing dot
  const len = end - start;
  if (len <= 0 || len > MAX_HOSTNAME_BYTES) return null;
  let upper = false;
  let labelLen = 0;
  let labelStart = start;
  let labelAllDigits = true;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c === DOT) {
      if (labelLen === 0) return null; // leading dot or ".."
      labelLen = 0;
      labelStart = i + 1;
      labelAllDigits = true;
      continue;
    }
    if (++labelLen > MAX_LABEL_BYTES) return null;
    if (c >= 0x61 && c <= 0x7a) {
      labelAllDigits = false; // a-z
    } else if (c >= 0x30 && c <= 0x39) {
      // 0-9
    } else if (c >= 0x41 && c <= 0x5a) {
      labelAllDigits = false; // A-Z
      upper = true;
    } else if (c === 0x2d || c === 0x5f) {
      labelAllDigits = false; // - _
    } else {
      return null;
    }
  }
  if (labelLen === 0) return null; // empty last label
  if (labelAllDigits || isHexNumberLabel(buf, labelStart, end)) return null; // an IPv4 literal
  // Allocation: the string the router needs (and a subarray view). The bytes
  // are ASCII, so UTF-8 decoding is the identity and toLowerCase folds exactly
  // A-Z. TextDecoder measured fastest here in Bun once the router hashes the
  // result: it yields a flat string, where `+=` per byte builds a rope.
  const s = asciiDecoder.decode(buf.subarray(start, end));
  return upper ? s.toLowerCase() : s;
}

const asciiDecoder = new TextDecoder();

// deno-lint-ignore no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

/** A checked name, or why it is not one (phrased to follow a field name: `routes[0].match: must not be empty`). */
export type HostnameCheck = { name: string } | { error: string };
export type PatternCheck = { pattern: string } | { error: string };

/**
 * Canonical form of a hostname a person wrote (config, CLI): IDNA A-label,
 * lowercase, no trailing dot; or a message saying what is wrong, e.g.
 * `has an empty label (two dots in a row), got "a..b"`.
 */
export function checkHostname(input: string): HostnameCheck {
  const got = `, got ${JSON.stringify(input.length > 300 ? input.slice(0, 300) + "..." : input)}`;
  if (input.length === 0) return { error: "must not be empty" };
  // Longer input cannot shrink to 253 bytes (IDNA mapping only drops a few
  // ignorable code points); refuse before doing IDNA work on it.
  if (input.length > 4 * MAX_HOSTNAME_BYTES) return { error: `is longer than ${MAX_HOSTNAME_BYTES} bytes` };
  let ascii = input;
  if (NON_ASCII.test(input)) {
    // Check the ASCII part first: the runtimes' URL host parsers differ on it
    // (Bun percent-decodes and cuts at "/", Deno does neither), so only letters,
    // digits, `-`, `_` and `.` may reach domainToASCII beside Unicode.
    for (let i = 0; i < input.length; i++) {
      const c = input.charCodeAt(i);
      if (c < 0x80 && c !== DOT && !isNameChar(c)) return { error: `must not contain ${describeChar(input, i)}${got}` };
    }
    ascii = domainToASCII(input);
    if (ascii === "") return { error: `is not a valid internationalised domain name (IDNA)${got}` };
  }
  if (ascii.charCodeAt(ascii.length - 1) === DOT) ascii = ascii.slice(0, -1);
  if (ascii.length === 0) return { error: `has no labels${got}` };
  ascii = ascii.toLowerCase();

  for (let i = 0; i < ascii.length; i++) {
    const c = ascii.charCodeAt(i);
    if (c !== DOT && !isNameChar(c)) {
      return { error: `must not contain ${describeChar(ascii, i)} (letters, digits, '-', '_' and '.' only)${got}` };
    }
  }
  if (ascii.length > MAX_HOSTNAME_BYTES) return { error: `is ${ascii.length} bytes long, over the ${MAX_HOSTNAME_BYTES}-byte limit${got}` };
  const labels = ascii.split(".");
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i]!;
    if (label.length === 0) return { error: `${i === 0 ? "starts with a dot" : "has an empty label (two dots in a row)"}${got}` };
    if (label.length > MAX_LABEL_BYTES) {
      return { error: `has a ${label.length}-byte label, over the ${MAX_LABEL_BYTES}-byte limit${got}` };
    }
    // A typed A-label must decode; names from the wire are taken as they come.
    if (label.startsWith("xn--") && domainToASCII(label) === "") {
      return { error: `has a label that is not valid punycode (${JSON.stringify(label)})${got}` };
    }
  }
  if (isNumericLabel(labels[labels.length - 1]!)) {
    return { error: `must be a DNS name, not an IP address (RFC 6066: no IP literals in SNI)${got}` };
  }
  return { name: ascii };
}

/**
 * Canonical form of a route pattern: "*" (any name, the default route),
 * "*.suffix" (any name below suffix, one or more labels deep), or a hostname.
 */
export function checkPattern(input: string): PatternCheck {
  if (input === "*") return { pattern: "*" };
  const wildcard = input.startsWith("*.");
  const rest = wildcard ? input.slice(2) : input;
  if (rest.includes("*")) {
    return { error: `may use "*" only as the whole first label ("*.example.com") or alone ("*"), got ${JSON.stringify(input)}` };
  }
  if (wildcard && rest.length === 0) return { error: `needs a suffix after "*.", got "*."` };
  const r = checkHostname(rest);
  if ("error" in r) return r;
  // "*." + suffix must leave room for at least a one-byte label.
  if (wildcard && r.name.length + 2 > MAX_HOSTNAME_BYTES) {
    return { error: `matches no name: "*." plus the suffix is over the ${MAX_HOSTNAME_BYTES}-byte limit` };
  }
  return { pattern: wildcard ? `*.${r.name}` : r.name };
}

/** checkHostname that throws ProxyError "CONFIG" (`hostname has an empty label ..., got "a..b"`). */
export function canonicalHostname(input: string): string {
  const r = checkHostname(input);
  if ("error" in r) throw new ProxyError("CONFIG", "internal", `hostname ${r.error}`);
  return r.name;
}

/** checkPattern that throws ProxyError "CONFIG". */
export function canonicalPattern(input: string): string {
  const r = checkPattern(input);
  if ("error" in r) throw new ProxyError("CONFIG", "internal", `route pattern ${r.error}`);
  return r.pattern;
}

/**
 * The last label of an IPv4 literal in any spelling the URL and inet_aton
 * parsers take: decimal digits, or "0x" and hex digits ("127.0.0.1", "127.1",
 * "0x7f.1"). No real top-level domain looks like either.
 */
function isNumericLabel(label: string): boolean {
  return /^(?:[0-9]+|0x[0-9a-f]*)$/.test(label);
}

/** "0x" followed by hex digits, in either case: inet_aton's hex spelling of an IPv4 part. */
function isHexNumberLabel(buf: Uint8Array, start: number, end: number): boolean {
  if (end - start < 2 || buf[start] !== 0x30 || (buf[start + 1]! | 0x20) !== 0x78) return false;
  for (let i = start + 2; i < end; i++) {
    const c = buf[i]! | 0x20; // ASCII letters to lowercase; digits unchanged
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

function isNameChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || c === 0x2d || c === 0x5f;
}

function describeChar(s: string, i: number): string {
  const c = s.codePointAt(i)!;
  const hex = `U+${c.toString(16).toUpperCase().padStart(4, "0")}`;
  return c > 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}' at offset ${i}` : `${hex} at offset ${i}`;
}
