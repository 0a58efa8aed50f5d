/**
 * Route patterns and target hostnames use the one canonicaliser the SNI
 * listener uses on ClientHello bytes (src/proto/hostname.ts), so a route
 * written "Bücher.Example." is stored as "xn--bcher-kva.example", exactly
 * what the listener derives from the wire. Its rules (IDNA A-labels,
 * lowercase, one trailing dot dropped, `[a-z0-9_-]` labels of 1..63 bytes, at
 * most 253 bytes, no IP literals) are documented there.
 */

import { checkHostname, checkPattern } from "../proto/hostname.ts";

/** `{ name }` or `{ error }`, the error phrased to follow a field name. */
export function canonicalHostname(input: string): { name: string } | { error: string } {
  return checkHostname(input);
}

/** "*", "*.suffix" or a hostname: `{ pattern }` or `{ error }`. */
export function canonicalPattern(input: string): { pattern: string } | { error: string } {
  return checkPattern(input);
}
