/**
 * The listener kinds a worker can run, behind one small interface
 * (frontdoor/types.ts). Each kind lives in its own folder and gets the same
 * settings on start and on every reload.
 */
import type { DataPlaneListener, ListenerDeps as FrontDeps, ListenerSettings } from "../frontdoor/mod.ts";
import { SniListener } from "../sni/mod.ts";
import { ConnectListener } from "../connect/mod.ts";
import { Socks5Listener } from "../socks5/mod.ts";
import { TcpListener } from "../tcp/mod.ts";
import { UdpListener } from "../udp/mod.ts";
import { type AcmeState, HttpListener } from "../http/mod.ts";
import { TunnelListenerState, type TunnelHub } from "../tunnel/edge/mod.ts";

export type { DataPlaneListener, ListenerSettings };

/** What every listener of a worker shares for the worker's lifetime. */
export interface ListenerDeps extends FrontDeps {
  /** The worker's tunnel hub: tunnel listeners hold agent sessions in it. */
  tunnels: TunnelHub;
  /** The worker's [acme] certificates and challenges (http listeners). */
  acme?: AcmeState;
}

export function createListener(settings: ListenerSettings, deps: ListenerDeps): DataPlaneListener {
  const l = settings.listener;
  switch (l.kind) {
    case "sni":
      return new SniListener(settings, deps);
    case "tcp":
      return new TcpListener(settings, deps);
    case "connect":
      return new ConnectListener(settings, deps);
    case "socks5":
      return new Socks5Listener(settings, deps);
    case "tunnel":
      return new TunnelListenerState({ ...settings, listener: l }, { ...deps, hub: deps.tunnels });
    case "http":
      return new HttpListener(settings, deps);
    case "udp":
      // The worker id decides who binds where UDP ports cannot be shared (udp/listener.ts).
      return new UdpListener({ ...settings, listener: l }, deps, deps.tunnels.workerId);
  }
}
