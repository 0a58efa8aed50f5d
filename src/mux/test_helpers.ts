/** Shared by the mux unit tests (not part of the public face). */
import { encodeSmuxHeader, SMUX_HEADER_SIZE, SmuxFrameDecoder } from "../proto/mod.ts";
import { type Conn, type ConnHandler, memoryPair } from "../runtime/mod.ts";
import { MuxSession, type MuxSessionOptions } from "./session.ts";
import type { MuxStream } from "./stream.ts";

type MemoryPairOptions = NonNullable<Parameters<typeof memoryPair>[0]>;

/** Yields to the event loop until `cond()` holds; fails after `ms` (never a fixed sleep). */
export async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 0));
  }
}

/** Lets `n` macrotask turns pass (for "nothing more happens" checks, bounded). */
export async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 0));
}

/** Records everything a stream (or conn) delivers. */
export class Recorder implements ConnHandler {
  chunks: Uint8Array[] = [];
  bytes = 0;
  ended = false;
  closed = false;
  closeErr: Error | undefined;
  drains = 0;
  onChunk: ((c: Conn, chunk: Uint8Array) => void) | null = null;
  onDrainHook: (() => void) | null = null;

  onData(c: Conn, chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.onChunk?.(c, chunk);
  }
  onDrain(): void {
    this.drains++;
    this.onDrainHook?.();
  }
  onEnd(): void {
    this.ended = true;
  }
  onClose(_c: Conn, err?: Error): void {
    this.closed = true;
    this.closeErr = err;
  }
  data(): Uint8Array {
    const out = new Uint8Array(this.bytes);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
  text(): string {
    return new TextDecoder().decode(this.data());
  }
}

/** Echo handler for accepted streams: writes back what arrives, ends when the peer ends. */
export function echo(s: MuxStream): void {
  s.setHandler({
    onData(c, chunk) {
      if (!c.write(chunk)) c.pause();
    },
    onDrain(c) {
      c.resume();
    },
    onEnd(c) {
      c.end();
    },
    onClose() {},
  });
}

/** Two sessions over a memory pair; keepalive off unless asked (tests drive tick()). */
export function sessionPair(
  version: 1 | 2,
  client: Partial<MuxSessionOptions> = {},
  server: Partial<MuxSessionOptions> = {},
  pair: MemoryPairOptions = {},
): { client: MuxSession; server: MuxSession } {
  const [a, b] = memoryPair(pair);
  return {
    client: new MuxSession(a, { keepAliveIntervalMs: 0, ...client, version, client: true }),
    server: new MuxSession(b, { keepAliveIntervalMs: 0, ...server, version, client: false }),
  };
}

/** Writes `data` to `c` in `chunk`-sized writes, honouring backpressure; resolves when all is queued. */
export function pump(c: Conn, data: Uint8Array, chunk: number, h: Recorder): Promise<void> {
  return new Promise((resolve) => {
    let off = 0;
    const go = () => {
      while (off < data.length) {
        const piece = data.subarray(off, Math.min(data.length, off + chunk));
        off += piece.length;
        if (!c.write(piece)) return;
      }
      resolve();
    };
    h.onDrainHook = go;
    go();
  });
}

/** Frames a raw peer sends, for driving a session byte by byte. */
export function frame(version: number, cmd: number, streamId: number, payload: ArrayLike<number> = []): Uint8Array {
  const out = new Uint8Array(SMUX_HEADER_SIZE + payload.length);
  encodeSmuxHeader(out, 0, version, cmd, payload.length, streamId);
  out.set(payload, SMUX_HEADER_SIZE);
  return out;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A raw peer: a memory conn whose received bytes are decoded into plain frames. */
export function rawPeer(version: 1 | 2, opts: Partial<MuxSessionOptions> & { client: boolean }, pair: MemoryPairOptions = {}) {
  const [raw, b] = memoryPair(pair);
  const session = new MuxSession(b, { keepAliveIntervalMs: 0, ...opts, version });
  const dec = new SmuxFrameDecoder(version);
  const frames: { cmd: number; streamId: number; payload: number[] }[] = [];
  const writes: Uint8Array[] = [];
  const rec = new Recorder();
  rec.onChunk = (_c, chunk) => {
    writes.push(chunk);
    dec.push(chunk);
    for (let f = dec.next(); f !== null; f = dec.next()) frames.push({ cmd: f.cmd, streamId: f.streamId, payload: Array.from(f.payload) });
  };
  raw.setHandler(rec);
  return { raw, session, frames, writes, rec };
}
