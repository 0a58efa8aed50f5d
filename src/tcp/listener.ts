/**
 * `kind = "tcp"`: plain L4 forwarding (HAProxy `mode tcp`, nginx `stream`).
 * Nothing is read before the dial: the connection goes to the targets of the
 * route that names this listener (host:port, unix, hbone:// hops or
 * `tunnel:NAME`, with balance, failover and the route's PROXY header), and
 * whatever the client sends meanwhile is held and passed on in order. A
 * refusal has no words in plain TCP: the connection is closed.
 */
import type { TcpListenerConfig } from "../config/types.ts";
import { ProxyError } from "../errors/mod.ts";
import { FrontListener, type FrontSession, type ListenerSettings, type Preamble, RoutePreamble } from "../frontdoor/mod.ts";
import { compileRouteTable, type RouteMatch } from "../router/mod.ts";
import type { Dialed } from "../upstream/mod.ts";

export class TcpListener extends FrontListener<TcpListenerConfig, FrontSession> {
  /** The route that names this listener (config validation requires exactly one to match "*"). */
  declare route: RouteMatch | null;

  protected configure(s: ListenerSettings): void {
    this.route = compileRouteTable(s.config.routes, this.name, s.backends, { namedOnly: true }).lookup(null, []);
  }

  protected override preamble(): Preamble {
    return new TcpPreamble(this);
  }
}

class TcpPreamble extends RoutePreamble {
  readonly immediate = true;
  readonly incomplete = "DOWNSTREAM_RESET";

  constructor(private readonly listener: TcpListener) {
    super(listener);
  }

  push(): boolean {
    return true;
  }

  /** The route of the moment the connection arrived (a reload may change it for later ones). */
  override dial(s: FrontSession): Promise<Dialed> {
    this.match = this.listener.route;
    if (this.match === null) return Promise.reject(new ProxyError("NO_ROUTE", "internal", `Listener ${this.listener.name} has no route`));
    return super.dial(s);
  }

  takeRest(): Uint8Array[] {
    return [];
  }

  /** Plain TCP has no words for a refusal: the connection is closed. */
  refusal(): null {
    return null;
  }
}
