/**
 * `kind = "udp"`: datagram forwarding (nginx `stream` with `listen ... udp`).
 * The datagrams of one client address:port form a flow (flow.ts) towards the
 * targets of the route that names this listener: a host:port chosen per flow
 * by the route's balancer, or a `tunnel:NAME` service. A flow ends after
 * `idle_timeout` with no datagram either way.
 *
 * No connection, so no front session: this listener does its own admission,
 * per new flow (access lists, `max_flows` per worker, draining), with the
 * same stats contract as the front door (stats/writer.ts): `opened` /
 * `refused` per flow on the listener slot, `opened` on the route slot,
 * `bytes` per datagram on both, `error` per drop that has a code, `closed` +
 * `duration` when the flow ends.
 *
 * Sharing the port across workers needs SO_REUSEPORT on a UDP socket
 * (`runtime.udpReusePort`). Bun has it; Deno 2.9 does not (`reuseAddress`
 * is SO_REUSEADDR only, and on Linux a second UDP socket bound that way takes
 * every datagram from the first rather than sharing them), so on Deno only
 * worker 0 binds a udp listener and the other workers serve none of its flows.
 */
import type { AccessList } from "../auth/mod.ts";
import type { UdpListenerConfig } from "../config/types.ts";
import { type ErrorCode, ProxyError } from "../errors/mod.ts";
import type { ListenerDeps, ListenerSettings } from "../frontdoor/mod.ts";
import type { DataPlaneListener } from "../frontdoor/mod.ts";
import { formatPeer } from "../proto/mod.ts";
import { coarseClock, wallMs } from "../runtime/mod.ts";
import { compileRouteTable, type RouteMatch } from "../router/mod.ts";
import type { Conn, Listener, UdpSocket } from "../runtime/types.ts";
import { type Flow, type FlowHost, HostFlow, TunnelFlow } from "./flow.ts";

/** The code a datagram over max_datagram is counted under. */
const TOO_LARGE: ErrorCode = "DATAGRAM_TOO_LARGE";

export class UdpListener implements DataPlaneListener, FlowHost {
  readonly name: string;
  readonly listenerSlot: number;
  config!: UdpListenerConfig;
  /** The route that names this listener (config validation requires exactly one, matching "*"). */
  route: RouteMatch | null = null;
  private access!: AccessList;
  private logConnections = true;
  private routeSlots: Record<string, number> = {};
  private overflowRouteSlot = 0;
  private socket: UdpSocket | null = null;
  private draining = false;
  /** Flows by client IP, then port: two lookups and no key string per datagram. */
  private readonly flows = new Map<string, Map<number, Flow>>();
  private flowCount = 0;

  constructor(settings: ListenerSettings, private readonly deps: ListenerDeps, private readonly workerId: number) {
    this.name = settings.listener.name;
    this.listenerSlot = settings.slots.listeners[this.name] ?? settings.slots.overflowListener;
    this.update(settings);
  }

  get maxDatagram(): number {
    return this.config.maxDatagram;
  }

  update(s: ListenerSettings): void {
    if (s.listener.kind !== "udp") throw new Error(`listener ${this.name}: cannot become a ${s.listener.kind} listener without a restart`);
    this.config = s.listener;
    this.access = s.access;
    this.logConnections = s.config.log.connections;
    this.routeSlots = s.slots.routes;
    this.overflowRouteSlot = s.slots.overflowRoute;
    // Flows keep the route (and target) they started with.
    this.route = compileRouteTable(s.config.routes, this.name, s.backends, { namedOnly: true }).lookup(null, []);
  }

  async start(hostname: string, port: number): Promise<Listener> {
    const rt = this.deps.runtime;
    if (!rt.udpReusePort && this.workerId !== 0) {
      // Worker 0 holds the socket (see the top of this file); `port` is the one it bound.
      return { hostname, port, close() {} };
    }
    this.socket = await rt.bindUdp({
      hostname,
      port,
      reusePort: rt.udpReusePort,
      onDatagram: (data, p, address) => this.fromClient(data, p, address),
    });
    return { hostname: this.socket.hostname, port: this.socket.port, close: () => this.stopAccepting() };
  }

  /** The per-datagram path from clients: find or admit the flow, check the size, hand the datagram over. */
  private fromClient(data: Uint8Array, port: number, address: string): void {
    const st = this.deps.stats;
    let flow = this.flows.get(address)?.get(port);
    if (data.length > this.config.maxDatagram) {
      st.error(this.listenerSlot, TOO_LARGE);
      if (flow !== undefined) {
        flow.dropped++;
        st.error(flow.routeSlot, TOO_LARGE);
      }
      return;
    }
    if (flow === undefined) {
      const admitted = this.admit(address, port);
      if (admitted === null) return;
      flow = admitted;
    }
    flow.lastActiveMs = coarseClock.now;
    flow.datagramsIn++;
    flow.bytesIn += data.length;
    st.bytes(this.listenerSlot, data.length, 0);
    st.bytes(flow.routeSlot, data.length, 0);
    flow.fromClient(data);
  }

  /** A datagram from a client without a flow: admit it (a new flow) or drop it, counted. */
  private admit(address: string, port: number): Flow | null {
    if (this.draining || this.socket === null) return null;
    let refusal: ErrorCode | null = null;
    if (!this.access.empty && !this.access.allows(address)) refusal = "ACCESS_DENIED";
    else if (this.flowCount >= this.config.maxFlows) refusal = "LISTENER_FULL";
    else if (this.route === null) refusal = "NO_ROUTE";
    const st = this.deps.stats;
    if (refusal !== null) {
      // Per datagram, so no log line: a flood must not become a log flood. The counters say it.
      st.refused(this.listenerSlot);
      st.error(this.listenerSlot, refusal);
      return null;
    }
    const match = this.route!;
    const routeName = match.route.name;
    const routeSlot = this.routeSlots[routeName] ?? this.overflowRouteSlot;
    st.opened(this.listenerSlot);
    st.opened(routeSlot);
    const b = match.backends;
    let flow: Flow;
    if (b.kind === "tunnel") {
      flow = new TunnelFlow(this, address, port, routeName, routeSlot, b.service, (f) => this.openStream(f, b.service, match.route.connectTimeoutMs));
    } else if (b.kind === "targets") {
      // No connect to fail over on: the balancer's first choice (healthy targets first) takes the flow.
      flow = new HostFlow(this, address, port, routeName, routeSlot, b.balancer, b.balancer.order(coarseClock.now)[0]!);
    } else {
      throw new Error(`listener ${this.name}: directory routes are refused by config validation`);
    }
    if (flow.ended) return null; // failed synchronously; already accounted
    let byPort = this.flows.get(address);
    if (byPort === undefined) this.flows.set(address, (byPort = new Map()));
    byPort.set(port, flow);
    this.flowCount++;
    return flow;
  }

  private openStream(flow: Flow, service: string, timeoutMs: number): Promise<Conn> {
    const tunnels = this.deps.upstream.tunnels;
    if (tunnels === null) return Promise.reject(new ProxyError("SERVICE_OFFLINE", "upstream", `No tunnel hub for service '${service}'`));
    const local = this.socket;
    return tunnels.open({
      service,
      proto: "udp",
      client: formatPeer(flow.clientAddress, flow.clientPort),
      server: local === null ? "" : formatPeer(local.hostname, local.port),
      proxy: "none",
      connId: flow.id,
    }, timeoutMs);
  }

  // ---- FlowHost ------------------------------------------------------------------------

  reply(flow: Flow, data: Uint8Array): void {
    if (this.socket === null) return;
    flow.lastActiveMs = coarseClock.now;
    flow.datagramsOut++;
    flow.bytesOut += data.length;
    const st = this.deps.stats;
    st.bytes(this.listenerSlot, 0, data.length);
    st.bytes(flow.routeSlot, 0, data.length);
    if (!this.socket.send(data, flow.clientPort, flow.clientAddress)) flow.dropped++;
  }

  oversized(flow: Flow): void {
    flow.dropped++;
    this.deps.stats.error(this.listenerSlot, TOO_LARGE);
    this.deps.stats.error(flow.routeSlot, TOO_LARGE);
  }

  bindUdp(hostname: string, onDatagram: (data: Uint8Array, port: number, address: string) => void): Promise<UdpSocket> {
    return this.deps.runtime.bindUdp({ hostname, port: 0, onDatagram });
  }

  flowEnded(flow: Flow): void {
    const byPort = this.flows.get(flow.clientAddress);
    if (byPort?.get(flow.clientPort) === flow) {
      byPort.delete(flow.clientPort);
      if (byPort.size === 0) this.flows.delete(flow.clientAddress);
      this.flowCount--;
    }
    const seconds = (wallMs() - flow.startedAtMs) / 1000;
    const st = this.deps.stats;
    const error = flow.errorCode;
    for (const slot of [this.listenerSlot, flow.routeSlot]) {
      st.closed(slot);
      st.duration(slot, seconds);
      if (error !== null) st.error(slot, error);
    }
    if (!this.logConnections) return;
    this.deps.log.info("flow", {
      listener: this.name,
      conn: flow.id,
      client: flow.clientText,
      route: flow.routeName,
      backend: flow.label,
      datagrams_in: flow.datagramsIn,
      bytes_in: flow.bytesIn,
      datagrams_out: flow.datagramsOut,
      bytes_out: flow.bytesOut,
      dropped: flow.dropped,
      duration_ms: Math.round(seconds * 1000),
      error,
    });
  }

  // ---- DataPlaneListener ----------------------------------------------------------------

  /** Twice a second: flows idle for idle_timeout end (the normal end of a UDP flow, not an error). */
  sweep(nowMs: number): void {
    const idle = this.config.idleTimeoutMs;
    for (const byPort of this.flows.values()) {
      for (const f of byPort.values()) if (nowMs - f.lastActiveMs >= idle) f.end(null);
    }
  }

  /**
   * Closes the socket. Open flows end with it: a reply can only reach a
   * client from the listener's own address, so they could not answer.
   */
  stopAccepting(): void {
    this.draining = true;
    const s = this.socket;
    this.socket = null;
    s?.close();
    this.endAll(null);
  }

  abortAll(): void {
    this.endAll("DRAINING");
  }

  private endAll(code: ErrorCode | null): void {
    const all: Flow[] = [];
    for (const byPort of this.flows.values()) for (const f of byPort.values()) all.push(f);
    for (const f of all) f.end(code);
  }

  get open(): number {
    return this.flowCount;
  }
}
