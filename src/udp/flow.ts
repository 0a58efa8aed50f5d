/**
 * One UDP flow: the datagrams of one client address:port, and their way to
 * the route's backend. Two kinds:
 *
 * - `HostFlow` (host:port targets): its own upstream socket on an ephemeral
 *   port, so the backend's replies come back to this flow alone; only
 *   datagrams from the chosen target are relayed back (a connected socket,
 *   checked by hand: the runtime's UDP socket is unconnected).
 * - `TunnelFlow` (`tunnel:NAME`): one tunnel stream carrying the datagrams as
 *   UDP records (DESIGN.md "UDP over a stream", proto/udp_frame.ts), the same
 *   records a source agent sends, so the destination agent serves both alike.
 *
 * UDP may drop, so nothing here queues without bound: while the upstream
 * socket binds or the stream opens, `MAX_PENDING` datagrams wait and later
 * ones are dropped; while the stream is backpressured, datagrams are dropped.
 * Each drop is counted in the flow (`dropped`, in its log line).
 */
import { systemLookup } from "../auth/mod.ts";
import { asProxyError, type ErrorCode } from "../errors/mod.ts";
import { formatPeer } from "../proto/mod.ts";
// proto/mod.ts does not re-export the UDP record codec yet (agent/udp.ts imports it the same way).
import { UdpFrameDecoder, udpFrame } from "../proto/udp_frame.ts";
import { coarseClock, wallMs } from "../runtime/mod.ts";
import type { Balancer } from "../router/mod.ts";
import type { Conn, ConnHandler, UdpSocket } from "../runtime/types.ts";
import { formatTarget } from "../upstream/mod.ts";
import { isIP } from "node:net";
import { connIdText, nextConnSeq } from "../log/mod.ts";

/** Datagrams held per flow while its upstream socket binds or its tunnel stream opens; later ones are dropped. */
export const MAX_PENDING = 64;

/** What a flow needs from its listener (UdpListener implements it). */
export interface FlowHost {
  /** Sends a reply to the flow's client through the listener's socket; counts it. */
  reply(flow: Flow, data: Uint8Array): void;
  /** A datagram over max_datagram from the backend side: counted, dropped. */
  oversized(flow: Flow): void;
  readonly maxDatagram: number;
  /** Called once per flow when it is gone. */
  flowEnded(flow: Flow): void;
  bindUdp: (hostname: string, onDatagram: (data: Uint8Array, port: number, address: string) => void) => Promise<UdpSocket>;
}

export abstract class Flow {
  /** What was reached, for logs: "10.0.0.5:53", "tunnel:dns". */
  label: string;
  readonly startedAtMs = wallMs();
  lastActiveMs = coarseClock.now;
  datagramsIn = 0;
  bytesIn = 0;
  datagramsOut = 0;
  bytesOut = 0;
  /** Datagrams dropped on this flow: queue full while opening, backpressure, oversized replies. */
  dropped = 0;
  errorCode: ErrorCode | null = null;
  ended = false;
  /** The flow's connection id (`conn` in its log line; sent to a tunnel target's agent), built on first use. */
  private readonly seq = nextConnSeq();
  private idText: string | null = null;
  get id(): string {
    return (this.idText ??= connIdText(this.seq));
  }

  constructor(
    protected readonly host: FlowHost,
    readonly clientAddress: string,
    readonly clientPort: number,
    readonly routeName: string,
    readonly routeSlot: number,
    label: string,
  ) {
    this.label = label;
  }

  /** One datagram from the client, already checked against max_datagram. */
  abstract fromClient(data: Uint8Array): void;
  /** Releases what the flow holds (socket, stream, balancer slot). */
  protected abstract release(): void;

  /** Ends the flow once, recording why (null: a normal end, such as the idle timeout). */
  end(code: ErrorCode | null): void {
    if (this.ended) return;
    this.ended = true;
    if (this.errorCode === null) this.errorCode = code;
    this.release();
    this.host.flowEnded(this);
  }

  get clientText(): string {
    return formatPeer(this.clientAddress, this.clientPort);
  }
}

/** A host:port target: one upstream socket per flow. */
export class HostFlow extends Flow {
  private sock: UdpSocket | null = null;
  private pending: Uint8Array[] = [];
  /** The target's IP (resolved once per flow when the target is a name). */
  private targetIp = "";
  private readonly targetPort: number;
  private readonly targetName: string;

  constructor(host: FlowHost, clientAddress: string, clientPort: number, routeName: string, routeSlot: number, private readonly balancer: Balancer, private readonly index: number) {
    const target = balancer.target(index);
    super(host, clientAddress, clientPort, routeName, routeSlot, formatTarget(target));
    if (target.kind !== "tcp") throw new Error("udp flow: unix targets are refused by config validation");
    this.targetName = target.hostname;
    this.targetPort = target.port;
    balancer.acquire(index);
    void this.open();
  }

  private async open(): Promise<void> {
    let sock: UdpSocket;
    try {
      const ip = isIP(this.targetName) !== 0 ? this.targetName : (await systemLookup(this.targetName))[0];
      if (ip === undefined) throw new Error(`${this.targetName} has no address`);
      this.targetIp = ip;
      sock = await this.host.bindUdp(ip.includes(":") ? "::" : "0.0.0.0", (d, port, address) => this.fromUpstream(d, port, address));
    } catch {
      this.balancer.markFailed(this.index, coarseClock.now);
      this.end(this.targetIp === "" ? "UPSTREAM_DNS" : "UPSTREAM_CONNECT_REFUSED");
      return;
    }
    if (this.ended) {
      sock.close();
      return;
    }
    this.sock = sock;
    for (const d of this.pending) sock.send(d, this.targetPort, this.targetIp);
    this.pending = [];
  }

  fromClient(data: Uint8Array): void {
    if (this.sock === null) {
      if (this.pending.length < MAX_PENDING) this.pending.push(data);
      else this.dropped++;
      return;
    }
    if (!this.sock.send(data, this.targetPort, this.targetIp)) this.dropped++;
  }

  private fromUpstream(data: Uint8Array, port: number, address: string): void {
    // Only the target's replies go back (a connected socket's check, by hand; a v4 reply may show as ::ffff:v4).
    if (this.ended || port !== this.targetPort || (address !== this.targetIp && address !== `::ffff:${this.targetIp}`)) return;
    if (data.length > this.host.maxDatagram) return this.host.oversized(this);
    this.host.reply(this, data);
  }

  protected release(): void {
    this.sock?.close();
    this.sock = null;
    this.pending = [];
    this.balancer.release(this.index);
  }
}

/** What a tunnel flow asks the worker's hub for: a stream to the service, or a refusal. */
export type OpenStream = (flow: TunnelFlow) => Promise<Conn>;

/** A `tunnel:NAME` target: one tunnel stream per flow, datagrams as UDP records. */
export class TunnelFlow extends Flow implements ConnHandler {
  private stream: Conn | null = null;
  /** Records (already framed) waiting for the stream. */
  private pending: Uint8Array[] = [];
  private writable = true;
  /** Accepts every record the wire allows; the listener's max_datagram is checked per record so an oversized one is dropped, not fatal. */
  private readonly decoder = new UdpFrameDecoder({ maxDatagram: 0xffff });

  constructor(host: FlowHost, clientAddress: string, clientPort: number, routeName: string, routeSlot: number, service: string, open: OpenStream) {
    super(host, clientAddress, clientPort, routeName, routeSlot, `tunnel:${service}`);
    open(this).then(
      (stream) => this.attach(stream),
      (err: unknown) => this.end(asProxyError(err, "SERVICE_OFFLINE", "upstream").code),
    );
  }

  private attach(stream: Conn): void {
    if (this.ended) {
      stream.close();
      return;
    }
    this.stream = stream;
    stream.setHandler(this);
    stream.resume();
    for (const f of this.pending) if (this.writable) this.writable = stream.write(f);
    this.pending = [];
  }

  fromClient(data: Uint8Array): void {
    if (this.stream === null) {
      // A fresh record per datagram: the one allocation on this path (header + payload in one write).
      if (this.pending.length < MAX_PENDING) this.pending.push(udpFrame(this.clientPort, data));
      else this.dropped++;
      return;
    }
    if (!this.writable) {
      this.dropped++;
      return;
    }
    this.writable = this.stream.write(udpFrame(this.clientPort, data));
  }

  onData(_c: Conn, chunk: Uint8Array): void {
    this.decoder.push(chunk);
    for (;;) {
      let r;
      try {
        r = this.decoder.next();
      } catch {
        return this.end("TUNNEL_PROTOCOL");
      }
      if (r === null) return;
      // One stream per flow: every record is for this client, whatever port it names.
      if (r.payload.length > this.host.maxDatagram) this.host.oversized(this);
      else this.host.reply(this, r.payload);
      if (this.ended) return;
    }
  }

  onDrain(): void {
    this.writable = true;
  }

  /** The agent ended the stream (its service socket went away): the flow is over. */
  onEnd(): void {
    this.end(null);
  }

  onClose(_c: Conn, err?: Error): void {
    this.stream = null;
    this.end(err === undefined ? null : "UPSTREAM_RESET");
  }

  protected release(): void {
    const s = this.stream;
    this.stream = null;
    this.pending = [];
    s?.close();
  }
}
