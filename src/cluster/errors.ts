/**
 * The cluster's one failure a caller acts on: the registry cannot answer
 * (Redis unreachable or slow, or this edge_id held by another live edge).
 * Local agents keep serving local clients; only cross-edge lookups fail, at
 * once, with this. The code becomes a ProxyError code (errors/mod.ts, with
 * its wire mapping) when the hub consults the registry.
 */
export class ClusterUnavailableError extends Error {
  override readonly name = "ClusterUnavailableError";
  readonly code = "CLUSTER_UNAVAILABLE" as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
