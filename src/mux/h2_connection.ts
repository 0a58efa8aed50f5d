/**
 * An HTTP/2 connection over a `Conn` (RFC 9113), server or client side:
 * frames in (the sans-I/O decoder and HPACK of src/proto), streams out as
 * `H2Stream` Conns, flow control both ways. The owner sees header blocks and
 * stream/connection ends: an HBONE server session or the HBONE client pool
 * (CONNECT tunnels: stream ⇄ Relay ⇄ socket), or an http listener's HTTP/2
 * server (src/http/h2_server.ts: each stream a request whose response goes
 * out with `respond` and the stream's write/end; trailers from the peer only
 * end its stream).
 *
 * Hot path: `onData` → decoder pieces → `H2Stream.handler.onData(view)`;
 * `H2Stream.write` → one buffer of DATA frames → `conn.write`. Control
 * frames produced while a read chunk is processed (WINDOW_UPDATE, SETTINGS
 * ACK, PING ACK, RST_STREAM) are batched into one write after the chunk.
 *
 * Flow control: we grant STREAM_WINDOW per stream and CONN_WINDOW per
 * connection (ztunnel's 4 MiB and 16 MiB), and re-grant what a stream's
 * reader consumed once half a window is used. A paused stream stops
 * re-granting, so its peer stops within one window: every buffer here is
 * bounded by a window we chose.
 */
import { ProxyError } from "../errors/mod.ts";
import {
  CLIENT_PREFACE,
  concatBytes,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  encodeData,
  encodeGoaway,
  encodeHeaders,
  encodeHeadersFrames,
  encodePing,
  encodeRstStream,
  encodeSettings,
  encodeSettingsAck,
  encodeWindowUpdate,
  Flag,
  type H2Frame,
  FrameType,
  H2Code,
  H2Error,
  H2FrameDecoder,
  HpackDecoder,
  MAX_WINDOW,
  readU32,
  Setting,
} from "../proto/mod.ts";
import type { Conn, ConnHandler } from "../runtime/types.ts";
import { coarseClock } from "../runtime/mod.ts";
import { H2Stream } from "./h2_stream.ts";

/** Per-stream receive window we grant (ztunnel: 4 MiB). */
export const STREAM_WINDOW = 4 * 1024 * 1024;
/** Connection receive window we grant (ztunnel: 16 MiB). */
export const CONN_WINDOW = 16 * 1024 * 1024;
/** The SETTINGS_MAX_FRAME_SIZE we advertise: bigger DATA frames from the peer (they stream through uncopied), bounded control frames. */
export const OUR_MAX_FRAME_SIZE = 65_536;
/** Bytes of ours the peer may leave unread before control frames (PING ACKs, RST_STREAMs) stop being answered. */
export const CONTROL_BACKLOG = 4 * 1024 * 1024;

const EMPTY: Uint8Array = new Uint8Array(0);

export interface H2ConnectionOwner {
  /** A complete header block: a request (server) or a response (client). */
  onStreamHeaders(c: H2Connection, s: H2Stream, fields: [string, string][], tooLarge: boolean, endStream: boolean): void;
  /** A stream is gone (after its handler's onClose was scheduled). */
  onStreamClosed(c: H2Connection, s: H2Stream): void;
  /** The connection is gone; `err` is null for a clean close. */
  onConnectionClosed(c: H2Connection, err: ProxyError | null): void;
}

export interface H2ConnectionOptions {
  role: "server" | "client";
  /** Streams the peer may open at once (server); SETTINGS_MAX_CONCURRENT_STREAMS. */
  maxConcurrentStreams: number;
  /** Decoded header list bound (SETTINGS_MAX_HEADER_LIST_SIZE); a bigger request is flagged tooLarge. */
  maxHeaderListBytes: number;
}

export class H2Connection implements ConnHandler {
  readonly streams = new Map<number, H2Stream>();
  private readonly decoder: H2FrameDecoder;
  private readonly hpack: HpackDecoder;
  private readonly role: "server" | "client";
  /** Highest stream id the peer opened (server) — the GOAWAY last-stream-id. */
  lastPeerStream = 0;
  private nextStreamId = 1;
  peerInitialWindow = DEFAULT_WINDOW;
  peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  peerMaxConcurrent = 100;
  private connSendWindow = DEFAULT_WINDOW;
  private connRecvWindow = CONN_WINDOW;
  private connRecvUnacked = 0;
  /** Header block in progress (HEADERS then CONTINUATION until END_HEADERS). */
  private hbStream = 0;
  private hbParts: Uint8Array[] = [];
  private hbBytes = 0;
  private hbEndStream = false;
  private readonly maxHeaderBlock: number;
  /** Control frames produced while a read chunk is processed; written once after it. */
  private out: Uint8Array[] = [];
  private processing = false;
  /** The socket said "slow down": stream data waits in the streams until it drains. */
  private blocked = false;
  /** Streams with data waiting for window or for the socket, in the order they blocked. */
  private readonly sendQueue = new Set<H2Stream>();
  /** Streams whose last write returned false: each gets onDrain once its data is out and the socket has room. */
  private readonly drainWaiters = new Set<H2Stream>();
  goawaySent = false;
  goawayReceived = false;
  /** Highest stream id the peer will still process (from its GOAWAY). */
  peerLastStream = 0x7fffffff;
  closed = false;
  /** The peer's first SETTINGS arrived. */
  settled = false;
  lastActiveMs = coarseClock.now;

  constructor(readonly conn: Conn, private readonly owner: H2ConnectionOwner, readonly opts: H2ConnectionOptions) {
    this.role = opts.role;
    this.decoder = new H2FrameDecoder({ maxFrameSize: OUR_MAX_FRAME_SIZE, expectPreface: opts.role === "server" });
    this.hpack = new HpackDecoder(4096, opts.maxHeaderListBytes);
    // A header block may be bigger than the list bound (HPACK compresses); past twice it, or 64 KiB, the peer is abusive.
    this.maxHeaderBlock = Math.max(2 * opts.maxHeaderListBytes, 65_536);
    conn.setHandler(this);
  }

  /** Sends our preface (client), SETTINGS and the connection window; then processes `first` if given. */
  start(first?: Uint8Array): void {
    const settings: [number, number][] = [
      [Setting.INITIAL_WINDOW_SIZE, STREAM_WINDOW],
      [Setting.MAX_FRAME_SIZE, OUR_MAX_FRAME_SIZE],
      [Setting.MAX_HEADER_LIST_SIZE, this.opts.maxHeaderListBytes],
    ];
    if (this.role === "server") settings.unshift([Setting.MAX_CONCURRENT_STREAMS, this.opts.maxConcurrentStreams]);
    else settings.unshift([Setting.ENABLE_PUSH, 0]);
    const parts = [encodeSettings(settings), encodeWindowUpdate(0, CONN_WINDOW - DEFAULT_WINDOW)];
    if (this.role === "client") parts.unshift(CLIENT_PREFACE);
    this.writeRaw(concatBytes(parts));
    if (first) this.onData(this.conn, first);
  }

  get activeStreams(): number {
    return this.streams.size;
  }

  /** Client: whether another stream may be opened here now. */
  get canOpen(): boolean {
    return !this.closed && !this.goawaySent && !this.goawayReceived && this.nextStreamId < 0x7fffffff && this.streams.size < this.peerMaxConcurrent;
  }

  // ---- reading ------------------------------------------------------------------

  onData(_c: Conn, chunk: Uint8Array): void {
    if (this.closed) return;
    this.lastActiveMs = coarseClock.now;
    this.processing = true;
    try {
      this.decoder.push(chunk);
      for (;;) {
        const f = this.decoder.next();
        if (f === null) break;
        this.frame(f);
        if (this.closed) return;
      }
    } catch (err) {
      const e = err instanceof H2Error ? err : new H2Error(H2Code.INTERNAL_ERROR, (err as Error).message ?? String(err));
      return this.connectionError(e);
    } finally {
      this.processing = false;
    }
    this.flushControl();
  }

  private frame(f: H2Frame): void {
    if (this.hbStream !== 0 && f.type !== FrameType.CONTINUATION) {
      // §6.10: "A receiver MUST treat the receipt of any other type of frame or a frame on a different stream as a connection error".
      throw new H2Error(H2Code.PROTOCOL_ERROR, "Expected CONTINUATION");
    }
    switch (f.type) {
      case FrameType.DATA:
        return this.onDataFrame(f);
      case FrameType.HEADERS:
        return this.onHeadersFrame(f);
      case FrameType.CONTINUATION:
        if (this.hbStream === 0 || f.streamId !== this.hbStream) throw new H2Error(H2Code.PROTOCOL_ERROR, "CONTINUATION without HEADERS");
        this.appendHeaderBlock(f.payload);
        if (f.flags & Flag.END_HEADERS) this.finishHeaderBlock();
        return;
      case FrameType.RST_STREAM: {
        if (f.streamId === 0) throw new H2Error(H2Code.PROTOCOL_ERROR, "RST_STREAM on stream 0");
        if (f.payload.length !== 4) throw new H2Error(H2Code.FRAME_SIZE_ERROR, "RST_STREAM length");
        const s = this.streams.get(f.streamId);
        if (!s) return;
        const code = readU32(f.payload, 0);
        // NO_ERROR after the peer's END_STREAM only means "stop sending" (§8.1): a clean end for a reader that got everything.
        if (code === H2Code.NO_ERROR && s.remoteEnded && !s.endPending && s.inbox.length === 0) return this.closeStream(s);
        const source = this.role === "server" ? "downstream" : "upstream";
        this.closeStream(s, new ProxyError(source === "downstream" ? "DOWNSTREAM_RESET" : "UPSTREAM_RESET", source, `Stream reset by peer (code ${code})`));
        return;
      }
      case FrameType.SETTINGS:
        return this.onSettings(f);
      case FrameType.PING:
        if (f.streamId !== 0) throw new H2Error(H2Code.PROTOCOL_ERROR, "PING on a stream");
        if (f.payload.length !== 8) throw new H2Error(H2Code.FRAME_SIZE_ERROR, "PING length");
        if (!(f.flags & Flag.ACK)) this.control(encodePing(f.payload, true));
        return;
      case FrameType.GOAWAY:
        return this.onGoaway(f);
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(f);
      case FrameType.PUSH_PROMISE:
        // We are a server, or a client that sent ENABLE_PUSH = 0 (§8.4).
        throw new H2Error(H2Code.PROTOCOL_ERROR, "PUSH_PROMISE");
      default:
        return; // PRIORITY and unknown types are ignored (§5.3.2, §5.5)
    }
  }

  private onDataFrame(f: H2Frame): void {
    // §6.9: connection flow control covers every DATA octet, padding included.
    this.connRecvWindow -= f.flowBytes;
    if (this.connRecvWindow < 0) throw new H2Error(H2Code.FLOW_CONTROL_ERROR, "Peer overran the connection window");
    const s = this.streams.get(f.streamId);
    if (s === undefined || s.remoteEnded) {
      if (s === undefined && this.isIdle(f.streamId)) throw new H2Error(H2Code.PROTOCOL_ERROR, `DATA on idle stream ${f.streamId}`);
      this.creditConn(f.flowBytes);
      // §5.1: DATA on a closed or half-closed (remote) stream is a STREAM_CLOSED stream error.
      if (f.last) {
        this.control(encodeRstStream(f.streamId, H2Code.STREAM_CLOSED));
        if (s) this.closeStream(s, new ProxyError("DOWNSTREAM_RESET", "downstream", "DATA after END_STREAM"));
      }
      return;
    }
    s.recvWindow -= f.flowBytes;
    if (s.recvWindow < 0) {
      this.creditConn(f.flowBytes);
      this.resetStream(s, H2Code.FLOW_CONTROL_ERROR, "Peer overran the stream window");
      return;
    }
    const padding = f.flowBytes - f.payload.length;
    if (padding > 0) this.credit(s, padding);
    if (f.payload.length > 0) {
      if (s.paused || s.inbox.length > 0) {
        s.inbox.push(f.payload);
        s.inboxBytes += f.payload.length;
      } else {
        this.credit(s, f.payload.length);
        s.handler.onData(s, f.payload);
      }
    }
    if (f.last && f.flags & Flag.END_STREAM) this.remoteEnd(s);
  }

  private remoteEnd(s: H2Stream): void {
    s.remoteEnded = true;
    // A paused reader gets the end after what it has not read yet (on resume).
    if (s.inbox.length > 0 || s.paused) {
      s.endPending = true;
      return;
    }
    s.handler.onEnd(s);
    this.maybeClose(s);
  }

  /** Whether a stream id was never opened (as opposed to opened and closed). */
  private isIdle(id: number): boolean {
    const peerOpened = this.role === "server" ? (id & 1) === 1 : (id & 1) === 0;
    return peerOpened ? id > this.lastPeerStream : id >= this.nextStreamId;
  }

  private onHeadersFrame(f: H2Frame): void {
    if (f.streamId === 0) throw new H2Error(H2Code.PROTOCOL_ERROR, "HEADERS on stream 0");
    let p = f.payload;
    if (f.flags & Flag.PADDED) {
      if (p.length < 1 || p[0]! >= p.length) throw new H2Error(H2Code.PROTOCOL_ERROR, "HEADERS padding");
      p = p.subarray(1, p.length - p[0]!);
    }
    if (f.flags & Flag.PRIORITY) {
      if (p.length < 5) throw new H2Error(H2Code.FRAME_SIZE_ERROR, "HEADERS priority");
      p = p.subarray(5);
    }
    this.hbStream = f.streamId;
    this.hbEndStream = (f.flags & Flag.END_STREAM) !== 0;
    this.hbParts = [];
    this.hbBytes = 0;
    this.appendHeaderBlock(p);
    if (f.flags & Flag.END_HEADERS) this.finishHeaderBlock();
  }

  private appendHeaderBlock(p: Uint8Array): void {
    this.hbBytes += p.length;
    if (this.hbBytes > this.maxHeaderBlock) throw new H2Error(H2Code.ENHANCE_YOUR_CALM, `Header block over ${this.maxHeaderBlock} bytes`);
    // Copy: the payload is a view into a read chunk and the block may span frames.
    this.hbParts.push(p.slice());
  }

  private finishHeaderBlock(): void {
    const id = this.hbStream;
    const endStream = this.hbEndStream;
    const block = this.hbParts.length === 1 ? this.hbParts[0]! : concatBytes(this.hbParts);
    this.hbStream = 0;
    this.hbParts = [];
    // Decoded even for streams we refuse: the HPACK table must stay in step (§4.3).
    const { fields, tooLarge } = this.hpack.decode(block);
    const existing = this.streams.get(id);
    if (existing) {
      if (this.role === "client" && !existing.headersDone) {
        existing.headersDone = true;
        this.owner.onStreamHeaders(this, existing, fields, tooLarge, endStream);
      }
      // Trailers (or a second header block): only END_STREAM matters to a tunnel.
      if (endStream && !existing.closed && !existing.remoteEnded) this.remoteEnd(existing);
      return;
    }
    if (this.role === "client") return; // a response for a stream already gone
    // §5.1.1: "The identifier of a newly established stream MUST be numerically greater than all streams that the initiating endpoint has opened".
    if ((id & 1) === 0 || id <= this.lastPeerStream) throw new H2Error(H2Code.PROTOCOL_ERROR, `Stream id ${id} is not a new client stream`);
    this.lastPeerStream = id;
    if (this.goawaySent || this.streams.size >= this.opts.maxConcurrentStreams) {
      // §5.1.2: streams over the advertised limit are refused with REFUSED_STREAM (safe to retry).
      this.control(encodeRstStream(id, H2Code.REFUSED_STREAM));
      return;
    }
    const s = new H2Stream(id, this, this.peerInitialWindow, STREAM_WINDOW);
    this.streams.set(id, s);
    if (endStream) {
      // Delivered as onEnd when the owner first resumes the stream (it pauses it while deciding).
      s.remoteEnded = true;
      s.endPending = true;
    }
    this.owner.onStreamHeaders(this, s, fields, tooLarge, endStream);
  }

  private onSettings(f: H2Frame): void {
    if (f.streamId !== 0) throw new H2Error(H2Code.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (f.flags & Flag.ACK) {
      if (f.payload.length !== 0) throw new H2Error(H2Code.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
      return;
    }
    if (f.payload.length % 6 !== 0) throw new H2Error(H2Code.FRAME_SIZE_ERROR, "SETTINGS length");
    const p = f.payload;
    for (let o = 0; o < p.length; o += 6) {
      const id = (p[o]! << 8) | p[o + 1]!;
      const v = readU32(p, o + 2);
      switch (id) {
        case Setting.ENABLE_PUSH:
          if (v > 1) throw new H2Error(H2Code.PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH must be 0 or 1");
          break;
        case Setting.MAX_CONCURRENT_STREAMS:
          this.peerMaxConcurrent = v;
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          // §6.5.2: "Values above the maximum flow-control window size of 2^31-1 MUST be treated as a connection error ... FLOW_CONTROL_ERROR".
          if (v > MAX_WINDOW) throw new H2Error(H2Code.FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE too large");
          const delta = v - this.peerInitialWindow;
          this.peerInitialWindow = v;
          // §6.9.2: the change applies to every open stream's window, which may go negative.
          for (const s of this.streams.values()) s.sendWindow += delta;
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (v < DEFAULT_MAX_FRAME_SIZE || v > 16_777_215) throw new H2Error(H2Code.PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range");
          this.peerMaxFrameSize = v;
          break;
        default:
          break; // HEADER_TABLE_SIZE: our encoder uses no dynamic table; MAX_HEADER_LIST_SIZE is advisory; unknown ids are ignored
      }
    }
    this.settled = true;
    this.control(encodeSettingsAck());
    if (this.sendQueue.size > 0) this.flushQueue();
  }

  private onGoaway(f: H2Frame): void {
    if (f.streamId !== 0) throw new H2Error(H2Code.PROTOCOL_ERROR, "GOAWAY on a stream");
    if (f.payload.length < 8) throw new H2Error(H2Code.FRAME_SIZE_ERROR, "GOAWAY length");
    this.goawayReceived = true;
    this.peerLastStream = readU32(f.payload, 0) & 0x7fffffff;
    // Our streams past the peer's last one were never processed (§6.8): fail them so they can be retried.
    if (this.role === "client") {
      for (const s of [...this.streams.values()]) {
        if (s.id > this.peerLastStream) this.closeStream(s, new ProxyError("UPSTREAM_RESET", "upstream", "The hop sent GOAWAY before processing this stream"));
      }
    }
    if (this.streams.size === 0) this.shutdown();
  }

  private onWindowUpdate(f: H2Frame): void {
    if (f.payload.length !== 4) throw new H2Error(H2Code.FRAME_SIZE_ERROR, "WINDOW_UPDATE length");
    const inc = readU32(f.payload, 0) & 0x7fffffff;
    if (f.streamId === 0) {
      // §6.9: "A receiver MUST treat the receipt of a WINDOW_UPDATE frame with a flow-control window increment of 0 as a ... PROTOCOL_ERROR".
      if (inc === 0) throw new H2Error(H2Code.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
      this.connSendWindow += inc;
      if (this.connSendWindow > MAX_WINDOW) throw new H2Error(H2Code.FLOW_CONTROL_ERROR, "Connection window over 2^31-1");
      if (this.sendQueue.size > 0) this.flushQueue();
      return;
    }
    const s = this.streams.get(f.streamId);
    if (s === undefined) {
      if (this.isIdle(f.streamId)) throw new H2Error(H2Code.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
      return;
    }
    if (inc === 0) return this.resetStream(s, H2Code.PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW) return this.resetStream(s, H2Code.FLOW_CONTROL_ERROR, "Stream window over 2^31-1");
    if (s.pendingBytes > 0 || s.endQueued) this.flushQueue();
  }

  // ---- receive-side credit ----------------------------------------------------------

  private creditConn(n: number): void {
    this.connRecvUnacked += n;
    if (this.connRecvUnacked >= CONN_WINDOW / 2) {
      this.control(encodeWindowUpdate(0, this.connRecvUnacked));
      this.connRecvWindow += this.connRecvUnacked;
      this.connRecvUnacked = 0;
    }
  }

  /** `n` octets of stream `s` were consumed (delivered to its reader, or padding). */
  private credit(s: H2Stream, n: number): void {
    this.creditConn(n);
    s.recvUnacked += n;
    if (!s.remoteEnded && s.recvUnacked >= STREAM_WINDOW / 2) {
      this.control(encodeWindowUpdate(s.id, s.recvUnacked));
      s.recvWindow += s.recvUnacked;
      s.recvUnacked = 0;
    }
  }

  /** The stream's reader resumed: hand it what arrived meanwhile, then the held END_STREAM. */
  streamResumed(s: H2Stream): void {
    while (!s.paused && !s.closed && s.inbox.length > 0) {
      const chunk = s.inbox.shift()!;
      s.inboxBytes -= chunk.length;
      this.credit(s, chunk.length);
      s.handler.onData(s, chunk);
    }
    if (!s.paused && !s.closed && s.inbox.length === 0 && s.endPending) {
      s.endPending = false;
      s.handler.onEnd(s);
      this.maybeClose(s);
    }
    if (!this.processing) this.flushControl();
  }

  // ---- writing -------------------------------------------------------------------------

  /** Stream data out: now if the windows and the socket allow, else queued (and the caller told to pause). */
  streamWrite(s: H2Stream, data: Uint8Array): boolean {
    if (s.pendingBytes === 0 && !this.blocked) {
      const can = Math.min(s.sendWindow, this.connSendWindow);
      if (can >= data.length) {
        this.sendData(s, data, false);
        if (!this.blocked) return true;
        // Sent, but the socket is full: the caller pauses until this stream's onDrain.
        s.wantDrain = true;
        this.drainWaiters.add(s);
        return false;
      }
      if (can > 0) {
        this.sendData(s, data.subarray(0, can), false);
        data = data.subarray(can);
      }
    }
    s.pending.push(data);
    s.pendingBytes += data.length;
    s.wantDrain = true;
    this.drainWaiters.add(s);
    this.sendQueue.add(s);
    return false;
  }

  streamEnd(s: H2Stream): void {
    if (s.pendingBytes > 0 || this.blocked) {
      this.sendQueue.add(s);
      return;
    }
    this.sendData(s, EMPTY, true);
  }

  /** DATA frames for `data` (already within the windows). */
  private sendData(s: H2Stream, data: Uint8Array, end: boolean): void {
    s.sendWindow -= data.length;
    this.connSendWindow -= data.length;
    if (end) s.localEnded = true;
    if (!this.writeRaw(encodeData(s.id, data, end, this.peerMaxFrameSize))) this.blocked = true;
    if (end) this.maybeClose(s);
  }

  /** Moves queued stream data out as the windows and the socket allow, oldest waiter first; then tells drained writers. */
  private flushQueue(): void {
    for (const s of this.sendQueue) {
      if (this.blocked) break;
      while (s.pending.length > 0 && !this.blocked) {
        const can = Math.min(s.sendWindow, this.connSendWindow);
        if (can <= 0) break;
        const head = s.pending[0]!;
        const n = Math.min(can, head.length);
        if (n === head.length) s.pending.shift();
        else s.pending[0] = head.subarray(n);
        s.pendingBytes -= n;
        this.sendData(s, head.subarray(0, n), false);
      }
      if (s.pendingBytes === 0) {
        this.sendQueue.delete(s);
        if (s.endQueued && !s.localEnded && !this.blocked) this.sendData(s, EMPTY, true);
        else if (s.endQueued && !s.localEnded) this.sendQueue.add(s);
      } else if (this.connSendWindow <= 0) break;
    }
    if (this.blocked || this.drainWaiters.size === 0) return;
    for (const s of [...this.drainWaiters]) {
      if (this.blocked) break;
      if (s.pendingBytes > 0 && !s.closed) continue;
      this.drainWaiters.delete(s);
      if (s.closed || !s.wantDrain) continue;
      s.wantDrain = false;
      s.handler.onDrain(s);
    }
  }

  onDrain(): void {
    this.blocked = false;
    this.flushQueue();
    if (this.goawaySent && this.streams.size === 0) this.shutdown();
  }

  /** Writes our frames; false when the socket asks us to wait for onDrain. */
  private writeRaw(b: Uint8Array): boolean {
    if (this.closed) return false;
    return this.conn.write(b);
  }

  private control(frame: Uint8Array): void {
    if (this.processing) this.out.push(frame);
    else if (!this.writeRaw(frame)) this.blocked = true;
  }

  private flushControl(): void {
    if (this.out.length === 0) return;
    // A peer that sends PINGs, SETTINGS or resets without reading our answers would grow our write
    // queue without bound: past CONTROL_BACKLOG unread bytes it is cut off (ENHANCE_YOUR_CALM).
    if (this.conn.writableLength > CONTROL_BACKLOG) {
      this.out = [];
      return this.connectionError(new H2Error(H2Code.ENHANCE_YOUR_CALM, "Peer does not read our frames"));
    }
    const b = this.out.length === 1 ? this.out[0]! : concatBytes(this.out);
    this.out = [];
    if (!this.writeRaw(b)) this.blocked = true;
  }

  // ---- streams: open, respond, reset, close ------------------------------------------------

  /** Client: opens a stream with a request header block (not ending it). */
  openStream(fields: readonly (readonly [string, string])[]): H2Stream {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const s = new H2Stream(id, this, this.peerInitialWindow, STREAM_WINDOW);
    this.streams.set(id, s);
    if (!this.writeRaw(encodeHeadersFrames(id, encodeHeaders(fields), false, this.peerMaxFrameSize))) this.blocked = true;
    return s;
  }

  /** Server: the response header block; `end` closes our side at once (refusals). */
  respond(s: H2Stream, fields: readonly (readonly [string, string])[], end: boolean): void {
    if (s.closed) return;
    if (end) s.localEnded = true;
    if (!this.writeRaw(encodeHeadersFrames(s.id, encodeHeaders(fields), end, this.peerMaxFrameSize))) this.blocked = true;
    if (end) this.maybeClose(s);
  }

  /**
   * H2Stream.close(). After the peer's END_STREAM, with nothing of ours
   * queued, it is a clean close: our END_STREAM (when the socket has room;
   * else once it drains). Otherwise the stream did not finish: RST_STREAM
   * CANCEL, so the peer cannot take a cut-off stream for a complete one.
   */
  streamClose(s: H2Stream): void {
    if (s.closed) return;
    if (!s.remoteEnded || s.pendingBytes > 0) return this.resetStream(s, H2Code.CANCEL, null);
    if (!s.localEnded) {
      if (this.blocked) {
        s.endQueued = true;
        this.sendQueue.add(s);
        return;
      }
      this.sendData(s, EMPTY, true); // closes the stream when nothing unread is left
    }
    if (!s.closed) this.closeStream(s); // whatever the reader left unread is dropped
  }

  /** Our RST_STREAM (the reader gave up, or a stream error). */
  streamReset(s: H2Stream, code: number): void {
    this.resetStream(s, code, null);
  }

  private resetStream(s: H2Stream, code: number, reason: string | null): void {
    if (s.closed) return;
    this.control(encodeRstStream(s.id, code));
    this.closeStream(s, reason === null ? undefined : new H2Error(code, reason));
  }

  private maybeClose(s: H2Stream): void {
    if (s.localEnded && s.remoteEnded && s.inbox.length === 0 && s.pendingBytes === 0) this.closeStream(s);
  }

  private closeStream(s: H2Stream, err?: Error): void {
    if (s.closed) return;
    s.closed = true;
    this.streams.delete(s.id);
    this.sendQueue.delete(s);
    this.drainWaiters.delete(s);
    // Credit what a paused reader will never consume, so other streams keep their share of the connection window.
    const held = s.inboxBytes;
    s.inbox = [];
    s.inboxBytes = 0;
    s.pending = [];
    s.pendingBytes = 0;
    if (held > 0 && !this.closed) this.creditConn(held);
    // Like a socket, onClose arrives after the call that caused it returns.
    queueMicrotask(() => s.handler.onClose(s, err));
    this.owner.onStreamClosed(this, s);
    if ((this.goawaySent || this.goawayReceived) && this.streams.size === 0) this.shutdown();
  }

  // ---- the connection's end ---------------------------------------------------------------

  /** Graceful: no new streams; the connection ends when the open ones have. */
  goaway(code: number = H2Code.NO_ERROR, debug = ""): void {
    if (this.closed || this.goawaySent) return;
    this.goawaySent = true;
    this.control(encodeGoaway(this.lastPeerStream, code, debug));
    if (this.streams.size === 0) this.shutdown();
  }

  /** A connection error: GOAWAY with the code, every stream fails, FIN. */
  connectionError(e: H2Error): void {
    if (this.closed) return;
    const pending = this.out;
    this.out = [];
    this.writeRaw(concatBytes([...pending, encodeGoaway(this.lastPeerStream, e.h2Code, e.message)]));
    this.terminate(e);
  }

  /** Everything done: flush, FIN (the peer closes its side; the owner's sweep bounds the wait). */
  private shutdown(): void {
    if (this.closed) return;
    this.flushControl();
    this.terminate(null);
  }

  private terminate(err: ProxyError | null): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of [...this.streams.values()]) this.closeStream(s, err ?? new ProxyError("DOWNSTREAM_RESET", "downstream", "HTTP/2 connection closed"));
    this.conn.end();
    this.owner.onConnectionClosed(this, err);
  }

  /** Close now (drain deadline). */
  abort(): void {
    if (!this.closed) this.terminate(new ProxyError("DRAINING", "internal", "Connection closed at the drain deadline"));
    this.conn.close();
  }

  onEnd(): void {
    // The peer's FIN: no frame can follow, so no stream can end cleanly any more (§8.5: a TCP end is not END_STREAM).
    if (this.closed) return;
    if (this.streams.size === 0) this.shutdown();
    else this.terminate(new ProxyError("DOWNSTREAM_RESET", "downstream", "Peer closed the connection with streams open"));
  }

  onClose(_c: Conn, err?: Error): void {
    if (!this.closed) this.terminate(err ? new ProxyError("DOWNSTREAM_RESET", "downstream", `Connection lost: ${err.message}`) : null);
  }
}

