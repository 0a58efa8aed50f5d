/**
 * Bun adapter. Bun's `socket.write()` does not queue: it returns the bytes
 * the kernel took and drops the rest, so this adapter keeps the unwritten
 * tail (bounded: the caller pauses its source when `write` returns false)
 * and flushes it on `drain`.
 */
import { availableParallelism } from "node:os";
import { ProxyError } from "../errors/mod.ts";
import type {
  Conn,
  ConnectOptions,
  ConnHandler,
  HttpServeOptions,
  HttpServer,
  Listener,
  ListenOptions,
  PeerCertificate,
  Runtime,
  Signal,
  TlsInfo,
  UdpBindOptions,
  UdpSocket,
  WorkerHandle,
} from "./types.ts";
import { NULL_HANDLER, parsePeerCertificate, WorkerAdapter } from "./common.ts";
import { systemClock } from "./clock.ts";
import { bunInheritance, takeAdopted, workerEnv } from "./bun_sockets.ts";
import { BunKernelRelay } from "./kernel_relay/kernel_relay.ts";
import { spawnPty } from "./pty_bun.ts";
import { bunQuic } from "./quic_bun.ts";

// deno-lint-ignore no-explicit-any
type BunSocket = any;
/** `Bun`, reached through globalThis so `deno check` can type-check this file too. */
// deno-lint-ignore no-explicit-any
const Bun: any = (globalThis as any).Bun;

/** Bytes the adapter holds before `write` asks the caller to pause. */
const HIGH_WATER = 64 * 1024;

class BunConn implements Conn {
  handler: ConnHandler;
  /** Unwritten tails, oldest first. Bounded by HIGH_WATER + one chunk per write the caller made before pausing. */
  /** Allocated on the first short write: an idle or flowing connection holds none. */
  private pending: Uint8Array[] | null = null;
  private pendingBytes = 0;
  private endRequested = false;
  private closed = false;
  /** close() was called: whatever still arrives is dropped. */
  closing = false;
  private readonly isTls: boolean;

  constructor(readonly socket: BunSocket, handler: ConnHandler, isTls: boolean) {
    this.handler = handler;
    this.isTls = isTls;
  }

  /** Read from the socket once (each read is a call into Bun that builds a string). */
  private peerAddress: string | undefined = undefined;
  private peerPort = -1;

  get remoteAddress(): string {
    return (this.peerAddress ??= this.socket.remoteAddress ?? "");
  }
  get remotePort(): number {
    if (this.peerPort < 0) this.peerPort = this.socket.remotePort ?? 0;
    return this.peerPort;
  }
  get localAddress(): string {
    return this.socket.localAddress ?? "";
  }
  get localPort(): number {
    return this.socket.localPort ?? 0;
  }
  get writableLength(): number {
    return this.pendingBytes;
  }

  write(data: Uint8Array): boolean {
    if (this.closed || this.closing) return false;
    if (this.pendingBytes === 0) {
      const n = this.socket.write(data);
      if (n === data.length) return true;
      if (n < 0) return false; // socket already closed; onClose follows
      // Keep a view of the tail: the caller's buffer is not reused (fresh per read).
      const rest = data.subarray(n);
      (this.pending ??= []).push(rest);
      this.pendingBytes += rest.length;
      return false;
    }
    this.pending!.push(data);
    this.pendingBytes += data.length;
    return this.pendingBytes < HIGH_WATER;
  }

  /** Called from Bun's drain event. Returns true when everything is flushed. */
  flush(): boolean {
    const pending = this.pending;
    while (pending !== null && pending.length > 0) {
      const head = pending[0]!;
      const n = this.socket.write(head);
      if (n < 0) return false;
      this.pendingBytes -= Math.max(0, n);
      if (n < head.length) {
        pending[0] = head.subarray(n);
        return false;
      }
      pending.shift();
    }
    if (this.endRequested) this.socket.shutdown();
    return true;
  }

  /** Each real pause/resume is an epoll_ctl: skip the ones that change nothing. */
  private paused = false;

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
  }

  end(): void {
    if (this.closed || this.endRequested) return;
    this.endRequested = true;
    if (this.pendingBytes === 0) this.socket.shutdown();
  }

  /**
   * Bun's `end()` sends FIN and releases the socket (its close event follows
   * at once); `shutdown()` is the half-close; `terminate()` resets.
   */
  close(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    this.pending = null;
    this.pendingBytes = 0;
    this.socket.end();
  }

  markClosed(): boolean {
    if (this.closed) return false;
    this.closed = true;
    return true;
  }

  /** Kernel relay: the descriptor of a plain socket with nothing queued and no FIN sent, else -1. */
  handoverFd(): number {
    if (this.isTls || this.closed || this.closing || this.endRequested || this.pendingBytes > 0) return -1;
    const fd = this.socket.fd;
    return typeof fd === "number" && fd >= 0 ? fd : -1;
  }

  /**
   * Kernel relay: the loop holds a duplicate of the descriptor; Bun lets go of
   * its own. `end()` here is epoll_ctl(DEL) + close(2), no shutdown(2), so the
   * connection lives on in the duplicate and the peer sees nothing.
   */
  handedOver(): void {
    this.handler = NULL_HANDLER;
    this.closing = true;
    this.closed = true;
    this.socket.end();
  }

  setHandler(handler: ConnHandler): void {
    this.handler = handler;
  }

  /** Bun turns TCP_NODELAY on for every TCP socket it accepts or opens (seen with strace). */
  private noDelay = true;

  setNoDelay(on: boolean): void {
    if (on === this.noDelay) return; // a setsockopt saved per connection
    this.noDelay = on;
    this.socket.setNoDelay?.(on);
  }

  tls(): TlsInfo | null {
    if (!this.isTls) return null;
    const s = this.socket;
    let peer: PeerCertificate | null = null;
    const raw = s.getPeerCertificate?.(true);
    if (raw && typeof raw === "object" && Object.keys(raw).length > 0) peer = parsePeerCertificate(raw);
    return {
      alpn: typeof s.alpnProtocol === "string" ? s.alpnProtocol : null,
      servername: s.getServername?.() || null,
      authorized: s.authorized === true,
      peerCertificate: peer,
    };
  }
}

/**
 * Bun's socket handlers are one object per listener; each event is forwarded
 * to the connection's own handler (socket.data holds the BunConn).
 */
const socketEvents = {
  data(socket: BunSocket, chunk: Uint8Array) {
    const c: BunConn = socket.data;
    if (!c.closing) c.handler.onData(c, chunk);
  },
  drain(socket: BunSocket) {
    const c: BunConn = socket.data;
    if (c?.flush()) c.handler.onDrain(c);
  },
  end(socket: BunSocket) {
    const c: BunConn = socket.data;
    if (c && !c.closing) c.handler.onEnd(c);
  },
  close(socket: BunSocket, err?: Error) {
    const c: BunConn = socket.data;
    if (c?.markClosed()) c.handler.onClose(c, err ?? undefined);
  },
  error(socket: BunSocket, err: Error) {
    const c: BunConn = socket.data;
    if (c?.markClosed()) c.handler.onClose(c, err);
  },
  timeout() {},
};


/**
 * Bun takes ALPN protocol lists in the TLS wire format (RFC 7301 §3.1: each
 * id prefixed by its length byte), not as an array of strings.
 */
function alpnWire(list: readonly string[] | undefined): Uint8Array | undefined {
  if (!list || list.length === 0) return undefined;
  const ids = list.map((p) => new TextEncoder().encode(p));
  const out = new Uint8Array(ids.reduce((n, b) => n + 1 + b.length, 0));
  let o = 0;
  for (const b of ids) {
    out[o++] = b.length;
    out.set(b, o);
    o += b.length;
  }
  return out;
}

function tlsServerOptions(t: ListenOptions["tls"]) {
  if (!t) return undefined;
  return {
    cert: t.cert,
    key: t.key,
    ca: t.ca,
    requestCert: t.requestCert ?? false,
    rejectUnauthorized: t.rejectUnauthorized ?? false,
    ALPNProtocols: alpnWire(t.alpn),
  };
}

function listen(opts: ListenOptions): Listener {
  const isTls = opts.tls !== undefined;
  const onAccept = opts.onAccept;
  const handlers = {
    ...socketEvents,
    open(socket: BunSocket) {
      const c = new BunConn(socket, NULL_HANDLER, isTls);
      socket.data = c;
      const h = onAccept(c);
      if (h) c.handler = h;
    },
    handshake(socket: BunSocket, success: boolean, authorizationError: Error | null) {
      // mTLS refusals surface here; rejectUnauthorized makes Bun close the socket itself.
      if (!success && authorizationError && socket.data) socket.data.handshakeError = authorizationError;
    },
  };
  const a = opts.address;
  // Socket activation: a socket inherited for this address is adopted (a dup of it), not bound.
  const fd = takeAdopted(a);
  if (fd !== null) {
    const server = Bun.listen({ fd, allowHalfOpen: true, socket: handlers, tls: tlsServerOptions(opts.tls) } as never) as BunSocket;
    return {
      hostname: "unix" in a ? a.unix : a.hostname,
      port: "unix" in a ? 0 : a.port,
      close() {
        server.stop(false);
      },
    };
  }
  const server = "unix" in a
    ? Bun.listen({ unix: a.unix, socket: handlers, tls: tlsServerOptions(opts.tls) } as never)
    : Bun.listen({
      hostname: a.hostname,
      port: a.port,
      reusePort: a.reusePort ?? false,
      allowHalfOpen: true,
      socket: handlers,
      tls: tlsServerOptions(opts.tls),
    } as never);
  const s = server as BunSocket;
  return {
    hostname: "unix" in a ? a.unix : s.hostname,
    port: "unix" in a ? 0 : s.port,
    close() {
      s.stop(false);
    },
  };
}

/**
 * socket.data of an outgoing socket until it is usable: until it opens (TCP),
 * or until its handshake is done (TLS); then the BunConn replaces it.
 */
class PendingConnect {
  settled = false;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** TLS: the connection, opened and waiting for its handshake. */
  conn: BunConn | null = null;
  constructor(
    readonly opts: ConnectOptions,
    readonly resolve: (c: Conn) => void,
    readonly reject: (e: Error) => void,
  ) {}

  fail(err: ProxyError): void {
    if (this.settled) return;
    this.settled = true;
    if (this.timer) clearTimeout(this.timer);
    this.reject(err);
    // A socket still in its TLS handshake: nobody will use it.
    const c = this.conn;
    if (c !== null && c.markClosed()) c.socket.end();
  }

  succeed(socket: BunSocket, c: BunConn): void {
    socket.data = c;
    if (this.settled) {
      // Timed out already: nobody wants this connection any more.
      if (c.markClosed()) socket.end();
      return;
    }
    this.settled = true;
    if (this.timer) clearTimeout(this.timer);
    this.resolve(c);
  }
}

function connectTimedOut(p: PendingConnect): void {
  p.fail(new ProxyError("UPSTREAM_CONNECT_TIMEOUT", "upstream", `Connecting to ${describe(p.opts)} timed out after ${p.opts.timeoutMs} ms`));
}

/**
 * One handler object for every outgoing socket (not one per connect): the
 * per-connection state rides in socket.data. Until the connection is usable
 * socket.data is the PendingConnect, and its events settle the connect
 * instead of reaching the caller's handler.
 */
const connectEvents = {
  ...socketEvents,
  open(socket: BunSocket) {
    const p: PendingConnect = socket.data;
    const c = new BunConn(socket, p.opts.handler, p.opts.tls !== undefined);
    // Bun opens a TLS socket before its handshake, and a failed certificate check then only closes it: a
    // caller handed the socket here would see a plain close and never the reason. Wait for `handshake`.
    if (p.opts.tls !== undefined && !p.settled) p.conn = c;
    else p.succeed(socket, c);
  },
  handshake(socket: BunSocket, success: boolean, authorizationError: Error | null) {
    const p = socket.data;
    if (!(p instanceof PendingConnect) || p.conn === null) return;
    // With rejectUnauthorized (the default) a failed verification is success=false; without it, the error is
    // only informative and the connection goes on.
    if (!success) return p.fail(tlsErrorFor(authorizationError, p.opts));
    p.succeed(socket, p.conn);
  },
  connectError(socket: BunSocket, err: Error) {
    const p = socket.data;
    if (p instanceof PendingConnect) p.fail(connectErrorFor(err, p.opts));
  },
  data(socket: BunSocket, chunk: Uint8Array) {
    if (socket.data instanceof BunConn) socketEvents.data(socket, chunk);
  },
  drain(socket: BunSocket) {
    if (socket.data instanceof BunConn) socketEvents.drain(socket);
  },
  end(socket: BunSocket) {
    if (socket.data instanceof BunConn) socketEvents.end(socket);
  },
  close(socket: BunSocket, err?: Error) {
    const c = socket.data;
    if (c instanceof BunConn) socketEvents.close(socket, err);
    else if (c instanceof PendingConnect) {
      c.fail(err ? connectErrorFor(err, c.opts) : new ProxyError("UPSTREAM_CONNECT_REFUSED", "upstream", `Cannot connect to ${describe(c.opts)}: closed during the TLS handshake`));
    }
  },
  error(socket: BunSocket, err: Error) {
    const c = socket.data;
    if (c instanceof BunConn) socketEvents.error(socket, err);
    else if (c instanceof PendingConnect) c.fail(connectErrorFor(err, c.opts));
  },
};

function connect(opts: ConnectOptions): Promise<Conn> {
  return new Promise<Conn>((resolve, reject) => {
    const pending = new PendingConnect(opts, resolve, reject);
    const a = opts.address;
    const t = opts.tls;
    const tls = t
      ? {
        serverName: t.servername,
        ca: t.ca,
        cert: t.cert,
        key: t.key,
        ALPNProtocols: alpnWire(t.alpn),
        rejectUnauthorized: t.rejectUnauthorized ?? true,
      }
      : undefined;
    if (opts.timeoutMs && opts.timeoutMs > 0) pending.timer = setTimeout(connectTimedOut, opts.timeoutMs, pending);
    const started = "unix" in a
      ? Bun.connect({ unix: a.unix, socket: connectEvents, tls, data: pending } as never)
      : Bun.connect({ hostname: a.hostname, port: a.port, allowHalfOpen: true, socket: connectEvents, tls, data: pending } as never);
    (started as Promise<unknown>).catch((err: Error) => pending.fail(connectErrorFor(err, opts)));
  });
}

function describe(opts: ConnectOptions): string {
  const a = opts.address;
  return "unix" in a ? `unix:${a.unix}` : `${a.hostname}:${a.port}`;
}

function connectErrorFor(err: Error, opts: ConnectOptions): ProxyError {
  // deno-lint-ignore no-explicit-any
  const code = (err as any)?.code ?? "";
  const timeout = code === "ETIMEDOUT";
  return new ProxyError(
    timeout ? "UPSTREAM_CONNECT_TIMEOUT" : "UPSTREAM_CONNECT_REFUSED",
    "upstream",
    `Cannot connect to ${describe(opts)}: ${code || err?.message || "refused"}`,
    { cause: err },
  );
}

/** A failed TLS handshake of ours: the certificate error as the TLS library words it, with its code. */
function tlsErrorFor(err: Error | null, opts: ConnectOptions): ProxyError {
  // deno-lint-ignore no-explicit-any
  const code = (err as any)?.code;
  const why = err ? `certificate verify failed: ${err.message}${code ? ` (${code})` : ""}` : "handshake failed";
  return new ProxyError("UPSTREAM_CONNECT_REFUSED", "upstream", `TLS handshake with ${describe(opts)} failed: ${why}`, err ? { cause: err } : undefined);
}

async function serveHttp(opts: HttpServeOptions): Promise<HttpServer> {
  const server = Bun.serve({
    hostname: opts.hostname,
    port: opts.port,
    reusePort: opts.reusePort ?? false,
    ...(opts.tls ? { tls: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
    fetch: opts.fetch,
  });
  return {
    hostname: server.hostname ?? opts.hostname,
    port: server.port ?? opts.port,
    async close() {
      await server.stop(true);
    },
  };
}

/**
 * Bun.udpSocket's `flags` are not in its typings; node:dgram passes them for
 * `reusePort` (Bun 1.4: LISTEN_REUSE_PORT = 4, and
 * LISTEN_DISALLOW_REUSE_PORT_FAILURE = 32 so a bind that cannot share fails
 * instead of silently taking the port alone).
 */
const UDP_REUSE_PORT_FLAGS = 4 | 32;

async function bindUdp(opts: UdpBindOptions): Promise<UdpSocket> {
  const sock = await Bun.udpSocket({
    hostname: opts.hostname,
    port: opts.port,
    ...(opts.reusePort ? { flags: UDP_REUSE_PORT_FLAGS } : {}),
    binaryType: "uint8array",
    socket: {
      data(_s: unknown, data: Uint8Array, port: number, address: string) {
        opts.onDatagram(data, port, address);
      },
    },
  });
  return {
    hostname: sock.hostname ?? opts.hostname,
    port: sock.port,
    send: (data, port, address) => sock.send(data, port, address) === true,
    close: () => sock.close(),
  };
}

function spawnWorker(url: URL, name: string): WorkerHandle {
  const env = workerEnv(); // only set when sockets were adopted: the worker must know them
  return new WorkerAdapter(new Worker(url.href, { type: "module", name, ...(env ? { env } : {}) } as never), "close");
}

function onSignal(sig: Signal, fn: () => void): void {
  process.on(sig, fn);
}

export const bunRuntime: Runtime = {
  clock: systemClock,
  name: "bun",
  get version() {
    return Bun.version;
  },
  listen,
  connect,
  serveHttp,
  spawnWorker,
  bindUdp,
  udpReusePort: true,
  inherit: bunInheritance,
  // One per thread: each worker has its own module instance, so its own loop (started on first use).
  kernelRelay: new BunKernelRelay(),
  // node:quic is loaded on its first use, not here (quic_bun.ts).
  quic: bunQuic,
  // Bun.listen takes one certificate; node:tls's SNICallback picks among several (node_tls.ts).
  // Loaded on use: node:tls costs every process that never serves HTTPS (the agent) ~1.5 MB.
  listenSelectingTls: async (o) => (await import("./node_tls.ts")).listenSelectingTls(o),
  // Bun.Terminal: remote shells (agent --allow-shell).
  spawnPty,
  onSignal,
  onExit: (fn) => void process.on("exit", (code: number) => fn(code)),
  get pid() {
    return process.pid;
  },
  get args() {
    return process.argv.slice(2);
  },
  env: (name) => process.env[name],
  exit: (code) => process.exit(code),
  cpuCount: () => availableParallelism(),
  rss: () => process.memoryUsage.rss(),
  cpuUsageMicros: () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  },
};
