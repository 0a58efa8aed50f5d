/**
 * The two dials of the single-tunnel kinds, once: to a route's backends
 * (sni, tcp), and to a destination a forward-proxy client named (HTTP/1.1
 * CONNECT, SOCKS5) with the log fields such a tunnel reports.
 */
import type { Principal, ProxyPolicy } from "../auth/mod.ts";
import type { ErrorCode, ProxyError } from "../errors/mod.ts";
import { type Authority, formatAuthority } from "../proto/mod.ts";
import type { RouteMatch } from "../router/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { StatsWriter } from "../stats/mod.ts";
import { type Dialed, dialDestination, dialRoute, type UpstreamContext } from "../upstream/mod.ts";
import type { FrontSession } from "./session.ts";
import type { Preamble } from "./types.ts";

/** What a routing listener (sni, tcp) lends the dial. */
export interface RouteHost {
  readonly stats: StatsWriter;
  readonly log: Logger;
  readonly upstream: UpstreamContext;
  routeSlot(routeName: string): number;
  now(): number;
}

/** Counts the connection on its route, then reaches the route's backends with `s` as their handler. */
export function dialMatch(l: RouteHost, s: FrontSession, match: RouteMatch, serverName: string | null): Promise<Dialed> {
  s.routeSlot = l.routeSlot(match.route.name);
  l.stats.opened(s.routeSlot);
  return dialRoute(l.upstream, {
    match,
    serverName,
    endpoints: s,
    handler: s,
    nowMs: l.now(),
    owner: s,
    log: l.log,
    connId: s.id,
  });
}

/**
 * A routing preamble (sni, tcp): once its subclass has chosen the route
 * (`match`, and for sni the server name), the connection goes to the route's
 * backends, and the log line names the route and the backend reached.
 */
export abstract class RoutePreamble implements Preamble {
  readonly logMessage = "connection";
  abstract readonly immediate: boolean;
  abstract readonly incomplete: ErrorCode;
  protected match: RouteMatch | null = null;
  protected serverName: string | null = null;

  constructor(protected readonly host: RouteHost) {}

  abstract push(chunk: Uint8Array, s: FrontSession): boolean;
  abstract takeRest(): Uint8Array[];
  abstract refusal(err: ProxyError, s: FrontSession): Uint8Array | null;

  dial(s: FrontSession): Promise<Dialed> {
    return dialMatch(this.host, s, this.match!, this.serverName);
  }

  /** Plain TCP and raw TLS have no answer of their own: the backend speaks. */
  accepted(): null {
    return null;
  }

  logFields(s: FrontSession, into: Record<string, unknown>): void {
    into["route"] = this.match?.route.name ?? null;
    into["backend"] = s.upstream?.label ?? null;
  }
}

/** What a forward-proxy listener (connect, socks5) has that its preamble reads. */
export interface ProxyHost {
  readonly policy: ProxyPolicy;
  readonly config: { connectTimeoutMs: number };
  readonly upstream: UpstreamContext;
}

/**
 * A forward-proxy preamble (HTTP/1.1 CONNECT, SOCKS5): once its subclass has
 * read who the client is (`principal`) and where it goes (`setDestination`),
 * the dial goes through egress policy (upstream/destination.ts), and the log
 * line names both and the answer the client got (`status`).
 */
export abstract class ProxyPreamble implements Preamble {
  readonly immediate: boolean = false;
  readonly logMessage = "tunnel";
  abstract readonly incomplete: ErrorCode;
  protected principal: Principal | null = null;
  /** HTTP status or SOCKS5 reply sent, null when none was. */
  protected status: number | null = null;
  private dest: Authority | null = null;
  private destination: string | null = null;

  constructor(protected readonly host: ProxyHost, private readonly proto: string) {}

  abstract push(chunk: Uint8Array, s: FrontSession): boolean;
  abstract takeRest(): Uint8Array[];
  abstract accepted(up: Dialed, s: FrontSession): Uint8Array | null;
  abstract refusal(err: ProxyError, s: FrontSession): Uint8Array | null;

  protected setDestination(dest: Authority): void {
    this.dest = dest;
    this.destination = formatAuthority(dest);
  }

  dial(s: FrontSession): Promise<Dialed> {
    const h = this.host;
    return dialDestination(h.upstream, h.policy, this.dest!, this.principal!, h.config.connectTimeoutMs, s, s.id);
  }

  logFields(s: FrontSession, into: Record<string, unknown>): void {
    into["proto"] = this.proto;
    into["identity"] = this.principal?.name ?? null;
    into["user"] = this.principal?.user ?? null;
    into["destination"] = this.destination;
    into["address"] = s.upstream?.label ?? null;
    into["status"] = this.status;
  }
}
