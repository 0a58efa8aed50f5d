/**
 * One client connection on an SNI listener, from accept to the relay:
 *
 *   [PROXY header] → ClientHello → route → connect (with failover)
 *     → [PROXY header to backend] → replay the hello → Relay
 *
 * Any failure before the relay answers with a TLS alert (DESIGN.md: no
 * route → unrecognized_name, malformed → decode_error, backend unreachable
 * → internal_error), half-closes, and lingers briefly reading and
 * discarding so the alert is not lost to a TCP reset.
 */
import { asProxyError, type ErrorCode, ProxyError, tlsAlertFor } from "../errors/mod.ts";
import type { Address } from "../config/types.ts";
import {
  ClientHelloParser,
  encodeProxyV1,
  encodeProxyV2,
  encodeTlsAlert,
  type ProxyAddresses,
  ProxyHeaderParser,
  proxyV1Length,
  proxyV2Length,
} from "../proto/mod.ts";
import { readInboundProxy, Relay, type RelayOwner } from "../relay/mod.ts";
import type { Conn, ConnHandler } from "../runtime/types.ts";
import type { SniListenerState } from "./listener.ts";
import type { Balancer, RouteMatch } from "../router/mod.ts";
import { forwardedFor, hboneAuthority } from "../connect/mod.ts";
import { formatPeer } from "../tunnel/mod.ts";

const enum Phase {
  ProxyHeader,
  Hello,
  Connecting,
  Relaying,
  Closing,
  Done,
}

/** How long a refused client may keep its half of the connection after our alert. */
export const LINGER_MS = 1000;

export class SniSession implements ConnHandler, RelayOwner {
  phase: Phase;
  /** performance.now() at the first client byte (handshake histogram). */
  private firstByteAt = 0;
  /** Coarse ms when the current phase's deadline started (sweeper). */
  phaseStartedMs: number;
  private hello: ClientHelloParser | null;
  private proxyIn: ProxyHeaderParser | null;
  /** Client bytes that arrived after the hello was complete, before the backend was up (rare: allocated on use). */
  private early: Uint8Array[] | null = null;
  private earlyBytes = 0;
  private serverName: string | null = null;
  private route: RouteMatch | null = null;
  private routeSlot = -1;
  private backendLabel = "";
  private relay: Relay | null = null;
  private errorCode: ErrorCode | null = null;
  /** The client address the PROXY header claimed (accept_proxy), else the socket's. */
  /** Set when an inbound PROXY header named the real client; else the socket's peer is read when needed. */
  private claimedAddr: string | null = null;
  private claimedPort = 0;
  private readonly startedAt = performance.now();
  /** The balancer slot this connection holds (least_conn counts), released once at the end. */
  private heldBalancer: Balancer | null = null;
  private heldTarget = -1;

  constructor(
    readonly client: Conn,
    private readonly state: SniListenerState,
    nowMs: number,
  ) {
    const cfg = state.config;
    this.phaseStartedMs = nowMs;
    this.hello = new ClientHelloParser({ maxHelloBytes: cfg.maxClientHello });
    if (cfg.acceptProxy !== "none") {
      this.proxyIn = new ProxyHeaderParser({ accept: cfg.acceptProxy });
      this.phase = Phase.ProxyHeader;
    } else {
      this.proxyIn = null;
      this.phase = Phase.Hello;
    }
  }

  // ---- client events before the relay takes over --------------------------

  onData(conn: Conn, chunk: Uint8Array): void {
    if (conn !== this.client) return; // backend bytes before the relay: impossible, the relay owns it
    switch (this.phase) {
      case Phase.ProxyHeader:
        this.firstByteAt ||= performance.now();
        return this.onProxyHeaderBytes(chunk);
      case Phase.Hello:
        this.firstByteAt ||= performance.now();
        return this.onHelloBytes(chunk);
      case Phase.Connecting:
        return this.holdEarly(chunk);
      default:
        return; // Closing: discard while the alert drains
    }
  }

  private onProxyHeaderBytes(chunk: Uint8Array): void {
    let r;
    try {
      r = readInboundProxy(this.proxyIn!, chunk, this.state.access);
    } catch (err) {
      return this.fail(asProxyError(err, "PROXY_PROTOCOL", "downstream"), false);
    }
    if (r === null) return;
    if (r.client !== null) {
      this.claimedAddr = r.client.address;
      this.claimedPort = r.client.port;
    }
    this.proxyIn = null;
    this.phase = Phase.Hello;
    for (const rest of r.rest) if (rest.length > 0) this.onHelloBytes(rest);
  }

  private onHelloBytes(chunk: Uint8Array): void {
    if (this.phase !== Phase.Hello) {
      if (this.phase === Phase.Connecting) this.holdEarly(chunk);
      return;
    }
    const parser = this.hello!;
    let info;
    try {
      parser.push(chunk);
      info = parser.next();
    } catch (err) {
      return this.fail(asProxyError(err, "TLS_DECODE", "downstream"), true);
    }
    if (info === null) return;
    this.serverName = info.serverName;
    const match = this.state.table.lookup(info.serverName, info.alpn);
    if (match === null) {
      const name = info.serverName ?? "(no SNI)";
      return this.fail(new ProxyError("NO_ROUTE", "downstream", `No route for server name ${name}`), true);
    }
    this.route = match;
    this.routeSlot = this.state.routeSlot(match.route.name);
    const st = this.state.stats;
    st.handshake(this.state.listenerSlot, (performance.now() - this.firstByteAt) / 1000);
    st.opened(this.routeSlot);
    // The client is not paused here (pause and resume cost an epoll_ctl each):
    // bytes that arrive before the backend is up are held, and past a bound
    // the client is paused (holdEarly).
    this.phase = Phase.Connecting;
    void this.connectBackend(match);
  }

  /** Client bytes before the backend is up: kept for the replay, at most about max_client_hello before the client is paused. */
  private holdEarly(chunk: Uint8Array): void {
    (this.early ??= []).push(chunk);
    this.earlyBytes += chunk.length;
    if (this.earlyBytes >= this.state.config.maxClientHello) this.client.pause();
  }

  // ---- backend ---------------------------------------------------------------

  private async connectBackend(match: RouteMatch): Promise<void> {
    const route = match.route;
    const b = match.backends;
    if (b.kind === "tunnel") return this.connectTunnel(b.service, route.connectTimeoutMs, route.proxyProtocol);
    if (b.kind === "directory") {
      // sniproxy directory mode: <dir>/<hostname>/tls-socket, looked up per connection.
      let found;
      try {
        found = b.resolver.resolve(this.serverName, this.state.now());
      } catch (err) {
        return this.fail(asProxyError(err, "INTERNAL"), true);
      }
      if (found === null) {
        return this.fail(new ProxyError("NO_ROUTE", "downstream", `No entry for ${this.serverName ?? "(no SNI)"} in ${b.resolver.dir}`), true);
      }
      const label = `unix:${found.socketPath}`;
      try {
        const conn = await this.connectTo({ unix: found.socketPath }, route.connectTimeoutMs);
        if (conn === null) return;
        this.backendLabel = label;
        return this.startRelay(conn, found.proxyV1 ? "v1" : route.proxyProtocol);
      } catch (err) {
        return this.fail(asProxyError(err, "UPSTREAM_CONNECT_REFUSED", "upstream"), true);
      }
    }
    const balancer = b.balancer;
    const order = balancer.order(this.state.now());
    let lastErr: ProxyError | null = null;
    for (let k = 0; k < order.length; k++) {
      const i = order[k]!;
      const target = balancer.target(i);
      balancer.acquire(i);
      try {
        const conn = await this.connectTo(toConnectAddress(target), route.connectTimeoutMs);
        if (conn === null) {
          balancer.release(i);
          return;
        }
        balancer.markOk(i);
        this.heldBalancer = balancer;
        this.heldTarget = i;
        this.backendLabel = formatTarget(target);
        return this.startRelay(conn, route.proxyProtocol);
      } catch (err) {
        balancer.release(i);
        balancer.markFailed(i, this.state.now());
        lastErr = asProxyError(err, "UPSTREAM_CONNECT_REFUSED", "upstream");
        this.state.log.debug("backend connect failed", { route: route.name, backend: formatTarget(target), error: lastErr.message });
        if (this.phase !== Phase.Connecting) return;
      }
    }
    this.fail(lastErr!, true);
  }

  /**
   * `tunnel:NAME`: a stream to the agent exposing NAME, on this worker or
   * another (tunnel/hub.ts). The agent sends the route's PROXY header, if any,
   * to its service, so none is sent here. A failure answers internal_error.
   */
  private async connectTunnel(service: string, timeoutMs: number, proxy: "none" | "v1" | "v2"): Promise<void> {
    const hub = this.state.tunnels;
    if (hub === null) return this.fail(new ProxyError("SERVICE_OFFLINE", "upstream", `No tunnel hub for service '${service}'`), true);
    let conn: Conn;
    try {
      const client = formatPeer(this.clientAddr, this.clientPort);
      conn = await hub.open({ service, proto: "tcp", client, server: formatPeer(this.client.localAddress, this.client.localPort), proxy }, timeoutMs);
    } catch (err) {
      return this.fail(asProxyError(err, "SERVICE_OFFLINE", "upstream"), true);
    }
    if (this.phase !== Phase.Connecting) {
      conn.close();
      return;
    }
    this.backendLabel = `tunnel:${service}`;
    this.startRelay(conn, "none");
  }

  /** Connects with this session as the handler; null when the client went away meanwhile. */
  private async connectTo(address: { unix: string } | { hostname: string; port: number }, timeoutMs: number): Promise<Conn | null> {
    const hbone = this.route?.route.hbone;
    const conn = hbone && "hostname" in address
      ? await this.state.hbonePool().connect({
        // An HBONE hop: the backend is a CONNECT stream to it (connect/hbone_client.ts).
        hop: address,
        config: hbone,
        authority: hboneAuthority(hbone, this.serverName, this.client.localPort),
        fields: [["forwarded", forwardedFor(this.clientAddr)]],
        timeoutMs,
        handler: this,
      })
      : await this.state.runtime.connect({ address, timeoutMs, handler: this });
    if (this.phase !== Phase.Connecting) {
      conn.close();
      return null;
    }
    return conn;
  }

  private startRelay(upstream: Conn, proxyProtocol: "none" | "v1" | "v2"): void {
    const preamble: Uint8Array[] = [];
    if (proxyProtocol !== "none") {
      const addrs = this.proxyAddresses();
      const v1 = proxyProtocol === "v1";
      const out = new Uint8Array(v1 ? proxyV1Length(addrs) : proxyV2Length(addrs));
      const n = v1 ? encodeProxyV1(addrs, out, 0) : encodeProxyV2(addrs, out, 0);
      preamble.push(out.subarray(0, n));
    }
    for (const chunk of this.hello!.bufferedChunks()) preamble.push(chunk);
    if (this.early !== null) for (const chunk of this.early) preamble.push(chunk);
    this.hello = null;
    this.early = null;
    this.phase = Phase.Relaying;
    // Small records (handshakes, request/response turns) must not wait for Nagle.
    upstream.setNoDelay(true);
    this.relay = new Relay(this.client, upstream, this);
    this.relay.start(preamble);
  }

  private proxyAddresses(): ProxyAddresses {
    const src = unmapV4(this.clientAddr);
    const dst = unmapV4(this.client.localAddress);
    const srcV6 = src.includes(":");
    const dstV6 = dst.includes(":");
    if (src === "" || dst === "") {
      return { family: "unknown", srcAddress: "", srcPort: 0, dstAddress: "", dstPort: 0 };
    }
    return {
      family: srcV6 || dstV6 ? "tcp6" : "tcp4",
      srcAddress: src,
      srcPort: this.clientPort,
      dstAddress: dst,
      dstPort: this.client.localPort,
    };
  }

  onDrain(): void {}

  onEnd(conn: Conn): void {
    if (conn !== this.client) return;
    if (this.phase === Phase.Closing) {
      this.client.close();
      return;
    }
    // A client that half-closes before its hello is complete will never finish it.
    if (this.phase === Phase.ProxyHeader || this.phase === Phase.Hello) {
      this.fail(new ProxyError("TLS_DECODE", "downstream", "Client closed before its ClientHello was complete"), false);
    }
  }

  onClose(conn: Conn, err?: Error): void {
    if (conn !== this.client) return; // a backend that failed while connecting: handled by connect's rejection
    if (this.phase === Phase.Done) return;
    if (this.phase === Phase.Closing) return this.done();
    if (this.errorCode === null) this.errorCode = err ? "DOWNSTREAM_RESET" : null;
    this.done();
  }

  // ---- relay callbacks ------------------------------------------------------

  relayBytes(_r: Relay, toUpstream: number, toClient: number): void {
    const st = this.state.stats;
    st.bytes(this.state.listenerSlot, toUpstream, toClient);
    st.bytes(this.routeSlot, toUpstream, toClient);
  }

  relayClosed(_r: Relay, code: ErrorCode | null): void {
    if (code !== null && this.errorCode === null) this.errorCode = code;
    this.done();
  }

  // ---- endings ----------------------------------------------------------------

  /** Sweeper: enforce the handshake, idle and linger deadlines. Returns true when the session ended. */
  sweep(nowMs: number): void {
    const cfg = this.state.config;
    switch (this.phase) {
      case Phase.ProxyHeader:
      case Phase.Hello:
      case Phase.Connecting:
        if (nowMs - this.phaseStartedMs >= cfg.handshakeTimeoutMs && this.phase !== Phase.Connecting) {
          this.fail(new ProxyError("HANDSHAKE_TIMEOUT", "downstream", `No complete ClientHello within ${cfg.handshakeTimeoutMs} ms`), false);
        }
        return;
      case Phase.Relaying:
        if (cfg.idleTimeoutMs > 0 && nowMs - this.relay!.lastActiveMs >= cfg.idleTimeoutMs) {
          this.relay!.abort("IDLE_TIMEOUT");
        }
        return;
      case Phase.Closing:
        if (nowMs - this.phaseStartedMs >= LINGER_MS) {
          this.client.close();
          this.done();
        }
        return;
    }
  }

  /** Drain deadline reached: close whatever is still open. */
  abort(code: ErrorCode): void {
    if (this.relay && !this.relay.isFinished) this.relay.abort(code);
    else if (this.phase !== Phase.Done) {
      this.errorCode ??= code;
      this.client.close();
      this.done();
    }
  }

  /** Refuse the client: an alert when it is a TLS peer, then half-close and linger. */
  private fail(err: ProxyError, sendAlert: boolean, nowMs = this.state.now()): void {
    if (this.phase >= Phase.Closing) return;
    this.errorCode = err.code;
    if (this.state.log.enabled("debug")) {
      this.state.log.debug("connection refused", { listener: this.state.config.name, client: this.clientAddr, error: err.code, reason: err.message });
    }
    const alert = sendAlert || this.phase === Phase.Hello || this.phase === Phase.Connecting
      ? (err as { alert?: number }).alert ?? tlsAlertFor(err.code)
      : null;
    this.hello = null;
    this.early = null;
    this.phase = Phase.Closing;
    this.phaseStartedMs = nowMs;
    if (alert !== null && alert !== undefined) this.client.write(encodeTlsAlert(alert));
    this.client.end();
    this.client.resume(); // read and discard until the client closes or the linger ends
  }

  private done(): void {
    if (this.phase === Phase.Done) return;
    this.phase = Phase.Done;
    this.heldBalancer?.release(this.heldTarget);
    this.heldBalancer = null;
    this.state.sessionEnded(this);
  }

  // ---- what the listener reads at the end --------------------------------------

  private get clientAddr(): string {
    return this.claimedAddr ?? this.client.remoteAddress;
  }
  private get clientPort(): number {
    return this.claimedAddr !== null ? this.claimedPort : this.client.remotePort;
  }

  /** Seconds since accept. */
  seconds(): number {
    return (performance.now() - this.startedAt) / 1000;
  }

  /** The route's stats slot, or -1 before a route was chosen. */
  get routeSlotIndex(): number {
    return this.routeSlot;
  }

  get error(): ErrorCode | null {
    return this.errorCode;
  }

  /** The fields of the connection log line. */
  outcome() {
    return {
      client: `${this.clientAddr}:${this.clientPort}`,
      sni: this.serverName,
      route: this.route?.route.name ?? null,
      backend: this.backendLabel || null,
      bytesIn: this.relay?.bytesToUpstream ?? 0,
      bytesOut: this.relay?.bytesToClient ?? 0,
    };
  }
}

function formatTarget(a: Address): string {
  if (a.kind === "unix") return `unix:${a.path}`;
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

function toConnectAddress(a: Address) {
  return a.kind === "unix" ? { unix: a.path } : { hostname: a.hostname, port: a.port };
}

/** Bun reports IPv4 peers of a dual-stack socket as ::ffff:a.b.c.d; PROXY headers want the IPv4 form. */
function unmapV4(addr: string): string {
  return addr.startsWith("::ffff:") && addr.includes(".") ? addr.slice(7) : addr;
}

