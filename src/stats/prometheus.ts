/**
 * Renders a stats snapshot in the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/). The
 * families are listed in the README's Metrics section; keep the two in step.
 *
 * Format rules this follows:
 * - each family once, with `# HELP` and `# TYPE` before its samples, families
 *   not interleaved;
 * - "label_value can be any sequence of UTF-8 characters, but the backslash
 *   (\), double-quote ("), and line feed (\n) characters have to be escaped
 *   as \\, \", and \n, respectively";
 * - in HELP text "backslash and line feed characters have to be escaped";
 * - a histogram has cumulative `_bucket{le="..."}` samples ending with
 *   `le="+Inf"` (equal to `_count`), then `_sum` and `_count`;
 * - values are Go float syntax: `+Inf`, `-Inf`, `NaN` spelled that way.
 * Counter names end in `_total` (promtool's lint insists).
 */

import { ABORT_CODES } from "../errors/mod.ts";
import type { HistogramSnapshot, SlotSnapshot, StatsSnapshot } from "./registry.ts";

/** The values of `edgemux_backend_state`: one series per state, 1 for the target's current one. */
export const BACKEND_STATES = ["up", "failing", "cooling_down", "unknown"] as const;

/** The content type of the text this module renders. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export interface ProcessInfo {
  /** edgemux version. */
  version: string;
  /** Runtime name and version, e.g. "bun 1.4.5". */
  runtime: string;
  /** Unix time the process started, in seconds. */
  startTimeSeconds: number;
  residentMemoryBytes: number;
  /** User + system CPU time, in seconds. */
  cpuSecondsTotal: number;
  /** Open file descriptors; absent where the runtime cannot count them (not Linux): no sample then. */
  openFds?: number;
  /** The open-files limit (RLIMIT_NOFILE soft limit); absent where unknown. */
  maxFds?: number;
}

/** What the supervisor knows about a worker beyond its slab. */
export interface WorkerInfo {
  id: number;
  up: boolean;
  restarts: number;
}

/** Agent sessions open on a tunnel listener under one token. */
export interface TunnelSessionCount {
  listener: string;
  token: string;
  sessions: number;
}

type Kind = "counter" | "gauge" | "histogram";

/**
 * The exposition text. `workers` overrides the liveness the snapshot infers
 * from heartbeats (the supervisor also knows which threads exited); without
 * it a worker is up when its heartbeat is fresh, and its restarts are its
 * slab generation. `tunnels` (the supervisor's session table) adds the
 * tunnel session gauge.
 */
export function renderPrometheus(
  snap: StatsSnapshot,
  proc: ProcessInfo,
  workers?: readonly WorkerInfo[],
  tunnels?: readonly TunnelSessionCount[],
): string {
  const out: string[] = [];
  const family = (name: string, kind: Kind, help: string): void => {
    out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${kind}`);
  };
  const sample = (name: string, labels: string, value: number): void => {
    out.push(labels === "" ? `${name} ${formatValue(value)}` : `${name}{${labels}} ${formatValue(value)}`);
  };
  const perSlot = (
    slots: readonly SlotSnapshot[],
    label: string,
    name: string,
    kind: Kind,
    help: string,
    pick: (s: SlotSnapshot) => number,
  ): void => {
    family(name, kind, help);
    for (const s of slots) sample(name, labelPair(label, s.name), pick(s));
  };
  const bytes = (slots: readonly SlotSnapshot[], label: string, name: string, help: string): void => {
    family(name, "counter", help);
    for (const s of slots) {
      const l = labelPair(label, s.name);
      sample(name, `${l},direction="in"`, s.bytesIn);
      sample(name, `${l},direction="out"`, s.bytesOut);
    }
  };
  /** `aborts` false: the error codes; true: only the peer resets (ABORT_CODES). */
  const errors = (slots: readonly SlotSnapshot[], label: string, name: string, help: string, aborts = false): void => {
    family(name, "counter", help);
    for (const s of slots) {
      const l = labelPair(label, s.name);
      for (const [code, n] of Object.entries(s.errors)) {
        if (ABORT_CODES.has(code) === aborts) sample(name, `${l},code="${escapeLabel(code)}"`, n!);
      }
    }
  };
  const histograms = (
    slots: readonly SlotSnapshot[],
    label: string,
    name: string,
    help: string,
    pick: (s: SlotSnapshot) => HistogramSnapshot,
  ): void => {
    family(name, "histogram", help);
    for (const s of slots) histogram(out, name, labelPair(label, s.name), pick(s));
  };

  const L = snap.listeners;
  const R = snap.routes;

  // ---- listeners ----
  perSlot(L, "listener", "edgemux_listener_connections_accepted_total", "counter",
    "Connections the listener admitted.", (s) => s.accepted);
  perSlot(L, "listener", "edgemux_listener_connections_refused_total", "counter",
    "Connections turned away at accept time (max_connections, access lists, draining).", (s) => s.refused);
  perSlot(L, "listener", "edgemux_listener_connections_closed_total", "counter",
    "Admitted connections that have closed.", (s) => s.closed);
  perSlot(L, "listener", "edgemux_listener_connections_active", "gauge",
    "Connections open on the listener now.", (s) => s.active);
  bytes(L, "listener", "edgemux_listener_bytes_total",
    "Bytes proxied through the listener; direction in is client to backend, out is backend to client.");
  errors(L, "listener", "edgemux_listener_errors_total",
    "Errors on the listener's connections by error code (codes never seen are omitted).");
  errors(L, "listener", "edgemux_listener_aborts_total",
    "Connections a peer ended with a TCP reset, by side (DOWNSTREAM_RESET client, UPSTREAM_RESET backend).", true);
  histograms(L, "listener", "edgemux_listener_handshake_seconds",
    "Time from a connection's first byte to its route being chosen.", (s) => s.handshake);
  histograms(L, "listener", "edgemux_listener_connection_duration_seconds",
    "Lifetime of the listener's connections, accept to close.", (s) => s.duration);
  histograms(L, "listener", "edgemux_listener_connect_seconds",
    "Time from the start of a dial to the upstream being connected (failover included).", (s) => s.connect);

  // ---- routes ----
  perSlot(R, "route", "edgemux_route_connections_total", "counter",
    "Connections routed to the route.", (s) => s.accepted);
  perSlot(R, "route", "edgemux_route_connections_active", "gauge",
    "Connections open on the route now.", (s) => s.active);
  bytes(R, "route", "edgemux_route_bytes_total",
    "Bytes proxied on the route; direction in is client to backend, out is backend to client.");
  errors(R, "route", "edgemux_route_errors_total",
    "Errors on the route's connections by error code (codes never seen are omitted).");
  errors(R, "route", "edgemux_route_aborts_total",
    "Connections on the route a peer ended with a TCP reset, by side (DOWNSTREAM_RESET client, UPSTREAM_RESET backend).", true);
  histograms(R, "route", "edgemux_route_connection_duration_seconds",
    "Lifetime of the route's connections, route chosen to close.", (s) => s.duration);
  histograms(R, "route", "edgemux_route_connect_seconds",
    "Time from the start of the route's dial to a backend being connected (failover included).", (s) => s.connect);

  // ---- http routes (only routes that answered an http request have these series) ----
  const H = R.filter((s) => s.httpDuration.count > 0);
  if (H.length > 0) { // no family without samples
    family("edgemux_http_requests_total", "counter", "Requests the http route answered, by status class (1xx..5xx), its own refusals included.");
    for (const s of H) {
      s.httpRequests.forEach((n, i) => sample("edgemux_http_requests_total", `${labelPair("route", s.name)},code_class="${i + 1}xx"`, n));
    }
    histograms(H, "route", "edgemux_http_request_duration_seconds",
      "Time from a request's head being read to its response's last byte being written, per http route.", (s) => s.httpDuration);
  }

  // ---- backends (route targets) ----
  const B = snap.backends;
  const bl = (b: { route: string; target: string }) => `${labelPair("route", b.route)},${labelPair("target", b.target)}`;
  family("edgemux_backend_connections_total", "counter", "Connections the route target accepted.");
  for (const b of B) sample("edgemux_backend_connections_total", bl(b), b.connections);
  family("edgemux_backend_failures_total", "counter", "Failed connects to the route target, by error code (codes never seen are omitted).");
  for (const b of B) {
    for (const [code, n] of Object.entries(b.failuresByCode)) sample("edgemux_backend_failures_total", `${bl(b)},code="${escapeLabel(code)}"`, n!);
  }
  family("edgemux_backend_active", "gauge", "Connections to the route target open now.");
  for (const b of B) sample("edgemux_backend_active", bl(b), b.active);
  family("edgemux_backend_connect_seconds", "histogram", "Time to connect to the route target, successful connects only.");
  for (const b of B) histogram(out, "edgemux_backend_connect_seconds", bl(b), b.connect);
  family("edgemux_backend_state", "gauge",
    "1 for the route target's health state: up (the latest connect succeeded), cooling_down (it failed and is skipped for now), failing (it failed, cool-down over), unknown (never tried).");
  for (const b of B) {
    for (const st of BACKEND_STATES) sample("edgemux_backend_state", `${bl(b)},state="${st}"`, b.state === st ? 1 : 0);
  }

  // ---- tunnel services ----
  const V = snap.services;
  family("edgemux_tunnel_service_streams_total", "counter", "Streams opened to the tunnel service (the agent answered ok).");
  for (const v of V) sample("edgemux_tunnel_service_streams_total", labelPair("service", v.name), v.streams);
  family("edgemux_tunnel_service_active_streams", "gauge", "Streams to the tunnel service open now.");
  for (const v of V) sample("edgemux_tunnel_service_active_streams", labelPair("service", v.name), v.active);
  family("edgemux_tunnel_service_bytes_total", "counter",
    "Bytes through the tunnel service's streams, counted as each stream ends; direction in is client to service, out is service to client.");
  for (const v of V) {
    sample("edgemux_tunnel_service_bytes_total", `${labelPair("service", v.name)},direction="in"`, v.bytesIn);
    sample("edgemux_tunnel_service_bytes_total", `${labelPair("service", v.name)},direction="out"`, v.bytesOut);
  }
  family("edgemux_tunnel_service_open_failures_total", "counter", "Streams to the tunnel service that could not be opened, by error code.");
  for (const v of V) {
    for (const [code, n] of Object.entries(v.failuresByCode)) {
      sample("edgemux_tunnel_service_open_failures_total", `${labelPair("service", v.name)},code="${escapeLabel(code)}"`, n!);
    }
  }

  // ---- workers ----
  const ws: WorkerInfo[] = workers
    ? [...workers]
    : snap.workers.map((w) => ({ id: w.id, up: w.fresh, restarts: w.generation }));
  family("edgemux_worker_up", "gauge", "1 when the worker thread is running and its heartbeat is fresh, else 0.");
  for (const w of ws) sample("edgemux_worker_up", labelPair("worker", String(w.id)), w.up ? 1 : 0);
  family("edgemux_worker_restarts_total", "counter", "Times the worker was replaced after it exited.");
  for (const w of ws) sample("edgemux_worker_restarts_total", labelPair("worker", String(w.id)), w.restarts);
  family("edgemux_worker_connections_active", "gauge", "Connections open on the worker now.");
  for (const w of snap.workers) {
    sample("edgemux_worker_connections_active", labelPair("worker", String(w.id)), w.activeConnections);
  }
  family("edgemux_worker_heartbeat_age_seconds", "gauge",
    "Seconds since the worker's last heartbeat (absent before its first).");
  for (const w of snap.workers) {
    if (w.heartbeatAgeMs !== null) {
      sample("edgemux_worker_heartbeat_age_seconds", labelPair("worker", String(w.id)), w.heartbeatAgeMs / 1000);
    }
  }

  // ---- tunnels ----
  if (tunnels !== undefined) {
    family("edgemux_tunnel_sessions_active", "gauge", "Agent sessions open on the tunnel listener, by the token that admitted them.");
    for (const t of tunnels) {
      sample("edgemux_tunnel_sessions_active", `${labelPair("listener", t.listener)},${labelPair("token", t.token)}`, t.sessions);
    }
  }

  // ---- process ----
  family("edgemux_build_info", "gauge", "Always 1; labels carry the edgemux version and the JavaScript runtime.");
  sample("edgemux_build_info", `${labelPair("version", proc.version)},${labelPair("runtime", proc.runtime)}`, 1);
  // The names and meanings Prometheus' client libraries give every process
  // (client_golang's process collector), so stock dashboards and alerts work.
  family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
  sample("process_cpu_seconds_total", "", proc.cpuSecondsTotal);
  family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  sample("process_resident_memory_bytes", "", proc.residentMemoryBytes);
  if (proc.openFds !== undefined) {
    family("process_open_fds", "gauge", "Number of open file descriptors.");
    sample("process_open_fds", "", proc.openFds);
  }
  if (proc.maxFds !== undefined) {
    family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
    sample("process_max_fds", "", proc.maxFds);
  }
  family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
  sample("process_start_time_seconds", "", proc.startTimeSeconds);
  // The same three facts under edgemux's own prefix, as before process_* existed (kept for existing dashboards).
  family("edgemux_process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.");
  sample("edgemux_process_start_time_seconds", "", proc.startTimeSeconds);
  family("edgemux_process_resident_memory_bytes", "gauge", "Resident memory of the process (all workers), in bytes.");
  sample("edgemux_process_resident_memory_bytes", "", proc.residentMemoryBytes);
  family("edgemux_process_cpu_seconds_total", "counter", "User and system CPU time of the process (all workers), in seconds.");
  sample("edgemux_process_cpu_seconds_total", "", proc.cpuSecondsTotal);

  out.push(""); // the text ends with a line feed
  return out.join("\n");
}

function histogram(out: string[], name: string, labels: string, h: HistogramSnapshot): void {
  for (let i = 0; i < h.bounds.length; i++) {
    out.push(`${name}_bucket{${labels},le="${formatValue(h.bounds[i]!)}"} ${formatValue(h.buckets[i]!)}`);
  }
  out.push(`${name}_bucket{${labels},le="+Inf"} ${formatValue(h.count)}`);
  out.push(`${name}_sum{${labels}} ${formatValue(h.sum)}`);
  out.push(`${name}_count{${labels}} ${formatValue(h.count)}`);
}

function labelPair(name: string, value: string): string {
  return `${name}="${escapeLabel(value)}"`;
}

/** Label value escaping: backslash, double quote and line feed. */
export function escapeLabel(value: string): string {
  return value.replace(/[\\"\n]/g, (ch) => (ch === "\\" ? "\\\\" : ch === '"' ? '\\"' : "\\n"));
}

/** HELP text escaping: backslash and line feed. */
export function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (ch) => (ch === "\\" ? "\\\\" : "\\n"));
}

/** A sample value in Go float syntax. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** A served TLS certificate's expiry: from a file of an http listener, or from [acme]. */
export interface CertificateExpiry {
  name: string;
  /** The leaf's notAfter, epoch ms. */
  notAfter: number;
}

/** `edgemux_tls_certificate_expiry_timestamp_seconds{name}`, one sample per name (an empty string when there are none). */
export function renderCertificateExpiry(certs: readonly CertificateExpiry[]): string {
  if (certs.length === 0) return "";
  const name = "edgemux_tls_certificate_expiry_timestamp_seconds";
  const out = [`# HELP ${name} ${escapeHelp("When the certificate served for the name expires (notAfter), seconds since the Unix epoch.")}`, `# TYPE ${name} gauge`];
  for (const c of certs) out.push(`${name}{name="${escapeLabel(c.name)}"} ${formatValue(Math.floor(c.notAfter / 1000))}`);
  return out.join("\n") + "\n";
}
