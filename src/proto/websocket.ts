/**
 * RFC 6455 WebSocket framing, sans-I/O: a push decoder and the frame
 * encoders. The tunnel's WebSocket transport (`WsConn` in
 * src/tunnel/transport/websocket.ts) runs a MuxSession over it.
 *
 * Message boundaries carry no meaning to the tunnel: smux frames are a byte stream, so
 * the payload of every binary frame (and its continuations) is handed on as
 * it arrives, unmasked in place, without waiting for the end of the frame.
 * Control frames (ping, pong, close: at most 125 bytes) are collected whole.
 */
import { ProxyError } from "../errors/mod.ts";

export const WsOpcode = { CONTINUATION: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 } as const;
/** RFC 6455 §7.4.1 status codes we send. */
export const WsClose = { NORMAL: 1000, GOING_AWAY: 1001, PROTOCOL_ERROR: 1002, UNSUPPORTED: 1003, TOO_BIG: 1009 } as const;
const MAX_CONTROL = 125;

export type WsEvent =
  | { type: "data"; bytes: Uint8Array }
  | { type: "ping"; payload: Uint8Array }
  | { type: "pong" }
  | { type: "close"; code: number; reason: string };

export class WsProtocolError extends ProxyError {
  constructor(message: string, readonly closeCode: number) {
    super("TUNNEL_PROTOCOL", "downstream", `websocket: ${message}`);
  }
}

/**
 * Push-based frame decoder. `role` is the side we are: a server requires
 * masked frames from its client and a client unmasked ones (RFC 6455 §5.1).
 * Pushed chunks are unmasked in place: pass buffers you own.
 */
export class WsFrameDecoder {
  private chunks: Uint8Array[] = [];
  private pos = 0;
  private available = 0;
  /** Payload bytes of the current frame not yet returned; -1 between frames. */
  private left = -1;
  private opcode = 0;
  private fin = false;
  private masked = false;
  private mask = new Uint8Array(4);
  private maskOffset = 0;
  /** A fragmented binary message is in progress (continuations allowed). */
  private inMessage = false;
  private control: Uint8Array | null = null;
  private controlFill = 0;
  private readonly hdr = new Uint8Array(14);
  private dead: WsProtocolError | null = null;

  constructor(private readonly role: "server" | "client") {}

  push(chunk: Uint8Array): void {
    if (this.dead !== null || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.available += chunk.length;
  }

  /** The next event, or null when more bytes are needed. Throws WsProtocolError (then stays dead). */
  next(): WsEvent | null {
    if (this.dead !== null) throw this.dead;
    for (;;) {
      if (this.left < 0 && !this.readHeader()) return null;
      if (this.opcode >= 8) {
        const ev = this.readControl();
        if (ev === null) return null;
        return ev;
      }
      if (this.left === 0) {
        this.endFrame();
        continue; // an empty data frame: nothing to hand on
      }
      if (this.available === 0) return null;
      const head = this.chunks[0]!;
      const n = Math.min(this.left, head.length - this.pos);
      const bytes = head.subarray(this.pos, this.pos + n);
      this.consume(n);
      if (this.masked) this.maskOffset = unmask(bytes, this.mask, this.maskOffset);
      this.left -= n;
      if (this.left === 0) this.endFrame();
      return { type: "data", bytes };
    }
  }

  private endFrame(): void {
    this.left = -1;
    if (this.opcode < 8) this.inMessage = !this.fin;
  }

  /** Parses a frame header when all of it is buffered. */
  private readHeader(): boolean {
    if (this.available < 2) return false;
    const b0b1 = this.peek(2);
    const b0 = b0b1[0]!;
    const b1 = b0b1[1]!;
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    const size = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (masked ? 4 : 0);
    if (this.available < size) return false;
    const h = this.peek(size);
    this.consume(size);
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    // §5.2: "RSV1, RSV2, RSV3: MUST be 0 unless an extension is negotiated" (we negotiate none).
    if ((b0 & 0x70) !== 0) this.fail("reserved bits set without a negotiated extension", WsClose.PROTOCOL_ERROR);
    // §5.1: "The server MUST close the connection upon receiving a frame that is not masked";
    // "A client MUST close a connection if it detects a masked frame."
    if (this.role === "server" && !masked) this.fail("client frame is not masked", WsClose.PROTOCOL_ERROR);
    if (this.role === "client" && masked) this.fail("server frame is masked", WsClose.PROTOCOL_ERROR);
    let length = len7;
    let o = 2;
    if (len7 === 126) {
      length = (h[2]! << 8) | h[3]!;
      o = 4;
    } else if (len7 === 127) {
      // §5.2: "the most significant bit MUST be 0"; we bound lengths to 2^53 (a JS integer) as well.
      const hi = ((h[2]! << 24) | (h[3]! << 16) | (h[4]! << 8) | h[5]!) >>> 0;
      const lo = ((h[6]! << 24) | (h[7]! << 16) | (h[8]! << 8) | h[9]!) >>> 0;
      if (hi > 0x1fffff) this.fail("64-bit frame length over 2^53", WsClose.TOO_BIG);
      length = hi * 0x100000000 + lo;
      o = 10;
    }
    if (masked) {
      this.mask.set(h.subarray(o, o + 4));
      this.maskOffset = 0;
    }
    switch (opcode) {
      case WsOpcode.BINARY:
        if (this.inMessage) this.fail("new data frame inside a fragmented message", WsClose.PROTOCOL_ERROR);
        break;
      case WsOpcode.CONTINUATION:
        if (!this.inMessage) this.fail("continuation frame without a message to continue", WsClose.PROTOCOL_ERROR);
        break;
      case WsOpcode.TEXT:
        this.fail("text message on a binary tunnel", WsClose.UNSUPPORTED);
        break;
      case WsOpcode.CLOSE:
      case WsOpcode.PING:
      case WsOpcode.PONG:
        // §5.5: "All control frames MUST have a payload length of 125 bytes or less and MUST NOT be fragmented."
        if (length > MAX_CONTROL) this.fail(`control frame of ${length} bytes`, WsClose.PROTOCOL_ERROR);
        if (!fin) this.fail("fragmented control frame", WsClose.PROTOCOL_ERROR);
        this.control = new Uint8Array(length);
        this.controlFill = 0;
        break;
      default:
        this.fail(`unknown opcode ${opcode}`, WsClose.PROTOCOL_ERROR);
    }
    this.fin = fin;
    this.opcode = opcode;
    this.masked = masked;
    this.left = length;
    return true;
  }

  private readControl(): WsEvent | null {
    const c = this.control!;
    while (this.controlFill < c.length && this.available > 0) {
      const head = this.chunks[0]!;
      const m = Math.min(c.length - this.controlFill, head.length - this.pos);
      c.set(head.subarray(this.pos, this.pos + m), this.controlFill);
      this.consume(m);
      this.controlFill += m;
    }
    if (this.controlFill < c.length) return null;
    if (this.masked) unmask(c, this.mask, 0);
    this.control = null;
    this.left = -1;
    switch (this.opcode) {
      case WsOpcode.PING:
        return { type: "ping", payload: c };
      case WsOpcode.PONG:
        return { type: "pong" };
      default: {
        // §5.5.1: a close body, if any, starts with a 2-byte status code.
        if (c.length === 1) this.fail("close frame with a 1-byte body", WsClose.PROTOCOL_ERROR);
        const code = c.length >= 2 ? (c[0]! << 8) | c[1]! : 1005;
        let reason = "";
        try {
          reason = new TextDecoder("utf-8", { fatal: true }).decode(c.subarray(2));
        } catch {
          this.fail("close reason is not UTF-8", WsClose.PROTOCOL_ERROR);
        }
        return { type: "close", code, reason };
      }
    }
  }

  private peek(n: number): Uint8Array {
    const head = this.chunks[0]!;
    if (head.length - this.pos >= n) return head.subarray(this.pos, this.pos + n);
    let filled = 0;
    for (let i = 0, p = this.pos; filled < n; i++, p = 0) {
      const c = this.chunks[i]!;
      const m = Math.min(n - filled, c.length - p);
      this.hdr.set(c.subarray(p, p + m), filled);
      filled += m;
    }
    return this.hdr.subarray(0, n);
  }

  private consume(n: number): void {
    this.available -= n;
    while (n > 0) {
      const c = this.chunks[0]!;
      const m = Math.min(n, c.length - this.pos);
      this.pos += m;
      n -= m;
      if (this.pos === c.length) {
        this.chunks.shift();
        this.pos = 0;
      }
    }
  }

  private fail(message: string, closeCode: number): never {
    this.dead = new WsProtocolError(message, closeCode);
    this.chunks = [];
    this.available = 0;
    throw this.dead;
  }
}

/** XORs `b` with the 4-byte mask starting at mask index `offset`; returns the next offset. */
export function unmask(b: Uint8Array, mask: Uint8Array, offset: number): number {
  let i = 0;
  const n = b.length;
  // Word at a time once aligned: the same bytes, four per step.
  const lead = Math.min(n, (4 - (b.byteOffset & 3)) & 3);
  for (; i < lead; i++) b[i] = b[i]! ^ mask[(offset + i) & 3]!;
  const words = (n - i) >>> 2;
  if (words > 0) {
    const o = offset + i;
    // Little-endian word whose bytes are the mask rotated to start at `o`.
    const m = mask[o & 3]! | (mask[(o + 1) & 3]! << 8) | (mask[(o + 2) & 3]! << 16) | (mask[(o + 3) & 3]! << 24);
    const w = new Uint32Array(b.buffer, b.byteOffset + i, words);
    if (LITTLE_ENDIAN) {
      for (let k = 0; k < words; k++) w[k] = w[k]! ^ m;
      i += words * 4;
    }
  }
  for (; i < n; i++) b[i] = b[i]! ^ mask[(offset + i) & 3]!;
  return (offset + n) & 3;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Header bytes for a frame of `length` payload bytes. */
function headerSize(length: number, masked: boolean): number {
  return (length < 126 ? 2 : length < 0x10000 ? 4 : 10) + (masked ? 4 : 0);
}

/**
 * One whole frame in a fresh buffer: header, then the payload copied (and
 * masked when `masked`, with a fresh random key per frame as §5.3 requires).
 */
export function encodeWsFrame(opcode: number, payload: Uint8Array, masked: boolean): Uint8Array {
  const n = payload.length;
  const hs = headerSize(n, masked);
  const out = new Uint8Array(hs + n);
  out[0] = 0x80 | opcode;
  let o = 2;
  if (n < 126) out[1] = n;
  else if (n < 0x10000) {
    out[1] = 126;
    out[2] = n >>> 8;
    out[3] = n & 0xff;
    o = 4;
  } else {
    out[1] = 127;
    const hi = Math.floor(n / 0x100000000);
    out[2] = hi >>> 24;
    out[3] = (hi >>> 16) & 0xff;
    out[4] = (hi >>> 8) & 0xff;
    out[5] = hi & 0xff;
    out[6] = n >>> 24;
    out[7] = (n >>> 16) & 0xff;
    out[8] = (n >>> 8) & 0xff;
    out[9] = n & 0xff;
    o = 10;
  }
  out.set(payload, hs);
  if (masked) {
    out[1] = out[1]! | 0x80;
    const key = out.subarray(o, o + 4);
    crypto.getRandomValues(key);
    unmask(out.subarray(hs), key, 0);
  }
  return out;
}

export function encodeWsClose(code: number, reason: string, masked: boolean): Uint8Array {
  const r = new TextEncoder().encode(reason.slice(0, 100));
  const body = new Uint8Array(2 + r.length);
  body[0] = code >>> 8;
  body[1] = code & 0xff;
  body.set(r, 2);
  return encodeWsFrame(WsOpcode.CLOSE, body, masked);
}
