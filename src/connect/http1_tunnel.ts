/**
 * One HTTP/1.1 CONNECT tunnel, from the request head to the relay:
 *
 *   [PROXY header] → request head → authorise → resolve + egress check
 *     → connect → "200 Connection established" → Relay
 *
 * `POST` with an `x-tun: host:port` field is the same as CONNECT to that
 * authority, for middleboxes that pass only POST (DESIGN.md). Everything a
 * client sent behind its head (a ClientHello sent without waiting for the
 * 200) is replayed to the upstream first.
 *
 * A refusal is an HTTP status (DESIGN.md / README): 400 malformed, 405
 * another method, 407 no or unknown credentials, 403 policy, 408 head not
 * complete within handshake_timeout (slowloris), 431 head too large, 502
 * refused, 503 name not resolved, 504 connect timeout. Then half-close and
 * linger briefly, reading and discarding, so the response is not lost to a
 * TCP reset.
 */
import { asProxyError, type ErrorCode, httpStatusFor, ProxyError } from "../errors/mod.ts";
import { type Authority, fieldCount, fieldValue, formatAuthority, Http1RequestParser, type HttpRequestHead, parseAuthority, ProxyHeaderParser } from "../proto/mod.ts";
import { parseProxyAuthorization } from "../auth/mod.ts";
import { readInboundProxy, Relay, type RelayOwner } from "../relay/mod.ts";
import type { Conn } from "../runtime/types.ts";
import type { ConnectListenerConfig } from "../config/types.ts";
import { ANONYMOUS, type Principal } from "./policy.ts";
import type { ProxyListener, ProxySession } from "./proxy_listener.ts";
import { CONNECTION_ESTABLISHED, refusal } from "./http1_response.ts";

const enum Phase {
  ProxyHeader,
  Head,
  Dialing,
  Relaying,
  Closing,
  Done,
}

/** How long a refused client may keep its half of the connection after our answer. */
export const LINGER_MS = 1000;

export class Http1Tunnel implements ProxySession, RelayOwner {
  private phase: Phase;
  private phaseStartedMs: number;
  private parser: Http1RequestParser | null;
  private proxyIn: ProxyHeaderParser | null;
  private early: Uint8Array[] = [];
  private relay: Relay | null = null;
  private errorCode: ErrorCode | null = null;
  private status: number | null = null;
  private destination: string | null = null;
  private address: string | null = null;
  private principal: Principal | null = null;
  private clientAddr: string;
  private clientPort: number;
  private firstByteAt = 0;
  private readonly startedAt = performance.now();

  constructor(
    readonly client: Conn,
    private readonly listener: ProxyListener<ConnectListenerConfig>,
    nowMs: number,
  ) {
    const cfg = listener.config;
    this.clientAddr = client.remoteAddress;
    this.clientPort = client.remotePort;
    this.phaseStartedMs = nowMs;
    this.parser = new Http1RequestParser({ maxHeadBytes: cfg.maxHeaderBytes });
    if (cfg.acceptProxy !== "none" && cfg.tls === null) {
      this.proxyIn = new ProxyHeaderParser({ accept: cfg.acceptProxy });
      this.phase = Phase.ProxyHeader;
    } else {
      this.proxyIn = null;
      this.phase = Phase.Head;
    }
  }

  onData(conn: Conn, chunk: Uint8Array): void {
    if (conn !== this.client) return;
    switch (this.phase) {
      case Phase.ProxyHeader:
        this.firstByteAt ||= performance.now();
        return this.onProxyHeaderBytes(chunk);
      case Phase.Head:
        this.firstByteAt ||= performance.now();
        return this.onHeadBytes(chunk);
      case Phase.Dialing:
        this.early.push(chunk);
        this.client.pause();
        return;
      default:
        return; // Closing: discard while our answer drains
    }
  }

  private onProxyHeaderBytes(chunk: Uint8Array): void {
    let r;
    try {
      r = readInboundProxy(this.proxyIn!, chunk, this.listener.access);
    } catch (err) {
      return this.fail(asProxyError(err, "PROXY_PROTOCOL", "downstream"), false);
    }
    if (r === null) return;
    if (r.client !== null) {
      this.clientAddr = r.client.address;
      this.clientPort = r.client.port;
    }
    this.proxyIn = null;
    this.phase = Phase.Head;
    for (const rest of r.rest) if (rest.length > 0 && this.phase === Phase.Head) this.onHeadBytes(rest);
  }


  /** Bytes of the request head, or (on a TLS connection) the first bytes after the handshake. */
  onHeadBytes(chunk: Uint8Array): void {
    const parser = this.parser!;
    let head: HttpRequestHead | null;
    try {
      parser.push(chunk);
      head = parser.next();
    } catch (err) {
      return this.fail(asProxyError(err, "HTTP_BAD_REQUEST", "downstream"), true);
    }
    if (head === null) return;
    this.early = parser.rest();
    this.parser = null;
    this.phase = Phase.Dialing;
    this.phaseStartedMs = this.listener.now();
    this.client.pause();
    let dest: Authority;
    try {
      dest = this.destinationOf(head);
      this.principal = this.authorise(head);
      this.listener.policy.screenIdentity(this.principal);
    } catch (err) {
      return this.fail(asProxyError(err, "HTTP_BAD_REQUEST", "downstream"), true);
    }
    this.listener.stats.handshake(this.listener.listenerSlot, (performance.now() - this.firstByteAt) / 1000);
    void this.dial(dest);
  }

  /** CONNECT host:port, or POST with x-tun (RFC 9110 §9.3.6: "CONNECT uses a special form of request target ... uri-host:port"). */
  private destinationOf(head: HttpRequestHead): Authority {
    let text: string;
    if (head.method === "CONNECT") {
      text = head.target;
      // RFC 9110 §9.3.6: "A CONNECT request message does not have content."
      const cl = fieldValue(head, "content-length");
      if ((cl !== null && cl !== "0") || fieldCount(head, "transfer-encoding") > 0) {
        throw new ProxyError("HTTP_BAD_REQUEST", "downstream", "A CONNECT request has no content (Content-Length or Transfer-Encoding present)");
      }
    } else if (head.method === "POST" && fieldCount(head, "x-tun") === 1) {
      text = fieldValue(head, "x-tun")!;
    } else {
      throw new ProxyError("HTTP_METHOD_NOT_ALLOWED", "downstream", `${head.method} is not a tunnel request: use CONNECT host:port (or POST with x-tun: host:port)`);
    }
    const dest = parseAuthority(text);
    this.destination = formatAuthority(dest);
    return dest;
  }

  private authorise(head: HttpRequestHead): Principal {
    const l = this.listener;
    const policy = l.policy;
    if (policy.clientCerts) {
      const id = policy.peerIdentity(this.client.tls());
      if (id !== null) return { name: id.uri, user: null, spiffe: id };
    }
    if (l.config.auth === "token" || policy.clientCerts) {
      const creds = parseProxyAuthorization(fieldValue(head, "proxy-authorization"));
      if (l.config.auth !== "token") throw new ProxyError("AUTH_REQUIRED", "downstream", "A client certificate with a SPIFFE ID is required");
      return policy.checkToken(creds?.secret ?? null, creds?.user ?? null, this.clientAddr);
    }
    return ANONYMOUS;
  }

  private async dial(dest: Authority): Promise<void> {
    const l = this.listener;
    let up;
    try {
      up = await l.policy.dial(l.runtime, dest, this.principal!, l.config.connectTimeoutMs, this);
    } catch (err) {
      return this.fail(asProxyError(err, "UPSTREAM_CONNECT_REFUSED", "upstream"), true);
    }
    if (this.phase !== Phase.Dialing) {
      up.conn.close(); // the client went away meanwhile
      return;
    }
    this.address = up.address;
    this.status = 200;
    this.client.write(CONNECTION_ESTABLISHED);
    this.phase = Phase.Relaying;
    const preamble = this.early;
    this.early = [];
    this.relay = new Relay(this.client, up.conn, this);
    this.relay.start(preamble);
  }

  onDrain(): void {}

  onEnd(conn: Conn): void {
    if (conn !== this.client) return;
    if (this.phase === Phase.Closing) return this.client.close();
    if (this.phase === Phase.ProxyHeader || this.phase === Phase.Head) {
      this.fail(new ProxyError("HTTP_BAD_REQUEST", "downstream", "Client closed before its request was complete"), false);
    }
  }

  onClose(conn: Conn, err?: Error): void {
    if (conn !== this.client) return; // an upstream that failed while connecting: dial's rejection handles it
    if (this.phase === Phase.Done) return;
    if (this.phase !== Phase.Closing && this.errorCode === null && err) this.errorCode = "DOWNSTREAM_RESET";
    this.done();
  }

  relayBytes(_r: Relay, toUpstream: number, toClient: number): void {
    this.listener.stats.bytes(this.listener.listenerSlot, toUpstream, toClient);
  }

  relayClosed(_r: Relay, code: ErrorCode | null): void {
    if (code !== null && this.errorCode === null) this.errorCode = code;
    this.done();
  }

  sweep(nowMs: number): void {
    const cfg = this.listener.config;
    switch (this.phase) {
      case Phase.ProxyHeader:
      case Phase.Head:
        // Slowloris: the whole head must be in within handshake_timeout.
        if (nowMs - this.phaseStartedMs >= cfg.handshakeTimeoutMs) {
          this.fail(new ProxyError("HANDSHAKE_TIMEOUT", "downstream", `No complete request within ${cfg.handshakeTimeoutMs} ms`), this.phase === Phase.Head, nowMs);
        }
        return;
      case Phase.Relaying:
        if (cfg.idleTimeoutMs > 0 && nowMs - this.relay!.lastActiveMs >= cfg.idleTimeoutMs) this.relay!.abort("IDLE_TIMEOUT");
        return;
      case Phase.Closing:
        if (nowMs - this.phaseStartedMs >= LINGER_MS) {
          this.client.close();
          this.done();
        }
        return;
    }
  }

  drain(): void {}

  abort(code: ErrorCode): void {
    if (this.relay && !this.relay.isFinished) this.relay.abort(code);
    else if (this.phase !== Phase.Done) {
      this.errorCode ??= code;
      this.client.close();
      this.done();
    }
  }

  /** Answer with the code's status (when `respond`), half-close, linger. */
  private fail(err: ProxyError, respond: boolean, nowMs = this.listener.now()): void {
    if (this.phase >= Phase.Closing) return;
    this.errorCode = err.code;
    this.listener.log.debug("tunnel refused", { listener: this.listener.name, client: this.clientAddr, error: err.code, reason: err.message });
    this.parser = null;
    this.early = [];
    this.phase = Phase.Closing;
    this.phaseStartedMs = nowMs;
    if (respond) {
      const status = httpStatusFor(err.code);
      this.status = status;
      const extra: [string, string][] = [];
      if (status === 407) extra.push(["Proxy-Authenticate", 'Basic realm="edgemux"'], ["Proxy-Authenticate", 'Bearer realm="edgemux"']);
      if (status === 405) extra.push(["Allow", "CONNECT, POST"]);
      this.client.write(refusal(status, err.code, err.message, extra));
    }
    this.client.end();
    this.client.resume(); // read and discard until the client closes or the linger ends
  }

  private done(): void {
    if (this.phase === Phase.Done) return;
    this.phase = Phase.Done;
    const seconds = (performance.now() - this.startedAt) / 1000;
    this.listener.tunnelEnded({
      proto: "http/1.1",
      client: `${this.clientAddr}:${this.clientPort}`,
      principal: this.principal,
      destination: this.destination,
      address: this.address,
      status: this.status,
      bytesIn: this.relay?.bytesToUpstream ?? 0,
      bytesOut: this.relay?.bytesToClient ?? 0,
      seconds,
      error: this.errorCode,
    });
    this.listener.connectionEnded(this, seconds);
  }
}
