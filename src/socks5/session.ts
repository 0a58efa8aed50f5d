/**
 * One SOCKS5 connection (RFC 1928), from greeting to relay:
 *
 *   [PROXY header] → greeting → method (none, or RFC 1929 username/password
 *   with the token as password) → request → egress policy → resolve and
 *   connect → reply 0 with the address we connected from → Relay
 *
 * Only CONNECT is supported (BIND and UDP ASSOCIATE get reply 7). Failures
 * answer with their RFC 1928 §6 reply code (socksReplyFor) and close:
 * 2 not allowed by ruleset, 4 host unreachable (name does not resolve),
 * 5 connection refused, 6 TTL expired (connect timeout), 7 command not
 * supported, 8 address type not supported, 1 anything else.
 */
import { asProxyError, type ErrorCode, ProxyError, socksReplyFor, SocksReply } from "../errors/mod.ts";
import type { Socks5ListenerConfig } from "../config/types.ts";
import {
  type Authority,
  encodeAuthStatus,
  encodeMethodChoice,
  encodeReply,
  formatAuthority,
  ProxyHeaderParser,
  Socks5Parser,
  SocksCommand,
  SocksError,
  SocksMethod,
} from "../proto/mod.ts";
import { readInboundProxy, Relay, type RelayOwner } from "../relay/mod.ts";
import type { Conn } from "../runtime/types.ts";
import { ANONYMOUS, type Principal, type ProxyListener, type ProxySession } from "../connect/mod.ts";

const enum Phase {
  ProxyHeader,
  Greeting,
  Auth,
  Request,
  Dialing,
  Relaying,
  Closing,
  Done,
}

const LINGER_MS = 1000;

export class Socks5Session implements ProxySession, RelayOwner {
  private phase: Phase;
  private phaseStartedMs: number;
  private readonly parser = new Socks5Parser();
  private proxyIn: ProxyHeaderParser | null = null;
  private relay: Relay | null = null;
  private principal: Principal | null = null;
  private destination: string | null = null;
  private address: string | null = null;
  private status: number | null = null;
  private errorCode: ErrorCode | null = null;
  private early: Uint8Array[] = [];
  private clientAddr: string;
  private clientPort: number;
  private firstByteAt = 0;
  private readonly startedAt = performance.now();

  constructor(readonly client: Conn, private readonly listener: ProxyListener<Socks5ListenerConfig>, nowMs: number) {
    this.clientAddr = client.remoteAddress;
    this.clientPort = client.remotePort;
    this.phaseStartedMs = nowMs;
    if (listener.config.acceptProxy !== "none") {
      this.proxyIn = new ProxyHeaderParser({ accept: listener.config.acceptProxy });
      this.phase = Phase.ProxyHeader;
    } else this.phase = Phase.Greeting;
  }

  onData(conn: Conn, chunk: Uint8Array): void {
    if (conn !== this.client) return;
    this.firstByteAt ||= performance.now();
    if (this.phase === Phase.ProxyHeader) return this.onProxyHeader(chunk);
    if (this.phase === Phase.Dialing) {
      this.early.push(chunk);
      this.client.pause();
      return;
    }
    if (this.phase > Phase.Request) return; // Closing: discard
    try {
      this.parser.push(chunk);
      this.advance();
    } catch (err) {
      const e = asProxyError(err, "SOCKS_PROTOCOL", "downstream");
      this.fail(e, this.phase === Phase.Request ? (e instanceof SocksError ? e.reply : socksReplyFor(e.code)) : null);
    }
  }

  private onProxyHeader(chunk: Uint8Array): void {
    let r;
    try {
      r = readInboundProxy(this.proxyIn!, chunk, this.listener.access);
    } catch (err) {
      return this.fail(asProxyError(err, "PROXY_PROTOCOL", "downstream"), null);
    }
    if (r === null) return;
    if (r.client !== null) {
      this.clientAddr = r.client.address;
      this.clientPort = r.client.port;
    }
    this.proxyIn = null;
    this.phase = Phase.Greeting;
    for (const rest of r.rest) if (rest.length > 0 && this.phase <= Phase.Request) this.onData(this.client, rest);
  }


  /** Takes every message the buffered bytes complete, answering each. */
  private advance(): void {
    const l = this.listener;
    if (this.phase === Phase.Greeting) {
      const g = this.parser.next("greeting");
      if (g === null) return;
      const want = l.config.auth === "token" ? SocksMethod.usernamePassword : SocksMethod.noAuth;
      if (!g.methods.includes(want)) {
        // RFC 1928 §3: "If the selected METHOD is X'FF', none of the methods listed by the client are acceptable, and the client MUST close the connection."
        this.client.write(encodeMethodChoice(SocksMethod.noAcceptable));
        const what = want === SocksMethod.noAuth ? "no authentication" : "username/password (RFC 1929)";
        return this.fail(new ProxyError("AUTH_REQUIRED", "downstream", `The client does not offer ${what}`), null);
      }
      this.client.write(encodeMethodChoice(want));
      this.phase = want === SocksMethod.usernamePassword ? Phase.Auth : Phase.Request;
      if (this.phase === Phase.Request) this.principal = ANONYMOUS;
    }
    if (this.phase === Phase.Auth) {
      const a = this.parser.next("auth");
      if (a === null) return;
      try {
        this.principal = l.policy.checkToken(a.password, a.username, this.clientAddr);
      } catch (err) {
        // RFC 1929 §2: on failure "the server MUST close the connection" after a non-zero STATUS.
        this.client.write(encodeAuthStatus(false));
        return this.fail(asProxyError(err, "AUTH_REQUIRED", "downstream"), null);
      }
      this.client.write(encodeAuthStatus(true));
      this.phase = Phase.Request;
    }
    if (this.phase === Phase.Request) {
      const r = this.parser.next("request");
      if (r === null) return;
      this.destination = formatAuthority({ host: r.host, port: r.port });
      if (r.command !== SocksCommand.connect) {
        return this.fail(new ProxyError("SOCKS_PROTOCOL", "downstream", `Command ${r.command} is not supported (CONNECT only)`), SocksReply.command_not_supported);
      }
      const rest = this.parser.rest();
      if (rest.length > 0) this.early.push(rest);
      this.phase = Phase.Dialing;
      this.client.pause();
      l.stats.handshake(l.listenerSlot, (performance.now() - this.firstByteAt) / 1000);
      void this.dial({ host: r.host, kind: r.hostKind, port: r.port });
    }
  }

  private async dial(dest: Authority): Promise<void> {
    const l = this.listener;
    let up;
    try {
      up = await l.policy.dial(l.runtime, dest, this.principal!, l.config.connectTimeoutMs, this);
    } catch (err) {
      const e = asProxyError(err, "UPSTREAM_CONNECT_REFUSED", "upstream");
      return this.fail(e, socksReplyFor(e.code));
    }
    if (this.phase !== Phase.Dialing) {
      up.conn.close();
      return;
    }
    this.address = up.address;
    this.status = SocksReply.succeeded;
    // RFC 1928 §6: "BND.ADDR contains the associated IP address" — the address we connected from.
    this.client.write(encodeReply(SocksReply.succeeded, { address: up.conn.localAddress, port: up.conn.localPort }));
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
    if (this.phase < Phase.Dialing) this.fail(new ProxyError("SOCKS_PROTOCOL", "downstream", "Client closed before its request was complete"), null);
  }

  onClose(conn: Conn, err?: Error): void {
    if (conn !== this.client || this.phase === Phase.Done) return;
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
    if (this.phase <= Phase.Request) {
      if (nowMs - this.phaseStartedMs >= cfg.handshakeTimeoutMs) {
        this.fail(new ProxyError("HANDSHAKE_TIMEOUT", "downstream", `No complete SOCKS5 request within ${cfg.handshakeTimeoutMs} ms`), this.phase === Phase.Request ? SocksReply.general_failure : null, nowMs);
      }
    } else if (this.phase === Phase.Relaying) {
      if (cfg.idleTimeoutMs > 0 && nowMs - this.relay!.lastActiveMs >= cfg.idleTimeoutMs) this.relay!.abort("IDLE_TIMEOUT");
    } else if (this.phase === Phase.Closing && nowMs - this.phaseStartedMs >= LINGER_MS) {
      this.client.close();
      this.done();
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

  /** Reply with `reply` (when a reply is due), half-close, linger. */
  private fail(err: ProxyError, reply: number | null, nowMs = this.listener.now()): void {
    if (this.phase >= Phase.Closing) return;
    this.errorCode = err.code;
    this.listener.log.debug("socks5 refused", { listener: this.listener.name, client: this.clientAddr, error: err.code, reason: err.message });
    this.early = [];
    this.phase = Phase.Closing;
    this.phaseStartedMs = nowMs;
    if (reply !== null) {
      this.status = reply;
      this.client.write(encodeReply(reply, null));
    }
    this.client.end();
    this.client.resume();
  }

  private done(): void {
    if (this.phase === Phase.Done) return;
    this.phase = Phase.Done;
    const seconds = (performance.now() - this.startedAt) / 1000;
    this.listener.tunnelEnded({
      proto: "socks5",
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
