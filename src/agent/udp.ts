/**
 * UDP through the tunnel (DESIGN.md "UDP over a stream"): datagrams travel on
 * a stream as `port u16 BE | length u16 BE | bytes`, one stream per client
 * address (IP), with an idle timeout.
 *
 * - Source (`--forward-udp 127.0.0.1:5353=dns`): one local socket; a
 *   datagram from a new client IP opens a stream to the service; `port` is the
 *   client's source port, and replies carry it back.
 * - Destination (`--expose dns=udp:127.0.0.1:53`): per (stream, port) one
 *   ephemeral socket towards the service, so the service's replies come back
 *   to the right client port.
 *
 * UDP may drop, so nothing here queues without bound: while a stream is
 * opening a few datagrams wait (bounded), and while a stream is
 * backpressured new datagrams are dropped and counted.
 */
import { wallMs } from "../runtime/mod.ts";
import type { ConnHandler, Conn, Runtime, UdpSocket } from "../runtime/types.ts";
import { UdpFrameDecoder, udpFrame } from "../proto/udp_frame.ts";
import type { OpenMessage } from "../proto/tunnel_control.ts";
import { formatPeer } from "../proto/ip_text.ts";
import { type Logger, nextConnId } from "../log/mod.ts";
import type { AgentConfig, ExposeTarget, Forward } from "./config.ts";
import type { AgentSession } from "./session.ts";

/** What the UDP pieces need from their agent (Agent implements it). */
export interface UdpHost {
  readonly cfg: AgentConfig;
  readonly runtime: Runtime;
  readonly log: Logger;
  /** The session new streams go on, or null while (re)connecting. */
  readySession(): AgentSession | null;
}

/** Datagrams held per flow while its stream opens. */
const MAX_PENDING = 64;

interface Counts {
  streams: number;
  open: number;
  bytesIn: number;
  bytesOut: number;
  errors: number;
  refused?: number;
}

class SourceFlow implements ConnHandler {
  stream: Conn | null = null;
  pending: Uint8Array[] = [];
  writable = true;
  lastActive = wallMs();
  dropped = 0;
  closed = false;
  session: AgentSession | null = null;
  private readonly decoder = new UdpFrameDecoder();

  constructor(readonly owner: UdpSource, readonly address: string) {}

  send(port: number, data: Uint8Array): void {
    this.lastActive = wallMs();
    const frame = udpFrame(port, data);
    if (this.stream === null) {
      if (this.pending.length < MAX_PENDING) this.pending.push(frame);
      else this.dropped++;
      return;
    }
    if (!this.writable) {
      this.dropped++;
      return;
    }
    this.owner.counts.bytesOut += data.length;
    this.writable = this.stream.write(frame);
  }

  attach(stream: Conn, session: AgentSession): void {
    this.stream = stream;
    this.session = session;
    stream.setHandler(this);
    stream.resume();
    for (const f of this.pending) {
      this.owner.counts.bytesOut += f.length - 4;
      this.writable = stream.write(f);
    }
    this.pending = [];
  }

  onData(_c: Conn, chunk: Uint8Array): void {
    this.lastActive = wallMs();
    this.decoder.push(chunk);
    for (;;) {
      let r;
      try {
        r = this.decoder.next();
      } catch {
        this.stream?.close();
        return;
      }
      if (r === null) return;
      this.owner.counts.bytesIn += r.payload.length;
      this.owner.socket.send(r.payload, r.port, this.address);
    }
  }
  onDrain(): void {
    this.writable = true;
  }
  onEnd(c: Conn): void {
    c.end();
  }
  onClose(): void {
    this.finish();
  }

  finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.owner.flowEnded(this);
  }
}

export class UdpSource {
  private readonly flows = new Map<string, SourceFlow>();
  socket!: UdpSocket;

  private constructor(private readonly agent: UdpHost, readonly forward: Forward, readonly counts: Counts) {}

  static async bind(agent: UdpHost, f: Forward, counts: Counts): Promise<UdpSource> {
    const u = new UdpSource(agent, f, counts);
    u.socket = await agent.runtime.bindUdp({
      hostname: f.listen.hostname,
      port: f.listen.port,
      onDatagram: (data, port, address) => u.onDatagram(data, port, address),
    });
    return u;
  }

  get port(): number {
    return this.socket.port;
  }

  private onDatagram(data: Uint8Array, port: number, address: string): void {
    let flow = this.flows.get(address);
    if (flow === undefined) {
      const s = this.agent.readySession();
      if (s === null) {
        this.counts.refused = (this.counts.refused ?? 0) + 1;
        return; // not connected: UDP may drop
      }
      flow = new SourceFlow(this, address);
      this.flows.set(address, flow);
      this.counts.streams++;
      this.counts.open++;
      const open: OpenMessage = {
        type: "open",
        service: this.forward.service,
        proto: "udp",
        client: formatPeer(address, port),
        server: formatPeer(this.forward.listen.hostname, this.socket.port),
        proxy: "none",
        connId: nextConnId(),
      };
      const f = flow;
      s.openService(open).then(
        (stream) => {
          if (f.closed) {
            stream.close();
            s.streamDone();
            return;
          }
          f.attach(stream, s);
        },
        (e: Error) => {
          this.counts.errors++;
          this.agent.log.warn("cannot open UDP tunnel stream", { service: this.forward.service, conn: open.connId, client: address, reason: e.message });
          f.finish();
        },
      );
    }
    flow.send(port, data);
  }

  flowEnded(f: SourceFlow): void {
    if (this.flows.get(f.address) === f) this.flows.delete(f.address);
    this.counts.open--;
    if (f.stream !== null) f.session?.streamDone();
  }

  sweep(now: number): void {
    for (const f of this.flows.values()) {
      if (now - f.lastActive >= this.agent.cfg.udpIdleMs) {
        if (f.stream) f.stream.close();
        else f.finish();
      }
    }
  }

  close(): void {
    for (const f of [...this.flows.values()]) f.stream?.close();
    this.socket.close();
  }
}

interface PortSocket {
  sock: UdpSocket | null;
  queue: Uint8Array[];
  lastActive: number;
}

/** One stream from the edge carrying one client's datagrams to a UDP service. */
export class UdpDestination implements ConnHandler {
  private readonly decoder = new UdpFrameDecoder();
  private readonly sockets = new Map<number, PortSocket>();
  private writable = true;
  private lastActive = wallMs();
  private closed = false;
  dropped = 0;

  constructor(
    private readonly agent: UdpHost,
    private readonly session: AgentSession,
    private readonly stream: Conn,
    private readonly target: Extract<ExposeTarget, { kind: "udp" }>,
    private readonly counts: Counts,
    private readonly onDone: () => void,
  ) {
    stream.setHandler(this);
    stream.resume();
  }

  onData(_c: Conn, chunk: Uint8Array): void {
    this.lastActive = wallMs();
    this.decoder.push(chunk);
    for (;;) {
      let r;
      try {
        r = this.decoder.next();
      } catch (e) {
        this.agent.log.info("bad UDP frame from the edge", { reason: (e as Error).message });
        this.stream.close();
        return;
      }
      if (r === null) return;
      this.counts.bytesIn += r.payload.length;
      this.toService(r.port, r.payload);
    }
  }

  private toService(port: number, payload: Uint8Array): void {
    let ps = this.sockets.get(port);
    if (ps === undefined) {
      ps = { sock: null, queue: [payload], lastActive: wallMs() };
      this.sockets.set(port, ps);
      const entry = ps;
      const v6 = this.target.hostname.includes(":");
      this.agent.runtime.bindUdp({
        hostname: v6 ? "::" : "0.0.0.0",
        port: 0,
        onDatagram: (data, fromPort, from) => this.fromService(port, entry, data, fromPort, from),
      }).then(
        (sock) => {
          if (this.closed || this.sockets.get(port) !== entry) {
            sock.close();
            return;
          }
          entry.sock = sock;
          for (const q of entry.queue) sock.send(q, this.target.port, this.target.hostname);
          entry.queue = [];
        },
        () => this.sockets.delete(port),
      );
      return;
    }
    ps.lastActive = wallMs();
    if (ps.sock === null) {
      if (ps.queue.length < MAX_PENDING) ps.queue.push(payload);
      else this.dropped++;
      return;
    }
    ps.sock.send(payload, this.target.port, this.target.hostname);
  }

  private fromService(port: number, entry: PortSocket, data: Uint8Array, fromPort: number, from: string): void {
    // Only the service's replies go back (a connected-socket check, by hand).
    if (fromPort !== this.target.port || (from !== this.target.hostname && from !== `::ffff:${this.target.hostname}`)) return;
    entry.lastActive = this.lastActive = wallMs();
    if (!this.writable) {
      this.dropped++;
      return;
    }
    this.counts.bytesOut += data.length;
    this.writable = this.stream.write(udpFrame(port, data));
  }

  onDrain(): void {
    this.writable = true;
  }
  onEnd(): void {
    this.stream.end();
  }
  onClose(): void {
    this.close();
  }

  sweep(now: number): void {
    const idle = this.agent.cfg.udpIdleMs;
    for (const [port, ps] of this.sockets) {
      if (now - ps.lastActive >= idle) {
        ps.sock?.close();
        this.sockets.delete(port);
      }
    }
    if (now - this.lastActive >= idle) this.stream.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const ps of this.sockets.values()) ps.sock?.close();
    this.sockets.clear();
    this.stream.close();
    this.counts.open--;
    this.session.streamDone();
    this.onDone();
  }
}
