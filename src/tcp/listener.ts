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
import { dialMatch, FrontListener, type FrontSession, type ListenerSettings, type Preamble } from "../frontdoor/mod.ts";
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

class TcpPreamble implements Preamble {
  readonly immediate = true;
  readonly incomplete = "DOWNSTREAM_RESET";
  readonly logMessage = "connection";
  private match: RouteMatch | null = null;

  constructor(private readonly listener: TcpListener) {}

  push(): boolean {
    return true;
  }

  dial(s: FrontSession): Promise<Dialed> {
    const l = this.listener;
    this.match = l.route;
    if (this.match === null) return Promise.reject(new ProxyError("NO_ROUTE", "internal", `Listener ${l.name} has no route`));
    return dialMatch(l, s, this.match, null);
  }

  takeRest(): Uint8Array[] {
    return [];
  }

  accepted(): null {
    return null;
  }

  refusal(): null {
    return null;
  }

  logFields(s: FrontSession, into: Record<string, unknown>): void {
    into["route"] = this.match?.route.name ?? null;
    into["backend"] = s.upstream?.label ?? null;
  }
}
