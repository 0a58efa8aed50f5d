/**
 * Routing policy for the SNI listener: which route a server name (and ALPN
 * list) selects, and which backend a connection on that route tries first.
 * Pure apart from directory mode's synchronous file-system lookups.
 */

export {
  compileRouteTable,
  createRouteBackends,
  RouteTable,
  type RouteBackends,
  type RouteBackendsOptions,
  type RouteMatch,
} from "./route_table.ts";
export { Balancer, DEFAULT_COOLDOWN_MS, type BalancerOptions } from "./balancer.ts";
export {
  DirectoryResolver,
  isSafeHostEntry,
  resolveDirectory,
  type DirectoryBackend,
  type DirectoryResolverOptions,
} from "./directory.ts";
