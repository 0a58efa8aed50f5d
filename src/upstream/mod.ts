/**
 * One way to reach a target, used by every listener kind (DESIGN.md "Layers"):
 * route backends with failover, directory mode, HBONE hops and their pool,
 * forward-proxy destinations under egress policy, tunnel services, and the
 * outbound PROXY header. Listeners never import each other; they import this.
 */
export { dialDestination } from "./destination.ts";
export { forwardedFor, type HboneDial, hboneAuthority, HbonePool, POOL_IDLE_MS } from "./hbone_pool.ts";
export { proxyAddresses, proxyHeader } from "./proxy_header.ts";
export { dialRoute, formatTarget, type RouteDial } from "./route_dial.ts";
export type { Dialed, Endpoints, TunnelOpen, TunnelOpener, UpstreamContext } from "./types.ts";

import type { Runtime } from "../runtime/types.ts";
import type { StatsWriter } from "../stats/mod.ts";
import { HbonePool } from "./hbone_pool.ts";
import type { TunnelOpener, UpstreamContext } from "./types.ts";

/** One worker's ways out: its runtime, its tunnel hub, an HBONE pool made on first use, and its per-target stats. */
export function createUpstream(runtime: Runtime, tunnels: TunnelOpener | null, stats: StatsWriter | null = null): UpstreamContext {
  let pool: HbonePool | null = null;
  return { runtime, tunnels, hbone: () => (pool ??= new HbonePool(runtime)), stats, backendSlots: {} };
}
