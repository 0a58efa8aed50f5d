/**
 * One client connection on a single-tunnel listener (sni, tcp, HTTP/1.1
 * CONNECT, SOCKS5), from accept to its one outcome record:
 *
 *   [inbound PROXY header] → preamble (the kind's parser + policy) → dial
 *     (upstream/) → [what the client is told] → Relay → linger → done
 *
 * A FIN, a reset or a deadline is handled here in every phase, once:
 * - a client that half-closes before its preamble is complete is refused
 *   with the kind's `incomplete` code and no answer;
 * - a client FIN while dialing (hello + data + FIN in one write, a health
 *   check) is remembered and passed on to the upstream once it is up;
 * - upstream bytes or FIN that arrive before the relay owns the connection
 *   (a server that speaks first) are held and passed on in order;
 * - a refusal is answered with the kind's encoder (TLS alert, HTTP status,
 *   SOCKS reply), then the session half-closes and lingers, reading and
 *   discarding, so the answer is not lost to a TCP reset.
 */
import { idleExpired, monotonicMs } from "../runtime/mod.ts";
import type { AccessList } from "../auth/mod.ts";
import type { ListenerBase } from "../config/types.ts";
import { asProxyError, type ErrorCode, ProxyError } from "../errors/mod.ts";
import { connIdText, type Logger, nextConnSeq } from "../log/mod.ts";
import { formatPeer, ProxyHeaderParser } from "../proto/mod.ts";
import { type KernelPromotion, readInboundProxy, Relay, type RelayOwner } from "../relay/mod.ts";
import type { Conn } from "../runtime/types.ts";
import type { StatsWriter } from "../stats/mod.ts";
import { type Dialed, type Endpoints, proxyHeader } from "../upstream/mod.ts";
import type { FrontConnection, Preamble } from "./types.ts";

export enum Phase {
  ProxyHeader,
  Preamble,
  Dialing,
  Relaying,
  Closing,
  Done,
}

/** How long a refused client may keep its half of the connection after our answer. */
export const LINGER_MS = 1000;

/**
 * Client bytes held while the upstream is being reached (bytes pipelined
 * behind a ClientHello, a CONNECT head or a SOCKS5 request); past this the
 * client is paused (not refused) until the relay starts.
 */
export const EARLY_BYTES = 65_536;

/** What a session needs from its listener. */
export interface FrontHost {
  readonly config: ListenerBase;
  readonly access: AccessList;
  readonly stats: StatsWriter;
  readonly listenerSlot: number;
  readonly log: Logger;
  /** Set when established relays may move to the kernel relay (plain sockets both sides only). */
  readonly kernelRelay?: KernelPromotion | null;
  /**
   * Connection records are written (log.connections and the info level): the
   * client's address is then read at accept, while the socket surely has it.
   * False: it is read on first use (policy, PROXY header, tunnel open), which
   * saves two getpeername calls per connection nobody asks about. Absent: at accept.
   */
  readonly logConnections?: boolean;
  now(): number;
  sessionEnded(s: FrontSession): void;
}

export class FrontSession implements FrontConnection, RelayOwner, Endpoints {
  phase: Phase;
  /** Coarse ms when the current phase's deadline started (sweeper). */
  phaseStartedMs: number;
  /**
   * The client: the socket's peer, or who the inbound PROXY header named. Read
   * at accept when a record will need it (after a close some runtimes report
   * ""), else on first use.
   */
  private peerAddress: string | null = null;
  private peerPort = 0;
  get clientAddress(): string {
    if (this.peerAddress === null) this.readPeer();
    return this.peerAddress!;
  }
  get clientPort(): number {
    if (this.peerAddress === null) this.readPeer();
    return this.peerPort;
  }
  private readPeer(): void {
    this.peerAddress = this.client.remoteAddress;
    this.peerPort = this.client.remotePort;
  }
  /** The route's stats slot, set by the preamble once it chose one; -1 before. */
  routeSlot = -1;
  relay: Relay | null = null;
  upstream: Dialed | null = null;
  errorCode: ErrorCode | null = null;
  private readonly seq = nextConnSeq();
  private idText: string | null = null;
  /** The connection's id (`conn` in its log records; sent to a tunnel target's agent), built on first use. */
  get id(): string {
    return (this.idText ??= connIdText(this.seq));
  }
  readonly startedAt = monotonicMs();
  private firstByteAt = 0;
  /** monotonicMs when the dial started, for the connect histogram. */
  private dialStartedAt = 0;
  private proxyIn: ProxyHeaderParser | null = null;
  /** Client bytes read while dialing (allocated on use). */
  private early: Uint8Array[] | null = null;
  private earlyBytes = 0;
  private clientEnded = false;
  /** Upstream events before the relay owns it. */
  private upstreamEarly: Uint8Array[] | null = null;
  private upstreamEnded = false;
  private upstreamClosed: { err: Error | undefined } | null = null;
  /** The client went away while the dial was under way: the session ends when the dial settles (see onClose). */
  private clientGone = false;

  constructor(readonly client: Conn, readonly host: FrontHost, readonly preamble: Preamble, nowMs: number) {
    if (host.logConnections !== false) this.readPeer();
    this.phaseStartedMs = nowMs;
    const accept = host.config.acceptProxy;
    if (accept !== "none") {
      this.proxyIn = new ProxyHeaderParser({ accept });
      this.phase = Phase.ProxyHeader;
    } else this.phase = Phase.Preamble;
    if (this.phase === Phase.Preamble && preamble.immediate) this.startDial();
  }

  get localAddress(): string {
    return this.client.localAddress;
  }
  get localPort(): number {
    return this.client.localPort;
  }

  /** An answer during the preamble (SOCKS5 method choice, auth status). */
  reply(bytes: Uint8Array): void {
    this.client.write(bytes);
  }

  // ---- events of the client, and of the upstream before the relay owns it ----

  onData(conn: Conn, chunk: Uint8Array): void {
    if (conn !== this.client) return this.holdUpstream(conn, chunk);
    switch (this.phase) {
      case Phase.ProxyHeader:
        this.firstByteAt ||= monotonicMs();
        return this.onProxyHeader(chunk);
      case Phase.Preamble:
        this.firstByteAt ||= monotonicMs();
        return this.onPreamble(chunk);
      case Phase.Dialing:
        return this.holdEarly(chunk);
      default:
        return; // Closing: discard while the answer drains
    }
  }

  private onProxyHeader(chunk: Uint8Array): void {
    let r;
    try {
      r = readInboundProxy(this.proxyIn!, chunk, this.host.access);
    } catch (err) {
      // The sender is a load balancer, not the client: no answer in the client's protocol.
      return this.fail(asProxyError(err, "PROXY_PROTOCOL", "downstream"), false);
    }
    if (r === null) return;
    if (r.client !== null) {
      this.peerAddress = r.client.address;
      this.peerPort = r.client.port;
    }
    this.proxyIn = null;
    this.phase = Phase.Preamble;
    this.phaseStartedMs = this.host.now();
    if (this.preamble.immediate) this.startDial();
    for (const rest of r.rest) if (rest.length > 0) this.onData(this.client, rest);
  }

  private onPreamble(chunk: Uint8Array): void {
    let done;
    try {
      done = this.preamble.push(chunk, this);
    } catch (err) {
      return this.fail(asProxyError(err, "INTERNAL"), true);
    }
    if (!done || this.phase !== Phase.Preamble) return;
    this.host.stats.handshake(this.host.listenerSlot, (monotonicMs() - this.firstByteAt) / 1000);
    this.startDial();
  }

  private startDial(): void {
    this.phase = Phase.Dialing;
    this.dialStartedAt = monotonicMs();
    this.phaseStartedMs = this.host.now();
    for (const c of this.preamble.takeRest()) if (c.length > 0) this.holdEarly(c);
    this.preamble.dial(this).then((up) => this.dialed(up), (err) => this.dialFailed(err));
  }

  /** Client bytes before the upstream is up: kept in order, the client paused past EARLY_BYTES. */
  private holdEarly(chunk: Uint8Array): void {
    (this.early ??= []).push(chunk);
    this.earlyBytes += chunk.length;
    if (this.earlyBytes >= EARLY_BYTES) this.client.pause();
  }

  /** A server that speaks first may do so before the relay owns its connection. */
  private holdUpstream(conn: Conn, chunk: Uint8Array): void {
    (this.upstreamEarly ??= []).push(chunk);
    conn.pause();
  }

  onDrain(): void {}

  onEnd(conn: Conn): void {
    if (conn !== this.client) {
      this.upstreamEnded = true;
      return;
    }
    switch (this.phase) {
      case Phase.ProxyHeader:
      case Phase.Preamble:
        // It will never finish its preamble.
        return this.fail(new ProxyError(this.preamble.incomplete, "downstream", "The client closed before its preamble was complete"), false);
      case Phase.Dialing:
        this.clientEnded = true; // passed on once the upstream is up
        return;
      case Phase.Closing:
        return this.client.close();
    }
  }

  onClose(conn: Conn, err?: Error): void {
    if (conn !== this.client) {
      this.upstreamClosed = { err };
      return;
    }
    if (this.phase === Phase.Done) return;
    if (this.phase !== Phase.Closing && this.errorCode === null && err) this.errorCode = "DOWNSTREAM_RESET";
    if (this.phase === Phase.Dialing) {
      // Counted until the dial settles: a client that resets and reconnects must not hold more
      // dials under way than max_connections (or HTTP/2 max_streams) allows (the "rapid reset" pattern).
      this.clientGone = true;
      return;
    }
    this.done();
  }

  /** True once nothing wants the dial any more: stop trying further targets. */
  get abandoned(): boolean {
    return this.phase !== Phase.Dialing || this.clientGone;
  }

  // ---- the upstream --------------------------------------------------------------

  private dialed(up: Dialed): void {
    if (this.abandoned) {
      // The client went away (or a deadline ended it) meanwhile.
      up.conn.close();
      up.release();
      if (this.clientGone) this.done();
      return;
    }
    this.upstream = up;
    const connectSeconds = (monotonicMs() - this.dialStartedAt) / 1000;
    this.host.stats.connect(this.host.listenerSlot, connectSeconds);
    if (this.routeSlot >= 0) this.host.stats.connect(this.routeSlot, connectSeconds);
    const toUpstream: Uint8Array[] = [];
    const header = proxyHeader(up.proxyProtocol, this);
    if (header !== null) toUpstream.push(header);
    if (this.early !== null) for (const c of this.early) toUpstream.push(c);
    this.early = null;
    const answer = this.preamble.accepted(up, this);
    if (answer !== null) this.client.write(answer);
    this.phase = Phase.Relaying;
    // Small records (handshakes, request/response turns) must not wait for Nagle.
    up.conn.setNoDelay(true);
    // Plain sockets on both sides may later leave JavaScript for the kernel relay (not TLS, not a tunnel stream).
    const k = this.host.kernelRelay ?? null;
    const relay = (this.relay = new Relay(this.client, up.conn, this, k !== null && k.kernel.canAdopt(this.client, up.conn) ? k : null));
    relay.start(toUpstream, this.upstreamEarly, this.clientEnded, this.upstreamEnded);
    this.upstreamEarly = null;
    if (this.upstreamClosed !== null && !relay.isFinished) relay.onClose(up.conn, this.upstreamClosed.err);
  }

  private dialFailed(err: unknown): void {
    if (this.clientGone) return this.done();
    const e = asProxyError(err, "UPSTREAM_CONNECT_REFUSED", "upstream");
    if (this.host.log.enabled("debug")) {
      this.host.log.debug("upstream failed", { listener: this.host.config.name, conn: this.id, client: this.clientText, error: e.code, reason: e.message });
    }
    this.fail(e, true);
  }

  // ---- relay callbacks -------------------------------------------------------------

  relayBytes(_r: Relay, toUpstream: number, toClient: number): void {
    const st = this.host.stats;
    st.bytes(this.host.listenerSlot, toUpstream, toClient);
    if (this.routeSlot >= 0) st.bytes(this.routeSlot, toUpstream, toClient);
  }

  relayClosed(_r: Relay, code: ErrorCode | null): void {
    if (code !== null && this.errorCode === null) this.errorCode = code;
    this.done();
  }

  // ---- endings ------------------------------------------------------------------------

  /** Sweeper: the handshake, idle and linger deadlines. */
  sweep(nowMs: number): void {
    const cfg = this.host.config;
    switch (this.phase) {
      case Phase.ProxyHeader:
      case Phase.Preamble:
        if (nowMs - this.phaseStartedMs >= cfg.handshakeTimeoutMs) {
          this.fail(new ProxyError("HANDSHAKE_TIMEOUT", "downstream", `No complete preamble within ${cfg.handshakeTimeoutMs} ms`), true, nowMs);
        }
        return; // Dialing is bounded by the dial's own timeout.
      case Phase.Relaying:
        this.relay!.refresh(); // a kernel relay's bytes and last activity
        if (idleExpired(nowMs, this.relay!.lastActiveMs, cfg.idleTimeoutMs)) this.relay!.abort("IDLE_TIMEOUT");
        return;
      case Phase.Closing:
        if (nowMs - this.phaseStartedMs >= LINGER_MS) {
          this.client.close();
          this.done();
        }
        return;
    }
  }

  /** One connection carries one tunnel: nothing to refuse later. */
  drain(): void {}

  /** Drain deadline: close whatever is still open. */
  abort(code: ErrorCode): void {
    if (this.relay !== null && !this.relay.isFinished) return this.relay.abort(code);
    if (this.phase === Phase.Done) return;
    this.errorCode ??= code;
    this.client.close();
    this.done();
  }

  /**
   * Refuse the client: the kind's answer (when `answer` and the client got as
   * far as its preamble), then half-close and linger.
   */
  fail(err: ProxyError, answer: boolean, nowMs = this.host.now()): void {
    if (this.phase >= Phase.Closing) return;
    this.errorCode = err.code;
    if (this.host.log.enabled("debug")) {
      this.host.log.debug("connection refused", { listener: this.host.config.name, conn: this.id, client: this.clientText, error: err.code, reason: err.message });
    }
    const answerable = answer && (this.phase === Phase.Preamble || this.phase === Phase.Dialing);
    // Asked before the phase changes: a kind may answer a failed dial differently from a bad preamble.
    const bytes = answerable ? this.preamble.refusal(err, this) : null;
    this.early = null;
    this.phase = Phase.Closing;
    this.phaseStartedMs = nowMs;
    if (bytes !== null) this.client.write(bytes);
    this.client.end();
    this.client.resume(); // read and discard until the client closes or the linger ends
  }

  private done(): void {
    if (this.phase === Phase.Done) return;
    this.phase = Phase.Done;
    this.upstream?.release();
    this.host.sessionEnded(this);
  }

  /** "ip:port" of the client, for logs. */
  get clientText(): string {
    return formatPeer(this.clientAddress, this.clientPort);
  }

  /** The session's one log line (its message and fields are the kind's), built only when it is written. */
  logOutcome(log: Logger, listener: string, seconds: number): void {
    const fields: Record<string, unknown> = { listener, conn: this.id, client: this.clientText };
    this.preamble.logFields(this, fields);
    fields["bytes_in"] = this.relay?.bytesToUpstream ?? 0;
    fields["bytes_out"] = this.relay?.bytesToClient ?? 0;
    fields["duration_ms"] = Math.round(seconds * 1000);
    fields["error"] = this.errorCode;
    log.info(this.preamble.logMessage, fields);
  }

  /** Seconds since accept. */
  seconds(): number {
    return (monotonicMs() - this.startedAt) / 1000;
  }
}
