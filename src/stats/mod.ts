/**
 * Shared-memory stats: one SharedArrayBuffer slab per worker, written by its
 * worker with plain stores (StatsWriter), summed by the supervisor
 * (StatsRegistry.snapshot) and rendered for Prometheus (renderPrometheus).
 * Plus the cross-worker max_connections cells (tryAcquire / release) and the
 * tunnel max_sessions cells (SessionCounters).
 *
 * Worker side:      new StatsWriter(slab, threadId); writer.opened(slot) ...
 * Supervisor side:  const reg = new StatsRegistry(listeners + maxRoutes);
 *                   const slab = reg.createSlab(); const slots = reg.assign(...);
 *                   renderPrometheus(reg.snapshot(slabs), processInfo)
 */

export {
  CONNECT_BUCKETS,
  createSlab,
  DURATION_BUCKETS,
  HANDSHAKE_BUCKETS,
  MAX_BACKEND_CAPACITY,
  MAX_CAPACITY,
  OVERFLOW_NAME,
  overflowSlot,
  type SlotKind,
} from "./layout.ts";
export { StatsWriter } from "./writer.ts";
export {
  type BackendSnapshot,
  type BackendState,
  type CounterSet,
  DEFAULT_STALE_AFTER_MS,
  type HistogramSnapshot,
  type RegistryOptions,
  type ServiceSnapshot,
  type SlotMap,
  type SlotSnapshot,
  type SnapshotOptions,
  StatsRegistry,
  type StatsSnapshot,
  type WorkerSlabSnapshot,
} from "./registry.ts";
export { createLimits, held, release, tryAcquire } from "./limits.ts";
export { createSessionCells, releaseWorkerSessions, SESSION_SLOTS, SessionCounters } from "./session_cells.ts";
export {
  escapeHelp,
  escapeLabel,
  formatValue,
  type ProcessInfo,
  PROMETHEUS_CONTENT_TYPE,
  type CertificateExpiry,
  renderCertificateExpiry,
  renderPrometheus,
  type TunnelSessionCount,
  type WorkerInfo,
} from "./prometheus.ts";
