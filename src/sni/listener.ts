/**
 * `kind = "sni"`: route raw TLS by the ClientHello's server name without
 * decrypting it (sniproxy, HAProxy `req.ssl_sni`). What this kind adds to the
 * front door: the ClientHello parser, the route lookup (by name and ALPN), the
 * replay of the buffered hello to the backend, and TLS alerts as refusals
 * (DESIGN.md: no route → unrecognized_name, malformed → decode_error, backend
 * unreachable → internal_error).
 */
import type { SniListenerConfig } from "../config/types.ts";
import { ProxyError, TlsAlert, tlsAlertFor } from "../errors/mod.ts";
import { FrontListener, type FrontSession, type ListenerSettings, Phase, type Preamble, RoutePreamble } from "../frontdoor/mod.ts";
import { ClientHelloParser, encodeTlsAlert } from "../proto/mod.ts";
import { compileRouteTable, type RouteTable } from "../router/mod.ts";

export class SniListener extends FrontListener<SniListenerConfig, FrontSession> {
  declare table: RouteTable;

  protected configure(s: ListenerSettings): void {
    this.table = compileRouteTable(s.config.routes, this.name, s.backends);
  }

  protected override preamble(): Preamble {
    return new SniPreamble(this);
  }
}

class SniPreamble extends RoutePreamble {
  readonly immediate = false;
  readonly incomplete = "TLS_DECODE";
  private hello: ClientHelloParser | null;

  constructor(private readonly listener: SniListener) {
    super(listener);
    this.hello = new ClientHelloParser({ maxHelloBytes: listener.config.maxClientHello });
  }

  push(chunk: Uint8Array): boolean {
    const parser = this.hello!;
    let info;
    try {
      parser.push(chunk);
      info = parser.next();
    } catch (err) {
      throw err instanceof ProxyError ? err : new ProxyError("TLS_DECODE", "downstream", (err as Error).message, { cause: err });
    }
    if (info === null) return false;
    this.serverName = info.serverName;
    const match = this.listener.table.lookup(info.serverName, info.alpn);
    if (match === null) throw new ProxyError("NO_ROUTE", "downstream", `No route for server name ${info.serverName ?? "(no SNI)"}`);
    this.match = match;
    return true;
  }

  /** The hello, untouched, goes to the backend first. */
  takeRest(): Uint8Array[] {
    const chunks = [...this.hello!.bufferedChunks()];
    this.hello = null;
    return chunks;
  }

  /**
   * The code's alert. A failure to reach the backend whose code names none
   * (a tunnel service offline, an agent's refusal) is internal_error (DESIGN.md).
   */
  refusal(err: ProxyError, s: FrontSession): Uint8Array | null {
    const alert = tlsAlertFor(err.code) ?? (s.phase === Phase.Dialing ? TlsAlert.internal_error : null);
    return alert === null ? null : encodeTlsAlert(alert);
  }

  override logFields(s: FrontSession, into: Record<string, unknown>): void {
    into["sni"] = this.serverName;
    super.logFields(s, into);
  }
}
