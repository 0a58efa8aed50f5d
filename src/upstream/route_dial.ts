/**
 * Reaching a route's backends, for the listeners that route (sni, tcp):
 * fixed targets in balance order with failover (each tried once, a failed one
 * cooled down), sniproxy directory mode, HBONE hops (a CONNECT stream over a
 * pooled mTLS connection), and `tunnel:NAME` (a stream to the agent exposing
 * the service, on this worker or another).
 */
import type { Address } from "../config/types.ts";
import { asProxyError, ProxyError } from "../errors/mod.ts";
import { coarseClock, monotonicMs } from "../runtime/mod.ts";
import type { Balancer } from "../router/mod.ts";
import type { StatsWriter } from "../stats/mod.ts";
import type { Logger } from "../log/mod.ts";
import { formatPeer } from "../proto/mod.ts";
import type { RouteMatch } from "../router/mod.ts";
import type { Conn, ConnectAddress, ConnHandler } from "../runtime/types.ts";
import { forwardedFor, hboneAuthority } from "./hbone_pool.ts";
import type { Dialed, Endpoints, UpstreamContext } from "./types.ts";

export interface RouteDial {
  match: RouteMatch;
  /** The client's server name (sni listeners), for directory mode and HBONE authorities; null elsewhere. */
  serverName: string | null;
  endpoints: Endpoints;
  handler: ConnHandler;
  /** Coarse now, for the balancer's cool-down and the directory cache. */
  nowMs: number;
  /** Asked after a target fails: true once nothing wants the dial any more (the client went away), so no further target is tried. */
  owner: { readonly abandoned: boolean };
  /** Failed targets go to its debug log. */
  log: Logger;
  /** The client connection's id: a tunnel target's agent logs it too. */
  connId?: string;
}

const NOTHING = (): void => {};

/**
 * A connection to one of a route's fixed targets: what it holds (a least_conn
 * count, the target's open-connection gauge) is given back once by release().
 * A class rather than a literal with a closure: one object per connection.
 */
class TargetDial implements Dialed {
  private held = true;
  constructor(
    readonly conn: Conn,
    readonly label: string,
    readonly proxyProtocol: "none" | "v1" | "v2",
    private readonly balancer: Balancer,
    private readonly index: number,
    private readonly stats: StatsWriter | null,
    private readonly backendSlot: number,
  ) {}

  release(): void {
    if (!this.held) return;
    this.held = false;
    this.balancer.release(this.index);
    if (this.stats !== null && this.backendSlot >= 0) this.stats.backendClosed(this.backendSlot);
  }
}

/** Connects to the route's backends; throws a ProxyError when none answers. */
export async function dialRoute(ctx: UpstreamContext, d: RouteDial): Promise<Dialed> {
  const route = d.match.route;
  const b = d.match.backends;
  const timeoutMs = route.connectTimeoutMs;
  if (b.kind === "tunnel") {
    if (ctx.tunnels === null) throw new ProxyError("SERVICE_OFFLINE", "upstream", `No tunnel hub for service '${b.service}'`);
    const e = d.endpoints;
    let conn: Conn;
    try {
      conn = await ctx.tunnels.open({
        service: b.service,
        proto: "tcp",
        client: formatPeer(e.clientAddress, e.clientPort),
        server: formatPeer(e.localAddress, e.localPort),
        proxy: route.proxyProtocol,
        connId: d.connId,
      }, timeoutMs);
    } catch (err) {
      throw asProxyError(err, "SERVICE_OFFLINE", "upstream");
    }
    conn.setHandler(d.handler);
    // The agent writes the route's PROXY header to its service.
    return { conn, label: `tunnel:${b.service}`, proxyProtocol: "none", release: NOTHING };
  }
  if (b.kind === "directory") {
    // sniproxy directory mode: <dir>/<hostname>/tls-socket, looked up per connection.
    let found;
    try {
      found = b.resolver.resolve(d.serverName, d.nowMs);
    } catch (err) {
      throw asProxyError(err, "INTERNAL");
    }
    if (found === null) throw new ProxyError("NO_ROUTE", "downstream", `No entry for ${d.serverName ?? "(no SNI)"} in ${b.resolver.dir}`);
    try {
      const conn = await ctx.runtime.connect({ address: { unix: found.socketPath }, timeoutMs, handler: d.handler });
      return { conn, label: `unix:${found.socketPath}`, proxyProtocol: found.proxyV1 ? "v1" : route.proxyProtocol, release: NOTHING };
    } catch (err) {
      throw asProxyError(err, "UPSTREAM_CONNECT_REFUSED", "upstream");
    }
  }
  const balancer = b.balancer;
  const order = balancer.order(d.nowMs);
  // Per-target stats: the slot of each target, in target order (absent: not counted).
  const stats = ctx.stats ?? null;
  const slots = stats !== null ? ctx.backendSlots?.[route.name] : undefined;
  let lastErr: ProxyError | null = null;
  for (let k = 0; k < order.length; k++) {
    const i = order[k]!;
    const target = balancer.target(i);
    const slot = slots !== undefined && i < slots.length ? slots[i]! : -1;
    balancer.acquire(i);
    const startedMs = monotonicMs();
    try {
      const conn = await connectTarget(ctx, d, target, timeoutMs);
      balancer.markOk(i);
      if (slot >= 0) stats!.backendConnected(slot, (monotonicMs() - startedMs) / 1000, coarseClock.now);
      return new TargetDial(conn, formatTarget(target), route.proxyProtocol, balancer, i, stats, slot);
    } catch (err) {
      balancer.release(i);
      balancer.markFailed(i, d.nowMs);
      lastErr = asProxyError(err, "UPSTREAM_CONNECT_REFUSED", "upstream");
      if (slot >= 0) stats!.backendFailed(slot, lastErr.code, coarseClock.now, d.nowMs + balancer.cooldownMs);
      if (d.log.enabled("debug")) d.log.debug("backend connect failed", { route: route.name, backend: formatTarget(target), error: lastErr.message });
      if (d.owner.abandoned) break;
    }
  }
  throw lastErr ?? new ProxyError("UPSTREAM_CONNECT_REFUSED", "upstream", `Route ${route.name} has no targets`);
}

function connectTarget(ctx: UpstreamContext, d: RouteDial, target: Address, timeoutMs: number): Promise<Conn> {
  const hbone = d.match.route.hbone;
  const address: ConnectAddress = target.kind === "unix" ? { unix: target.path } : { hostname: target.hostname, port: target.port };
  if (hbone === undefined || "unix" in address) return ctx.runtime.connect({ address, timeoutMs, handler: d.handler });
  // An HBONE hop: the backend is a CONNECT stream to it.
  return ctx.hbone().connect({
    hop: address,
    config: hbone,
    authority: hboneAuthority(hbone, d.serverName, d.endpoints.localPort),
    fields: [["forwarded", forwardedFor(d.endpoints.clientAddress)]],
    timeoutMs,
    handler: d.handler,
  });
}

export function formatTarget(a: Address): string {
  return a.kind === "unix" ? `unix:${a.path}` : formatPeer(a.hostname, a.port);
}
