/**
 * `kind = "socks5"` (RFC 1928) on the front session:
 *
 *   greeting → method (none, or RFC 1929 username/password with the token as
 *   password) → request → (front session) egress policy, resolve and connect
 *   → reply 0 with the address we connected from → relay
 *
 * Only CONNECT is supported (BIND and UDP ASSOCIATE get reply 7). Failures
 * answer with their RFC 1928 §6 reply code (socksReplyFor) and close:
 * 2 not allowed by ruleset, 4 host unreachable (name does not resolve),
 * 5 connection refused, 6 TTL expired (connect timeout), 7 command not
 * supported, 8 address type not supported, 1 anything else. A client may send
 * its first data right behind the request, without waiting for the reply
 * (frontdoor EARLY_BYTES: up to 64 KiB are read ahead, then reading pauses).
 */
import { ANONYMOUS, ProxyPolicy } from "../auth/mod.ts";
import type { Socks5ListenerConfig } from "../config/types.ts";
import { ProxyError, socksReplyFor, SocksReply } from "../errors/mod.ts";
import { FrontListener, type FrontSession, type ListenerSettings, type Preamble, ProxyPreamble } from "../frontdoor/mod.ts";
import {
  encodeAuthStatus,
  encodeMethodChoice,
  encodeReply,
  Socks5Parser,
  SocksCommand,
  SocksError,
  SocksMethod,
} from "../proto/mod.ts";
import type { Dialed } from "../upstream/mod.ts";

export class Socks5Listener extends FrontListener<Socks5ListenerConfig, FrontSession> {
  declare policy: ProxyPolicy;

  protected configure(s: ListenerSettings): void {
    this.policy = new ProxyPolicy(s.config, s.listener as Socks5ListenerConfig);
  }

  protected override preamble(): Preamble {
    return new Socks5Preamble(this);
  }
}

const enum Step {
  Greeting,
  Auth,
  Request,
  /** The request was read: replies are RFC 1928 §6 codes from here on. */
  Answered,
}

class Socks5Preamble extends ProxyPreamble {
  readonly incomplete = "SOCKS_PROTOCOL";
  private readonly parser = new Socks5Parser();
  private step = Step.Greeting;

  constructor(private readonly listener: Socks5Listener) {
    super(listener, "socks5");
  }

  /** Takes every message the buffered bytes complete, answering each. */
  push(chunk: Uint8Array, s: FrontSession): boolean {
    const l = this.listener;
    this.parser.push(chunk);
    if (this.step === Step.Greeting) {
      const g = this.parser.next("greeting");
      if (g === null) return false;
      const want = l.config.auth === "token" ? SocksMethod.usernamePassword : SocksMethod.noAuth;
      if (!g.methods.includes(want)) {
        // RFC 1928 §3: "If the selected METHOD is X'FF', none of the methods listed by the client are acceptable, and the client MUST close the connection."
        s.reply(encodeMethodChoice(SocksMethod.noAcceptable));
        const what = want === SocksMethod.noAuth ? "no authentication" : "username/password (RFC 1929)";
        throw new ProxyError("AUTH_REQUIRED", "downstream", `The client does not offer ${what}`);
      }
      s.reply(encodeMethodChoice(want));
      this.step = want === SocksMethod.usernamePassword ? Step.Auth : Step.Request;
      if (this.step === Step.Request) this.principal = ANONYMOUS;
    }
    if (this.step === Step.Auth) {
      const a = this.parser.next("auth");
      if (a === null) return false;
      try {
        this.principal = l.policy.checkToken(a.password, a.username, s.clientAddress);
      } catch (err) {
        // RFC 1929 §2: on failure "the server MUST close the connection" after a non-zero STATUS.
        s.reply(encodeAuthStatus(false));
        throw err;
      }
      s.reply(encodeAuthStatus(true));
      this.step = Step.Request;
    }
    const r = this.parser.next("request");
    if (r === null) return false;
    this.step = Step.Answered;
    this.setDestination({ host: r.host, kind: r.hostKind, port: r.port });
    if (r.command !== SocksCommand.connect) {
      throw new SocksError(`Command ${r.command} is not supported (CONNECT only)`, SocksReply.command_not_supported);
    }
    return true;
  }

  takeRest(): Uint8Array[] {
    const rest = this.parser.rest();
    return rest.length > 0 ? [rest] : [];
  }

  accepted(up: Dialed): Uint8Array {
    this.status = SocksReply.succeeded;
    // RFC 1928 §6: "BND.ADDR contains the associated IP address" — the address we connected from.
    return encodeReply(SocksReply.succeeded, { address: up.conn.localAddress, port: up.conn.localPort });
  }

  /** A reply once the greeting (and auth) passed: a greeting or auth failure was already answered in its own terms. */
  refusal(err: ProxyError): Uint8Array | null {
    if (this.step < Step.Request) return null;
    const reply = err instanceof SocksError ? err.reply : socksReplyFor(err.code);
    this.status = reply;
    return encodeReply(reply, null);
  }
}
