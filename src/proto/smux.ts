/**
 * xtaci/smux wire format, versions 1 and 2 (DESIGN.md "Multiplexer"), sans-I/O.
 *
 *   version u8 | cmd u8 | length u16 LE | stream id u32 LE | payload[length]
 *
 * Encoders write into caller-owned buffers. `SmuxFrameDecoder` is push-based:
 * `push(chunk)`, then `next()` until it returns null. Payloads are views of the
 * pushed chunk; a frame whose bytes span two or more chunks is copied once into
 * a fresh buffer (the only copy on the receive path).
 *
 * Tolerance decisions, checked against Go smux 1.5.16 (session.go recvLoop):
 * - Go reads any length up to 65535 on receive, whatever its own MaxFrameSize;
 *   so do we (the u16 field bounds the memory one frame can hold to 64 KiB).
 * - Go never reads a payload after SYN, FIN or NOP: a length there would make
 *   Go parse the payload as the next header. We reject it as a protocol error
 *   rather than guess which of the two readings the peer meant.
 * - Go reads exactly 8 bytes after UPD whatever the length says; we require the
 *   length to be 8. Go accepts UPD in a version 1 session (and ignores the
 *   window it carries); so does this decoder, and the session ignores it.
 * - Wrong version or unknown command: Go ends the session (ErrInvalidProtocol).
 * After a protocol error the decoder is dead: `next()` throws the same error
 * again and `push()` drops its input, because a byte stream cannot resync.
 */
import { ProxyError } from "../errors/mod.ts";

export const SMUX_HEADER_SIZE = 8;

/** Stream commands. UPD exists only in version 2. */
export const SmuxCmd = {
  SYN: 0, // stream open
  FIN: 1, // no more data from me (half-close)
  PSH: 2, // data
  NOP: 3, // keepalive, stream id 0
  UPD: 4, // v2: bytes consumed and window
} as const;
export type SmuxCmdValue = (typeof SmuxCmd)[keyof typeof SmuxCmd];

/** Payload of UPD: `consumed u32 LE | window u32 LE`. */
export const SMUX_UPD_SIZE = 8;
/** What a v2 sender assumes the peer's window is before its first UPD (Go's initialPeerWindow). */
export const SMUX_INITIAL_PEER_WINDOW = 262144;
/** The length field is a u16. */
export const SMUX_MAX_FRAME_LENGTH = 65535;

/** Writes the 8-byte header at `offset`; returns the offset after it. */
export function encodeSmuxHeader(
  out: Uint8Array,
  offset: number,
  version: number,
  cmd: number,
  length: number,
  streamId: number,
): number {
  out[offset] = version;
  out[offset + 1] = cmd;
  out[offset + 2] = length & 0xff;
  out[offset + 3] = (length >>> 8) & 0xff;
  out[offset + 4] = streamId & 0xff;
  out[offset + 5] = (streamId >>> 8) & 0xff;
  out[offset + 6] = (streamId >>> 16) & 0xff;
  out[offset + 7] = (streamId >>> 24) & 0xff;
  return offset + SMUX_HEADER_SIZE;
}

/** Writes a whole UPD frame (16 bytes) at `offset`; returns the offset after it. */
export function encodeSmuxUpd(
  out: Uint8Array,
  offset: number,
  version: number,
  streamId: number,
  consumed: number,
  window: number,
): number {
  let o = encodeSmuxHeader(out, offset, version, SmuxCmd.UPD, SMUX_UPD_SIZE, streamId);
  o = writeU32(out, o, consumed);
  return writeU32(out, o, window);
}

function writeU32(out: Uint8Array, o: number, v: number): number {
  out[o] = v & 0xff;
  out[o + 1] = (v >>> 8) & 0xff;
  out[o + 2] = (v >>> 16) & 0xff;
  out[o + 3] = (v >>> 24) & 0xff;
  return o + 4;
}

/** Reads a little-endian u32 (as a non-negative number). */
export function readU32LE(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

/**
 * One decoded frame. The decoder reuses a single object: its fields are
 * overwritten by the next `next()` call, so copy what you keep. `payload` is a
 * view of the pushed chunk (or of a fresh buffer when the frame spanned chunks);
 * the view itself stays valid as long as the caller keeps it.
 */
export interface SmuxFrame {
  cmd: SmuxCmdValue;
  streamId: number;
  payload: Uint8Array;
}

const EMPTY = new Uint8Array(0);
/** A header split across chunks is gathered here and parsed at once (synchronous), so decoders share it. */
const hdrScratch = new Uint8Array(SMUX_HEADER_SIZE);

export class SmuxFrameDecoder {
  /** Pushed chunks not yet consumed; the first is read from `pos`. */
  private chunks: Uint8Array[] = [];
  private pos = 0;
  private available = 0;
  /** Header of the frame in progress, once all 8 bytes were seen (length >= 0). */
  private hdrCmd = 0;
  private hdrLength = -1;
  private hdrStreamId = 0;
  private dead: ProxyError | null = null;
  private readonly frame: SmuxFrame = { cmd: SmuxCmd.NOP, streamId: 0, payload: EMPTY };

  constructor(readonly version: 1 | 2) {}

  /** Bytes pushed and not yet returned as frames. */
  get bufferedBytes(): number {
    return this.available;
  }

  /** The protocol error that killed this decoder, if any. */
  get error(): ProxyError | null {
    return this.dead;
  }

  push(chunk: Uint8Array): void {
    if (this.dead !== null || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.available += chunk.length;
  }

  /** The next whole frame, or null when more bytes are needed. Throws ProxyError("MUX_PROTOCOL"). */
  next(): SmuxFrame | null {
    if (this.dead !== null) throw this.dead;
    if (this.hdrLength < 0) {
      if (this.available < SMUX_HEADER_SIZE) return null;
      this.readHeader();
    }
    const length = this.hdrLength;
    if (this.available < length) return null;
    const f = this.frame;
    f.cmd = this.hdrCmd as SmuxCmdValue;
    f.streamId = this.hdrStreamId;
    f.payload = length === 0 ? EMPTY : this.take(length);
    this.hdrLength = -1;
    return f;
  }

  private readHeader(): void {
    const head = this.chunks[0]!;
    let h: Uint8Array;
    let o: number;
    if (head.length - this.pos >= SMUX_HEADER_SIZE) {
      h = head;
      o = this.pos;
      this.consume(SMUX_HEADER_SIZE);
    } else {
      h = hdrScratch;
      o = 0;
      this.copyOut(h, SMUX_HEADER_SIZE);
    }
    const version = h[o]!;
    const cmd = h[o + 1]!;
    const length = h[o + 2]! | (h[o + 3]! << 8);
    const streamId = readU32LE(h, o + 4);
    // DESIGN.md: "unknown command or wrong version is a protocol error that ends the session".
    if (version !== this.version) {
      this.fail(`frame version ${version} on a version ${this.version} session`);
    }
    if (cmd > SmuxCmd.UPD) this.fail(`unknown command ${cmd} on stream ${streamId}`);
    // DESIGN.md: "no payload ever on SYN, FIN or NOP".
    if (length !== 0 && (cmd === SmuxCmd.SYN || cmd === SmuxCmd.FIN || cmd === SmuxCmd.NOP)) {
      this.fail(`${cmdName(cmd)} on stream ${streamId} carries ${length} payload bytes; it must carry none`);
    }
    // DESIGN.md: "UPD ... payload exactly 8 bytes: consumed u32 LE | window u32 LE".
    if (cmd === SmuxCmd.UPD && length !== SMUX_UPD_SIZE) {
      this.fail(`UPD on stream ${streamId} has length ${length}; it must be ${SMUX_UPD_SIZE}`);
    }
    this.hdrCmd = cmd;
    this.hdrLength = length;
    this.hdrStreamId = streamId;
  }

  /** `n` bytes as one view: of the head chunk when it holds them all, else a fresh copy. */
  private take(n: number): Uint8Array {
    const head = this.chunks[0]!;
    const start = this.pos;
    if (head.length - start >= n) {
      this.consume(n);
      return head.subarray(start, start + n);
    }
    // The frame spans chunks: the one copy on the receive path.
    const out = new Uint8Array(n);
    this.copyOut(out, n);
    return out;
  }

  /** Copies `n` buffered bytes (n <= available) into `out` and consumes them. */
  private copyOut(out: Uint8Array, n: number): void {
    let filled = 0;
    while (filled < n) {
      const head = this.chunks[0]!;
      const m = Math.min(n - filled, head.length - this.pos);
      out.set(head.subarray(this.pos, this.pos + m), filled);
      filled += m;
      this.consume(m);
    }
  }

  /** Advances past `n` bytes of the head chunk (n <= what it has left). */
  private consume(n: number): void {
    this.pos += n;
    this.available -= n;
    if (this.pos === this.chunks[0]!.length) {
      this.chunks.shift();
      this.pos = 0;
    }
  }

  private fail(message: string): never {
    this.dead = new ProxyError("MUX_PROTOCOL", "downstream", `smux: ${message}`);
    this.chunks.length = 0;
    this.available = 0;
    throw this.dead;
  }
}

export function cmdName(cmd: number): string {
  switch (cmd) {
    case SmuxCmd.SYN:
      return "SYN";
    case SmuxCmd.FIN:
      return "FIN";
    case SmuxCmd.PSH:
      return "PSH";
    case SmuxCmd.NOP:
      return "NOP";
    case SmuxCmd.UPD:
      return "UPD";
    default:
      return `cmd ${cmd}`;
  }
}
