/**
 * HTTP/1.1 CONNECT on the front session:
 *
 *   request head → authorise → (front session) resolve + egress check →
 *   connect → "200 Connection established" → relay
 *
 * `POST` with an `x-tun: host:port` field is the same as CONNECT to that
 * authority, for middleboxes that pass only POST (DESIGN.md). Everything a
 * client sent behind its head (a ClientHello sent without waiting for the
 * 200) is replayed to the upstream first.
 *
 * A refusal is an HTTP status (README): 400 malformed, 405 another method,
 * 407 no or unknown credentials, 403 policy, 408 head not complete within
 * handshake_timeout (slowloris), 431 head too large, 502 refused, 503 name not
 * resolved, 504 connect timeout.
 */
import { ANONYMOUS, parseProxyAuthorization, type Principal } from "../auth/mod.ts";
import { httpStatusFor, ProxyError } from "../errors/mod.ts";
import { type FrontSession, ProxyPreamble } from "../frontdoor/mod.ts";
import { type Authority, fieldCount, fieldValue, Http1RequestParser, type HttpRequestHead, parseAuthority } from "../proto/mod.ts";
import { CONNECTION_ESTABLISHED, refusal } from "./http1_response.ts";
import type { ConnectListener } from "./listener.ts";

export class Http1Preamble extends ProxyPreamble {
  readonly incomplete = "HTTP_BAD_REQUEST";
  private parser: Http1RequestParser | null;
  private rest: Uint8Array[] = [];

  constructor(private readonly listener: ConnectListener) {
    super(listener, "http/1.1");
    this.parser = new Http1RequestParser({ maxHeadBytes: listener.config.maxHeaderBytes });
  }

  push(chunk: Uint8Array, s: FrontSession): boolean {
    const parser = this.parser!;
    parser.push(chunk);
    const head = parser.next();
    if (head === null) return false;
    this.rest = parser.rest();
    this.parser = null;
    this.setDestination(this.destinationOf(head));
    this.principal = this.authorise(head, s);
    this.listener.policy.screenIdentity(this.principal);
    return true;
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
    return parseAuthority(text);
  }

  private authorise(head: HttpRequestHead, s: FrontSession): Principal {
    const l = this.listener;
    const policy = l.policy;
    if (policy.clientCerts) {
      const id = policy.peerIdentity(s.client.tls());
      if (id !== null) return { name: id.uri, user: null, spiffe: id };
    }
    if (l.config.auth === "token" || policy.clientCerts) {
      const creds = parseProxyAuthorization(fieldValue(head, "proxy-authorization"));
      if (l.config.auth !== "token") throw new ProxyError("AUTH_REQUIRED", "downstream", "A client certificate with a SPIFFE ID is required");
      return policy.checkToken(creds?.secret ?? null, creds?.user ?? null, s.clientAddress);
    }
    return ANONYMOUS;
  }

  takeRest(): Uint8Array[] {
    const r = this.rest;
    this.rest = [];
    return r;
  }

  accepted(): Uint8Array {
    this.status = 200;
    return CONNECTION_ESTABLISHED;
  }

  refusal(err: ProxyError): Uint8Array {
    const status = httpStatusFor(err.code);
    this.status = status;
    const extra: [string, string][] = [];
    if (status === 407) extra.push(["Proxy-Authenticate", 'Basic realm="edgemux"'], ["Proxy-Authenticate", 'Bearer realm="edgemux"']);
    if (status === 405) extra.push(["Allow", "CONNECT, POST"]);
    return refusal(status, err.code, err.message, extra);
  }
}
