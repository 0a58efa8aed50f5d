/**
 * HTTP/1.x message heads (RFC 9112), sans-I/O: one push scanner, two start
 * lines. `Http1RequestParser` reads a request head (the CONNECT listener, the
 * tunnel listener's upgrade), `Http1ResponseParser` a response head (the
 * agent reading the edge's 101 or refusal). Bytes in, one head out; what
 * follows the head (a ClientHello sent right behind CONNECT, the first smux
 * frames behind a 101) stays available through rest().
 *
 * Strict by design, because a proxy that reads a message differently from
 * the next hop is a smuggling target:
 * - CRLF only. RFC 9112 §2.2 lets a recipient accept a bare LF; we do not:
 *   a bare LF or a CR not followed by LF is an error at the byte it arrives.
 * - No obs-fold (RFC 9112 §5.2: a server "MUST either reject the message by
 *   sending a 400 (Bad Request) ... or replace each received obs-fold"; we reject).
 * - No whitespace between a field name and its colon (RFC 9112 §5.1: a server
 *   "MUST reject, with a response status code of 400").
 * - Control characters (other than HTAB in values) are refused as they arrive,
 *   so a TLS record or binary junk sent to a plain port is answered at once.
 * - Framing fields are checked once, here, for every listener: at most one
 *   Content-Length (digits only), Transfer-Encoding and Content-Length never
 *   together, and in requests exactly one Host (HTTP/1.1) and at most one of
 *   each credential field (see checkRequestFields).
 * - Bounded: the head (start line + fields + CRLFs, leading empty lines
 *   included) is at most `maxHeadBytes`, and at most `maxFields` fields.
 *
 * Errors: a request parser throws ProxyError HTTP_BAD_REQUEST (400) or
 * HTTP_HEADER_TOO_LARGE (431) from "downstream"; a response parser throws
 * its configured code from "upstream". After one the parser is dead and
 * rethrows it.
 */
import { type ErrorCode, ProxyError } from "../errors/mod.ts";

/** Name/value pairs: names lowercased, values with surrounding whitespace trimmed, in order. */
export type HttpFields = [string, string][];

export interface HttpRequestHead {
  /** As sent (methods are case-sensitive, RFC 9110 §9.1). */
  method: string;
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 (HTTP/1.x above 1 is read as 1.1). */
  minorVersion: number;
  fields: HttpFields;
  /** Bytes of the head, leading empty lines and the final CRLF CRLF included. */
  headBytes: number;
}

export interface HttpResponseHead {
  status: number;
  /** As sent; may be empty (RFC 9112 §4: a client "SHOULD ignore the reason-phrase content"). */
  reason: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 (HTTP/1.x above 1 is read as 1.1). */
  minorVersion: number;
  fields: HttpFields;
  /** Bytes of the head, the final CRLF CRLF included. */
  headBytes: number;
}

export interface Http1RequestParserOptions {
  maxHeadBytes: number;
  /** Default 100. */
  maxFields?: number;
}

export interface Http1ResponseParserOptions {
  maxHeadBytes: number;
  /** Default 100. */
  maxFields?: number;
  /** The code of every failure (malformed or too large): what a bad answer means to the caller. */
  errorCode: ErrorCode;
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const DEL = 0x7f;

/** RFC 9110 §5.6.2 tchar. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

/** Scanner states. */
const enum S {
  /** Before a request line: empty lines allowed. */
  Lead,
  StartLine,
  /** At the start of a field line (or the empty line ending the head). */
  LineStart,
  Field,
  /** Saw CR; LF must follow. `crKind` says what the line was. */
  Cr,
  Done,
}

/** What a CR ended: a leading empty line, the start line, a field line, the final empty line. */
const enum Line {
  Lead,
  Start,
  Field,
  Final,
}

/**
 * The scanner both heads share: bounds, line ends, obs-fold, control
 * characters, field-name syntax, framing fields. Subclasses read the start line.
 */
abstract class Http1HeadParser<H extends { fields: HttpFields; headBytes: number }> {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  /** Bytes of `chunks` already scanned. */
  private scanned = 0;
  private state: S;
  private crKind = Line.Lead;
  private leadBytes = 0;
  private fields = 0;
  protected headEnd = -1;
  private error: ProxyError | null = null;
  private head: H | null = null;
  private taken = false;
  private readonly maxHead: number;
  private readonly maxFields: number;

  constructor(opts: { maxHeadBytes: number; maxFields?: number }, private readonly isRequest: boolean) {
    this.maxHead = opts.maxHeadBytes;
    this.maxFields = opts.maxFields ?? 100;
    this.state = isRequest ? S.Lead : S.StartLine;
  }

  protected abstract bad(message: string): ProxyError;
  protected abstract tooLarge(message: string): ProxyError;
  /** Parses the start line and checks the fields; throws bad(). */
  protected abstract build(startLine: string, fields: HttpFields): H;

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
  next(): H | null {
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
        if (at >= this.maxHead) throw this.tooLarge(`head over ${this.maxHead} bytes`);
        let st = this.state;
        if (st === S.Lead) {
          // RFC 9112 §2.2: a server "SHOULD ignore at least one empty line (CRLF) received prior to the request-line".
          if (c === CR) {
            this.state = S.Cr;
            this.crKind = Line.Lead;
          } else st = this.state = S.StartLine;
        } else if (st === S.LineStart) {
          if (c === CR) {
            this.state = S.Cr;
            this.crKind = Line.Final;
          } else {
            // RFC 9112 §5.2: obs-fold = OWS CRLF RWS; we reject it (see the file comment).
            if (c === SP || c === HTAB) throw this.bad("Field line starts with whitespace (obs-fold is not accepted)");
            if (++this.fields > this.maxFields) throw this.tooLarge(`more than ${this.maxFields} header fields`);
            st = this.state = S.Field;
          }
        } else if (st === S.Cr) {
          if (c !== LF) throw this.bad("CR not followed by LF");
          if (this.crKind === Line.Lead) {
            this.state = S.Lead;
            this.leadBytes = at + 1;
          } else if (this.crKind === Line.Final) {
            this.state = S.Done;
            this.headEnd = at + 1;
            this.scanned = at + 1;
            return;
          } else this.state = S.LineStart;
        }
        if (st === S.StartLine) {
          if (c === CR) {
            this.state = S.Cr;
            this.crKind = Line.Start;
          } else if (c < SP || c === DEL || (c > DEL && this.isRequest)) {
            // RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ): only a status line has HTAB or obs-text.
            if (c === HTAB && !this.isRequest) continue;
            throw c === LF ? this.bareLf() : this.badByte(c, this.isRequest ? "request line" : "status line");
          }
        } else if (st === S.Field) {
          if (c === CR) {
            this.state = S.Cr;
            this.crKind = Line.Field;
            // RFC 9110 §5.5: "Field values containing CR, LF, or NUL characters are invalid and dangerous"; DEL and other CTLs are not field-vchar either.
          } else if ((c < SP && c !== HTAB) || c === DEL) throw c === LF ? this.bareLf() : this.badByte(c, "header field");
        }
      }
      off = end;
      this.scanned = end;
    }
  }

  private parseHead(): H {
    // Allocation: one flat copy of the head (at most maxHeadBytes) when it spans chunks, read as latin1
    // (RFC 9112 §2.2: "a recipient MUST parse an HTTP message as a sequence of octets in an encoding that is a superset of US-ASCII").
    const bytes = this.headBytes();
    let text = "";
    for (let i = this.leadBytes; i < bytes.length; i += 8192) {
      text += String.fromCharCode.apply(null, bytes.subarray(i, Math.min(bytes.length, i + 8192)) as unknown as number[]);
    }
    const lines = text.split("\r\n");
    // The head ends with CRLF CRLF: the last two entries are empty.
    lines.length -= 2;
    const fields: HttpFields = [];
    for (let k = 1; k < lines.length; k++) {
      const line = lines[k]!;
      const colon = line.indexOf(":");
      if (colon <= 0) throw this.bad("Header field without a name or colon");
      for (let i = 0; i < colon; i++) {
        // RFC 9112 §5.1: "No whitespace is allowed between the field name and colon."
        if (!TCHAR[line.charCodeAt(i)]) throw this.bad("Header field name is not a token");
      }
      let a = colon + 1;
      let b = line.length;
      while (a < b && (line.charCodeAt(a) === SP || line.charCodeAt(a) === HTAB)) a++;
      while (b > a && (line.charCodeAt(b - 1) === SP || line.charCodeAt(b - 1) === HTAB)) b--;
      fields.push([line.slice(0, colon).toLowerCase(), line.slice(a, b)]);
    }
    return this.build(lines[0]!, fields);
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

  /** A LF that did not end a CR: RFC 9112 §2.2 allows accepting it; we refuse (see the file comment). */
  private bareLf(): ProxyError {
    return this.bad("Bare LF line ending (CRLF required)");
  }

  private badByte(c: number, where: string): ProxyError {
    return this.bad(`Byte 0x${c.toString(16).padStart(2, "0")} is not allowed in a ${where}`);
  }

  /** RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT; only 1.x here. Returns the minor version (0 or 1). */
  protected minorVersionOf(version: string): number {
    if (version.length !== 8 || !version.startsWith("HTTP/1.") || version.charCodeAt(7) < 0x30 || version.charCodeAt(7) > 0x39) {
      throw this.bad(`Unsupported HTTP version ${JSON.stringify(version.slice(0, 16))}`);
    }
    return version.charCodeAt(7) === 0x30 ? 0 : 1;
  }

  /** The message framing fields, for requests and responses alike. */
  protected checkFraming(fields: HttpFields, minorVersion: number): void {
    let cl = 0;
    let te = 0;
    for (const [n, v] of fields) {
      if (n === "content-length") {
        // RFC 9110 §8.6: Content-Length = 1*DIGIT; for a list or any other invalid value "a recipient MAY either
        // reject the message as invalid or replace that invalid field value with a single instance"; we reject.
        if (++cl > 1) throw this.bad("More than one Content-Length field");
        if (!/^[0-9]{1,15}$/.test(v)) throw this.bad(`Content-Length must be digits, got ${JSON.stringify(v.slice(0, 20))}`);
      } else if (n === "transfer-encoding") {
        // A list split over several lines is legal (RFC 9110 §5.3), but a listener here reads no body, and
        // two readings of a split list are how request smuggling starts: one line or none.
        if (++te > 1) throw this.bad("More than one Transfer-Encoding field");
      }
    }
    // RFC 9112 §6.1: "A server MAY reject a request that contains both Content-Length and Transfer-Encoding ...
    // Regardless, the server MUST close the connection after responding to such a request"; for a response such a
    // message "ought to be handled as an error". We reject both, and a refusal always closes.
    if (cl > 0 && te > 0) throw this.bad("Both Content-Length and Transfer-Encoding");
    // RFC 9112 §6.1: "A server or client that receives an HTTP/1.0 message containing a Transfer-Encoding header
    // field MUST treat the message as if the framing is faulty".
    if (te > 0 && minorVersion === 0) throw this.bad("Transfer-Encoding in an HTTP/1.0 message");
  }
}

/** RFC 9110 §7.2: Host = uri-host [ ":" port ]; the characters of a reg-name, an IP literal and a port. */
const HOST_VALUE = /^[A-Za-z0-9\-._~%!$&'()*+,;=:[\]]*$/;

/*
 * Credentials and Host may appear once in a request. RFC 9110 §5.3: "A sender MUST NOT generate multiple field
 * lines with the same name in a message ... unless that field's definition allows multiple field line values to
 * be recombined as a comma-separated list"; credentials and Host are not lists, so a second line is a client
 * trying two readings at once (the first decides here, the last somewhere else). Refused in checkRequestFields.
 */

export class Http1RequestParser extends Http1HeadParser<HttpRequestHead> {
  constructor(opts: Http1RequestParserOptions) {
    super(opts, true);
  }

  protected bad(message: string): ProxyError {
    return new ProxyError("HTTP_BAD_REQUEST", "downstream", message);
  }

  protected tooLarge(message: string): ProxyError {
    return new ProxyError("HTTP_HEADER_TOO_LARGE", "downstream", `Request: ${message}`);
  }

  protected build(requestLine: string, fields: HttpFields): HttpRequestHead {
    // RFC 9112 §3: request-line = method SP request-target SP HTTP-version
    const sp1 = requestLine.indexOf(" ");
    const sp2 = sp1 < 0 ? -1 : requestLine.indexOf(" ", sp1 + 1);
    if (sp1 <= 0 || sp2 < 0 || requestLine.indexOf(" ", sp2 + 1) >= 0) {
      throw this.bad("Request line must be METHOD SP target SP HTTP-version");
    }
    const method = requestLine.slice(0, sp1);
    const target = requestLine.slice(sp1 + 1, sp2);
    for (let i = 0; i < method.length; i++) {
      if (!TCHAR[method.charCodeAt(i)]) throw this.bad("Method is not a token");
    }
    if (target.length === 0) throw this.bad("Empty request target");
    const minorVersion = this.minorVersionOf(requestLine.slice(sp2 + 1));
    this.checkFraming(fields, minorVersion);
    this.checkRequestFields(fields, minorVersion);
    return { method, target, minorVersion, fields, headBytes: this.headEnd };
  }

  private checkRequestFields(fields: HttpFields, minorVersion: number): void {
    let hosts = 0;
    let auths = 0;
    let proxyAuths = 0;
    for (const [n, v] of fields) {
      if (n === "host") {
        // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request
        // message that lacks a Host header field and to any request message that contains more than one Host
        // header field line or a Host header field with an invalid field value."
        if (++hosts > 1) throw this.bad("More than one Host field");
        if (!HOST_VALUE.test(v)) throw this.bad(`Host is not host[:port]: ${JSON.stringify(v.slice(0, 80))}`);
      } else if (n === "authorization") {
        // Not a list (RFC 9110 §11.6.2: Authorization = credentials): see the RFC 9110 §5.3 sentence above this class.
        if (++auths > 1) throw this.bad("More than one Authorization field");
      } else if (n === "proxy-authorization") {
        // RFC 9110 §11.7.2: Proxy-Authorization = credentials; not a list either.
        if (++proxyAuths > 1) throw this.bad("More than one Proxy-Authorization field");
      }
    }
    // Decision: an HTTP/1.0 request may lack Host. The RFC 9112 §3.2 sentence above asks it of HTTP/1.1 only, and
    // HTTP/1.0 clients (RFC 1945) predate the field. More than one Host is refused whatever the version.
    if (hosts === 0 && minorVersion === 1) throw this.bad("HTTP/1.1 request without a Host field");
  }
}

export class Http1ResponseParser extends Http1HeadParser<HttpResponseHead> {
  private readonly code: ErrorCode;

  constructor(opts: Http1ResponseParserOptions) {
    super(opts, false);
    this.code = opts.errorCode;
  }

  protected bad(message: string): ProxyError {
    return new ProxyError(this.code, "upstream", `Malformed HTTP response: ${message}`);
  }

  protected tooLarge(message: string): ProxyError {
    return new ProxyError(this.code, "upstream", `HTTP response: ${message}`);
  }

  protected build(statusLine: string, fields: HttpFields): HttpResponseHead {
    // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]; status-code = 3DIGIT.
    // A status line without the SP after the code (an empty reason, as some servers send it) is accepted.
    const minorVersion = this.minorVersionOf(statusLine.slice(0, 8));
    const code = statusLine.slice(9, 12);
    if (statusLine.charCodeAt(8) !== SP || !/^[1-5][0-9][0-9]$/.test(code) || (statusLine.length > 12 && statusLine.charCodeAt(12) !== SP)) {
      throw this.bad(`Status line must be HTTP-version SP 3DIGIT SP reason, got ${JSON.stringify(statusLine.slice(0, 40))}`);
    }
    this.checkFraming(fields, minorVersion);
    return { status: Number(code), reason: statusLine.slice(13), minorVersion, fields, headBytes: this.headEnd };
  }
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

/** Every line of a list field joined with ", " (RFC 9110 §5.3), or null when absent. */
export function fieldList(head: { fields: readonly [string, string][] }, name: string): string | null {
  let out: string | null = null;
  for (const [n, v] of head.fields) if (n === name) out = out === null ? v : `${out}, ${v}`;
  return out;
}

/** True when a comma-separated field value lists `token` (case-insensitive). */
export function listHasToken(value: string | null, token: string): boolean {
  if (value === null) return false;
  const t = token.toLowerCase();
  return value.split(",").some((v) => v.trim().toLowerCase() === t);
}

// ---------------------------------------------------------------- responses we write

/** RFC 9110 §15 reason phrases of the statuses edgemux sends (one table for every listener). */
export const REASON_PHRASES: Readonly<Record<number, string>> = {
  101: "Switching Protocols",
  200: "OK",
  301: "Moved Permanently",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

export function reasonPhrase(status: number): string {
  return REASON_PHRASES[status] ?? "Error";
}

/** Keeps text we put in a field value or a one-line body printable: RFC 9110 §5.5 field-vchar, no CR/LF. */
export function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?");
}

const enc = new TextEncoder();

/**
 * A whole response that ends the exchange: status line, `fields` (values made
 * printable), a one-line text body (made printable) with its Content-Length,
 * `Connection: close`.
 */
export function encodeClosingResponse(status: number, fields: readonly [string, string][], bodyLine: string): Uint8Array {
  let head = `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
  for (const [k, v] of fields) head += `${k}: ${printable(v)}\r\n`;
  const body = `${printable(bodyLine)}\n`;
  head += `Content-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
  return enc.encode(head + body);
}
