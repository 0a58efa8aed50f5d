/**
 * One tunnel session from the agent's side: the smux client over the dialed
 * connection, the control stream (hello → welcome | error, then go-away,
 * errors), and the streams the edge opens to this agent's services. The
 * `Agent` (agent.ts) keeps one current session and reconnects.
 */
import { wallMs } from "../runtime/mod.ts";
import { ProxyError } from "../errors/mod.ts";
import { MuxSession } from "../mux/session.ts";
import type { MuxStream } from "../mux/stream.ts";
import type { MuxTicker } from "../mux/ticker.ts";
import {
  CONTROL_MAX_MESSAGE,
  encodeTunnelMessage,
  type HelloMessage,
  OPEN_MAX_MESSAGE,
  type OpenMessage,
  type RemoteMessage,
  TUNNEL_VERSION,
  TunnelErrorCode,
  type TunnelMessage,
  TunnelMessageDecoder,
  type WelcomeMessage,
} from "../proto/tunnel_control.ts";
import type { Conn, ConnHandler } from "../runtime/types.ts";
import { FirstMessage, handOver, TUNNEL_MAX_FRAME } from "../tunnel/transport/mod.ts";
import { EdgeRefusal, type Dialed } from "./dial.ts";

export interface SessionEvents {
  /** The edge accepted the hello. */
  welcome(s: AgentSession, w: WelcomeMessage): void;
  /** The edge refused (hello) or reported an error on the control stream. */
  refused(s: AgentSession, r: EdgeRefusal): void;
  /** The edge asked us to go: finish streams, reconnect after `delayMs`. */
  goAway(s: AgentSession, delayMs: number, reason: string): void;
  /** The edge opened a stream for one of our services; `rest` are bytes after the open. */
  incoming(s: AgentSession, stream: Conn, open: OpenMessage): void;
  /** The edge opened an operator stream (shell, files, reload), already allowed by the operator's token; answer ok or error. */
  remote(s: AgentSession, stream: Conn, open: RemoteMessage): void;
  /** Session over. */
  closed(s: AgentSession, err?: ProxyError): void;
}

let nextLocalId = 1;

/** Per-session settings from the agent's config. */
export interface SessionLimits {
  /** How long an open may wait for the far end or the local service. */
  openTimeoutMs: number;
  /** Dial to welcome. */
  helloTimeoutMs: number;
  /** smux v2 window advertised per stream (maxStreamBuffer). */
  streamWindow: number;
  /** Streams at once, both directions. */
  maxStreams: number;
}

/** How long a graceful leave may take before the session is just closed. */
const LEAVE_TIMEOUT_MS = 30_000;

export class AgentSession implements ConnHandler {
  readonly localId = nextLocalId++;
  readonly mux: MuxSession;
  private readonly control: MuxStream;
  private readonly ctl = new TunnelMessageDecoder(CONTROL_MAX_MESSAGE, "upstream");
  welcomed: WelcomeMessage | null = null;
  /** The edge's error message on the control stream, if it refused us. */
  refusal: EdgeRefusal | null = null;
  draining = false;
  closed = false;
  readonly startedAt = wallMs();
  /** Data streams (both directions) open on this session. */
  streams = 0;
  private helloTimer: ReturnType<typeof setTimeout> | null;
  /** A graceful leave is under way (go-away and no streams left). */
  private leaving = false;
  private leaveTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly dialed: Dialed,
    hello: Omit<HelloMessage, "type" | "version">,
    private readonly events: SessionEvents,
    ticker: MuxTicker,
    private readonly limits: SessionLimits,
  ) {
    const mux = new MuxSession(dialed.conn, {
      client: true,
      version: 2,
      ticker,
      maxStreamBuffer: limits.streamWindow,
      maxFrameSize: TUNNEL_MAX_FRAME,
      maxStreams: limits.maxStreams,
    });
    this.mux = mux;
    mux.onStream = (s) => this.onIncoming(s);
    mux.onClosed = (_m, err) => this.onMuxClosed(err);
    this.control = mux.openStream();
    this.control.setHandler(this);
    this.control.write(encodeTunnelMessage({ type: "hello", version: TUNNEL_VERSION, ...hello }));
    for (const r of dialed.rest) mux.onData(dialed.conn, r);
    dialed.conn.resume();
    this.helloTimer = setTimeout(() => {
      this.helloTimer = null;
      if (this.welcomed === null && !this.closed) {
        this.close(new ProxyError("HANDSHAKE_TIMEOUT", "upstream", `no welcome from the edge within ${limits.helloTimeoutMs} ms`));
      }
    }, limits.helloTimeoutMs);
  }

  // ---------------------------------------------------------------- control stream

  onData(_c: Conn, chunk: Uint8Array): void {
    this.ctl.push(chunk);
    for (;;) {
      let m: TunnelMessage | null;
      try {
        m = this.ctl.next();
      } catch (e) {
        this.close(e as ProxyError);
        return;
      }
      if (m === null || this.closed) return;
      this.onControl(m);
    }
  }

  private onControl(m: TunnelMessage): void {
    switch (m.type) {
      case "welcome":
        if (this.welcomed !== null) return;
        this.welcomed = m;
        if (this.helloTimer) clearTimeout(this.helloTimer);
        this.helloTimer = null;
        this.events.welcome(this, m);
        return;
      case "error": {
        const r = new EdgeRefusal(m.code, m.message, null);
        this.events.refused(this, r);
        this.close(new ProxyError("AUTH_DENIED", "upstream", r.message));
        return;
      }
      case "goaway":
        this.draining = true;
        this.events.goAway(this, m.reconnectMs, m.reason);
        this.closeIfIdle();
        return;
      default:
        this.close(new ProxyError("TUNNEL_PROTOCOL", "upstream", `unexpected ${m.type} on the control stream`));
    }
  }

  onDrain(): void {}
  onEnd(): void {
    // Leaving: this is the edge's answer to our FIN; the control stream is done once both went.
    if (this.leaving) return;
    // Otherwise the edge finished the control stream: no more control messages; the session ends with it.
    this.close();
  }
  onClose(): void {
    if (this.closed) return;
    // Leaving: both FINs went on the control stream; the edge closes the connection once its
    // side of every stream is done (it may still be delivering what we sent). Else: over.
    if (!this.leaving) this.close();
  }

  // ---------------------------------------------------------------- streams

  private onIncoming(s: MuxStream): void {
    if (this.welcomed === null) {
      s.close();
      return;
    }
    this.streams++;
    const fm: FirstMessage = new FirstMessage(s, this.limits.openTimeoutMs, (err, msg) => {
      if (err !== null) {
        s.close();
        this.streamDone();
        return;
      }
      if (msg!.type === "remote") {
        this.events.remote(this, handOver(fm), msg as RemoteMessage);
        return;
      }
      if (msg!.type !== "open") {
        s.write(encodeTunnelMessage({ type: "error", code: TunnelErrorCode.PROTOCOL, message: `expected open, got ${msg!.type}` }, OPEN_MAX_MESSAGE));
        s.end();
        this.streamDone();
        return;
      }
      this.events.incoming(this, handOver(fm), msg as OpenMessage);
    }, "upstream");
  }

  /** Opens a stream to `service` on the edge (source role), or an operator stream; resolves after the edge's ok, paused, ready to relay. */
  openService(open: OpenMessage | RemoteMessage): Promise<Conn> {
    return new Promise<Conn>((resolve, reject) => {
      if (this.closed || this.welcomed === null) {
        reject(new ProxyError("UPSTREAM_RESET", "upstream", "not connected to the edge"));
        return;
      }
      let s: MuxStream;
      try {
        s = this.mux.openStream();
      } catch (e) {
        reject(e as Error);
        return;
      }
      this.streams++;
      s.write(encodeTunnelMessage(open, OPEN_MAX_MESSAGE));
      const fm: FirstMessage = new FirstMessage(s, this.limits.openTimeoutMs, (err, msg) => {
        if (err !== null) {
          s.close();
          this.streamDone();
          reject(err);
          return;
        }
        if (msg!.type === "ok") {
          resolve(handOver(fm));
          return;
        }
        s.close();
        this.streamDone();
        if (msg!.type === "error") reject(new EdgeRefusal(msg!.code, msg!.message, null));
        else reject(new ProxyError("TUNNEL_PROTOCOL", "upstream", `the edge answered ${msg!.type} to open`));
      }, "upstream");
    });
  }

  /** A data stream of this session finished (relay ended or refused). */
  streamDone(): void {
    this.streams--;
    this.closeIfIdle();
  }

  /** After a go-away, the session leaves once its last stream is done. */
  private closeIfIdle(): void {
    if (this.draining && this.streams <= 0 && !this.closed) this.leave();
  }

  /**
   * Graceful leave, so nothing queued is lost on either side: wait until every
   * data stream is gone from this side of the session (FIN both ways, after
   * the flush that sent ours), then FIN the control stream. The edge answers
   * with its FIN and closes the connection once its side of every stream is
   * done too (it may still hold bytes we sent for a slow reader). Bounded by
   * LEAVE_TIMEOUT_MS, then the session is closed as it is.
   */
  private leave(): void {
    if (this.leaving || this.closed) return;
    this.leaving = true;
    const deadline = wallMs() + LEAVE_TIMEOUT_MS;
    const step = () => {
      if (this.closed) return;
      if (wallMs() > deadline) return this.close();
      // Only the control stream left: send its FIN.
      if (this.mux.numStreams > 1) return void (this.leaveTimer = setTimeout(step, 10));
      this.control.end();
      this.leaveTimer = setTimeout(() => this.close(), Math.max(0, deadline - wallMs()));
    };
    step();
  }


  private onMuxClosed(err?: ProxyError): void {
    if (this.closed) return;
    this.closed = true;
    if (this.helloTimer) clearTimeout(this.helloTimer);
    if (this.leaveTimer) clearTimeout(this.leaveTimer);
    this.events.closed(this, err);
  }

  close(err?: ProxyError): void {
    if (this.closed) return;
    this.mux.close(err);
  }
}
