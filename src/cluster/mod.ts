/**
 * Edge clusters (DESIGN.md "Edge clusters"): several edges share one registry
 * in Redis of which agent sessions on which edge hold which services, their
 * edge-to-edge addresses and token session counts. Without `[cluster]`
 * nothing here runs and everything stays in-process.
 */
export { ClusterRegistry, type ClusterRegistryOptions, registryOptions, type EdgeInfo, type Holder, type RegistryLog, type RegistryState, type RegistryStats } from "./registry.ts";
export { ClusterUnavailableError } from "./errors.ts";
