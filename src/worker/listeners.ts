/**
 * The listener kinds a worker can run, behind one small interface. Each kind
 * lives in its own folder (sni/, connect/, socks5/, tunnel/) and gets
 * the same settings on start and on every reload.
 */
import type { AccessList } from "../auth/mod.ts";
import type { Config, ListenerConfig } from "../config/types.ts";
import type { Logger } from "../log/mod.ts";
import type { RouteBackends } from "../router/mod.ts";
import type { Listener, Runtime } from "../runtime/types.ts";
import { SniListenerState } from "../sni/mod.ts";
import { ConnectListenerState } from "../connect/mod.ts";
import { Socks5ListenerState } from "../socks5/mod.ts";
import { TunnelListenerState, type TunnelHub } from "../tunnel/mod.ts";
import type { StatsWriter } from "../stats/mod.ts";
import type { SlotAssignment } from "./messages.ts";

/** What every listener of a worker shares for the worker's lifetime. */
export interface ListenerDeps {
  runtime: Runtime;
  stats: StatsWriter;
  /** max_connections cells, indexed by listener slot. */
  limits: Int32Array;
  log: Logger;
  /** The worker's tunnel hub: tunnel listeners hold agent sessions in it; sni routes to `tunnel:NAME` open streams through it. */
  tunnels: TunnelHub;
}

/** What a listener is (re)configured with: the whole config plus what the worker compiled once for all listeners. */
export interface ListenerSettings {
  config: Config;
  listener: ListenerConfig;
  access: AccessList;
  /** One holder per config route (shared balancers and directory caches). */
  backends: readonly RouteBackends[];
  slots: SlotAssignment;
}

export interface DataPlaneListener {
  readonly name: string;
  /** Bind (reusePort) and start accepting. */
  start(hostname: string, port: number): Listener;
  /** New routes, limits, policies (SIGHUP); open connections keep what they had. */
  update(settings: ListenerSettings): void;
  /** About twice a second: handshake, idle and linger deadlines. */
  sweep(nowMs: number): void;
  stopAccepting(): void;
  /** Drain deadline: close what is still open. */
  abortAll(): void;
  /** Connections open now. */
  readonly open: number;
}

export function createListener(settings: ListenerSettings, deps: ListenerDeps): DataPlaneListener {
  const l = settings.listener;
  switch (l.kind) {
    case "sni":
      return new SniListenerState({ ...settings, listener: l }, deps);
    case "connect":
      return new ConnectListenerState({ ...settings, listener: l }, deps);
    case "socks5":
      return new Socks5ListenerState({ ...settings, listener: l }, deps);
    case "tunnel":
      return new TunnelListenerState({ ...settings, listener: l }, { ...deps, hub: deps.tunnels });
  }
}
