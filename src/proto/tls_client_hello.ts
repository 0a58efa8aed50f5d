/**
 * Sans-I/O ClientHello reader for the SNI listener: feed it the client's first
 * bytes, get back the server name and ALPN ids, then replay every byte it was
 * given to the backend unmodified (`bufferedChunks()`).
 *
 *   const p = new ClientHelloParser({ maxHelloBytes: 16384 });
 *   p.push(chunk);          // keeps a view of chunk; never copies it
 *   const hello = p.next(); // null = need more bytes; throws TlsParseError
 *
 * Zero copy: when the first chunk holds the first record and the whole hello
 * inside it (nearly every real client), the hello is parsed straight from that
 * chunk. Only a hello split over records or chunks is assembled, into one
 * buffer of exactly the declared hello length (bounded by maxHelloBytes before
 * it is allocated).
 *
 * Bounds: a record is at most 2^14 bytes and never empty; the hello is at most
 * maxHelloBytes; every record before the hello completes carries at least one
 * hello byte, so records are at most maxHelloBytes too, and the bytes buffered
 * before an answer are at most 6 × maxHelloBytes plus the last chunk.
 *
 * Unless noted, quotes are from RFC 8446 (TLS 1.3).
 */
import { type ErrorCode, ProxyError, TlsAlert, tlsAlertFor } from "../errors/mod.ts";
import { canonicalHostnameBytes } from "./hostname.ts";

/** A ClientHello the parser rejected; its code alone says which TLS alert to send (errors/ tlsAlertFor). */
export class TlsParseError extends ProxyError {
  constructor(code: ErrorCode, message: string) {
    super(code, "downstream", message);
  }

  /** The alert description (RFC 8446 §6.2) the client is sent before the close. */
  get alert(): number {
    return tlsAlertFor(this.code) ?? TlsAlert.decode_error;
  }
}

export interface ClientHelloInfo {
  /** Canonical server_name (see hostname.ts), or null when the client sent none. */
  serverName: string | null;
  /** ALPN protocol ids in the client's order (bytes as Latin-1 code units); empty when none. */
  alpn: readonly string[];
  /** ClientHello.legacy_version, e.g. 0x0303. */
  legacyVersion: number;
  /** supported_versions in the client's order, or null when the extension is absent (TLS 1.2 and older clients). */
  supportedVersions: readonly number[] | null;
  /** TLS records the hello was carried in. */
  recordCount: number;
  /** Bytes of the handshake message, its 4-byte header included (what maxHelloBytes bounds). */
  helloLength: number;
}

export interface ClientHelloParserOptions {
  /** Largest handshake message accepted, header included. Default 16384. */
  maxHelloBytes?: number;
}

export const DEFAULT_MAX_HELLO_BYTES = 16384;

const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const MAX_RECORD = 1 << 14;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const EXT_SUPPORTED_VERSIONS = 43;
const NAME_TYPE_HOST_NAME = 0;
/** Handshake message header (msg_type u8, length u24) and record header bytes. */
const HS_HEADER = 4;
const RECORD_HEADER = 5;

/** Shared by every hello without ALPN (frozen: results are read-only). */
const EMPTY_ALPN: readonly string[] = Object.freeze([]);

function decodeError(message: string): never {
  throw new TlsParseError("TLS_DECODE", message);
}

export class ClientHelloParser {
  readonly maxHelloBytes: number;

  /** Every chunk pushed, as given (views, never copied or modified). */
  private readonly chunks: Uint8Array[] = [];
  private buffered = 0;
  private result: ClientHelloInfo | null = null;
  private failure: TlsParseError | null = null;

  // Incremental state of the general path. Its cursor is chunks[ci][co];
  // `started` is set once it has consumed a byte, after which the zero-copy
  // path no longer applies.
  private started = false;
  private ci = 0;
  private co = 0;
  private recHeaderFilled = 0;
  private recType = 0;
  private recLength = 0;
  /** Payload bytes of the current record not consumed yet; 0 = a record header comes next. */
  private recLeft = 0;
  private recordCount = 0;
  private hsHeaderFilled = 0;
  private hsLength = 0;
  /** The assembled hello body (allocated once hsLength is known and bounded). */
  private body: Uint8Array | null = null;
  private bodyFilled = 0;

  constructor(opts: ClientHelloParserOptions = {}) {
    const max = opts.maxHelloBytes ?? DEFAULT_MAX_HELLO_BYTES;
    // A handshake length is a u24: 4 + 2^24 - 1 is the largest message TLS can express.
    if (!Number.isInteger(max) || max < HS_HEADER || max > HS_HEADER + 0xffffff) {
      throw new RangeError(`maxHelloBytes must be an integer ${HS_HEADER}..${HS_HEADER + 0xffffff}, got ${max}`);
    }
    this.maxHelloBytes = max;
  }

  /** Bytes pushed so far. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Every byte pushed so far, in order and untouched, for replay to the backend.
   * The array is the parser's own: do not modify it.
   */
  bufferedChunks(): readonly Uint8Array[] {
    return this.chunks;
  }

  /** Adds bytes from the client. Keeps a reference to `chunk`: the caller must not reuse its memory. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /**
   * The parsed hello once all of it has been pushed; null while more bytes are
   * needed. Throws TlsParseError for input that is not a valid ClientHello.
   * After a result or an error, every later call returns the same result or
   * throws the same error.
   */
  next(): ClientHelloInfo | null {
    if (this.result !== null) return this.result;
    if (this.failure !== null) throw this.failure;
    try {
      if (!this.started && this.chunks.length > 0) {
        const whole = this.tryWholeInFirstChunk();
        if (whole !== null) return whole;
      }
      return this.advance();
    } catch (err) {
      if (err instanceof TlsParseError) this.failure = err;
      throw err;
    }
  }

  /**
   * The common case, zero copy: one record at the start of the first chunk
   * holds the whole ClientHello. Anything unusual (including every error) is
   * left to the general path, which reports it precisely.
   */
  private tryWholeInFirstChunk(): ClientHelloInfo | null {
    const c = this.chunks[0]!;
    if (c.length < RECORD_HEADER + HS_HEADER) return null;
    if (c[0] !== CONTENT_HANDSHAKE || c[1] !== 3 || c[5] !== HANDSHAKE_CLIENT_HELLO) return null;
    const recLength = (c[3]! << 8) | c[4]!;
    const hsLength = (c[6]! << 16) | (c[7]! << 8) | c[8]!;
    const messageEnd = RECORD_HEADER + HS_HEADER + hsLength;
    if (recLength > MAX_RECORD || HS_HEADER + hsLength > recLength) return null;
    if (HS_HEADER + hsLength > this.maxHelloBytes || c.length < messageEnd) return null;
    this.recordCount = 1;
    this.result = parseClientHelloBody(c, RECORD_HEADER + HS_HEADER, messageEnd, 1);
    return this.result;
  }

  /** The general path: walks records across chunks, assembling the hello. */
  private advance(): ClientHelloInfo | null {
    this.started = true;
    const chunks = this.chunks;
    while (this.ci < chunks.length) {
      const c = chunks[this.ci]!;
      let co = this.co;
      while (co < c.length) {
        if (this.recLeft === 0) {
          if (this.recHeaderFilled === 0 && c.length - co >= RECORD_HEADER && c[co] === CONTENT_HANDSHAKE && c[co + 1] === 3) {
            // Whole header of a handshake record in this chunk: the usual case.
            this.recordLength((c[co + 3]! << 8) | c[co + 4]!);
            co += RECORD_HEADER;
          } else {
            this.recordHeaderByte(c[co++]!);
          }
          continue;
        }
        if (this.hsHeaderFilled < HS_HEADER) {
          this.recLeft--;
          this.handshakeHeaderByte(c[co++]!);
          if (this.body === null) continue;
        } else {
          // Copy: this hello spans records or chunks. Bounded by hsLength, itself
          // bounded by maxHelloBytes before `body` was allocated. Short runs are
          // copied by hand: subarray + set costs more than the loop below ~100 bytes.
          const body = this.body!;
          const n = Math.min(this.recLeft, c.length - co, body.length - this.bodyFilled);
          const at = this.bodyFilled;
          if (n < 128) for (let i = 0; i < n; i++) body[at + i] = c[co + i]!;
          else body.set(c.subarray(co, co + n), at);
          this.bodyFilled += n;
          this.recLeft -= n;
          co += n;
        }
        if (this.bodyFilled === this.body!.length) {
          this.co = co;
          this.result = parseClientHelloBody(this.body!, 0, this.body!.length, this.recordCount);
          return this.result;
        }
      }
      this.ci++;
      this.co = 0;
    }
    return null;
  }

  private recordHeaderByte(b: number): void {
    switch (this.recHeaderFilled++) {
      case 0:
        this.recType = b;
        if (b === CONTENT_HANDSHAKE) return;
        // An SSL 2.0 record header has the high bit set in its first byte; no
        // TLS ContentType does. Wait for its msg_type (third byte) to tell.
        if (this.recordCount === 0 && (b & 0x80) !== 0) return;
        // §5: "If a TLS implementation receives an unexpected record type, it
        // MUST terminate the connection with an "unexpected_message" alert."
        // §5.1: "Handshake messages MUST NOT be interleaved with other record types."
        throw new TlsParseError("TLS_NOT_HANDSHAKE", this.recordCount === 0
            ? `first byte 0x${hex2(b)} is not a TLS handshake record (content type 22): not a TLS client`
            : `record ${this.recordCount + 1} has content type ${b} inside the ClientHello; only handshake records (22) may carry it`,
        );
      case 1:
        // Every TLS version's record layer says major version 3 (0x0300..0x0304).
        // §5.1 says legacy_record_version "MUST be ignored for all purposes", so
        // the minor byte is not checked; a major byte other than 3 is not TLS.
        if (this.recType === CONTENT_HANDSHAKE && b !== 3) {
          throw new TlsParseError("TLS_UNSUPPORTED", `record version 0x${hex2(b)}xx is not TLS (0x03xx)`);
        }
        return;
      case 2:
        if (this.recType !== CONTENT_HANDSHAKE) {
          // SSL 2.0 (RFC 6101 appendix E.2): [len_hi|0x80, len_lo, msg_type = 1 CLIENT-HELLO, ...].
          if (b === 1) {
            throw new TlsParseError("TLS_UNSUPPORTED", "SSL 2.0 compatible ClientHello; SNI needs a TLS ClientHello");
          }
          throw new TlsParseError("TLS_NOT_HANDSHAKE", `first byte 0x${hex2(this.recType)} is not a TLS handshake record: not a TLS client`);
        }
        return;
      case 3:
        this.recLength = b << 8;
        return;
      default:
        this.recHeaderFilled = 0;
        this.recordLength(this.recLength | b);
    }
  }

  /** The length field of a handshake record header completes the header. */
  private recordLength(length: number): void {
    // §5.1: "Implementations MUST NOT send zero-length fragments of Handshake types".
    if (length === 0) decodeError(`record ${this.recordCount + 1} is an empty handshake fragment`);
    // §5.1: "The length MUST NOT exceed 2^14 bytes. An endpoint that receives
    // a record that exceeds this length MUST terminate the connection with a
    // "record_overflow" alert."
    if (length > MAX_RECORD) {
      throw new TlsParseError("TLS_HELLO_TOO_LARGE", `record ${this.recordCount + 1} is ${length} bytes, over the 2^14 limit`);
    }
    this.recLeft = length;
    this.recordCount++;
  }

  private handshakeHeaderByte(b: number): void {
    switch (this.hsHeaderFilled++) {
      case 0:
        // §4.1.2: "When a client first connects to a server, it is REQUIRED to
        // send the ClientHello as its first TLS message."
        if (b !== HANDSHAKE_CLIENT_HELLO) {
          throw new TlsParseError("TLS_NOT_HANDSHAKE", `first handshake message has type ${b}, not ClientHello (1)`);
        }
        return;
      case 1:
        this.hsLength = b << 16;
        return;
      case 2:
        this.hsLength |= b << 8;
        return;
      default: {
        this.hsLength |= b;
        // Bound before allocating: the declared length alone decides.
        if (HS_HEADER + this.hsLength > this.maxHelloBytes) {
          throw new TlsParseError("TLS_HELLO_TOO_LARGE", `ClientHello of ${HS_HEADER + this.hsLength} bytes is over the ${this.maxHelloBytes}-byte limit (max_client_hello)`,
          );
        }
        this.body = new Uint8Array(this.hsLength);
      }
    }
  }
}

/**
 * One-shot parse of bytes that start with the client's first record (tests,
 * benchmarks). Null when `bytes` ends before the hello does.
 */
export function parseClientHello(bytes: Uint8Array, opts?: ClientHelloParserOptions): ClientHelloInfo | null {
  const p = new ClientHelloParser(opts);
  p.push(bytes);
  return p.next();
}

const u16 = (b: Uint8Array, i: number): number => (b[i]! << 8) | b[i + 1]!;

/**
 * Parses the ClientHello body `b[start..end)` (after the 4-byte handshake
 * header). Every length is checked against what encloses it before it is used.
 */
function parseClientHelloBody(b: Uint8Array, start: number, end: number, recordCount: number): ClientHelloInfo {
  // §4.1.2:
  //   ProtocolVersion legacy_version = 0x0303;    /* TLS v1.2 */
  //   Random random;                               /* 32 bytes */
  //   opaque legacy_session_id<0..32>;
  //   CipherSuite cipher_suites<2..2^16-2>;
  //   opaque legacy_compression_methods<1..2^8-1>;
  //   Extension extensions<8..2^16-1>;
  let p = start;
  if (end - p < 2 + 32 + 1) decodeError("ClientHello ends inside its fixed fields");
  const legacyVersion = u16(b, p);
  // Every SSL 3.0 / TLS version is 0x03xx; a hello with another major version
  // is not one we (or the backend) can speak.
  if (b[p] !== 3) {
    throw new TlsParseError("TLS_UNSUPPORTED", `ClientHello version 0x${legacyVersion.toString(16).padStart(4, "0")} is not TLS`);
  }
  p += 2 + 32;
  const sessionIdLength = b[p++]!;
  if (sessionIdLength > 32 || sessionIdLength > end - p) decodeError("legacy_session_id is longer than 32 bytes or than the hello");
  p += sessionIdLength;

  if (end - p < 2) decodeError("ClientHello ends before cipher_suites");
  const suitesLength = u16(b, p);
  p += 2;
  if (suitesLength < 2 || (suitesLength & 1) !== 0 || suitesLength > end - p) decodeError("cipher_suites length is invalid");
  p += suitesLength;

  if (end - p < 1) decodeError("ClientHello ends before legacy_compression_methods");
  const compressionLength = b[p++]!;
  if (compressionLength < 1 || compressionLength > end - p) decodeError("legacy_compression_methods length is invalid");
  p += compressionLength;

  let nameStart = -1;
  let nameEnd = -1;
  let alpn: readonly string[] = EMPTY_ALPN;
  let supportedVersions: readonly number[] | null = null;

  // "TLS 1.3 servers might receive ClientHello messages without an extensions
  // field from prior versions of TLS. [...] a server MUST check that the message
  // either contains no data after legacy_compression_methods or that it contains
  // a valid extensions block with no data following. If not, then it MUST abort
  // the handshake with a "decode_error" alert."
  if (p < end) {
    if (end - p < 2) decodeError("ClientHello has one stray byte after legacy_compression_methods");
    const extensionsLength = u16(b, p);
    p += 2;
    if (extensionsLength !== end - p) decodeError("extensions length does not match the end of the ClientHello");
    // §4.2: "There MUST NOT be more than one extension of the same type in a
    // given extension block." Checked for the ones we act on (a second
    // server_name could route us and the backend to different names); the
    // backend enforces the rest.
    let seenServerName = false;
    let seenAlpn = false;
    while (p < end) {
      if (end - p < 4) decodeError("extension header runs past the end of the ClientHello");
      const type = u16(b, p);
      const length = u16(b, p + 2);
      p += 4;
      if (length > end - p) decodeError(`extension ${type} runs past the end of the ClientHello`);
      const extEnd = p + length;
      if (type === EXT_SERVER_NAME) {
        if (seenServerName) decodeError("two server_name extensions");
        seenServerName = true;
        // RFC 6066 §3:
        //   struct { NameType name_type; select (name_type) { case host_name: HostName; } name; } ServerName;
        //   opaque HostName<1..2^16-1>;
        //   struct { ServerName server_name_list<1..2^16-1> } ServerNameList;
        if (length < 2) decodeError("server_name extension is too short for its list length");
        const listLength = u16(b, p);
        if (listLength === 0 || listLength !== length - 2) decodeError("server_name list length does not match the extension");
        let q = p + 2;
        while (q < extEnd) {
          if (extEnd - q < 3) decodeError("server_name entry header runs past the list");
          const nameType = b[q]!;
          const nameLength = u16(b, q + 1);
          q += 3;
          if (nameLength > extEnd - q) decodeError("server_name entry runs past the list");
          if (nameType === NAME_TYPE_HOST_NAME) {
            // RFC 6066 §3: "The ServerNameList MUST NOT contain more than one name of the same name_type."
            if (nameStart >= 0) decodeError("server_name list holds two host_name entries");
            if (nameLength === 0) decodeError("server_name host_name is empty");
            nameStart = q;
            nameEnd = q + nameLength;
          }
          // Other name types are skipped. RFC 6066 §3: "all future data structures
          // associated with new NameTypes MUST begin with a 16-bit length field."
          q += nameLength;
        }
      } else if (type === EXT_ALPN) {
        if (seenAlpn) decodeError("two application_layer_protocol_negotiation extensions");
        seenAlpn = true;
        alpn = parseAlpn(b, p, extEnd);
      } else if (type === EXT_SUPPORTED_VERSIONS) {
        if (supportedVersions !== null) decodeError("two supported_versions extensions");
        supportedVersions = parseSupportedVersions(b, p, extEnd);
      }
      p = extEnd;
    }
  }

  let serverName: string | null = null;
  if (nameStart >= 0) {
    serverName = canonicalHostnameBytes(b, nameStart, nameEnd);
    // The hello is well formed but names something that cannot be a hostname
    // (an IP literal, a character outside [A-Za-z0-9._-], an empty label, over
    // 253 bytes). No route can ever match it, so we answer as RFC 6066 §3 says
    // for a name the server "does not recognize": "abort the handshake by
    // sending a fatal-level unrecognized_name(112) alert". decode_error stays
    // for broken structure. Code TLS_BAD_SERVER_NAME keeps these visible in
    // stats apart from valid names that merely have no route (NO_ROUTE).
    if (serverName === null) {
      throw new TlsParseError("TLS_BAD_SERVER_NAME", `server_name ${printable(b, nameStart, nameEnd)} is not a valid DNS hostname`);
    }
  }

  return {
    serverName,
    alpn,
    legacyVersion,
    supportedVersions,
    recordCount,
    helloLength: HS_HEADER + (end - start),
  };
}

/**
 * RFC 7301 §3.1:
 *   opaque ProtocolName<1..2^8-1>;
 *   struct { ProtocolName protocol_name_list<2..2^16-1> } ProtocolNameList;
 * "Empty strings MUST NOT be included and byte strings MUST NOT be truncated."
 */
function parseAlpn(b: Uint8Array, p: number, end: number): string[] {
  if (end - p < 2) decodeError("ALPN extension is too short for its list length");
  const listLength = u16(b, p);
  if (listLength < 2 || listLength !== end - p - 2) decodeError("ALPN list length does not match the extension");
  p += 2;
  // Allocation: one array and (except for h2 and http/1.1) one string per id.
  const ids: string[] = [];
  while (p < end) {
    const n = b[p++]!;
    if (n === 0) decodeError("ALPN list holds an empty protocol name");
    if (n > end - p) decodeError("ALPN protocol name runs past the list");
    ids.push(alpnId(b, p, p + n));
    p += n;
  }
  return ids;
}

/** ALPN ids are opaque bytes; each byte becomes one Latin-1 code unit, so any id round-trips. */
function alpnId(b: Uint8Array, start: number, end: number): string {
  const n = end - start;
  if (n === 2 && b[start] === 0x68 && b[start + 1] === 0x32) return "h2";
  if (n === 8 && bytesEqual(b, start, HTTP_1_1)) return "http/1.1";
  return latin1(b, start, end);
}

const HTTP_1_1 = new Uint8Array([0x68, 0x74, 0x74, 0x70, 0x2f, 0x31, 0x2e, 0x31]); // "http/1.1"

function bytesEqual(b: Uint8Array, start: number, expected: Uint8Array): boolean {
  for (let i = 0; i < expected.length; i++) if (b[start + i] !== expected[i]) return false;
  return true;
}

function latin1(b: Uint8Array, start: number, end: number): string {
  return String.fromCharCode.apply(null, b.subarray(start, end) as unknown as number[]);
}

/**
 * §4.2.1: struct { select (Handshake.msg_type) { case client_hello:
 * ProtocolVersion versions<2..254>; ... }; } SupportedVersions;
 */
function parseSupportedVersions(b: Uint8Array, p: number, end: number): number[] {
  if (end - p < 1) decodeError("supported_versions extension is empty");
  const n = b[p++]!;
  if (n < 2 || (n & 1) !== 0 || n !== end - p) decodeError("supported_versions length does not match the extension");
  const versions: number[] = [];
  for (; p < end; p += 2) versions.push(u16(b, p));
  return versions;
}

function hex2(b: number): string {
  return b.toString(16).padStart(2, "0");
}

/** A short, log-safe rendering of untrusted name bytes for error messages. */
function printable(b: Uint8Array, start: number, end: number): string {
  let s = "";
  const stop = Math.min(end, start + 80);
  for (let i = start; i < stop; i++) {
    const c = b[i]!;
    s += c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c ? String.fromCharCode(c) : `\\x${hex2(c)}`;
  }
  return `"${s}${end > stop ? "..." : ""}" (${end - start} bytes)`;
}
