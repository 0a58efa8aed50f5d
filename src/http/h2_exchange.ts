/**
 * One HTTP/2 request stream on an http listener, carried upstream as an
 * HTTP/1.1 exchange (the route's pool, or upstream/'s dial):
 *
 *   HEADERS → read (h2_head.ts) → route, auth (decide.ts) → Dialing
 *     → request head out; DATA → body (Content-Length as declared, else
 *       chunked), END_STREAM → its end
 *     → response head → HEADERS; body (chunk framing taken off) → DATA;
 *       its end → END_STREAM → the upstream back to the pool
 *
 * Backpressure both ways, never a whole body: a stream whose upstream write
 * was refused is paused (no WINDOW_UPDATE, so the client stops within the
 * window), and the upstream is paused while the stream's DATA waits for the
 * client's window or the socket (H2Stream.write returning false) until the
 * stream's onDrain.
 *
 * A refusal before the response started is the status page of the error's
 * code (pages.ts) on the stream; after it started, RST_STREAM with the code
 * of `h2ResetFor`. The client resetting the stream closes the upstream.
 */
import { asProxyError, type ErrorCode, h2ResetFor, ProxyError } from "../errors/mod.ts";
import type { H2Stream } from "../mux/mod.ts";
import { H2Code, Http1ResponseParser } from "../proto/mod.ts";
import { coarseClock, monotonicMs } from "../runtime/mod.ts";
import type { Conn, ConnHandler } from "../runtime/types.ts";
import { type Dialed, dialRoute } from "../upstream/mod.ts";
import { BodyFramer, BodyKind, responseBodyOf } from "./body.ts";
import { decideRoute } from "./decide.ts";
import { Exchange, recordExchange } from "./exchange.ts";
import { clientResponseFields, connectionHas, encodeRequestHead, upstreamRequestFields } from "./fields.ts";
import { h2ResponseFields, readH2Request } from "./h2_head.ts";
import type { H2Server } from "./h2_server.ts";
import { errorPage, type LocalResponse } from "./pages.ts";
import { hostName, routingPath } from "./request.ts";

const enum X {
  /** Routed and waiting for an upstream connection. */
  Dialing,
  /** The request went upstream; the response comes back. */
  Exchange,
  /** The response is complete (or refused, or reset): nothing more to relay. */
  Done,
}

const CRLF = new Uint8Array([13, 10]);
const ENC = new TextEncoder();
const LAST_CHUNK = ENC.encode("0\r\n\r\n");

export class H2Exchange implements ConnHandler {
  private phase = X.Dialing;
  private ex: Exchange | null = null;
  /** The request body goes upstream chunked (no content-length from the client). */
  private chunkedUp = false;
  /** The client's END_STREAM was seen (and the body's end sent upstream). */
  private requestEnded = false;
  /** A dial is under way: the server keeps counting this exchange until it settles. */
  private dialing = false;
  private streamGone = false;
  private logged = false;
  private lastActiveMs = coarseClock.now;

  constructor(private readonly server: H2Server, readonly stream: H2Stream) {
    stream.setHandler(this);
  }

  /** dialRoute asks: stop trying further targets once nobody wants this dial. */
  get abandoned(): boolean {
    return this.phase !== X.Dialing;
  }

  start(fields: [string, string][], tooLarge: boolean, endStream: boolean): void {
    const l = this.server.l;
    let req;
    try {
      if (tooLarge) throw new ProxyError("HTTP_HEADER_TOO_LARGE", "downstream", `Header list over ${l.config.maxHeaderBytes} bytes`);
      req = readH2Request(fields);
    } catch (err) {
      // Logged and counted like any request, under what could be read of it.
      const pseudo = (n: string) => fields.find(([k]) => k === n)?.[1] ?? "";
      const bad = (this.ex = new Exchange({ method: pseudo(":method"), target: pseudo(":path"), minorVersion: 1, fields: [], headBytes: 0 }));
      bad.h2 = true;
      bad.hostText = pseudo(":authority") || null;
      bad.origin = bad.head.target;
      return this.refuse(asProxyError(err, "HTTP_BAD_REQUEST", "downstream"), bad);
    }
    const ex = (this.ex = new Exchange(req.head));
    ex.h2 = true;
    try {
      ex.origin = req.head.target;
      ex.hostText = req.authority;
      ex.host = req.authority === null ? null : hostName(req.authority);
      ex.path = routingPath(ex.origin);
    } catch (err) {
      return this.refuse(asProxyError(err, "HTTP_BAD_REQUEST", "downstream"), ex);
    }
    // The body as the client frames it: END_STREAM on the HEADERS is none; content-length is checked against the DATA (§8.1.1).
    const kind = endStream ? BodyKind.None : req.contentLength >= 0 ? BodyKind.Length : BodyKind.UntilClose;
    ex.body = new BodyFramer(kind === BodyKind.Length && req.contentLength === 0 ? BodyKind.None : kind, req.contentLength, "HTTP_BAD_REQUEST", "downstream");
    if (endStream && req.contentLength > 0) return this.refuse(new ProxyError("HTTP_BAD_REQUEST", "downstream", "content-length without DATA"), ex);
    this.chunkedUp = kind === BodyKind.UntilClose;
    const d = decideRoute(l, ex, this.server.front.clientAddress);
    if (d instanceof ProxyError) return this.refuse(d, ex);
    if (d !== null) return this.answer(ex, d({ close: false, head: ex.head.method === "HEAD" }));
    const up = l.pool.take(ex.route!.route.name, this);
    if (up !== null) {
      ex.reused = true;
      return this.sendRequest(ex, up);
    }
    this.dial(ex);
  }

  // ---- the upstream --------------------------------------------------------------------

  private dial(ex: Exchange): void {
    const l = this.server.l;
    const front = this.server.front;
    const m = ex.route!;
    ex.upstreamStart = monotonicMs();
    this.dialing = true;
    dialRoute(l.upstream, { match: m, serverName: ex.host, endpoints: front, handler: this, nowMs: l.now(), owner: this, log: l.log, connId: front.id }).then(
      (up) => {
        this.dialing = false;
        if (this.ex !== ex || this.phase !== X.Dialing) {
          up.conn.close();
          up.release();
          return this.maybeEnded();
        }
        const seconds = (monotonicMs() - ex.upstreamStart) / 1000;
        l.stats.connect(l.listenerSlot, seconds);
        l.stats.connect(l.routeSlot(m.route.name), seconds);
        this.sendRequest(ex, up);
      },
      (err) => {
        this.dialing = false;
        if (this.ex !== ex || this.phase !== X.Dialing) return this.maybeEnded();
        this.refuse(asProxyError(err, "UPSTREAM_CONNECT_REFUSED", "upstream"), ex);
      },
    );
  }

  private sendRequest(ex: Exchange, up: Dialed): void {
    const l = this.server.l;
    ex.up = up;
    ex.upstreamLabel = up.label;
    if (ex.upstreamStart === 0) ex.upstreamStart = monotonicMs();
    up.conn.setNoDelay(true);
    this.phase = X.Exchange;
    ex.responseParser = new Http1ResponseParser({ maxHeadBytes: l.config.maxHeaderBytes, errorCode: "HTTP_BAD_RESPONSE" });
    const auth = ex.route!.route.http?.basicAuth ?? null;
    const fields = upstreamRequestFields(ex.head.fields, {
      clientIp: this.server.front.clientAddress,
      trusted: l.trusted.size > 0 && l.trusted.contains(this.server.front.clientAddress),
      proto: "https",
      host: ex.hostText,
    }, { upgrade: null, dropAuthorization: auth !== null });
    if (this.chunkedUp) fields.push(["transfer-encoding", "chunked"]);
    else if (ex.body.kind === BodyKind.None && ex.head.fields.every(([n]) => n !== "content-length") && /^(POST|PUT|PATCH)$/.test(ex.head.method)) {
      // RFC 9110 §8.6: a user agent "SHOULD send Content-Length in a request when the method defines a meaning for enclosed content".
      fields.push(["content-length", "0"]);
    }
    up.conn.write(encodeRequestHead(ex.head.method, ex.origin, fields));
    if (ex.body.done) {
      ex.sentAtMs = coarseClock.now;
      this.requestEnded = this.stream.remoteEnded;
    }
    // What the client sent meanwhile (held by the paused stream) now flows: onData, then onEnd.
    this.stream.resume();
  }

  // ---- events of the stream and of the upstream connection -------------------------------

  onData(conn: Conn, chunk: Uint8Array): void {
    this.lastActiveMs = coarseClock.now;
    if (conn === this.stream) return this.onRequestData(chunk);
    const ex = this.ex;
    if (ex === null || ex.up === null || conn !== ex.up.conn || this.phase !== X.Exchange) {
      conn.close(); // a connection this exchange no longer owns
      return;
    }
    if (ex.response === null) return this.onResponseHead(ex, chunk);
    this.forwardResponse(ex, chunk);
  }

  onDrain(conn: Conn): void {
    const ex = this.ex;
    if (this.phase === X.Done && conn === this.stream) return this.stopRequest();
    if (this.phase !== X.Exchange || ex === null || ex.up === null) return;
    // One side flushed: the other may read again.
    if (conn === this.stream) ex.up.conn.resume();
    else if (conn === ex.up.conn && !this.requestEnded) this.stream.resume();
  }

  onEnd(conn: Conn): void {
    if (conn === this.stream) return this.onRequestEnd();
    this.onUpstreamGone(conn, null);
  }

  onClose(conn: Conn, err?: Error): void {
    if (conn !== this.stream) return this.onUpstreamGone(conn, err ?? null);
    this.streamGone = true;
    if (this.phase !== X.Done) {
      // The client reset the stream (or the connection went) before the response was complete.
      const ex = this.ex;
      this.phase = X.Done;
      if (ex !== null) {
        ex.error ??= "DOWNSTREAM_RESET";
        this.dropUpstream(ex);
        this.log(ex);
      }
    }
    this.maybeEnded();
  }

  // ---- the request body ----------------------------------------------------------------

  private onRequestData(chunk: Uint8Array): void {
    const ex = this.ex;
    if (this.phase !== X.Exchange || ex === null || ex.up === null || this.requestEnded) return; // after the response: discarded
    const n = ex.body.feed(chunk);
    if (n < chunk.length) return this.malformed(ex, "DATA beyond content-length");
    const up = ex.up.conn;
    this.countBytes(ex, n, 0);
    let ok;
    if (this.chunkedUp) {
      // Allocation: one small size line per DATA frame; the payload view goes to the write uncopied.
      up.write(ENC.encode(`${n.toString(16)}\r\n`));
      up.write(chunk);
      ok = up.write(CRLF);
    } else ok = up.write(chunk);
    if (!ok) this.stream.pause();
  }

  private onRequestEnd(): void {
    const ex = this.ex;
    if (ex === null || this.phase !== X.Exchange || this.requestEnded) return;
    this.requestEnded = true;
    // §8.1.1: "A request or response is also malformed if the value of a content-length header field does not equal the sum of the DATA frame payload lengths".
    if (ex.body.kind === BodyKind.Length && !ex.body.done) return this.malformed(ex, "END_STREAM before content-length bytes");
    if (this.chunkedUp) ex.up?.conn.write(LAST_CHUNK);
    ex.sentAtMs = coarseClock.now;
  }

  private malformed(ex: Exchange, why: string): void {
    if (ex.response === null) return this.refuse(new ProxyError("HTTP_BAD_REQUEST", "downstream", why), ex);
    this.fail(ex, "HTTP_BAD_REQUEST");
  }

  // ---- the response ----------------------------------------------------------------------

  private onResponseHead(ex: Exchange, chunk: Uint8Array): void {
    const l = this.server.l;
    const parser = ex.responseParser!;
    let head;
    try {
      parser.push(chunk);
      head = parser.next();
    } catch (err) {
      return this.refuse(asProxyError(err, "HTTP_BAD_RESPONSE", "upstream"), ex);
    }
    if (head === null) return;
    const rest = parser.rest();
    if (head.status === 101) return this.refuse(new ProxyError("HTTP_BAD_RESPONSE", "upstream", "101 Switching Protocols to an HTTP/2 request"), ex);
    if (head.status < 200) {
      // RFC 9113 §8.1: interim responses are HEADERS without END_STREAM before the final one (100 Continue, 103 Early Hints).
      this.server.h2.respond(this.stream, h2ResponseFields(head.status, clientResponseFields(head.fields, [], { close: false, switching: false })), false);
      ex.responseParser = new Http1ResponseParser({ maxHeadBytes: l.config.maxHeaderBytes, errorCode: "HTTP_BAD_RESPONSE" });
      for (const c of rest) if (c.length > 0 && ex.response === null && this.phase === X.Exchange) this.onResponseHead(ex, c);
      return;
    }
    ex.upstreamMs = monotonicMs() - ex.upstreamStart;
    ex.response = head;
    ex.status = head.status;
    const b = responseBodyOf(ex.head.method, head.status, head.fields);
    ex.responseBody = new BodyFramer(b.kind, b.length, "HTTP_BAD_RESPONSE", "upstream", l.config.maxHeaderBytes);
    ex.reusable = head.minorVersion === 1 && b.kind !== BodyKind.UntilClose && !connectionHas(head.fields, "close");
    const set = ex.route!.route.http?.responseHeaders ?? [];
    const fields = h2ResponseFields(head.status, clientResponseFields(head.fields, set, { close: false, switching: false }));
    this.server.h2.respond(this.stream, fields, ex.responseBody.done);
    if (ex.responseBody.done) return this.finish(ex);
    for (const c of rest) if (c.length > 0 && this.phase === X.Exchange) this.forwardResponse(ex, c);
  }

  private forwardResponse(ex: Exchange, chunk: Uint8Array): void {
    const body = ex.responseBody!;
    // Allocation: one array per upstream read for the payload views (chunk framing left out).
    const payload: Uint8Array[] = [];
    let n;
    try {
      n = body.feed(chunk, payload);
    } catch (err) {
      return this.fail(ex, asProxyError(err, "HTTP_BAD_RESPONSE", "upstream").code);
    }
    let ok = true;
    for (const p of payload) {
      ok = this.stream.write(p) && ok;
      ex.bytesOut += p.length;
      this.countBytes(ex, 0, p.length);
    }
    if (!ok) ex.up!.conn.pause();
    if (body.done) {
      // Bytes past the response's end: not a server to reuse.
      if (n < chunk.length) ex.reusable = false;
      this.finish(ex);
    }
  }

  /** The upstream ended (FIN) or closed while it held `conn`. */
  private onUpstreamGone(conn: Conn, err: Error | null): void {
    const ex = this.ex;
    if (ex === null || ex.up === null || conn !== ex.up.conn || this.phase !== X.Exchange) return;
    if (ex.response !== null) {
      if (ex.responseBody!.kind === BodyKind.UntilClose && err === null) {
        ex.reusable = false;
        return this.finish(ex);
      }
      return this.fail(ex, "UPSTREAM_RESET");
    }
    // A pooled connection the server closed as we sent on it: once more on a new one, when nothing can have been acted on.
    if (ex.reused && !ex.retried && ex.responseParser!.bufferedBytes === 0 && ex.body.kind === BodyKind.None) {
      ex.retried = true;
      ex.reused = false;
      this.dropUpstream(ex);
      this.phase = X.Dialing;
      return this.dial(ex);
    }
    this.refuse(new ProxyError("UPSTREAM_RESET", "upstream", `The upstream ${ex.up.label} closed before its response head${err ? `: ${err.message}` : ""}`), ex);
  }

  // ---- ends ------------------------------------------------------------------------------

  /** The response is complete: END_STREAM, the upstream back to the pool (or closed). */
  private finish(ex: Exchange): void {
    const l = this.server.l;
    this.phase = X.Done;
    const up = ex.up;
    ex.up = null;
    // The upstream answered before the whole request went up: its connection is mid-message.
    if (this.chunkedUp ? !this.requestEnded : !ex.body.done) ex.reusable = false;
    if (up !== null) {
      if (ex.reusable && l.config.upstreamKeepalive > 0) l.pool.put(ex.route!.route.name, up, coarseClock.now);
      else {
        up.conn.close();
        up.release();
      }
    }
    this.stream.end();
    this.stopRequest();
    this.log(ex);
  }

  /** An answer of our own (a refusal page, a redirect): the whole response on the stream. */
  private answer(ex: Exchange | null, r: LocalResponse): void {
    this.phase = X.Done;
    const s = this.stream;
    if (ex !== null) {
      ex.status = r.status;
      ex.bytesOut = r.body.length;
    }
    if (!s.closed) {
      this.server.h2.respond(s, h2ResponseFields(r.status, r.fields), r.body.length === 0);
      if (r.body.length > 0) {
        s.write(r.body);
        s.end();
      }
    }
    this.stopRequest();
    if (ex !== null) this.log(ex);
    else this.maybeEnded();
  }

  /** Refused before the response started: the error's page. */
  private refuse(err: ProxyError, ex: Exchange | null): void {
    const l = this.server.l;
    if (l.log.enabled("debug")) l.log.debug("request refused", { listener: l.name, conn: this.server.front.id, stream: this.stream.id, client: this.server.front.clientText, error: err.code, reason: err.message });
    if (ex !== null) {
      ex.error = err.code;
      this.dropUpstream(ex);
    }
    this.answer(ex, errorPage(err.code, err.message, { close: false, head: ex?.head.method === "HEAD" }));
  }

  /** The response broke after it started: RST_STREAM (the client cannot take a cut-off body for a whole one). */
  private fail(ex: Exchange, code: ErrorCode): void {
    this.phase = X.Done;
    ex.error ??= code;
    this.dropUpstream(ex);
    this.server.h2.streamReset(this.stream, h2ResetFor(code));
    this.log(ex);
  }

  /**
   * The response is out (or on its way) while the client may still be
   * sending its body: §8.1 lets a server that answered ask it to stop with
   * RST_STREAM NO_ERROR once the response is complete on the wire. Until
   * then its DATA is read and discarded (and credited).
   */
  private stopRequest(): void {
    const s = this.stream;
    if (s.closed || s.remoteEnded) return;
    s.resume();
    if (s.writableLength === 0 && s.localEnded) this.server.h2.streamReset(s, H2Code.NO_ERROR);
  }

  private dropUpstream(ex: Exchange): void {
    const up = ex.up;
    if (up === null) return;
    ex.up = null;
    up.conn.close();
    up.release();
  }

  sweep(nowMs: number): void {
    const cfg = this.server.l.config;
    const ex = this.ex;
    if (this.phase !== X.Exchange || ex === null) return;
    if (ex.response === null && this.requestEnded && ex.sentAtMs > 0 && nowMs - ex.sentAtMs >= cfg.requestTimeoutMs) {
      return this.refuse(new ProxyError("UPSTREAM_TIMEOUT", "upstream", `No response head from ${ex.up?.label ?? "the upstream"} within ${cfg.requestTimeoutMs} ms`), ex);
    }
    if (cfg.idleTimeoutMs > 0 && nowMs - this.lastActiveMs >= cfg.idleTimeoutMs) this.abort("IDLE_TIMEOUT");
  }

  /** Ends the exchange now (idle timeout, the drain deadline): RST_STREAM, upstream closed. */
  abort(code: ErrorCode): void {
    if (this.phase === X.Done) {
      if (!this.stream.closed) this.server.h2.streamReset(this.stream, h2ResetFor(code));
      return;
    }
    const ex = this.ex;
    if (ex !== null) return this.fail(ex, code);
    this.phase = X.Done;
    this.server.h2.streamReset(this.stream, h2ResetFor(code));
  }

  private maybeEnded(): void {
    if (this.streamGone && !this.dialing) this.server.exchangeEnded(this);
  }

  private countBytes(ex: Exchange, toUpstream: number, toClient: number): void {
    const l = this.server.l;
    l.stats.bytes(l.listenerSlot, toUpstream, toClient);
    if (ex.route !== null) l.stats.bytes(l.routeSlot(ex.route.route.name), toUpstream, toClient);
  }

  private log(ex: Exchange): void {
    if (this.logged) return;
    this.logged = true;
    recordExchange(this.server.l, ex, this.server.front.id, this.server.front.clientText);
  }
}
