/**
 * HTTP/1.1 request-head push parser for the CONNECT listener (RFC 9112).
 * Bytes in, one request head out; what follows the head (a client may send
 * its TLS ClientHello right behind CONNECT) stays available through rest().
 *
 * Strict by design, because a proxy that reads a request differently from
 * the next hop is a smuggling target:
 * - CRLF only. RFC 9112 §2.2 lets a recipient accept a bare LF; we do not:
 *   a bare LF or a CR not followed by LF is a 400 at the byte it arrives.
 * - No obs-fold (RFC 9112 §5.2: a server "MUST either reject the message by
 *   sending a 400 (Bad Request) ... or replace each received obs-fold"; we reject).
 * - No whitespace between a field name and its colon (RFC 9112 §5.1: a server
 *   "MUST reject, with a response status code of 400").
 * - Control characters (other than HTAB in values) are refused as they arrive,
 *   so a TLS record or binary junk sent to a plain port is answered at once.
 * - Bounded: the head (request line + fields + CRLFs, leading empty lines
 *   included) is at most `maxHeadBytes`, and at most `maxFields` fields; beyond
 *   either the parser fails with HTTP_HEADER_TOO_LARGE (431).
 *
 * Errors are ProxyError codes HTTP_BAD_REQUEST / HTTP_HEADER_TOO_LARGE; after
 * one the parser is dead and rethrows it.
 */
import { ProxyError } from "../errors/mod.ts";

export interface HttpRequestHead {
  /** As sent (methods are case-sensitive, RFC 9110 §9.1). */
  method: string;
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 (HTTP/1.x above 1 is read as 1.1). */
  minorVersion: number;
  /** Field names lowercased, values with surrounding whitespace trimmed, in order. */
  fields: [string, string][];
  /** Bytes of the head, leading empty lines and the final CRLF CRLF included. */
  headBytes: number;
}

export interface Http1RequestParserOptions {
  maxHeadBytes: number;
  /** Default 100. */
  maxFields?: number;
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;

/** RFC 9110 §5.6.2 tchar. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

/** Scanner states. */
const enum S {
  /** Before the request line: empty lines allowed. */
  Lead,
  RequestLine,
  /** At the start of a field line (or the empty line ending the head). */
  LineStart,
  Field,
  /** Saw CR; LF must follow. `afterCr` says what the line was. */
  Cr,
  Done,
}

export class Http1RequestParser {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  /** Bytes of `chunks` already scanned. */
  private scanned = 0;
  private state = S.Lead;
  /** The line the CR ended: 0 lead/empty, 1 request line, 2 field line, 3 the final empty line. */
  private crKind = 0;
  private leadBytes = 0;
  private fields = 0;
  private headEnd = -1;
  private error: ProxyError | null = null;
  private head: HttpRequestHead | null = null;
  private taken = false;
  private readonly maxHead: number;
  private readonly maxFields: number;

  constructor(opts: Http1RequestParserOptions) {
    this.maxHead = opts.maxHeadBytes;
    this.maxFields = opts.maxFields ?? 100;
  }

  /** Keeps a view of `chunk` (no copy): the caller must not reuse it. */
  push(chunk: Uint8Array): void {
    if (this.error !== null || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  /** The head once complete (returned once), null while more bytes are needed. */
  next(): HttpRequestHead | null {
    if (this.error !== null) throw this.error;
    if (this.head !== null) {
      if (this.taken) return null;
      this.taken = true;
      return this.head;
    }
    try {
      this.scan();
      if (this.headEnd < 0) return null;
      this.head = this.parseHead();
    } catch (err) {
      this.error = err as ProxyError;
      this.chunks = [];
      this.buffered = 0;
      throw err;
    }
    this.taken = true;
    return this.head;
  }

  /** Bytes after the head (views of pushed chunks), once `next()` returned it. */
  rest(): Uint8Array[] {
    if (this.headEnd < 0) return [];
    const out: Uint8Array[] = [];
    let off = 0;
    for (const c of this.chunks) {
      const end = off + c.length;
      if (end > this.headEnd) out.push(off >= this.headEnd ? c : c.subarray(this.headEnd - off));
      off = end;
    }
    return out;
  }

  /** Walks the new bytes through the line scanner; sets headEnd when the empty line is seen. */
  private scan(): void {
    let off = 0;
    for (const chunk of this.chunks) {
      const end = off + chunk.length;
      if (end <= this.scanned) {
        off = end;
        continue;
      }
      for (let i = this.scanned - off; i < chunk.length; i++) {
        const c = chunk[i]!;
        const at = off + i;
        // Leading empty lines count too, so an endless run of CRLFs is bounded like anything else.
        if (at >= this.maxHead) throw new ProxyError("HTTP_HEADER_TOO_LARGE", "downstream", `Request head over ${this.maxHead} bytes`);
        let st = this.state;
        if (st === S.Lead) {
          // RFC 9112 §2.2: a server "SHOULD ignore at least one empty line (CRLF) received prior to the request-line".
          if (c === CR) {
            this.state = S.Cr;
            this.crKind = 0;
          } else st = this.state = S.RequestLine;
        } else if (st === S.LineStart) {
          if (c === CR) {
            this.state = S.Cr;
            this.crKind = 3;
          } else {
            if (c === SP || c === HTAB) throw new ProxyError("HTTP_BAD_REQUEST", "downstream", "Field line starts with whitespace (obs-fold is not accepted)");
            if (++this.fields > this.maxFields) throw new ProxyError("HTTP_HEADER_TOO_LARGE", "downstream", `More than ${this.maxFields} header fields`);
            st = this.state = S.Field;
          }
        } else if (st === S.Cr) {
          if (c !== LF) throw new ProxyError("HTTP_BAD_REQUEST", "downstream", "CR not followed by LF");
          if (this.crKind === 0) {
            this.state = S.Lead;
            this.leadBytes = at + 1;
          } else if (this.crKind === 3) {
            this.state = S.Done;
            this.headEnd = at + 1;
            this.scanned = at + 1;
            return;
          } else this.state = S.LineStart;
        }
        if (st === S.RequestLine) {
          if (c === CR) {
            this.state = S.Cr;
            this.crKind = 1;
          } else if (c < SP || c > 0x7e) throw c === LF ? bareLf() : badByte(c, "request line");
        } else if (st === S.Field) {
          if (c === CR) {
            this.state = S.Cr;
            this.crKind = 2;
          } else if ((c < SP && c !== HTAB) || c === 0x7f) throw c === LF ? bareLf() : badByte(c, "header field");
        }
      }
      off = end;
      this.scanned = end;
    }
  }

  private parseHead(): HttpRequestHead {
    // Allocation: one flat copy of the head (at most maxHeadBytes), read as latin1.
    const bytes = this.headBytes();
    let text = "";
    for (let i = this.leadBytes; i < bytes.length; i += 8192) {
      text += String.fromCharCode.apply(null, bytes.subarray(i, Math.min(bytes.length, i + 8192)) as unknown as number[]);
    }
    const lines = text.split("\r\n");
    // The head ends with CRLF CRLF: the last two entries are empty.
    lines.length -= 2;
    const requestLine = lines[0]!;
    // RFC 9112 §3: request-line = method SP request-target SP HTTP-version
    const sp1 = requestLine.indexOf(" ");
    const sp2 = sp1 < 0 ? -1 : requestLine.indexOf(" ", sp1 + 1);
    if (sp1 <= 0 || sp2 < 0 || requestLine.indexOf(" ", sp2 + 1) >= 0) {
      throw new ProxyError("HTTP_BAD_REQUEST", "downstream", "Request line must be METHOD SP target SP HTTP-version");
    }
    const method = requestLine.slice(0, sp1);
    const target = requestLine.slice(sp1 + 1, sp2);
    const version = requestLine.slice(sp2 + 1);
    for (let i = 0; i < method.length; i++) {
      if (!TCHAR[method.charCodeAt(i)]) throw new ProxyError("HTTP_BAD_REQUEST", "downstream", "Method is not a token");
    }
    if (target.length === 0) throw new ProxyError("HTTP_BAD_REQUEST", "downstream", "Empty request target");
    // RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT
    if (version.length !== 8 || !version.startsWith("HTTP/1.") || version.charCodeAt(7) < 0x30 || version.charCodeAt(7) > 0x39) {
      throw new ProxyError("HTTP_BAD_REQUEST", "downstream", `Unsupported HTTP version ${JSON.stringify(version.slice(0, 16))}`);
    }
    const minorVersion = version.charCodeAt(7) === 0x30 ? 0 : 1;

    const fields: [string, string][] = [];
    for (let k = 1; k < lines.length; k++) {
      const line = lines[k]!;
      const colon = line.indexOf(":");
      if (colon <= 0) throw new ProxyError("HTTP_BAD_REQUEST", "downstream", "Header field without a name or colon");
      for (let i = 0; i < colon; i++) {
        const c = line.charCodeAt(i);
        // RFC 9112 §5.1: "No whitespace is allowed between the field name and colon."
        if (!TCHAR[c]) throw new ProxyError("HTTP_BAD_REQUEST", "downstream", "Header field name is not a token");
      }
      let a = colon + 1;
      let b = line.length;
      while (a < b && (line.charCodeAt(a) === SP || line.charCodeAt(a) === HTAB)) a++;
      while (b > a && (line.charCodeAt(b - 1) === SP || line.charCodeAt(b - 1) === HTAB)) b--;
      fields.push([line.slice(0, colon).toLowerCase(), line.slice(a, b)]);
    }
    return { method, target, minorVersion, fields, headBytes: this.headEnd };
  }

  private headBytes(): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length >= this.headEnd) return first.subarray(0, this.headEnd);
    const out = new Uint8Array(this.headEnd);
    let off = 0;
    for (const c of this.chunks) {
      const n = Math.min(c.length, this.headEnd - off);
      out.set(n === c.length ? c : c.subarray(0, n), off);
      off += n;
      if (off === this.headEnd) break;
    }
    return out;
  }
}

/** A LF that did not end a CR: RFC 9112 §2.2 allows accepting it; we refuse (see the file comment). */
function bareLf(): ProxyError {
  return new ProxyError("HTTP_BAD_REQUEST", "downstream", "Bare LF line ending (CRLF required)");
}

function badByte(c: number, where: string): ProxyError {
  return new ProxyError("HTTP_BAD_REQUEST", "downstream", `Byte 0x${c.toString(16).padStart(2, "0")} is not allowed in a ${where}`);
}

/** The first value of a field (names lowercase), or null. */
export function fieldValue(head: { fields: readonly [string, string][] }, name: string): string | null {
  for (const [n, v] of head.fields) if (n === name) return v;
  return null;
}

/** How many times a field appears. */
export function fieldCount(head: { fields: readonly [string, string][] }, name: string): number {
  let k = 0;
  for (const [n] of head.fields) if (n === name) k++;
  return k;
}
