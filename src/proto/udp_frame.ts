/**
 * UDP datagrams over a byte stream (DESIGN.md "UDP over a stream"), sans-I/O:
 *
 *   port u16 BE | length u16 BE | bytes[length]
 *
 * One tunnel stream carries the datagrams of one client address (IP); `port`
 * is the client's UDP source port, so the far end keeps one socket per
 * (stream, port) and tags each reply with the port it came back for. A
 * zero-length datagram is legal UDP and travels as a 4-byte record.
 *
 * `UdpFrameDecoder` is push-based like every codec here: `push(chunk)`, then
 * `next()` until null. Payloads are views of the pushed chunk; a record
 * spanning chunks is copied once into a fresh buffer.
 */
import { ChunkQueue } from "./chunk_queue.ts";
import { ProxyError } from "../errors/mod.ts";

export const UDP_FRAME_HEADER = 4;
/** The largest UDP payload over IPv4 (65535 − 20 IP − 8 UDP); also our default bound. */
export const UDP_MAX_DATAGRAM = 65507;

/** Bytes a record for `payloadLength` bytes takes. */
export function udpFrameLength(payloadLength: number): number {
  return UDP_FRAME_HEADER + payloadLength;
}

/** Writes one record at `offset` of `out`; returns the offset after it. Throws on a bad port or length. */
export function encodeUdpFrame(out: Uint8Array, offset: number, port: number, payload: Uint8Array): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ProxyError("TUNNEL_PROTOCOL", "internal", `udp frame: port must be 1..65535, got ${port}`);
  }
  const n = payload.length;
  if (n > 0xffff) throw new ProxyError("TUNNEL_PROTOCOL", "internal", `udp frame: a datagram is at most 65535 bytes, got ${n}`);
  out[offset] = port >>> 8;
  out[offset + 1] = port & 0xff;
  out[offset + 2] = n >>> 8;
  out[offset + 3] = n & 0xff;
  out.set(payload, offset + UDP_FRAME_HEADER);
  return offset + UDP_FRAME_HEADER + n;
}

/** A fresh buffer holding one record. */
export function udpFrame(port: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(udpFrameLength(payload.length));
  encodeUdpFrame(out, 0, port, payload);
  return out;
}

/**
 * One decoded record. The decoder reuses this object; `payload` is a view
 * that stays valid as long as the caller keeps it.
 */
export interface UdpRecord {
  port: number;
  payload: Uint8Array;
}

export interface UdpFrameDecoderOptions {
  /** Longest datagram accepted; a longer record is a protocol error. Default UDP_MAX_DATAGRAM. */
  maxDatagram?: number;
}

const EMPTY = new Uint8Array(0);

export class UdpFrameDecoder {
  private readonly queue = new ChunkQueue();
  private readonly maxDatagram: number;
  private readonly rec: UdpRecord = { port: 0, payload: EMPTY };
  /** Header scratch for the rare header that spans chunks. */
  private readonly hdr = new Uint8Array(UDP_FRAME_HEADER);
  private dead: ProxyError | null = null;

  constructor(opts: UdpFrameDecoderOptions = {}) {
    this.maxDatagram = opts.maxDatagram ?? UDP_MAX_DATAGRAM;
  }

  get bufferedBytes(): number {
    return this.queue.length;
  }

  push(chunk: Uint8Array): void {
    if (this.dead === null) this.queue.push(chunk);
  }

  /** The next record, or null when more bytes are needed. Throws ProxyError("TUNNEL_PROTOCOL"); then it stays dead. */
  next(): UdpRecord | null {
    if (this.dead !== null) throw this.dead;
    const q = this.queue;
    if (q.length < UDP_FRAME_HEADER) return null;
    const h = q.peek(UDP_FRAME_HEADER, this.hdr);
    const port = (h[0]! << 8) | h[1]!;
    const length = (h[2]! << 8) | h[3]!;
    // A datagram always comes from a real port: RFC 768 makes the source port optional (0), but a reply needs one.
    if (port === 0) this.fail("record for port 0");
    if (length > this.maxDatagram) this.fail(`record of ${length} bytes, over the ${this.maxDatagram}-byte bound`);
    if (q.length < UDP_FRAME_HEADER + length) return null;
    q.skip(UDP_FRAME_HEADER);
    this.rec.port = port;
    // A view of the chunk, or (spanning chunks) the one copy on this path.
    this.rec.payload = length === 0 ? EMPTY : q.take(length);
    return this.rec;
  }

  private fail(message: string): never {
    this.dead = new ProxyError("TUNNEL_PROTOCOL", "downstream", `udp frame: ${message}`);
    this.queue.clear();
    throw this.dead;
  }
}
