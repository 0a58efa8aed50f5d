/**
 * The path between two workers' tunnel hubs (DESIGN.md: "a client that wants
 * that agent's service may be accepted by any worker").
 *
 * Each pair of workers shares one MessageChannel, handed out by the
 * supervisor (`peer` message). Over it go the registry (each worker's full
 * list of locally held services, resent on change) and every cross-worker
 * stream: `open` → `opened` | `refused`, then `data` / `credit` / `end` /
 * `close`. Messages are batched: one postMessage per link per microtask turn,
 * with every data buffer transferred, not cloned.
 *
 * Each side of a cross-worker stream is a `PortConn`, a runtime Conn, so the
 * Relay joins it to a socket or a mux stream unchanged. Flow control is
 * credit-based: a sender keeps at most `XWORKER_WINDOW` bytes uncredited per
 * stream (`write` returns false past half of it); the receiver credits bytes
 * once its handler took them, so a paused consumer holds back its sender and
 * nothing queues without bound.
 *
 * Data is copied once per hop (the chunk is usually a view into a mux read
 * buffer that other streams' views share, so it cannot be transferred), into
 * an exact-size ArrayBuffer that is then transferred. bench/tunnel_bench.ts
 * (`--only xworker`) measures this against a SharedArrayBuffer ring.
 */
import { NULL_HANDLER } from "../runtime/mod.ts";
import { type ErrorRecord, ProxyError } from "../errors/mod.ts";
import type { Conn, ConnHandler, TlsInfo } from "../runtime/types.ts";
import type { OpenRequest } from "../tunnel/edge/mod.ts";

/** Uncredited bytes a cross-worker stream may have in flight. */
export const XWORKER_WINDOW = 256 * 1024;

/** The MessagePort surface we use (a real MessagePort in production and tests). */
export interface PortLike {
  postMessage(msg: unknown, transfer: ArrayBuffer[]): void;
  addEventListener(type: "message", fn: (e: MessageEvent) => void): void;
  start?(): void;
  close(): void;
}

export type LinkMsg =
  | { t: "services"; names: string[] }
  | { t: "open"; id: number; req: OpenRequest; timeoutMs: number }
  | { t: "opened"; id: number }
  | { t: "refused"; id: number; refusal: ErrorRecord }
  | { t: "data"; id: number; buf: ArrayBuffer }
  | { t: "credit"; id: number; n: number }
  | { t: "end"; id: number }
  | { t: "close"; id: number; reason: string | null };

/** What a link needs from its hub. */
export interface LinkHost {
  /** A peer worker asks this worker to open `req` locally; resolves with the destination-side conn. */
  openForPeer(req: OpenRequest, timeoutMs: number): Promise<Conn>;
  /** Joins a peer's stream to the local destination conn (a Relay, owned by the hub). */
  relayForPeer(peerSide: Conn, local: Conn, req: OpenRequest): void;
  /** The peer's list of services changed. */
  peerServices(workerId: number, names: string[]): void;
}

interface PendingOpen {
  req: OpenRequest;
  resolve: (c: PortConn) => void;
  reject: (e: ProxyError) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class PeerLink {
  private outbox: LinkMsg[] = [];
  private transfers: ArrayBuffer[] = [];
  private flushScheduled = false;
  private readonly flushBound = () => this.flush();
  private readonly conns = new Map<number, PortConn>();
  private readonly pending = new Map<number, PendingOpen>();
  /** Opens a peer asked for that are still connecting here (a close may cancel them). */
  private readonly inbound = new Map<number, { cancelled: boolean }>();
  private nextId: number;
  private closed = false;
  /** Traffic counters (bench/status). */
  bytesOut = 0;
  bytesIn = 0;
  messagesOut = 0;
  batchesOut = 0;

  constructor(readonly selfId: number, readonly peerId: number, private readonly port: PortLike, private readonly host: LinkHost) {
    // Stream ids are per link; the lower worker id opens even ids, the higher odd ones.
    this.nextId = selfId < peerId ? 0 : 1;
    port.addEventListener("message", (e) => this.onBatch(e.data as LinkMsg[]));
    port.start?.();
  }

  get streams(): number {
    return this.conns.size;
  }

  // ---------------------------------------------------------------- sending

  send(msg: LinkMsg, transfer?: ArrayBuffer): void {
    if (this.closed) return;
    this.outbox.push(msg);
    if (transfer) this.transfers.push(transfer);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushBound);
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed || this.outbox.length === 0) return;
    const batch = this.outbox;
    const transfers = this.transfers;
    this.outbox = [];
    this.transfers = [];
    this.messagesOut += batch.length;
    this.batchesOut++;
    this.port.postMessage(batch, transfers);
  }

  announce(names: string[]): void {
    this.send({ t: "services", names });
  }

  /** Opens `req` on the peer worker; resolves with this side of the stream. */
  open(req: OpenRequest, timeoutMs: number): Promise<PortConn> {
    if (this.closed) return Promise.reject(offline(req.service, `worker ${this.peerId} is gone`));
    const id = this.nextId;
    this.nextId += 2;
    return new Promise<PortConn>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (!this.pending.delete(id)) return;
        this.send({ t: "close", id, reason: "open timed out" });
        reject(new ProxyError("UPSTREAM_CONNECT_TIMEOUT", "upstream", `tunnel service '${req.service}' on worker ${this.peerId} did not answer within ${timeoutMs} ms`));
      }, timeoutMs + 100); // the peer's own open timeout fires first and says why
      this.pending.set(id, { req, resolve, reject, timer });
      this.send({ t: "open", id, req, timeoutMs });
    });
  }

  // ---------------------------------------------------------------- receiving

  private onBatch(batch: LinkMsg[]): void {
    if (this.closed || !Array.isArray(batch)) return;
    for (const m of batch) this.onMessage(m);
  }

  private onMessage(m: LinkMsg): void {
    switch (m.t) {
      case "data": {
        const c = this.conns.get(m.id);
        this.bytesIn += m.buf.byteLength;
        // A stream already closed here: its bytes are dropped (credit is moot).
        c?.remoteData(new Uint8Array(m.buf));
        return;
      }
      case "credit":
        this.conns.get(m.id)?.credit(m.n);
        return;
      case "end":
        this.conns.get(m.id)?.remoteEnd();
        return;
      case "close": {
        const c = this.conns.get(m.id);
        if (c) c.remoteClose(m.reason);
        else {
          const inb = this.inbound.get(m.id);
          if (inb) inb.cancelled = true;
        }
        return;
      }
      case "open":
        return this.onOpen(m.id, m.req, m.timeoutMs);
      case "opened": {
        const p = this.pending.get(m.id);
        if (!p) {
          // We gave up (timeout) before the answer: tell the peer to drop it.
          this.send({ t: "close", id: m.id, reason: "opener gave up" });
          return;
        }
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        const c = new PortConn(this, m.id, p.req);
        this.conns.set(m.id, c);
        p.resolve(c);
        return;
      }
      case "refused": {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        clearTimeout(p.timer);
        p.reject(ProxyError.fromRecord(m.refusal));
        return;
      }
      case "services":
        this.host.peerServices(this.peerId, m.names);
        return;
    }
  }

  private onOpen(id: number, req: OpenRequest, timeoutMs: number): void {
    const inb = { cancelled: false };
    this.inbound.set(id, inb);
    this.host.openForPeer(req, timeoutMs).then(
      (local) => {
        this.inbound.delete(id);
        if (inb.cancelled || this.closed) {
          local.close();
          return;
        }
        const c = new PortConn(this, id, req);
        this.conns.set(id, c);
        this.send({ t: "opened", id });
        this.host.relayForPeer(c, local, req);
      },
      (err: unknown) => {
        this.inbound.delete(id);
        const e = err instanceof ProxyError ? err : new ProxyError("INTERNAL", "internal", String(err));
        this.send({ t: "refused", id, refusal: e.toRecord() });
      },
    );
  }

  forget(id: number): void {
    this.conns.delete(id);
  }

  /** The peer worker is gone (or this one is stopping): every stream and pending open fails. */
  close(reason: string): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    try {
      this.port.close();
    } catch { /* already closed */ }
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(offline(p.req.service, reason));
    }
    this.pending.clear();
    for (const inb of this.inbound.values()) inb.cancelled = true;
    const conns = [...this.conns.values()];
    this.conns.clear();
    for (const c of conns) c.remoteClose(reason);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

function offline(service: string, why: string): ProxyError {
  return new ProxyError("SERVICE_OFFLINE", "upstream", `tunnel service '${service}' is offline: ${why}`);
}


/** Splits "ip:port" / "[v6]:port" for the Conn address fields. */
function splitHostPort(s: string): [string, number] {
  const i = s.lastIndexOf(":");
  if (i <= 0) return ["", 0];
  return [s.slice(0, i).replace(/^\[|\]$/g, ""), Number(s.slice(i + 1)) || 0];
}

/**
 * One side of a cross-worker stream. Its address fields are the original
 * client's (remote) and the address it connected to (local), from the open
 * request, so logs and PROXY headers on either worker name the real client.
 */
export class PortConn implements Conn {
  private handler: ConnHandler = NULL_HANDLER;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /** Bytes sent and not yet credited by the peer. */
  private inFlight = 0;
  private wantDrain = false;
  private paused = false;
  private recvQ: Uint8Array[] = [];
  private deliverScheduled = false;
  private uncredited = 0;
  private creditScheduled = false;
  private localEnded = false;
  private remoteEnded = false;
  private endDelivered = false;
  private closed = false;
  /** A graceful remote close waiting for queued bytes to be delivered first. */
  private closeAfterQueue = false;

  constructor(private readonly link: PeerLink, readonly id: number, req: OpenRequest) {
    [this.remoteAddress, this.remotePort] = splitHostPort(req.client);
    [this.localAddress, this.localPort] = splitHostPort(req.server);
  }

  get writableLength(): number {
    return this.inFlight;
  }

  write(data: Uint8Array): boolean {
    if (this.closed || this.localEnded) return false;
    const n = data.length;
    if (n === 0) return true;
    // One copy into an exact-size buffer, which is then transferred (not cloned). Not `data.slice()`:
    // on a node Buffer (what Bun's sockets hand out) slice() is a view, and transferring its
    // `.buffer` would detach the whole read chunk that other streams' views still use.
    const copy = new Uint8Array(n);
    copy.set(data);
    const buf = copy.buffer;
    this.link.bytesOut += n;
    this.link.send({ t: "data", id: this.id, buf }, buf);
    this.inFlight += n;
    if (this.inFlight >= XWORKER_WINDOW / 2) {
      this.wantDrain = true;
      return false;
    }
    return true;
  }

  credit(n: number): void {
    if (this.closed) return;
    this.inFlight -= n;
    if (this.wantDrain && this.inFlight < XWORKER_WINDOW / 4) {
      this.wantDrain = false;
      this.handler.onDrain(this);
    } else if (this.inFlight === 0 && this.localEnded) {
      // Everything we wrote was taken: a relay waiting to close us after end() hears it here.
      this.handler.onDrain(this);
    }
  }

  remoteData(chunk: Uint8Array): void {
    if (this.closed || this.remoteEnded) return;
    if (this.paused || this.recvQ.length > 0) {
      this.recvQ.push(chunk);
      return;
    }
    this.deliver(chunk);
  }

  private deliver(chunk: Uint8Array): void {
    this.uncredited += chunk.length;
    if (!this.creditScheduled) {
      this.creditScheduled = true;
      queueMicrotask(() => this.sendCredit());
    }
    this.handler.onData(this, chunk);
  }

  private sendCredit(): void {
    this.creditScheduled = false;
    if (this.closed || this.uncredited === 0) return;
    this.link.send({ t: "credit", id: this.id, n: this.uncredited });
    this.uncredited = 0;
  }

  remoteEnd(): void {
    if (this.closed || this.remoteEnded) return;
    this.remoteEnded = true;
    if (!this.paused && this.recvQ.length === 0) this.deliverEnd();
  }

  private deliverEnd(): void {
    if (this.endDelivered) return;
    this.endDelivered = true;
    this.handler.onEnd(this);
    if (this.localEnded && !this.closed) this.finish(undefined, false);
  }

  /** The peer closed: with a reason it is an error (now); without, after what is queued (graceful). */
  remoteClose(reason: string | null): void {
    if (this.closed) return;
    if (reason === null && (this.recvQ.length > 0 || this.paused) && this.remoteEnded) {
      this.closeAfterQueue = true;
      return;
    }
    this.finish(reason === null ? undefined : new ProxyError("UPSTREAM_RESET", "upstream", `cross-worker stream closed: ${reason}`), false);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.deliverScheduled && (this.recvQ.length > 0 || (this.remoteEnded && !this.endDelivered) || this.closeAfterQueue)) {
      this.deliverScheduled = true;
      queueMicrotask(() => this.runDeliver());
    }
  }

  private runDeliver(): void {
    this.deliverScheduled = false;
    while (!this.paused && !this.closed && this.recvQ.length > 0) this.deliver(this.recvQ.shift()!);
    if (this.paused || this.closed) return;
    if (this.remoteEnded) this.deliverEnd();
    if (this.closeAfterQueue && !this.closed) this.finish(undefined, false);
  }

  end(): void {
    if (this.closed || this.localEnded) return;
    this.localEnded = true;
    this.link.send({ t: "end", id: this.id });
    if (this.endDelivered) this.finish(undefined, false);
  }

  close(): void {
    this.finish(undefined, true);
  }

  private finish(err: Error | undefined, tellPeer: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.recvQ = [];
    if (tellPeer) this.link.send({ t: "close", id: this.id, reason: null });
    this.link.forget(this.id);
    this.handler.onClose(this, err);
  }

  setHandler(handler: ConnHandler): void {
    this.handler = handler;
  }
  setNoDelay(): void {}
  tls(): TlsInfo | null {
    return null;
  }
}
