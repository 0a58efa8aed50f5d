/**
 * A minimal HTTP/2 client for the tests that a real client refuses to send
 * (oversized and malformed header blocks): node:tls with ALPN h2, frames and
 * HPACK from src/proto. The well-behaved traffic in those tests comes from
 * the Go x/net/http2 client instead.
 */
import { connect, type TLSSocket } from "node:tls";
import {
  CLIENT_PREFACE,
  encodeData,
  encodeHeaders,
  encodeHeadersFrames,
  encodeSettings,
  encodeSettingsAck,
  Flag,
  FrameType,
  H2FrameDecoder,
  HpackDecoder,
  readU32,
} from "../../src/proto/mod.ts";

export interface RawStreamResult {
  status: number | null;
  fields: [string, string][];
  data: Buffer;
  /** RST_STREAM code, if the stream was reset. */
  reset: number | null;
  ended: boolean;
}

export class RawH2 {
  private readonly dec = new H2FrameDecoder({ maxFrameSize: 1 << 24, expectPreface: false });
  private readonly hpack = new HpackDecoder(4096, 1 << 20);
  private next = 1;
  private readonly streams = new Map<number, RawStreamResult & { waiters: (() => void)[] }>();
  goaway: number | null = null;
  closed = false;

  private constructor(readonly socket: TLSSocket) {
    socket.on("data", (d: Buffer) => this.onData(d));
    socket.on("close", () => {
      this.closed = true;
      for (const s of this.streams.values()) for (const w of s.waiters.splice(0)) w();
    });
    socket.on("error", () => {});
    socket.write(CLIENT_PREFACE);
    socket.write(encodeSettings([[2, 0]]));
  }

  static open(port: number, tls: { ca: string; cert?: string; key?: string }): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: "127.0.0.1", port, servername: "localhost", ALPNProtocols: ["h2"], ca: tls.ca, cert: tls.cert, key: tls.key });
      s.once("secureConnect", () => (s.alpnProtocol === "h2" ? resolve(new RawH2(s)) : reject(new Error(`ALPN ${s.alpnProtocol}`))));
      s.once("error", reject);
    });
  }

  /** Sends a header block on a new stream; returns its id. */
  request(fields: [string, string][], endStream = false): number {
    const id = this.next;
    this.next += 2;
    this.streams.set(id, { status: null, fields: [], data: Buffer.alloc(0), reset: null, ended: false, waiters: [] });
    this.socket.write(encodeHeadersFrames(id, encodeHeaders(fields), endStream, 16384));
    return id;
  }

  send(id: number, data: string, end = false): void {
    this.socket.write(encodeData(id, Buffer.from(data), end, 16384));
  }

  /** Resolves when `cond` holds for the stream (or the connection closed), within `ms`. */
  wait(id: number, cond: (s: RawStreamResult) => boolean, ms = 10_000): Promise<RawStreamResult> {
    const s = this.streams.get(id)!;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`stream ${id}: condition not met; ${JSON.stringify({ ...s, data: s.data.length, waiters: undefined })}`)), ms);
      const check = () => {
        if (cond(s) || this.closed) {
          clearTimeout(t);
          resolve(s);
          return;
        }
        s.waiters.push(check);
      };
      check();
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(d: Buffer): void {
    this.dec.push(new Uint8Array(d));
    for (let f = this.dec.next(); f !== null; f = this.dec.next()) {
      const s = this.streams.get(f.streamId);
      switch (f.type) {
        case FrameType.SETTINGS:
          if (!(f.flags & Flag.ACK)) this.socket.write(encodeSettingsAck());
          break;
        case FrameType.GOAWAY:
          this.goaway = readU32(f.payload, 4);
          break;
        case FrameType.HEADERS: {
          const { fields } = this.hpack.decode(f.payload.slice());
          if (s) {
            s.fields = fields;
            const st = fields.find(([n]) => n === ":status");
            s.status = st ? Number(st[1]) : null;
            if (f.flags & Flag.END_STREAM) s.ended = true;
          }
          break;
        }
        case FrameType.DATA:
          if (s) {
            s.data = Buffer.concat([s.data, f.payload]);
            if (f.last && f.flags & Flag.END_STREAM) s.ended = true;
          }
          break;
        case FrameType.RST_STREAM:
          if (s) s.reset = readU32(f.payload, 0);
          break;
      }
      if (s) for (const w of s.waiters.splice(0)) w();
    }
  }
}
