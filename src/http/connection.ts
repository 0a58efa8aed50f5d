/**
 * One client connection on an http listener: many HTTP/1.1 requests in turn
 * (keep-alive), one at a time (a pipelined request waits, read ahead up to
 * PIPELINE_BYTES, until the response before it is complete).
 *
 *   [inbound PROXY header] → Head (strict codec) → route, redirect, auth
 *     → Dialing (a pooled upstream connection, or upstream/'s dial)
 *     → Exchange: request head + body out, response head + body back,
 *       both streamed with backpressure, framing checked (body.ts)
 *     → Head again, or Closing (linger) → Done
 *   An Upgrade answered 101 → Upgraded: the front door's Relay, raw bytes.
 *   ALPN "h2" → H2: the connection is an H2Server's (h2_server.ts) from its
 *   first bytes; this object stays the listener's handle on it (sweep, drain).
 *
 * A refusal before the response started is a short page with the status of
 * the error's code (pages.ts, errors/); after it started, the connection is
 * closed (there is no other way to tell an HTTP/1.1 client a response broke).
 * A bad request (400, 431, 408) always closes: the next request's start
 * cannot be trusted. Deadlines (handshake_timeout per request head,
 * keepalive_timeout between requests, request_timeout for the response head,
 * idle_timeout while bytes flow) are read by the listener's sweeper.
 */
import { asProxyError, type ErrorCode, ProxyError } from "../errors/mod.ts";
import { nextConnId } from "../log/mod.ts";
import { type FrontConnection, LINGER_MS } from "../frontdoor/mod.ts";
import {
  fieldCount,
  fieldValue,
  formatPeer,
  Http1RequestParser,
  Http1ResponseParser,
  type HttpResponseHead,
  ProxyHeaderParser,
} from "../proto/mod.ts";
import { readInboundProxy, Relay, type RelayOwner } from "../relay/mod.ts";
import { coarseClock, monotonicMs } from "../runtime/mod.ts";
import type { Conn } from "../runtime/types.ts";
import { type Dialed, dialRoute, type Endpoints } from "../upstream/mod.ts";
import { BodyFramer, BodyKind, NO_BODY, requestBodyOf, responseBodyOf } from "./body.ts";
import { clientResponseFields, clientResponseHeadText, connectionHas, encodeResponseHead, latin1With, upstreamRequestHeadText } from "./fields.ts";
import type { HttpListener } from "./listener.ts";
import { errorPage, type LocalResponse } from "./pages.ts";
import { Exchange, recordExchange } from "./exchange.ts";
import { hostName, parseTarget, routingPath } from "./request.ts";
import { H2Server } from "./h2_server.ts";
import { decideRoute } from "./decide.ts";

const enum P {
  ProxyHeader,
  /** Waiting for (or reading) a request head. */
  Head,
  Dialing,
  Exchange,
  Upgraded,
  /** HTTP/2 (ALPN h2): h2_server.ts owns the socket. */
  H2,
  Closing,
  Done,
}

/** Client bytes read ahead of the request being served (pipelining, or body bytes while dialing); past it reading pauses. */
export const PIPELINE_BYTES = 65_536;

/**
 * A head and the body bytes that arrived with it leave in one write when
 * together they fit here: one TLS record (at most 16 KiB of plaintext, RFC
 * 8446 §5.1) and one send instead of two. Larger bodies go as read, zero copy.
 */
export const COALESCE_BYTES = 16_384;


export class HttpConnection implements FrontConnection, RelayOwner, Endpoints {
  /** The connection's id (`conn` in its request lines; sent to a tunnel target's agent). */
  readonly id = nextConnId();
  clientAddress: string;
  clientPort: number;
  private phase = P.Head;
  private readonly startedAt = monotonicMs();
  /** Coarse ms: when the current head's first byte came (or the connection opened, for the first request). */
  private headSinceMs: number;
  /** Coarse ms the last response completed (keepalive_timeout), or -1 while a head is being read. */
  private idleSinceMs = -1;
  private lastActiveMs: number;
  private parser: Http1RequestParser | null = null;
  private proxyIn: ProxyHeaderParser | null = null;
  /** Client bytes not yet consumed: the next request, or body bytes read while dialing. */
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private ex: Exchange | null = null;
  private relay: Relay | null = null;
  private h2: H2Server | null = null;
  private draining = false;
  private closeAfter = false;
  private errorCode: ErrorCode | null = null;
  private requests = 0;

  constructor(readonly client: Conn, private readonly l: HttpListener, nowMs: number) {
    this.clientAddress = client.remoteAddress;
    this.clientPort = client.remotePort;
    this.headSinceMs = nowMs;
    this.lastActiveMs = nowMs;
    if (l.config.acceptProxy !== "none") {
      this.proxyIn = new ProxyHeaderParser({ accept: l.config.acceptProxy });
      this.phase = P.ProxyHeader;
    } else this.startHead();
  }

  get localAddress(): string {
    return this.client.localAddress;
  }
  get localPort(): number {
    return this.client.localPort;
  }
  /** Drain began: finish what is under way, take nothing new. */
  get isDraining(): boolean {
    return this.draining;
  }
  /** dialRoute asks: stop trying further targets once nobody wants this dial. */
  get abandoned(): boolean {
    return this.phase !== P.Dialing;
  }

  private startHead(): void {
    this.phase = P.Head;
    this.parser = new Http1RequestParser({ maxHeadBytes: this.l.config.maxHeaderBytes });
  }

  // ---- events ------------------------------------------------------------------------

  onData(conn: Conn, chunk: Uint8Array): void {
    if (conn !== this.client) return this.onUpstreamData(conn, chunk);
    this.lastActiveMs = coarseClock.now;
    switch (this.phase) {
      case P.ProxyHeader:
        return this.onProxyHeader(chunk);
      case P.Head:
        return this.onHead(chunk);
      case P.Dialing:
        return this.hold(chunk);
      case P.Exchange:
        if (!this.ex!.body.done) return this.forwardBody(chunk);
        return this.hold(chunk);
      default:
        return; // Closing: read and discard while the answer drains
    }
  }

  onDrain(conn: Conn): void {
    const ex = this.ex;
    if (this.phase !== P.Exchange || ex === null || ex.up === null) return;
    // One side flushed: the other may read again.
    if (conn === this.client) ex.up.conn.resume();
    else if (conn === ex.up.conn && !ex.body.done) this.client.resume();
  }

  onEnd(conn: Conn): void {
    if (conn !== this.client) return this.onUpstreamGone(conn, null);
    switch (this.phase) {
      case P.ProxyHeader:
      case P.Head:
        // Between requests a FIN is the client saying goodbye; inside a head it is a request cut short.
        if (this.parser !== null && this.parser.bufferedBytes > 0) this.errorCode = "HTTP_BAD_REQUEST";
        this.client.close();
        return this.done();
      case P.Dialing:
      case P.Exchange:
        if (this.ex !== null && !this.ex.body.done) return this.abort("DOWNSTREAM_RESET");
        // The request is complete: answer it, then close.
        this.closeAfter = true;
        return;
      case P.Closing:
        this.client.close();
        return this.done();
    }
  }

  onClose(conn: Conn, err?: Error): void {
    if (conn !== this.client) return this.onUpstreamGone(conn, err ?? null);
    if (this.phase === P.Done) return;
    if (this.phase !== P.Closing && this.phase !== P.Head && this.errorCode === null && err) this.errorCode = "DOWNSTREAM_RESET";
    const ex = this.ex;
    if (ex !== null && ex.up !== null) {
      ex.error ??= "DOWNSTREAM_RESET";
      this.dropUpstream(ex);
      this.logExchange(ex);
    }
    this.ex = null;
    this.done();
  }

  // ---- request heads -------------------------------------------------------------------

  private onProxyHeader(chunk: Uint8Array): void {
    let r;
    try {
      r = readInboundProxy(this.proxyIn!, chunk, this.l.access);
    } catch (err) {
      // The sender is a load balancer, not the client: no answer in HTTP.
      this.errorCode = asProxyError(err, "PROXY_PROTOCOL", "downstream").code;
      this.client.close();
      return this.done();
    }
    if (r === null) return;
    if (r.client !== null) {
      this.clientAddress = r.client.address;
      this.clientPort = r.client.port;
    }
    this.proxyIn = null;
    this.startHead();
    for (const rest of r.rest) if (rest.length > 0 && this.phase === P.Head) this.onHead(rest);
  }

  private onHead(chunk: Uint8Array): void {
    const parser = this.parser!;
    if (this.requests === 0 && parser.bufferedBytes === 0 && this.l.certificates !== null && this.client.tls()?.alpn === "h2") {
      // The client chose HTTP/2 by ALPN: the connection is an H2Server's from its first bytes (the preface).
      this.phase = P.H2;
      this.parser = null;
      this.h2 = new H2Server(this, this.l, (code) => this.done(code));
      return this.h2.start(chunk);
    }
    if (parser.bufferedBytes === 0 && this.idleSinceMs >= 0) {
      // The first byte of a request on a kept-alive connection: the head deadline starts now.
      this.headSinceMs = coarseClock.now;
      this.idleSinceMs = -1;
    }
    let head;
    try {
      parser.push(chunk);
      head = parser.next();
    } catch (err) {
      return this.refuseRequest(asProxyError(err, "HTTP_BAD_REQUEST", "downstream"), null);
    }
    if (head === null) return;
    this.parser = null;
    const rest = parser.rest();
    this.requests++;
    const ex = (this.ex = new Exchange(head));
    try {
      this.readRequest(ex);
    } catch (err) {
      return this.refuseRequest(asProxyError(err, "HTTP_BAD_REQUEST", "downstream"), ex);
    }
    for (const c of rest) if (c.length > 0) this.pending.push(c), (this.pendingBytes += c.length);
    this.route(ex);
  }

  /** Target, Host, framing, upgrade: everything that makes a request malformed (400) is found here. */
  private readRequest(ex: Exchange): void {
    const h = ex.head;
    if (h.method === "CONNECT") throw new ProxyError("HTTP_METHOD_NOT_ALLOWED", "downstream", "CONNECT is for connect listeners; this is an http listener");
    const t = parseTarget(h.method, h.target);
    ex.origin = t.origin;
    ex.hostText = t.authority ?? fieldValue(h, "host");
    if (ex.hostText === "") ex.hostText = null;
    ex.host = ex.hostText === null ? null : hostName(ex.hostText);
    ex.path = routingPath(t.origin);
    const b = requestBodyOf(h.fields);
    ex.body = b.kind === BodyKind.None ? NO_BODY : new BodyFramer(b.kind, b.length, "HTTP_BAD_REQUEST", "downstream", this.l.config.maxHeaderBytes);
    // HTTP/1.0 closes after each response (its keep-alive extension is not spoken here).
    ex.keepAlive = h.minorVersion === 1 && !connectionHas(h.fields, "close");
    if (connectionHas(h.fields, "upgrade") && fieldCount(h, "upgrade") === 1) {
      // RFC 9110 §7.8: Upgrade is "sent in a request" with the Connection option; a body would be read as the new protocol.
      if (b.kind !== BodyKind.None) throw new ProxyError("HTTP_BAD_REQUEST", "downstream", "An Upgrade request with a body");
      ex.upgrade = fieldValue(h, "upgrade");
    }
  }

  /** Redirect, route, auth; then the upstream. */
  private route(ex: Exchange): void {
    const l = this.l;
    const d = decideRoute(l, ex, this.clientAddress);
    if (d instanceof ProxyError) return this.refuseRequest(d, ex);
    if (d !== null) return this.answerLocally(ex, d(this.answerOpts(ex)));
    const m = ex.route!;
    this.phase = P.Dialing;
    const up = l.pool.take(m.route.name, this);
    if (up !== null) {
      ex.reused = true;
      return this.sendRequest(ex, up);
    }
    this.dial(ex);
  }

  // ---- the upstream --------------------------------------------------------------------

  private dial(ex: Exchange): void {
    const l = this.l;
    const m = ex.route!;
    ex.upstreamStart = monotonicMs();
    dialRoute(l.upstream, { match: m, serverName: ex.host, endpoints: this, handler: this, nowMs: l.now(), owner: this, log: l.log, connId: this.id }).then(
      (up) => {
        if (this.ex !== ex || this.phase !== P.Dialing) {
          // The client went away (or a deadline ended it) meanwhile.
          up.conn.close();
          up.release();
          return;
        }
        // A new upstream connection: the connect histogram of the listener and the route.
        const seconds = (monotonicMs() - ex.upstreamStart) / 1000;
        l.stats.connect(l.listenerSlot, seconds);
        l.stats.connect(l.routeSlot(m.route.name), seconds);
        this.sendRequest(ex, up);
      },
      (err) => {
        if (this.ex !== ex || this.phase !== P.Dialing) return;
        this.refuseRequest(asProxyError(err, "UPSTREAM_CONNECT_REFUSED", "upstream"), ex);
      },
    );
  }

  private sendRequest(ex: Exchange, up: Dialed): void {
    ex.up = up;
    ex.upstreamLabel = up.label;
    if (ex.upstreamStart === 0) ex.upstreamStart = monotonicMs();
    up.conn.setNoDelay(true);
    this.phase = P.Exchange;
    ex.responseParser = new Http1ResponseParser({ maxHeadBytes: this.l.config.maxHeaderBytes, errorCode: "HTTP_BAD_RESPONSE" });
    const auth = ex.route!.route.http?.basicAuth ?? null;
    const text = upstreamRequestHeadText(ex.head.method, ex.origin, ex.head.fields, {
      clientIp: this.clientAddress,
      trusted: this.l.trusted.size > 0 && this.l.trusted.contains(this.clientAddress),
      proto: this.l.config.tls !== null ? "https" : "http",
      host: ex.hostText,
    }, { upgrade: ex.upgrade, dropAuthorization: auth !== null });
    // Body bytes read with the head or while dialing go first, in order; those that fit ride in the head's
    // write (COALESCE_BYTES). Allocation: one array of views, only when there are such bytes.
    const held = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    let views: Uint8Array[] | null = null;
    let bodyBytes = 0;
    let i = 0;
    for (; i < held.length && !ex.body.done; i++) {
      const c = held[i]!;
      if (text.length + bodyBytes + c.length > COALESCE_BYTES) break;
      let n;
      try {
        n = ex.body.feed(c);
      } catch (err) {
        return this.refuseRequest(asProxyError(err, "HTTP_BAD_REQUEST", "downstream"), ex);
      }
      if (n > 0) (views ??= []).push(n === c.length ? c : c.subarray(0, n));
      bodyBytes += n;
      if (n < c.length) {
        held[i] = c.subarray(n); // the body ended inside it: the rest is the next request, held below
        break;
      }
    }
    const ok = up.conn.write(latin1With(text, views, bodyBytes));
    if (bodyBytes > 0) this.countBytes(ex, bodyBytes, 0);
    if (ex.body.done) ex.sentAtMs = coarseClock.now;
    else if (!ok) this.client.pause();
    for (; i < held.length; i++) {
      if (this.phase !== P.Exchange || this.ex !== ex) return;
      if (!ex.body.done) this.forwardBody(held[i]!);
      else this.hold(held[i]!);
    }
    if (this.phase === P.Exchange && !ex.body.done && this.pendingBytes < PIPELINE_BYTES) this.client.resume();
  }

  /** Client bytes of the request body, passed through as read; the rest (if the body ended) is the next request. */
  private forwardBody(chunk: Uint8Array): void {
    const ex = this.ex!;
    let n;
    try {
      n = ex.body.feed(chunk);
    } catch (err) {
      return this.refuseRequest(asProxyError(err, "HTTP_BAD_REQUEST", "downstream"), ex);
    }
    if (n > 0) {
      // Zero copy: the view of the client's chunk goes to the upstream's write.
      const ok = ex.up!.conn.write(n === chunk.length ? chunk : chunk.subarray(0, n));
      this.countBytes(ex, n, 0);
      if (!ok) this.client.pause();
    }
    if (ex.body.done) {
      ex.sentAtMs = coarseClock.now;
      if (n < chunk.length) this.hold(chunk.subarray(n));
    }
  }

  /** Bytes of a later request: kept in order, reading paused past PIPELINE_BYTES. */
  private hold(chunk: Uint8Array): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= PIPELINE_BYTES) this.client.pause();
  }

  private onUpstreamData(conn: Conn, chunk: Uint8Array): void {
    const ex = this.ex;
    if (ex === null || ex.up === null || conn !== ex.up.conn || this.phase !== P.Exchange) {
      conn.close(); // a connection this exchange no longer owns
      return;
    }
    this.lastActiveMs = coarseClock.now;
    if (ex.response === null) return this.onResponseHead(ex, chunk);
    this.forwardResponse(ex, chunk);
  }

  private onResponseHead(ex: Exchange, chunk: Uint8Array): void {
    const parser = ex.responseParser!;
    let head;
    try {
      parser.push(chunk);
      head = parser.next();
    } catch (err) {
      return this.upstreamFailed(ex, asProxyError(err, "HTTP_BAD_RESPONSE", "upstream"));
    }
    if (head === null) return;
    const rest = parser.rest();
    if (head.status < 200 && head.status !== 101) {
      // RFC 9110 §15.2: "A proxy MUST forward 1xx responses unless the proxy itself requested the generation of
      // the 1xx response" (100 Continue to an Expect, 103 Early Hints). Then the final response follows.
      this.client.write(encodeResponseHead(head.status, head.reason, clientResponseFields(head.fields, [], { close: false, switching: false })));
      ex.responseParser = new Http1ResponseParser({ maxHeadBytes: this.l.config.maxHeaderBytes, errorCode: "HTTP_BAD_RESPONSE" });
      for (const c of rest) if (c.length > 0 && ex.response === null && this.ex === ex) this.onResponseHead(ex, c);
      return;
    }
    ex.upstreamMs = monotonicMs() - ex.upstreamStart;
    if (head.status === 101) return this.switchProtocols(ex, head, rest);
    ex.response = head;
    ex.status = head.status;
    const b = responseBodyOf(ex.head.method, head.status, head.fields);
    ex.responseBody = b.kind === BodyKind.None ? NO_BODY : new BodyFramer(b.kind, b.length, "HTTP_BAD_RESPONSE", "upstream", this.l.config.maxHeaderBytes);
    // The upstream connection serves again only after a framed HTTP/1.1 response it did not ask to close.
    ex.reusable = head.minorVersion === 1 && b.kind !== BodyKind.UntilClose && !connectionHas(head.fields, "close") && ex.upgrade === null;
    // A body that runs until close can only end by closing the client connection too.
    if (!ex.keepAlive || this.draining || b.kind === BodyKind.UntilClose) this.closeAfter = true;
    const set = ex.route!.route.http?.responseHeaders ?? [];
    const text = clientResponseHeadText(head.status, head.reason, head.fields, set, this.closeAfter);
    const body = ex.responseBody;
    // The body bytes that came with the head ride in its write when they fit (COALESCE_BYTES).
    let views: Uint8Array[] | null = null;
    let bodyBytes = 0;
    let i = 0;
    for (; i < rest.length && !body.done; i++) {
      const c = rest[i]!;
      if (text.length + bodyBytes + c.length > COALESCE_BYTES) break;
      let n;
      try {
        n = body.feed(c);
      } catch (err) {
        // Framing broken already: the head goes out as it would have, then the response is cut short.
        this.client.write(latin1With(text, views, bodyBytes));
        ex.error = asProxyError(err, "HTTP_BAD_RESPONSE", "upstream").code;
        return this.abort(ex.error);
      }
      if (n > 0) (views ??= []).push(n === c.length ? c : c.subarray(0, n));
      bodyBytes += n;
      // Bytes past the response's end: not a server to reuse.
      if (n < c.length) ex.reusable = false;
    }
    const ok = this.client.write(latin1With(text, views, bodyBytes));
    if (bodyBytes > 0) {
      ex.bytesOut += bodyBytes;
      this.countBytes(ex, 0, bodyBytes);
    }
    if (body.done) {
      for (; i < rest.length; i++) if (rest[i]!.length > 0) ex.reusable = false;
      return this.finishExchange(ex);
    }
    if (!ok) ex.up!.conn.pause();
    for (; i < rest.length; i++) if (rest[i]!.length > 0 && this.ex === ex && this.phase === P.Exchange) this.forwardResponse(ex, rest[i]!);
  }

  private forwardResponse(ex: Exchange, chunk: Uint8Array): void {
    const body = ex.responseBody!;
    let n;
    try {
      n = body.feed(chunk);
    } catch (err) {
      // The head is out: all that is left is to cut the response short.
      ex.error = asProxyError(err, "HTTP_BAD_RESPONSE", "upstream").code;
      return this.abort(ex.error);
    }
    if (n > 0) {
      const ok = this.client.write(n === chunk.length ? chunk : chunk.subarray(0, n));
      ex.bytesOut += n;
      this.countBytes(ex, 0, n);
      if (!ok) ex.up!.conn.pause();
    }
    if (body.done) {
      // Bytes past the response's end: not a server to reuse.
      if (n < chunk.length) ex.reusable = false;
      this.finishExchange(ex);
    }
  }

  /** 101: the upstream took the upgrade; from here the bytes are the new protocol's, relayed raw. */
  private switchProtocols(ex: Exchange, head: HttpResponseHead, rest: Uint8Array[]): void {
    if (ex.upgrade === null) return this.upstreamFailed(ex, new ProxyError("HTTP_BAD_RESPONSE", "upstream", "101 Switching Protocols to a request that asked for no upgrade"));
    ex.status = 101;
    ex.reusable = false;
    const set = ex.route!.route.http?.responseHeaders ?? [];
    this.client.write(encodeResponseHead(101, head.reason, clientResponseFields(head.fields, set, { close: false, switching: true })));
    this.phase = P.Upgraded;
    const toUpstream = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    const relay = (this.relay = new Relay(this.client, ex.up!.conn, this));
    relay.start(toUpstream, rest.length > 0 ? rest : null);
  }

  relayBytes(_r: Relay, toUpstream: number, toClient: number): void {
    const ex = this.ex;
    if (ex === null) return;
    ex.bytesOut += toClient;
    this.countBytes(ex, toUpstream, toClient);
  }

  relayClosed(_r: Relay, code: ErrorCode | null): void {
    const ex = this.ex;
    if (ex !== null) {
      ex.error ??= code;
      ex.up?.release();
      ex.up = null;
      this.logExchange(ex);
      this.ex = null;
    }
    this.errorCode ??= code;
    this.done();
  }

  /** The upstream ended (FIN) or closed while it held `conn`. */
  private onUpstreamGone(conn: Conn, err: Error | null): void {
    const ex = this.ex;
    if (ex === null || ex.up === null || conn !== ex.up.conn || this.phase !== P.Exchange) return;
    if (ex.response !== null) {
      // A body that runs until close ends here; any other was cut short.
      if (ex.responseBody!.kind === BodyKind.UntilClose && err === null) {
        ex.reusable = false;
        return this.finishExchange(ex);
      }
      ex.error = "UPSTREAM_RESET";
      return this.abort("UPSTREAM_RESET");
    }
    // A pooled connection the server closed just as we sent on it: nothing of the request can have been
    // acted on if nothing came back and it had no body; try once more on a new connection (RFC 9110 §9.2.2).
    if (ex.reused && !ex.retried && ex.responseParser!.bufferedBytes === 0 && ex.body.kind === BodyKind.None) {
      ex.retried = true;
      ex.reused = false;
      this.dropUpstream(ex);
      this.phase = P.Dialing;
      return this.dial(ex);
    }
    this.upstreamFailed(ex, new ProxyError("UPSTREAM_RESET", "upstream", `The upstream ${ex.up.label} closed before its response head${err ? `: ${err.message}` : ""}`));
  }

  /** The upstream failed before the response head: the client gets the error's page. */
  private upstreamFailed(ex: Exchange, err: ProxyError): void {
    this.dropUpstream(ex);
    this.refuseRequest(err, ex);
  }

  private dropUpstream(ex: Exchange): void {
    const up = ex.up;
    if (up === null) return;
    ex.up = null;
    up.conn.close();
    up.release();
  }

  // ---- ends of exchanges -------------------------------------------------------------

  /** The response is complete: the upstream goes back to the pool or is closed; the client gets the next request or a close. */
  private finishExchange(ex: Exchange): void {
    const up = ex.up;
    ex.up = null;
    // A client that has not sent its whole body (the server answered early) leaves bytes we cannot frame.
    if (!ex.body.done) {
      this.closeAfter = true;
      ex.reusable = false;
    }
    if (up !== null) {
      if (ex.reusable && this.l.config.upstreamKeepalive > 0) this.l.pool.put(ex.route!.route.name, up, coarseClock.now);
      else {
        up.conn.close();
        up.release();
      }
    }
    this.logExchange(ex);
    this.ex = null;
    this.nextRequest();
  }

  /** Writes a response of our own for `ex` (or for a head that never parsed), then the next request or a close. */
  private answerLocally(ex: Exchange | null, r: LocalResponse): void {
    this.client.write(r.bytes);
    if (ex !== null) {
      ex.status = r.status;
      ex.bytesOut = r.bodyBytes;
      this.logExchange(ex);
      this.ex = null;
    }
    this.nextRequest();
  }

  /**
   * An error before the response started: its page, and a close unless the
   * request was well-formed and read to its end (a refused route, a failed
   * upstream with no body outstanding).
   */
  private refuseRequest(err: ProxyError, ex: Exchange | null): void {
    if (this.l.log.enabled("debug")) this.l.log.debug("request refused", { listener: this.l.name, conn: this.id, client: this.clientText, error: err.code, reason: err.message });
    const badRequest = err.source === "downstream" && (err.code === "HTTP_BAD_REQUEST" || err.code === "HTTP_HEADER_TOO_LARGE" || err.code === "HANDSHAKE_TIMEOUT");
    if (ex !== null) {
      ex.error = err.code;
      this.dropUpstream(ex);
    } else this.errorCode = err.code;
    const bodyLeft = ex !== null && ex.body !== undefined && !ex.body.done;
    if (badRequest || bodyLeft || ex === null) this.closeAfter = true;
    if (badRequest) this.errorCode = err.code;
    this.answerLocally(ex, errorPage(err.code, err.message, this.answerOpts(ex)));
  }

  private answerOpts(ex: Exchange | null): { close: boolean; head: boolean } {
    const bodyLeft = ex === null || ex.body === undefined || !ex.body.done;
    const close = this.closeAfter || this.draining || ex === null || !ex.keepAlive || bodyLeft;
    if (close) this.closeAfter = true;
    return { close, head: ex?.head.method === "HEAD" };
  }

  /** After a response: read the next request (from bytes already held first), or close. */
  private nextRequest(): void {
    if (this.phase === P.Closing || this.phase === P.Done) return;
    if (this.closeAfter || this.draining) return this.closeGracefully();
    this.startHead();
    this.idleSinceMs = coarseClock.now;
    this.headSinceMs = coarseClock.now;
    const held = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (let i = 0; i < held.length; i++) {
      if (this.phase === P.Head) this.onHead(held[i]!);
      else this.onData(this.client, held[i]!);
    }
    if (this.phase === P.Head || (this.phase === P.Exchange && this.ex !== null && !this.ex.body.done)) this.client.resume();
  }

  /** Half-close after the last response and linger, reading and discarding, so the answer is not lost to a reset. */
  private closeGracefully(): void {
    this.phase = P.Closing;
    this.headSinceMs = coarseClock.now;
    this.pending = [];
    this.client.end();
    this.client.resume();
  }

  // ---- deadlines and ends ------------------------------------------------------------

  sweep(nowMs: number): void {
    const cfg = this.l.config;
    switch (this.phase) {
      case P.H2:
        return this.h2!.sweep(nowMs);
      case P.ProxyHeader:
      case P.Head:
        if (this.idleSinceMs >= 0 && (this.parser === null || this.parser.bufferedBytes === 0)) {
          // Kept alive with no request under way.
          if (nowMs - this.idleSinceMs >= cfg.keepaliveTimeoutMs || this.draining) {
            this.client.close();
            this.done();
          }
          return;
        }
        if (nowMs - this.headSinceMs >= cfg.handshakeTimeoutMs) {
          const started = this.parser !== null && this.parser.bufferedBytes > 0;
          if (!started && this.requests === 0) {
            // Connected and sent nothing: nothing to answer (a TLS client that never finished, a port scan).
            this.errorCode = "HANDSHAKE_TIMEOUT";
            this.client.close();
            return this.done();
          }
          this.refuseRequest(new ProxyError("HANDSHAKE_TIMEOUT", "downstream", `No complete request head within ${cfg.handshakeTimeoutMs} ms`), null);
        }
        return;
      case P.Exchange: {
        const ex = this.ex!;
        if (ex.response === null && ex.body.done && ex.sentAtMs > 0 && nowMs - ex.sentAtMs >= cfg.requestTimeoutMs) {
          return this.upstreamFailed(ex, new ProxyError("UPSTREAM_TIMEOUT", "upstream", `No response head from ${ex.up?.label ?? "the upstream"} within ${cfg.requestTimeoutMs} ms`));
        }
        if (cfg.idleTimeoutMs > 0 && nowMs - this.lastActiveMs >= cfg.idleTimeoutMs) this.abort("IDLE_TIMEOUT");
        return;
      }
      case P.Upgraded:
        if (cfg.idleTimeoutMs > 0 && nowMs - this.relay!.lastActiveMs >= cfg.idleTimeoutMs) this.relay!.abort("IDLE_TIMEOUT");
        return;
      case P.Closing:
        if (nowMs - this.headSinceMs >= LINGER_MS) {
          this.client.close();
          this.done();
        }
        return;
    }
  }

  /** Drain: finish the request under way, then close; an idle connection closes at the next sweep. */
  drain(): void {
    this.draining = true;
    this.h2?.drain();
  }

  /** Close now, recording why (drain deadline, idle timeout, a response cut short). */
  abort(code: ErrorCode): void {
    if (this.relay !== null && !this.relay.isFinished) return this.relay.abort(code);
    if (this.phase === P.H2) return this.h2!.abort(code);
    if (this.phase === P.Done) return;
    this.errorCode ??= code;
    const ex = this.ex;
    if (ex !== null) {
      ex.error ??= code;
      this.dropUpstream(ex);
      this.logExchange(ex);
      this.ex = null;
    }
    this.client.close();
    this.done();
  }

  private done(code: ErrorCode | null = null): void {
    if (this.phase === P.Done) return;
    this.errorCode ??= code;
    this.phase = P.Done;
    this.l.connectionEnded(this, (monotonicMs() - this.startedAt) / 1000, this.errorCode);
  }

  // ---- accounting ------------------------------------------------------------------------

  private countBytes(ex: Exchange, toUpstream: number, toClient: number): void {
    const st = this.l.stats;
    st.bytes(this.l.listenerSlot, toUpstream, toClient);
    if (ex.route !== null) st.bytes(this.l.routeSlot(ex.route.route.name), toUpstream, toClient);
  }

  get clientText(): string {
    return formatPeer(this.clientAddress, this.clientPort);
  }

  /** One access-log line and the route's counters per request. */
  private logExchange(ex: Exchange): void {
    recordExchange(this.l, ex, this.id, this.clientText);
  }
}
