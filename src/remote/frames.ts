/**
 * What an operator stream carries after the agent's `ok` (sans-I/O): frames
 *
 *   type u8 | length u32 BE | payload[length]
 *
 *   DATA   0  bytes: file contents, or terminal bytes (keys one way, output the other)
 *   MSG    1  one msgpack map (string keys): a file copy's ready / done / fail, a listing, a reload's result
 *   RESIZE 2  cols u16 BE | rows u16 BE: the operator's terminal changed size
 *   EOF    3  empty: the operator's input ended (stdin not a terminal)
 *   EXIT   4  status i32 BE: the remote command ended; the last frame of a shell
 *
 * DATA payloads are handed out as they arrive, in pieces that are views of the
 * chunks pushed (no copy, even when a frame spans chunks); the other types are
 * whole (copied only when they span chunks) and bounded: MSG by MAX_MSG, the
 * fixed ones by their size. DATA frames are bounded by MAX_DATA.
 */
import { ChunkQueue } from "../proto/chunk_queue.ts";
import { decodeMsgpack, encodeMsgpack } from "../proto/msgpack.ts";
import { ProxyError } from "../errors/mod.ts";

export const FrameType = { DATA: 0, MSG: 1, RESIZE: 2, EOF: 3, EXIT: 4 } as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];

export const FRAME_HEADER = 5;
/** Largest DATA payload a peer may send in one frame (we send at most DATA_CHUNK). */
export const MAX_DATA = 1024 * 1024;
/** What we put in one DATA frame. */
export const DATA_CHUNK = 64 * 1024;
/** Largest MSG payload (a listing is sent as several MSG frames). */
export const MAX_MSG = 256 * 1024;

export type Frame =
  | { type: 0; data: Uint8Array }
  | { type: 1; msg: Record<string, unknown> }
  | { type: 2; cols: number; rows: number }
  | { type: 3 }
  | { type: 4; status: number };

function header(type: number, length: number): Uint8Array {
  const h = new Uint8Array(FRAME_HEADER);
  h[0] = type;
  new DataView(h.buffer).setUint32(1, length);
  return h;
}

/** A DATA frame's header; the payload follows as its own write (no copy of the bytes). */
export function dataHeader(length: number): Uint8Array {
  return header(FrameType.DATA, length);
}

export function encodeMsg(msg: Record<string, unknown>): Uint8Array {
  const body = encodeMsgpack(msg);
  if (body.length > MAX_MSG) throw new ProxyError("TUNNEL_PROTOCOL", "internal", `remote message of ${body.length} bytes, over ${MAX_MSG}`);
  const out = new Uint8Array(FRAME_HEADER + body.length);
  out.set(header(FrameType.MSG, body.length));
  out.set(body, FRAME_HEADER);
  return out;
}

export function encodeResize(cols: number, rows: number): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER + 4);
  out.set(header(FrameType.RESIZE, 4));
  const v = new DataView(out.buffer);
  v.setUint16(5, cols);
  v.setUint16(7, rows);
  return out;
}

export function encodeEof(): Uint8Array {
  return header(FrameType.EOF, 0);
}

export function encodeExit(status: number): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER + 4);
  out.set(header(FrameType.EXIT, 4));
  new DataView(out.buffer).setInt32(5, status);
  return out;
}

export class FrameDecoder {
  private readonly q = new ChunkQueue();
  /** Payload bytes of the current DATA frame not handed out yet. */
  private dataLeft = 0;
  private dead: ProxyError | null = null;

  push(chunk: Uint8Array): void {
    if (this.dead === null) this.q.push(chunk);
  }

  get bufferedBytes(): number {
    return this.q.length;
  }

  /** The next frame (or the next piece of a DATA frame), null when more bytes are needed; throws TUNNEL_PROTOCOL, then stays dead. */
  next(): Frame | null {
    if (this.dead !== null) throw this.dead;
    for (;;) {
      if (this.dataLeft > 0) {
        if (this.q.length === 0) return null;
        // A view of the head chunk, at most what is left of the frame: DATA is never copied.
        const data = this.q.takeHead(this.dataLeft);
        this.dataLeft -= data.length;
        return { type: 0, data };
      }
      if (this.q.length < FRAME_HEADER) return null;
      const h = this.q.peek(FRAME_HEADER);
      const type = h[0]!;
      const length = ((h[1]! << 24) | (h[2]! << 16) | (h[3]! << 8) | h[4]!) >>> 0;
      switch (type) {
        case FrameType.DATA:
          if (length > MAX_DATA) this.fail(`DATA frame of ${length} bytes, over ${MAX_DATA}`);
          this.q.skip(FRAME_HEADER);
          this.dataLeft = length;
          continue;
        case FrameType.MSG: {
          if (length === 0 || length > MAX_MSG) this.fail(`MSG frame of ${length} bytes, outside 1..${MAX_MSG}`);
          if (this.q.length < FRAME_HEADER + length) return null;
          this.q.skip(FRAME_HEADER);
          let v: unknown;
          try {
            v = decodeMsgpack(this.q.take(length));
          } catch (e) {
            this.fail(`MSG frame is not msgpack: ${(e as Error).message}`);
          }
          if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array) this.fail("MSG frame must hold a map");
          return { type: 1, msg: v as Record<string, unknown> };
        }
        case FrameType.RESIZE: {
          if (length !== 4) this.fail(`RESIZE frame of ${length} bytes, not 4`);
          if (this.q.length < FRAME_HEADER + 4) return null;
          this.q.skip(FRAME_HEADER);
          const b = this.q.take(4);
          return { type: 2, cols: (b[0]! << 8) | b[1]!, rows: (b[2]! << 8) | b[3]! };
        }
        case FrameType.EOF:
          if (length !== 0) this.fail(`EOF frame of ${length} bytes, not 0`);
          this.q.skip(FRAME_HEADER);
          return { type: 3 };
        case FrameType.EXIT: {
          if (length !== 4) this.fail(`EXIT frame of ${length} bytes, not 4`);
          if (this.q.length < FRAME_HEADER + 4) return null;
          this.q.skip(FRAME_HEADER);
          const b = this.q.take(4);
          return { type: 4, status: (b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]! };
        }
        default:
          this.fail(`unknown frame type ${type}`);
      }
    }
  }

  private fail(message: string): never {
    this.dead = new ProxyError("TUNNEL_PROTOCOL", "downstream", `remote stream: ${message}`);
    this.q.clear();
    throw this.dead;
  }
}

/** Reads a string field of a MSG frame, or null. */
export function msgString(m: Record<string, unknown>, key: string): string | null {
  const v = m[key];
  return typeof v === "string" ? v : null;
}

/** Reads a non-negative integer field of a MSG frame, or null. */
export function msgUint(m: Record<string, unknown>, key: string): number | null {
  const v = m[key];
  return typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : null;
}
