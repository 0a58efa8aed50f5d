/**
 * The checks every HTTP/2 server makes on a request's decoded field list
 * (RFC 9113 §8.2-§8.3), shared by the HBONE CONNECT server and the http
 * listener: field names and values, pseudo-header fields first and once each,
 * no connection-specific fields, `te` only "trailers". What a field means is
 * left to the caller, which gets each regular field through `onField`.
 */
import { ProxyError } from "../errors/mod.ts";

/** §8.2.2: fields that make an HTTP/2 message malformed (HTTP/1.1 uses them per hop). */
export const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set(["connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade"]);
/** §8.2.1: "A field name MUST NOT contain characters in the ranges 0x00-0x20, 0x41-0x5a, or 0x7f-0xff" (a pseudo-header starts with ':'). */
const NAME = /^:?[\x21-\x39\x3b-\x40\x5b-\x7e]+$/;
/** §8.2.1: a value "MUST NOT contain a zero value (ASCII NUL), line feed (ASCII LF), or carriage return (ASCII CR)", nor start or end with SP or HTAB. */
const BAD_VALUE = /[\0\r\n]|^[ \t]|[ \t]$/;

export interface H2PseudoFields {
  method: string | null;
  scheme: string | null;
  authority: string | null;
  path: string | null;
}

function bad(message: string): ProxyError {
  return new ProxyError("HTTP_BAD_REQUEST", "downstream", message);
}

/**
 * Checks `fields` and returns the pseudo-header fields; `onField` sees each
 * regular field in order. Throws HTTP_BAD_REQUEST for a malformed list.
 */
export function readH2RequestFields(fields: readonly (readonly [string, string])[], onField: (name: string, value: string) => void): H2PseudoFields {
  const p: H2PseudoFields = { method: null, scheme: null, authority: null, path: null };
  let regular = false;
  for (const [name, value] of fields) {
    if (!NAME.test(name)) throw bad(`Malformed field name ${JSON.stringify(name.slice(0, 40))}`);
    if (BAD_VALUE.test(value)) throw bad(`Malformed value of ${name}`);
    if (name.charCodeAt(0) === 0x3a) {
      // §8.3: "All pseudo-header fields MUST appear in a field block before all regular field lines".
      if (regular) throw bad("Pseudo-header after a regular field");
      const key = name === ":method" ? "method" : name === ":scheme" ? "scheme" : name === ":authority" ? "authority" : name === ":path" ? "path" : null;
      // :protocol too: extended CONNECT (RFC 8441) is not offered.
      if (key === null) throw bad(`Unknown pseudo-header ${name}`);
      if (p[key] !== null) throw bad(`Repeated ${name}`);
      p[key] = value;
      continue;
    }
    regular = true;
    if (CONNECTION_SPECIFIC.has(name)) throw bad(`Connection-specific field ${name}`);
    // §8.2.2: "The only exception to this is the TE header field, which MAY be present ... but it MUST NOT contain any value other than 'trailers'".
    if (name === "te" && value !== "trailers") throw bad("TE other than trailers");
    onField(name, value);
  }
  return p;
}
