/**
 * An smux session (xtaci/smux v1/v2 compatible) over one runtime `Conn`.
 *
 * Receive path (`onData`): push the chunk into the frame decoder, then one
 * `switch` per frame, as Go's recvLoop. PSH payloads are views of the read
 * chunk and go straight to the stream consumer's `onData` unless it is paused;
 * then they are buffered, bounded per stream (v2 window) and per session
 * (`maxReceiveBuffer`: past it the session pauses its connection, as Go's
 * recvLoop stops reading when its token bucket is empty).
 *
 * Send path: see writer.ts (batched per microtask, fair round-robin).
 *
 * Time enters through `tick(nowMs)` (a MuxTicker or the owner calls it).
 */
import { type ErrorCode, type ErrorSource, ProxyError } from "../errors/mod.ts";
import { readU32LE, SMUX_INITIAL_PEER_WINDOW, SmuxCmd, SmuxFrameDecoder } from "../proto/smux.ts";
import type { Conn, ConnHandler } from "../runtime/mod.ts";
import { type MuxOptions, resolveMuxOptions, type ResolvedMuxOptions } from "./config.ts";
import { MuxStream } from "./stream.ts";
import type { MuxTicker } from "./ticker.ts";
import { MuxWriter } from "./writer.ts";

export interface MuxSessionOptions extends MuxOptions {
  /** Registers the session for keepalive ticks until it closes. Without one, call `tick()` yourself. */
  ticker?: MuxTicker;
}

export interface MuxSessionStats {
  streams: number;
  streamsOpened: number;
  streamsAccepted: number;
  streamsRefused: number;
  framesIn: number;
  framesOut: number;
  /** Wire bytes, headers included. */
  bytesIn: number;
  bytesOut: number;
  /** PSH payload bytes for streams that no longer exist (or after their FIN): dropped, as Go does. */
  bytesDiscarded: number;
  /** Outgoing bytes queued in streams, not yet framed. */
  sendPending: number;
  /** Incoming bytes held for paused consumers. */
  recvBuffered: number;
  /** The session stopped reading its connection (receive buffer full). */
  readPaused: boolean;
}


export class MuxSession implements ConnHandler {
  readonly opts: ResolvedMuxOptions;
  readonly version: 1 | 2;
  /** Called for each stream the peer opens. Set its handler (or `pause()` it) before returning. */
  onStream: ((stream: MuxStream) => void) | null = null;
  /** Called once when the session ends; `err` is set unless it was closed locally without one. */
  onClosed: ((session: MuxSession, err?: ProxyError) => void) | null = null;

  private readonly streams = new Map<number, MuxStream>();
  private nextId: number;
  private readonly decoder: SmuxFrameDecoder;
  /** Whose fault a failure is: the peer dialed us (downstream) or we dialed it (upstream). */
  private readonly source: ErrorSource;
  private readonly ticker: MuxTicker | null;
  private readonly streamRecvLimit: number;
  private readonly halfWindow: number;

  private readonly writer: MuxWriter;

  // receive state
  private recvBuffered = 0;
  private readPaused = false;
  private deliverQ: MuxStream[] = [];
  private deliverScheduled = false;
  private readonly deliverBound = () => this.runDeliver();

  // time state
  private dataReady = false;
  private lastRecvMs = -1;
  private lastNopMs = -1;

  private closedFlag = false;
  private closeErr: ProxyError | undefined;
  private counters = {
    streamsOpened: 0,
    streamsAccepted: 0,
    streamsRefused: 0,
    framesIn: 0,
    bytesIn: 0,
    bytesDiscarded: 0,
  };

  constructor(readonly conn: Conn, options: MuxSessionOptions) {
    const { ticker, ...rest } = options;
    this.opts = resolveMuxOptions(rest);
    this.version = this.opts.version;
    this.nextId = this.opts.client ? 1 : 0;
    this.source = this.opts.client ? "upstream" : "downstream";
    this.decoder = new SmuxFrameDecoder(this.version);
    // Go's sender may run up to initialPeerWindow before our first UPD reaches it;
    // ×2 tolerates Go's concurrent writers on one stream, which each see the same window.
    this.streamRecvLimit = 2 * Math.max(SMUX_INITIAL_PEER_WINDOW, this.opts.maxStreamBuffer);
    this.halfWindow = Math.floor(this.opts.maxStreamBuffer / 2);
    this.ticker = ticker ?? null;
    this.writer = new MuxWriter(this, this.version, this.opts);
    conn.setHandler(this);
    conn.setNoDelay(true);
    this.ticker?.add(this);
  }

  // ---------------------------------------------------------------- public API

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Why the session ended, when it ended with an error. */
  get closeError(): ProxyError | undefined {
    return this.closeErr;
  }

  get numStreams(): number {
    return this.streams.size;
  }

  stats(): MuxSessionStats {
    return {
      ...this.counters,
      framesOut: this.writer.framesOut,
      bytesOut: this.writer.bytesOut,
      streams: this.streams.size,
      sendPending: this.writer.sendPending,
      recvBuffered: this.recvBuffered,
      readPaused: this.readPaused,
    };
  }

  /** Opens a stream; SYN leaves with the next flush, data may follow at once. */
  openStream(): MuxStream {
    if (this.closedFlag) throw new ProxyError(this.resetCode(), this.source, "Cannot open a mux stream: the session is closed");
    if (this.streams.size >= this.opts.maxStreams) {
      throw new ProxyError(
        "LISTENER_FULL",
        "internal",
        `Cannot open a mux stream: ${this.streams.size} streams are open (maxStreams ${this.opts.maxStreams})`,
      );
    }
    const id = this.nextId + 2;
    // Go: "stream id overflows, should start a new connection" (ErrGoAway).
    if (id > 0xffffffff) {
      throw new ProxyError("DRAINING", "internal", "Cannot open a mux stream: stream ids are used up; open a new session");
    }
    this.nextId = id;
    const s = new MuxStream(id, this, true, SMUX_INITIAL_PEER_WINDOW);
    this.streams.set(id, s);
    this.counters.streamsOpened++;
    this.writer.control(s);
    return s;
  }

  /** Ends the session now: every stream gets onClose, the connection is closed. */
  close(err?: ProxyError): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.closeErr = err;
    this.ticker?.remove(this);
    const open = [...this.streams.values()];
    this.streams.clear();
    this.writer.reset();
    this.deliverQ = [];
    this.recvBuffered = 0;
    this.conn.close();
    const streamErr = open.length > 0
      ? err ?? new ProxyError(this.resetCode(), this.source, "The mux session was closed")
      : undefined;
    for (const s of open) {
      s.closed = true;
      s.sendQ = [];
      s.recvQ = [];
      s.handler.onClose(s, streamErr);
    }
    this.onClosed?.(this, err);
  }

  /**
   * Keepalive clock. Sends NOP every `keepAliveIntervalMs`; ends the session when
   * nothing arrived for `keepAliveTimeoutMs` (unless we stopped reading ourselves);
   * closes streams stuck waiting for a window from a peer that already sent FIN.
   */
  tick(nowMs: number): void {
    if (this.closedFlag) return;
    if (this.lastRecvMs < 0) this.lastRecvMs = this.lastNopMs = nowMs;
    // Go: "recvLoop may block while bucket is 0, in this case, session should not be closed."
    if (this.dataReady || this.readPaused) {
      this.dataReady = false;
      this.lastRecvMs = nowMs;
    }
    const interval = this.opts.keepAliveIntervalMs;
    if (interval === 0) return;
    if (nowMs - this.lastNopMs >= interval) {
      this.lastNopMs = nowMs;
      this.writer.nop();
    }
    const timeout = this.opts.keepAliveTimeoutMs;
    if (nowMs - this.lastRecvMs >= timeout) {
      this.close(
        new ProxyError(
          "IDLE_TIMEOUT",
          this.source,
          `mux session: nothing received from the peer for ${nowMs - this.lastRecvMs} ms (keepAliveTimeoutMs ${timeout})`,
        ),
      );
      return;
    }
    if (this.writer.finWait.size > 0) this.checkFinWait(nowMs, timeout);
  }

  // ------------------------------------------------------------ ConnHandler

  onData(_conn: Conn, chunk: Uint8Array): void {
    if (this.closedFlag) return;
    this.dataReady = true;
    this.counters.bytesIn += chunk.length;
    const d = this.decoder;
    d.push(chunk);
    for (;;) {
      let f;
      try {
        f = d.next();
      } catch (e) {
        this.protocolError((e as ProxyError).message);
        return;
      }
      if (f === null) return;
      this.counters.framesIn++;
      switch (f.cmd) {
        case SmuxCmd.PSH:
          this.onPsh(f.streamId, f.payload);
          break;
        case SmuxCmd.SYN:
          this.onSyn(f.streamId);
          break;
        case SmuxCmd.FIN:
          this.onFin(f.streamId);
          break;
        case SmuxCmd.UPD:
          this.onUpd(f.streamId, f.payload);
          break;
        case SmuxCmd.NOP:
          // Keepalive: arriving at all is the point (dataReady above).
          break;
      }
      if (this.closedFlag) return;
    }
  }

  onDrain(_conn: Conn): void {
    this.writer.onDrain();
  }

  onEnd(_conn: Conn): void {
    // The peer can send no more frames (no FIN, no UPD): the session is over.
    const n = this.streams.size;
    this.close(n > 0 ? new ProxyError(this.resetCode(), this.source, `The mux peer closed the connection with ${n} streams open`) : undefined);
  }

  onClose(_conn: Conn, err?: Error): void {
    if (this.closedFlag) return;
    const n = this.streams.size;
    this.close(
      err || n > 0
        ? new ProxyError(this.resetCode(), this.source, `The mux connection closed${err ? `: ${err.message}` : ""} with ${n} streams open`, {
          cause: err,
        })
        : undefined,
    );
  }

  // ------------------------------------------------------------ receive

  private onPsh(id: number, payload: Uint8Array): void {
    const n = payload.length;
    // DESIGN.md: "a zero-length PSH is ignored".
    if (n === 0) return;
    const s = this.streams.get(id);
    // Go drops data for unknown streams. Data after the peer's FIN can only come from a
    // peer that raced its own Close; the consumer already got onEnd, so drop it too.
    if (s === undefined || s.remoteFin) {
      this.counters.bytesDiscarded += n;
      return;
    }
    if (!s.paused && s.recvBytes === 0) {
      this.deliver(s, payload);
      return;
    }
    s.recvQ.push(payload);
    s.recvBytes += n;
    this.recvBuffered += n;
    // v2: "the sender keeps written - peerConsumed <= peerWindow": a peer past it ignores flow control.
    if (this.version === 2 && s.recvBytes > this.streamRecvLimit) {
      this.protocolError(
        `stream ${id}: the peer sent ${s.recvBytes} bytes the consumer has not read, beyond its window (limit ${this.streamRecvLimit})`,
      );
      return;
    }
    if (!this.readPaused && this.recvBuffered >= this.opts.maxReceiveBuffer) {
      this.readPaused = true;
      this.conn.pause();
    }
  }

  /** Hands bytes to the consumer; v2 reports them as consumed (UPD) per Go's rule. */
  private deliver(s: MuxStream, payload: Uint8Array): void {
    if (this.version === 2) {
      const n = payload.length;
      s.numRead = (s.numRead + n) >>> 0; // modulo 2^32, as on the wire
      s.readSinceUpd += n;
      // Go (stream.go): UPD on the first read and whenever half the window was read since the last one.
      if (!s.updSentOnce || s.readSinceUpd >= this.halfWindow) {
        s.updSentOnce = true;
        s.readSinceUpd = 0;
        s.updPending = true;
        this.writer.control(s);
      }
    }
    s.handler.onData(s, payload);
  }

  private onSyn(id: number): void {
    // DESIGN.md: "the dialing side opens odd stream ids starting at 3, the accepting side even ids starting at 2".
    // Go does not check parity; a wrong one could collide with our own ids, so we refuse it.
    const peerParity = this.opts.client ? 0 : 1;
    if (id === 0 || (id & 1) !== peerParity) {
      this.protocolError(`SYN for stream ${id}: the ${this.opts.client ? "server opens even" : "client opens odd"} stream ids`);
      return;
    }
    // Go ignores a SYN for a stream that is open.
    if (this.streams.has(id)) return;
    if (this.streams.size >= this.opts.maxStreams || this.onStream === null) {
      // Refuse with FIN: the peer reads EOF on that stream; the session lives on.
      // A peer that keeps opening while not reading our FINs is cut off.
      const pending = this.writer.refusalsPending;
      if (pending >= this.opts.maxStreams) {
        this.protocolError(`the peer opened ${pending} streams past maxStreams ${this.opts.maxStreams} without reading the refusals`);
        return;
      }
      this.writer.refuse(id);
      this.counters.streamsRefused++;
      return;
    }
    const s = new MuxStream(id, this, false, SMUX_INITIAL_PEER_WINDOW);
    this.streams.set(id, s);
    this.counters.streamsAccepted++;
    this.onStream(s);
  }

  private onFin(id: number): void {
    const s = this.streams.get(id);
    // Go ignores FIN for unknown streams.
    if (s === undefined || s.remoteFin) return;
    s.remoteFin = true;
    s.updPending = false;
    if (!s.paused && s.recvBytes === 0) this.deliverEnd(s);
    if (!s.closed && s.sendBytes > 0 && !s.inRing) this.writer.finWait.add(s);
  }

  private onUpd(id: number, payload: Uint8Array): void {
    // Go accepts UPD in v1 and never uses the window; so do we.
    if (this.version === 1) return;
    const s = this.streams.get(id);
    if (s === undefined) return;
    const consumed = readU32LE(payload, 0);
    const window = readU32LE(payload, 4);
    // Go: "peer consumed more than sent" (ErrConsumed). Modular: the signed distance must not be negative.
    if (((s.numWritten - consumed) | 0) < 0) {
      this.protocolError(`UPD on stream ${id}: the peer consumed ${consumed} bytes but only ${s.numWritten} were sent (mod 2^32)`);
      return;
    }
    s.peerConsumed = consumed;
    s.peerWindow = window;
    this.writer.windowUpdated(s);
  }

  private deliverEnd(s: MuxStream): void {
    s.endDelivered = true;
    s.handler.onEnd(s);
    if (s.finSent && !s.closed) this.finishStream(s);
  }

  scheduleDeliver(s: MuxStream): void {
    if (s.inDeliverQ || this.closedFlag) return;
    s.inDeliverQ = true;
    this.deliverQ.push(s);
    if (!this.deliverScheduled) {
      this.deliverScheduled = true;
      queueMicrotask(this.deliverBound);
    }
  }

  /** Resumed consumers get their buffered bytes (in a microtask, not inside `resume()`). */
  private runDeliver(): void {
    this.deliverScheduled = false;
    const q = this.deliverQ;
    this.deliverQ = [];
    for (const s of q) {
      s.inDeliverQ = false;
      while (!s.paused && !s.closed && s.recvQ.length > 0) {
        const p = s.recvQ.shift()!;
        s.recvBytes -= p.length;
        this.releaseRecv(p.length);
        this.deliver(s, p);
      }
      if (!s.paused && !s.closed && s.recvBytes === 0 && s.remoteFin && !s.endDelivered) this.deliverEnd(s);
    }
  }

  private releaseRecv(n: number): void {
    this.recvBuffered -= n;
    if (this.readPaused && this.recvBuffered <= this.opts.maxReceiveBuffer / 2 && !this.closedFlag) {
      this.readPaused = false;
      this.conn.resume();
    }
  }

  // ------------------------------------------------------------ stream calls

  streamWrite(s: MuxStream, data: Uint8Array): boolean {
    if (s.finQueued || s.closed) return false;
    const n = data.length;
    if (n === 0) return true;
    if (s.sendBytes + n > this.opts.maxStreamPending) {
      this.streamClose(
        s,
        new ProxyError(
          "INTERNAL",
          "internal",
          `mux stream ${s.id}: ${s.sendBytes + n} bytes queued, over maxStreamPending ${this.opts.maxStreamPending}; the writer must pause when write() returns false`,
        ),
      );
      return false;
    }
    return this.writer.queue(s, data);
  }

  streamEnd(s: MuxStream): void {
    if (s.finQueued || s.closed) return;
    this.writer.end(s);
  }

  streamClose(s: MuxStream, err: ProxyError | undefined): void {
    if (s.closed) return;
    s.closed = true;
    if (s.recvBytes > 0) {
      const n = s.recvBytes;
      s.recvQ = [];
      s.recvBytes = 0;
      this.releaseRecv(n);
    }
    this.streams.delete(s.id);
    this.writer.drop(s);
    s.handler.onClose(s, err);
  }

  /** Both FINs done: the stream is gone. */
  finishStream(s: MuxStream): void {
    s.closed = true;
    this.streams.delete(s.id);
    this.writer.finWait.delete(s);
    s.handler.onClose(s);
  }

  private checkFinWait(nowMs: number, timeout: number): void {
    const w = this.writer;
    for (const s of w.finWait) {
      if (s.closed || s.finSent || s.sendBytes === 0 || w.room(s) > 0) {
        w.finWait.delete(s);
        s.finWaitSinceMs = -1;
        continue;
      }
      if (s.finWaitSinceMs < 0) s.finWaitSinceMs = nowMs;
      else if (nowMs - s.finWaitSinceMs >= timeout) {
        // Go's writer returns EOF here at once ("if fin arrived, future window update is
        // impossible"); we wait a while because an edgemux peer keeps reading after its FIN.
        this.streamClose(
          s,
          new ProxyError(
            this.resetCode(),
            this.source,
            `mux stream ${s.id}: the peer finished the stream and opened no window for ${timeout} ms; ${s.sendBytes} bytes undelivered`,
          ),
        );
      }
    }
  }

  // ------------------------------------------------------------ errors

  private resetCode(): ErrorCode {
    return this.source === "downstream" ? "DOWNSTREAM_RESET" : "UPSTREAM_RESET";
  }

  /** A protocol error ends this session only; the message says what the peer did. */
  private protocolError(message: string): void {
    this.close(new ProxyError("MUX_PROTOCOL", this.source, message.startsWith("smux: ") ? message : `smux: ${message}`));
  }
}
