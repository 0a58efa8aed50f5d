/**
 * HTTP/1.1 message body framing (RFC 9112 §6), sans-I/O. The proxy passes a
 * body through byte for byte (chunked stays chunked), so the framer does not
 * decode: it only says how many bytes of each chunk belong to the message,
 * checks the chunked framing strictly on the way, and says when the message
 * ends. What follows the end in the same chunk is the next message.
 *
 * Strictness, because the next hop reads the same bytes and must not find a
 * different end (request smuggling):
 * - chunk-size is 1*HEXDIG, at most 13 digits (below 2^53), no whitespace,
 *   no sign, no "0x";
 * - chunk extensions (`;name[=value]`) are passed on but bounded and must be
 *   visible ASCII, SP or HTAB: no bare CR, no LF, no control character;
 * - every line ends in CRLF, the chunk data is followed by exactly CRLF;
 * - trailer fields are `token ":" value` lines, no obs-fold, bounded in total.
 */
import { type ErrorCode, ProxyError } from "../errors/mod.ts";

export const enum BodyKind {
  /** No body: nothing follows the head. */
  None,
  /** Content-Length bytes. */
  Length,
  /** Transfer-Encoding: chunked. */
  Chunked,
  /** Response only: the body runs until the upstream closes (RFC 9112 §6.3 item 8). */
  UntilClose,
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const SEMI = 0x3b;
const COLON = 0x3a;

/** 13 hex digits: 2^52, below Number.MAX_SAFE_INTEGER. */
const MAX_SIZE_DIGITS = 13;
/** Extensions of one chunk line. */
const MAX_EXT_BYTES = 1024;

/** RFC 9110 §5.6.2 tchar. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[0x41 + c] = 10 + c;
  HEX[0x61 + c] = 10 + c;
}

const enum C {
  /** Reading chunk-size digits. */
  Size,
  /** In a chunk extension, until CR. */
  Ext,
  /** Saw CR after the size line; LF must follow. */
  SizeLf,
  /** Chunk data, `left` bytes to go. */
  Data,
  /** After the data: CR, then LF. */
  DataCr,
  DataLf,
  /** At the start of a trailer line (or the final CRLF). */
  TrailerStart,
  /** In a trailer field name, until ':'. */
  TrailerName,
  /** In a trailer field value, until CR. */
  TrailerValue,
  TrailerLf,
  /** The final CRLF's LF. */
  FinalLf,
  Done,
}

export class BodyFramer {
  /** Bytes of the message body passed so far (framing included for chunked). */
  bytes = 0;
  private state = C.Size;
  private left: number;
  private digits = 0;
  private size = 0;
  private ext = 0;
  private trailerBytes = 0;

  /**
   * `length`: the Content-Length for BodyKind.Length. `maxTrailerBytes`
   * bounds the trailer section. Errors are ProxyError(`code`, `source`).
   */
  constructor(
    readonly kind: BodyKind,
    length: number,
    private readonly code: ErrorCode,
    private readonly source: "downstream" | "upstream",
    private readonly maxTrailerBytes = 16_384,
  ) {
    this.left = length;
    if (kind === BodyKind.None || (kind === BodyKind.Length && length === 0)) this.state = C.Done;
  }

  get done(): boolean {
    return this.state === C.Done;
  }

  /**
   * How many leading bytes of `chunk` belong to the body (all of them for
   * UntilClose); throws on bad chunked framing. Once `done`, the rest of the
   * chunk is the next message. With `payload`, the body's content (without
   * chunk framing) is pushed there as views of `chunk`.
   */
  feed(chunk: Uint8Array, payload: Uint8Array[] | null = null): number {
    if (this.state === C.Done) return 0;
    let n: number;
    if (this.kind === BodyKind.UntilClose) n = chunk.length;
    else if (this.kind === BodyKind.Length) {
      n = Math.min(this.left, chunk.length);
      this.left -= n;
      if (this.left === 0) this.state = C.Done;
    } else n = this.chunked(chunk, payload);
    if (payload !== null && this.kind !== BodyKind.Chunked && n > 0) payload.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    this.bytes += n;
    return n;
  }

  /**
   * `payload` (HTTP/2 towards the client, which frames the body itself):
   * views of `chunk` holding the body's content, chunk framing left out.
   */
  private chunked(b: Uint8Array, payload: Uint8Array[] | null): number {
    let i = 0;
    const len = b.length;
    while (i < len) {
      const c = b[i]!;
      switch (this.state) {
        case C.Size: {
          const h = HEX[c]!;
          if (h >= 0) {
            // RFC 9112 §7.1: chunk-size = 1*HEXDIG; bounded so the value stays exact.
            if (++this.digits > MAX_SIZE_DIGITS) throw this.bad(`chunk size over ${MAX_SIZE_DIGITS} hex digits`);
            this.size = this.size * 16 + h;
          } else if (this.digits === 0) throw this.bad(`chunk size expected, got byte 0x${hex(c)}`);
          else if (c === SEMI) {
            this.state = C.Ext;
            this.ext = 0;
          } else if (c === CR) this.state = C.SizeLf;
          else throw this.bad(`byte 0x${hex(c)} after a chunk size`);
          i++;
          break;
        }
        case C.Ext:
          // RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ); passed on, never read.
          if (c === CR) this.state = C.SizeLf;
          else if ((c < SP && c !== HTAB) || c === 0x7f) throw this.bad(`byte 0x${hex(c)} in a chunk extension`);
          else if (++this.ext > MAX_EXT_BYTES) throw this.bad(`chunk extensions over ${MAX_EXT_BYTES} bytes`);
          i++;
          break;
        case C.SizeLf:
          if (c !== LF) throw this.bad("chunk size line not ended by CRLF");
          i++;
          if (this.size === 0) {
            this.state = C.TrailerStart;
          } else {
            this.left = this.size;
            this.state = C.Data;
          }
          this.size = 0;
          this.digits = 0;
          break;
        case C.Data: {
          const n = Math.min(this.left, len - i);
          if (payload !== null && n > 0) payload.push(b.subarray(i, i + n));
          this.left -= n;
          i += n;
          if (this.left === 0) this.state = C.DataCr;
          break;
        }
        case C.DataCr:
          if (c !== CR) throw this.bad("chunk data not followed by CRLF (wrong chunk size?)");
          this.state = C.DataLf;
          i++;
          break;
        case C.DataLf:
          if (c !== LF) throw this.bad("chunk data not followed by CRLF");
          this.state = C.Size;
          i++;
          break;
        case C.TrailerStart:
          if (c === CR) this.state = C.FinalLf;
          else if (c === SP || c === HTAB) throw this.bad("trailer line starts with whitespace (obs-fold is not accepted)");
          else if (TCHAR[c]) this.state = C.TrailerName;
          else throw this.bad(`byte 0x${hex(c)} at the start of a trailer field`);
          this.countTrailer();
          i++;
          break;
        case C.TrailerName:
          if (c === COLON) this.state = C.TrailerValue;
          else if (!TCHAR[c]) throw this.bad("trailer field name is not a token");
          this.countTrailer();
          i++;
          break;
        case C.TrailerValue:
          if (c === CR) this.state = C.TrailerLf;
          else if ((c < SP && c !== HTAB) || c === 0x7f) throw this.bad(`byte 0x${hex(c)} in a trailer field`);
          this.countTrailer();
          i++;
          break;
        case C.TrailerLf:
          if (c !== LF) throw this.bad("trailer line not ended by CRLF");
          this.state = C.TrailerStart;
          this.countTrailer();
          i++;
          break;
        case C.FinalLf:
          if (c !== LF) throw this.bad("chunked body not ended by CRLF");
          this.state = C.Done;
          return i + 1;
        default:
          return i;
      }
    }
    return len;
  }

  private countTrailer(): void {
    if (++this.trailerBytes > this.maxTrailerBytes) throw this.bad(`trailer section over ${this.maxTrailerBytes} bytes`);
  }

  private bad(message: string): ProxyError {
    return new ProxyError(this.code, this.source, `Bad chunked body: ${message}`);
  }
}

/**
 * The framer of every message without a body: shared, since one that is done
 * never changes (`feed` returns 0, `bytes` stays 0, nothing is thrown).
 * Allocation saved: one object per GET.
 */
export const NO_BODY: BodyFramer = new BodyFramer(BodyKind.None, 0, "HTTP_BAD_REQUEST", "downstream");

function hex(c: number): string {
  return c.toString(16).padStart(2, "0");
}

/** How a request's body is framed (the head already passed the strict codec's framing checks). */
export function requestBodyOf(fields: readonly [string, string][]): { kind: BodyKind; length: number } {
  for (const [n, v] of fields) {
    if (n === "transfer-encoding") {
      // RFC 9112 §6.3: "If a Transfer-Encoding header field is present in a request and the chunked transfer
      // coding is not the final encoding, the message body length cannot be determined reliably; the server MUST
      // respond with the 400 (Bad Request) status code and then close the connection." Other codings (gzip,
      // chunked) are legal but nobody sends them in requests: only "chunked" alone is accepted.
      if (v.toLowerCase() !== "chunked") throw new ProxyError("HTTP_BAD_REQUEST", "downstream", `Transfer-Encoding must be "chunked", got ${JSON.stringify(v.slice(0, 40))}`);
      return { kind: BodyKind.Chunked, length: 0 };
    }
  }
  for (const [n, v] of fields) {
    if (n === "content-length") {
      const length = Number(v);
      return { kind: length === 0 ? BodyKind.None : BodyKind.Length, length };
    }
  }
  // RFC 9112 §6.3 item 7: "the message body length is zero".
  return { kind: BodyKind.None, length: 0 };
}

/** How a response's body is framed (RFC 9112 §6.3), given the request method. */
export function responseBodyOf(method: string, status: number, fields: readonly [string, string][]): { kind: BodyKind; length: number } {
  // RFC 9112 §6.3 item 1: HEAD, 1xx, 204 and 304 have no body whatever their fields say.
  if (method === "HEAD" || status < 200 || status === 204 || status === 304) return { kind: BodyKind.None, length: 0 };
  for (const [n, v] of fields) {
    if (n === "transfer-encoding") {
      // Item 4: chunked as the final coding frames it; any other final coding runs until close.
      const codings = v.toLowerCase().split(",");
      return codings[codings.length - 1]!.trim() === "chunked" ? { kind: BodyKind.Chunked, length: 0 } : { kind: BodyKind.UntilClose, length: 0 };
    }
  }
  for (const [n, v] of fields) {
    if (n === "content-length") {
      const length = Number(v);
      return { kind: length === 0 ? BodyKind.None : BodyKind.Length, length };
    }
  }
  return { kind: BodyKind.UntilClose, length: 0 };
}
