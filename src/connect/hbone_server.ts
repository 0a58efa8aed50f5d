/**
 * The server side of HBONE: HTTP/2 CONNECT over (m)TLS on a connect
 * listener whose client picked ALPN "h2". One `HboneSession` per
 * connection; each CONNECT stream is a front session (frontdoor/) whose
 * preamble is the stream's HEADERS:
 *
 *   HEADERS → validate (RFC 9113 §8.5) → who (SPIFFE ID of the client
 *   certificate, or a token) → egress and identity policy → resolve and
 *   connect → ":status 200" → Relay(stream, upstream)
 *
 * Answers (DESIGN.md): 200 only once policy passed and the upstream is
 * connected; 400 malformed; 401 no certificate identity; 403 policy;
 * 405 not CONNECT (or POST with x-tun); 431 header list too large; 503
 * upstream unreachable, whatever the reason. A refusal ends the stream
 * (END_STREAM, then RST_STREAM NO_ERROR, §8.1); a tunnel that fails later
 * is reset (RST_STREAM CANCEL). Drain sends GOAWAY; streams already open
 * finish. `forwarded`, `baggage` and `traceparent` are logged with the tunnel.
 */
import { type AccessList, ANONYMOUS, parseProxyAuthorization, type Principal } from "../auth/mod.ts";
import type { ConnectListenerConfig } from "../config/types.ts";
import { asProxyError, type ErrorCode, h2StatusFor, ProxyError } from "../errors/mod.ts";
import { type FrontConnection, type FrontHost, FrontSession, LINGER_MS, ProxyPreamble } from "../frontdoor/mod.ts";
import type { Logger } from "../log/mod.ts";
import { H2Connection, type H2ConnectionOwner, type H2Stream } from "../mux/mod.ts";
import { type Authority, formatPeer, H2Code, H2Error, parseAuthority, readH2RequestFields } from "../proto/mod.ts";
import { type Conn, monotonicMs } from "../runtime/mod.ts";
import type { StatsWriter } from "../stats/mod.ts";
import type { Dialed } from "../upstream/mod.ts";
import type { ConnectListener } from "./listener.ts";

export class HboneSession implements FrontConnection, H2ConnectionOwner, FrontHost {
  readonly h2: H2Connection;
  /** The connection's CONNECT streams, each a front session, until its outcome is recorded. */
  readonly tunnels = new Set<FrontSession>();
  private readonly startedAt = monotonicMs();
  private readonly startedMs: number;
  private endedAtMs = 0;
  private finished = false;
  readonly client: string;

  constructor(readonly conn: Conn, readonly listener: ConnectListener, nowMs: number) {
    this.startedMs = nowMs;
    this.client = formatPeer(conn.remoteAddress, conn.remotePort);
    const cfg = listener.config;
    this.h2 = new H2Connection(conn, this, { role: "server", maxConcurrentStreams: cfg.maxStreams, maxHeaderListBytes: cfg.maxHeaderBytes });
  }

  /** `first`: the bytes that made the dispatcher choose HTTP/2. */
  start(first: Uint8Array): void {
    this.h2.start(first);
  }

  // The H2Connection owns the socket's events; these satisfy FrontConnection for the listener's set.
  onData(): void {}
  onDrain(): void {}
  onEnd(): void {}
  onClose(): void {}

  onStreamHeaders(_c: H2Connection, s: H2Stream, fields: [string, string][], tooLarge: boolean): void {
    // Streams the client reset while we still dial count too: resetting does not buy a client more dials
    // than max_streams at once (the "rapid reset" pattern).
    if (this.tunnels.size >= this.listener.config.maxStreams) {
      this.h2.streamReset(s, H2Code.REFUSED_STREAM);
      return;
    }
    // Client DATA (and an END_STREAM with the HEADERS) waits, bounded by the stream window, until the relay resumes the stream.
    s.pause();
    const t = new FrontSession(s, this, new HbonePreamble(this, s, fields, tooLarge), this.listener.now());
    s.setHandler(t);
    this.tunnels.add(t);
  }

  /** A stream's end reaches its front session as the stream's onClose. */
  onStreamClosed(): void {}

  onConnectionClosed(): void {
    this.endedAtMs = this.listener.now();
    // Tunnels still dialing find their stream closed when the dial returns.
    if (this.tunnels.size === 0) this.finish();
  }

  // ---- FrontHost: what the streams' front sessions read ---------------------------------

  get config(): ConnectListenerConfig {
    return this.listener.config;
  }
  get access(): AccessList {
    return this.listener.access;
  }
  get stats(): StatsWriter {
    return this.listener.stats;
  }
  get listenerSlot(): number {
    return this.listener.listenerSlot;
  }
  get log(): Logger {
    return this.listener.log;
  }
  now(): number {
    return this.listener.now();
  }

  /** A stream's tunnel is over: its error counted on the listener, its log line, and the connection may end. */
  sessionEnded(t: FrontSession): void {
    if (!this.tunnels.delete(t)) return;
    if (t.errorCode !== null) this.listener.stats.error(this.listener.listenerSlot, t.errorCode);
    if (this.listener.logConnections) t.logOutcome(this.listener.log, this.listener.name, t.seconds());
    if (this.h2.closed && this.tunnels.size === 0) this.finish();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.conn.close();
    this.listener.connectionEnded(this, (monotonicMs() - this.startedAt) / 1000, null);
  }

  sweep(nowMs: number): void {
    const cfg = this.listener.config;
    if (this.h2.closed) {
      // We sent GOAWAY and FIN; a peer that keeps its half open is cut off.
      // After our GOAWAY (or a connection error) the peer gets the front door's linger to close first.
      if (nowMs - this.endedAtMs >= LINGER_MS) {
        for (const t of [...this.tunnels]) t.abort("DRAINING");
        this.finish();
      }
      return;
    }
    // No preface and SETTINGS within the handshake timeout: not an HTTP/2 client.
    if (!this.h2.settled && nowMs - this.startedMs >= cfg.handshakeTimeoutMs) {
      this.h2.connectionError(new H2Error(H2Code.SETTINGS_TIMEOUT, `No HTTP/2 preface and SETTINGS within ${cfg.handshakeTimeoutMs} ms`));
      return;
    }
    for (const t of this.tunnels) t.sweep(nowMs);
    if (cfg.idleTimeoutMs > 0 && this.tunnels.size === 0 && nowMs - this.h2.lastActiveMs >= cfg.idleTimeoutMs) this.h2.goaway(H2Code.NO_ERROR, "idle");
  }

  drain(): void {
    this.h2.goaway(H2Code.NO_ERROR, "draining");
  }

  abort(code: ErrorCode): void {
    for (const t of [...this.tunnels]) t.abort(code);
    this.h2.abort();
    this.finish();
  }
}

/**
 * One CONNECT stream's preamble: its HEADERS, already decoded, read when the
 * front session dials (RFC 9113 §8.3, §8.5), then the forward-proxy dial. The
 * answers are HTTP/2 responses on the stream.
 */
class HbonePreamble extends ProxyPreamble {
  override readonly immediate = true;
  readonly incomplete = "DOWNSTREAM_RESET";
  private forwarded: string | null = null;
  private baggage: string | null = null;
  private traceparent: string | null = null;
  private readonly startedAt = monotonicMs();

  constructor(
    private readonly session: HboneSession,
    private readonly stream: H2Stream,
    private readonly fields: [string, string][],
    private readonly tooLarge: boolean,
  ) {
    super(session.listener, "h2");
  }

  /** HEADERS carry the whole request: nothing is read from the stream before the dial. */
  push(): boolean {
    return true;
  }

  override dial(s: FrontSession): Promise<Dialed> {
    const l = this.session.listener;
    try {
      if (this.tooLarge) throw new ProxyError("HTTP_HEADER_TOO_LARGE", "downstream", `Header list over ${l.config.maxHeaderBytes} bytes`);
      const req = this.read(this.fields);
      this.setDestination(req.dest);
      this.principal = this.authorise(req.authorization);
      l.policy.screenIdentity(this.principal);
    } catch (err) {
      return Promise.reject(asProxyError(err, "HTTP_BAD_REQUEST", "downstream"));
    }
    l.stats.handshake(l.listenerSlot, (monotonicMs() - this.startedAt) / 1000);
    return super.dial(s);
  }

  /** RFC 9113 §8.3 and §8.5: the request's pseudo-header fields and its destination. */
  private read(fields: [string, string][]): { dest: Authority; authorization: string | null } {
    const bad = (m: string) => new ProxyError("HTTP_BAD_REQUEST", "downstream", m);
    // Assigned in the callback below: typed wide so the checks after it are not narrowed to null.
    let xTun = null as string | null;
    let xTunCount = 0;
    let authorization = null as string | null;
    const { method, scheme, authority, path } = readH2RequestFields(fields, (name, value) => {
      switch (name) {
        case "x-tun":
          xTunCount++;
          xTun = value;
          break;
        case "proxy-authorization":
          authorization = value;
          break;
        case "forwarded":
          this.forwarded = value;
          break;
        case "baggage":
          this.baggage = value;
          break;
        case "traceparent":
          this.traceparent = value;
          break;
      }
    });
    if (method === null) throw bad("No :method");
    let target: string;
    if (method === "CONNECT") {
      // §8.5: "The :scheme and :path pseudo-header fields MUST be omitted"; ":authority ... contains the host and port".
      if (scheme !== null || path !== null) throw bad("CONNECT with :scheme or :path (extended CONNECT is not offered)");
      if (authority === null) throw bad("CONNECT without :authority");
      target = authority;
    } else if (method === "POST" && xTunCount === 1) {
      target = xTun!;
    } else {
      throw new ProxyError("HTTP_METHOD_NOT_ALLOWED", "downstream", `${method} is not a tunnel request: use CONNECT (or POST with x-tun)`);
    }
    return { dest: parseAuthority(target), authorization };
  }

  private authorise(authorization: string | null): Principal {
    const l = this.session.listener;
    const policy = l.policy;
    if (policy.clientCerts) {
      const id = policy.peerIdentity(this.stream.tls());
      if (id !== null) return { name: id.uri, user: null, spiffe: id };
    }
    if (l.config.auth === "token") {
      const creds = parseProxyAuthorization(authorization);
      return policy.checkToken(creds?.secret ?? null, creds?.user ?? null, this.session.conn.remoteAddress);
    }
    if (policy.clientCerts) throw new ProxyError("AUTH_REQUIRED", "downstream", "A client certificate with a SPIFFE ID is required");
    return ANONYMOUS;
  }

  takeRest(): Uint8Array[] {
    return [];
  }

  accepted(): null {
    this.status = 200;
    this.session.h2.respond(this.stream, [[":status", "200"]], false);
    return null;
  }

  /** A refusal ends the stream: its status with END_STREAM, then RST_STREAM NO_ERROR (§8.1). */
  refusal(err: ProxyError): null {
    const l = this.session.listener;
    if (this.stream.closed) return null;
    const status = h2StatusFor(err.code, l.config.auth === "token" && !l.policy.clientCerts);
    this.status = status;
    const fields: [string, string][] = [[":status", String(status)], ["edgemux-error", err.code]];
    if (status === 407) fields.push(["proxy-authenticate", 'Bearer realm="edgemux"']);
    this.session.h2.respond(this.stream, fields, true);
    // §8.1: after a complete response the server "MAY request that the client abort transmission ... by sending a RST_STREAM with an error code of NO_ERROR".
    if (!this.stream.closed) this.session.h2.streamReset(this.stream, H2Code.NO_ERROR);
    return null;
  }

  override logFields(s: FrontSession, into: Record<string, unknown>): void {
    super.logFields(s, into);
    into["forwarded"] = this.forwarded;
    into["baggage"] = this.baggage;
    into["traceparent"] = this.traceparent;
  }
}
