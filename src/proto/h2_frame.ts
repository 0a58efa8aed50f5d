/**
 * HTTP/2 framing (RFC 9113 §4 and §6), sans-I/O: a push decoder and the
 * encoders a CONNECT proxy needs. One frame layout:
 *
 *   length u24 | type u8 | flags u8 | R(1) stream id u31 | payload
 *
 * DATA payloads stream through without reassembly: a DATA frame arrives as
 * one or more pieces, each a view into the chunk it came in (zero copy), so
 * a large frame split across TLS records costs no copy and no buffering.
 * Every other frame is handed out whole (copied only when it spans chunks),
 * bounded by the SETTINGS_MAX_FRAME_SIZE we advertised.
 *
 * Malformed input throws H2Error (ProxyError "H2_PROTOCOL" with the RFC 9113
 * §7 error code): a connection error, answered with GOAWAY. After one the
 * decoder stays dead.
 */
import { ProxyError } from "../errors/mod.ts";

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** RFC 9113 §7. */
export const H2Code = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

/** RFC 9113 §6.5.2. */
export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export const FRAME_HEADER_SIZE = 9;
/** RFC 9113 §6.5.2: SETTINGS_MAX_FRAME_SIZE initial value 2^14, bounds 2^14 .. 2^24-1. */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const MAX_ALLOWED_FRAME_SIZE = 16_777_215;
/** RFC 9113 §6.9.1: "The initial value ... is 65,535 octets"; windows never exceed 2^31-1. */
export const DEFAULT_WINDOW = 65_535;
export const MAX_WINDOW = 2 ** 31 - 1;
/** RFC 9113 §3.4: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n". */
export const CLIENT_PREFACE = Uint8Array.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", (c) => c.charCodeAt(0));

export class H2Error extends ProxyError {
  constructor(readonly h2Code: number, message: string, source: "downstream" | "upstream" = "downstream") {
    super("H2_PROTOCOL", source, message);
  }
}

export interface H2Frame {
  type: number;
  flags: number;
  streamId: number;
  /**
   * The payload (whole frame) or, for DATA, this piece's data with padding
   * removed. A view into a pushed chunk or the decoder's reassembly buffer:
   * use it before the next push.
   */
  payload: Uint8Array;
  /** DATA only: octets of this piece that count against flow control (data, pad length byte, padding). */
  flowBytes: number;
  /** DATA only: the last piece of the frame (END_STREAM, when set, applies now). */
  last: boolean;
}

export interface H2FrameDecoderOptions {
  /** The SETTINGS_MAX_FRAME_SIZE we advertised. */
  maxFrameSize: number;
  /** Server side: the client connection preface comes first. */
  expectPreface: boolean;
}

const EMPTY: Uint8Array = new Uint8Array(0);

export class H2FrameDecoder {
  private chunks: Uint8Array[] = [];
  /** Offset into chunks[0]. */
  private off = 0;
  private buffered = 0;
  private prefaceLeft: number;
  private readonly maxFrameSize: number;
  private error: H2Error | null = null;
  /** Current DATA frame being streamed (-1 when between frames). */
  private dataLeft = -1;
  private dataPadLeft = 0;
  private dataStream = 0;
  private dataFlags = 0;
  private dataNeedPadLength = false;
  private readonly header = new Uint8Array(FRAME_HEADER_SIZE);

  constructor(opts: H2FrameDecoderOptions) {
    this.maxFrameSize = opts.maxFrameSize;
    this.prefaceLeft = opts.expectPreface ? CLIENT_PREFACE.length : 0;
  }

  /** Keeps a view of `chunk`: the caller must not reuse it. */
  push(chunk: Uint8Array): void {
    if (this.error !== null || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  next(): H2Frame | null {
    if (this.error !== null) throw this.error;
    try {
      return this.step();
    } catch (err) {
      this.error = err instanceof H2Error ? err : new H2Error(H2Code.PROTOCOL_ERROR, String(err));
      this.chunks = [];
      this.buffered = 0;
      throw this.error;
    }
  }

  private step(): H2Frame | null {
    if (this.prefaceLeft > 0) {
      while (this.prefaceLeft > 0 && this.buffered > 0) {
        const c = this.chunks[0]!;
        const want = CLIENT_PREFACE[CLIENT_PREFACE.length - this.prefaceLeft]!;
        if (c[this.off] !== want) throw new H2Error(H2Code.PROTOCOL_ERROR, "Not an HTTP/2 client preface");
        this.prefaceLeft--;
        this.skip(1);
      }
      if (this.prefaceLeft > 0) return null;
    }
    if (this.dataLeft >= 0) return this.dataPiece();
    if (this.buffered < FRAME_HEADER_SIZE) return null;
    const h = this.peek(FRAME_HEADER_SIZE);
    const length = (h[0]! << 16) | (h[1]! << 8) | h[2]!;
    const type = h[3]!;
    const flags = h[4]!;
    // §4.1: "R: A reserved 1-bit field ... MUST be ignored when receiving".
    const streamId = ((h[5]! & 0x7f) * 2 ** 24) + ((h[6]! << 16) | (h[7]! << 8) | h[8]!);
    // §4.2: "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame exceeds the size defined in SETTINGS_MAX_FRAME_SIZE".
    if (length > this.maxFrameSize) throw new H2Error(H2Code.FRAME_SIZE_ERROR, `Frame of ${length} bytes over our SETTINGS_MAX_FRAME_SIZE ${this.maxFrameSize}`);
    if (type === FrameType.DATA) {
      // §6.1: "If a DATA frame is received whose Stream Identifier field is 0x00, the recipient MUST respond with a connection error".
      if (streamId === 0) throw new H2Error(H2Code.PROTOCOL_ERROR, "DATA on stream 0");
      this.skip(FRAME_HEADER_SIZE);
      this.dataLeft = length;
      this.dataPadLeft = 0;
      this.dataStream = streamId;
      this.dataFlags = flags;
      this.dataNeedPadLength = (flags & Flag.PADDED) !== 0;
      return this.dataPiece();
    }
    if (this.buffered < FRAME_HEADER_SIZE + length) return null;
    this.skip(FRAME_HEADER_SIZE);
    const payload = length === 0 ? EMPTY : this.take(length);
    return { type, flags, streamId, payload, flowBytes: 0, last: true };
  }

  /** The next piece of the current DATA frame, or null when no bytes of it are buffered. */
  private dataPiece(): H2Frame | null {
    let flow = 0;
    if (this.dataNeedPadLength) {
      if (this.dataLeft === 0) throw new H2Error(H2Code.FRAME_SIZE_ERROR, "PADDED DATA frame without a pad length");
      if (this.buffered === 0) return null;
      const pad = this.chunks[0]![this.off]!;
      this.skip(1);
      this.dataLeft--;
      // §6.1: "If the length of the padding is the length of the frame payload or greater, the recipient MUST treat this as a connection error".
      if (pad > this.dataLeft) throw new H2Error(H2Code.PROTOCOL_ERROR, "DATA padding longer than the frame");
      this.dataNeedPadLength = false;
      this.dataPadLeft = pad;
      this.dataLeft -= pad;
      flow = 1;
    }
    const dataBytes = this.dataLeft;
    let payload = EMPTY;
    if (dataBytes > 0) {
      if (this.buffered === 0) {
        if (flow === 0) return null;
        return this.piece(EMPTY, flow, false);
      }
      const c = this.chunks[0]!;
      const n = Math.min(dataBytes, c.length - this.off);
      payload = c.subarray(this.off, this.off + n);
      this.skip(n);
      this.dataLeft -= n;
      flow += n;
      if (this.dataLeft > 0) return this.piece(payload, flow, false);
    }
    // Data done; padding may still be arriving.
    while (this.dataPadLeft > 0 && this.buffered > 0) {
      const n = Math.min(this.dataPadLeft, this.chunks[0]!.length - this.off);
      this.skip(n);
      this.dataPadLeft -= n;
      flow += n;
    }
    if (this.dataPadLeft > 0) {
      if (flow === 0) return null;
      return this.piece(payload, flow, false);
    }
    this.dataLeft = -1;
    return this.piece(payload, flow, true);
  }

  private piece(payload: Uint8Array, flowBytes: number, last: boolean): H2Frame {
    return { type: FrameType.DATA, flags: last ? this.dataFlags : this.dataFlags & ~Flag.END_STREAM, streamId: this.dataStream, payload, flowBytes, last };
  }

  /** The next n buffered bytes without consuming them (copied into `header` when split). */
  private peek(n: number): Uint8Array {
    const c = this.chunks[0]!;
    if (c.length - this.off >= n) return c.subarray(this.off, this.off + n);
    let k = 0;
    let ci = 0;
    let o = this.off;
    while (k < n) {
      const cur = this.chunks[ci]!;
      while (o < cur.length && k < n) this.header[k++] = cur[o++]!;
      ci++;
      o = 0;
    }
    return this.header;
  }

  /** Consumes n bytes as one view (a copy only when they span chunks). */
  private take(n: number): Uint8Array {
    const c = this.chunks[0]!;
    if (c.length - this.off >= n) {
      const v = c.subarray(this.off, this.off + n);
      this.skip(n);
      return v;
    }
    // Allocation: a frame split across chunks is reassembled (bounded by maxFrameSize).
    const out = new Uint8Array(n);
    let k = 0;
    while (k < n) {
      const cur = this.chunks[0]!;
      const m = Math.min(n - k, cur.length - this.off);
      out.set(cur.subarray(this.off, this.off + m), k);
      k += m;
      this.skip(m);
    }
    return out;
  }

  private skip(n: number): void {
    this.buffered -= n;
    while (n > 0) {
      const c = this.chunks[0]!;
      const avail = c.length - this.off;
      if (n < avail) {
        this.off += n;
        return;
      }
      n -= avail;
      this.chunks.shift();
      this.off = 0;
    }
    if (this.chunks.length > 0 && this.off === this.chunks[0]!.length) {
      this.chunks.shift();
      this.off = 0;
    }
  }
}

// ---- encoders --------------------------------------------------------------------

export function writeFrameHeader(out: Uint8Array, off: number, length: number, type: number, flags: number, streamId: number): void {
  out[off] = (length >>> 16) & 0xff;
  out[off + 1] = (length >>> 8) & 0xff;
  out[off + 2] = length & 0xff;
  out[off + 3] = type;
  out[off + 4] = flags;
  out[off + 5] = (streamId >>> 24) & 0x7f;
  out[off + 6] = (streamId >>> 16) & 0xff;
  out[off + 7] = (streamId >>> 8) & 0xff;
  out[off + 8] = streamId & 0xff;
}

function frame(type: number, flags: number, streamId: number, payload: Uint8Array | number[]): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_SIZE + payload.length);
  writeFrameHeader(out, 0, payload.length, type, flags, streamId);
  out.set(payload, FRAME_HEADER_SIZE);
  return out;
}

const u32 = (v: number) => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];

export function encodeSettings(settings: readonly (readonly [number, number])[]): Uint8Array {
  const p: number[] = [];
  for (const [id, v] of settings) p.push((id >>> 8) & 0xff, id & 0xff, ...u32(v));
  return frame(FrameType.SETTINGS, 0, 0, p);
}

export function encodeSettingsAck(): Uint8Array {
  return frame(FrameType.SETTINGS, Flag.ACK, 0, []);
}

export function encodeWindowUpdate(streamId: number, increment: number): Uint8Array {
  return frame(FrameType.WINDOW_UPDATE, 0, streamId, u32(increment & 0x7fffffff));
}

export function encodeRstStream(streamId: number, code: number): Uint8Array {
  return frame(FrameType.RST_STREAM, 0, streamId, u32(code));
}

export function encodeGoaway(lastStreamId: number, code: number, debug = ""): Uint8Array {
  const d = Array.from(debug.slice(0, 256), (c) => c.charCodeAt(0) & 0x7f);
  return frame(FrameType.GOAWAY, 0, 0, [...u32(lastStreamId & 0x7fffffff), ...u32(code), ...d]);
}

export function encodePing(data: Uint8Array, ack: boolean): Uint8Array {
  return frame(FrameType.PING, ack ? Flag.ACK : 0, 0, data);
}

/** A header block as HEADERS plus CONTINUATION frames of at most `maxFrameSize`. */
export function encodeHeadersFrames(streamId: number, block: Uint8Array, endStream: boolean, maxFrameSize: number): Uint8Array {
  const frames = Math.max(1, Math.ceil(block.length / maxFrameSize));
  const out = new Uint8Array(block.length + frames * FRAME_HEADER_SIZE);
  let o = 0;
  for (let k = 0; k < frames; k++) {
    const part = block.subarray(k * maxFrameSize, Math.min(block.length, (k + 1) * maxFrameSize));
    const type = k === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
    let flags = k === frames - 1 ? Flag.END_HEADERS : 0;
    if (k === 0 && endStream) flags |= Flag.END_STREAM;
    writeFrameHeader(out, o, part.length, type, flags, streamId);
    out.set(part, o + FRAME_HEADER_SIZE);
    o += FRAME_HEADER_SIZE + part.length;
  }
  return out;
}

/**
 * `data` as DATA frames of at most `maxFrameSize`, in one buffer (one write,
 * one TLS record run). Allocation: one copy of the payload per write; a
 * separate 9-byte header write per frame would cost a TLS record each.
 */
export function encodeData(streamId: number, data: Uint8Array, endStream: boolean, maxFrameSize: number): Uint8Array {
  const frames = Math.max(1, Math.ceil(data.length / maxFrameSize));
  const out = new Uint8Array(data.length + frames * FRAME_HEADER_SIZE);
  let o = 0;
  for (let k = 0; k < frames; k++) {
    const start = k * maxFrameSize;
    const end = Math.min(data.length, start + maxFrameSize);
    writeFrameHeader(out, o, end - start, FrameType.DATA, endStream && k === frames - 1 ? Flag.END_STREAM : 0, streamId);
    out.set(data.subarray(start, end), o + FRAME_HEADER_SIZE);
    o += FRAME_HEADER_SIZE + end - start;
  }
  return out;
}

/** Reads a u32 from a payload (SETTINGS values, WINDOW_UPDATE, RST_STREAM, GOAWAY). */
export function readU32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}
