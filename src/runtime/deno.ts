/**
 * Deno adapter. Deno sockets are pull-based (`conn.read(buf)`), so each
 * connection runs one read loop. The read buffer adapts to the traffic: an
 * idle connection holds a 2 KiB buffer (not Deno streams' 64 KiB), a busy
 * one grows to 256 KiB reads. Each delivered chunk is a fresh buffer.
 */
import { availableParallelism } from "node:os";
import process from "node:process";
import { ProxyError } from "../errors/mod.ts";
import { NULL_HANDLER, WorkerAdapter } from "./common.ts";
import { systemClock } from "./clock.ts";
import type {
  Conn,
  ConnectOptions,
  ConnHandler,
  HttpServeOptions,
  HttpServer,
  Listener,
  ListenOptions,
  Runtime,
  Signal,
  TlsInfo,
  UdpBindOptions,
  UdpSocket,
  WorkerHandle,
} from "./types.ts";

// deno-lint-ignore no-explicit-any
type DenoConn = any;
// deno-lint-ignore no-explicit-any
const D: any = (globalThis as any).Deno;

const MIN_READ = 2 * 1024;
const MAX_READ = 256 * 1024;
const HIGH_WATER = 64 * 1024;


class DenoConnAdapter implements Conn {
  handler: ConnHandler = NULL_HANDLER;
  private queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private writing = false;
  /** write() returned false since the last onDrain. */
  private drainOwed = false;
  private endRequested = false;
  private writeClosed = false;
  private readEnded = false;
  private closed = false;
  private paused = false;
  private resumeWaiter: (() => void) | null = null;
  private readSize = MIN_READ;
  private tlsInfo: TlsInfo | null = null;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;

  constructor(private readonly conn: DenoConn, private readonly isTls: boolean) {
    const r = conn.remoteAddr ?? {};
    const l = conn.localAddr ?? {};
    this.remoteAddress = r.hostname ?? r.path ?? "";
    this.remotePort = r.port ?? 0;
    this.localAddress = l.hostname ?? l.path ?? "";
    this.localPort = l.port ?? 0;
  }

  /**
   * Finishes the TLS handshake (if any) and starts reading; returns the handshake error, if it failed.
   * `handler`, when given, takes over once the handshake succeeded (a failed one is the caller's return value only).
   */
  async start(handler?: ConnHandler): Promise<Error | null> {
    if (this.isTls) {
      try {
        const hs = await this.conn.handshake();
        this.tlsInfo = { alpn: hs?.alpnProtocol ?? null, servername: null, authorized: false, peerCertificate: null };
      } catch (err) {
        this.finish(err as Error);
        return err as Error;
      }
    }
    if (handler) this.handler = handler;
    void this.readLoop();
    return null;
  }

  private async readLoop(): Promise<void> {
    while (!this.closed) {
      if (this.paused) {
        await new Promise<void>((r) => (this.resumeWaiter = r));
        continue;
      }
      const buf = new Uint8Array(this.readSize);
      let n: number | null;
      try {
        n = await this.conn.read(buf);
      } catch (err) {
        this.finish(err as Error);
        return;
      }
      if (this.closed) return;
      if (n === null) {
        this.readEnded = true;
        this.handler.onEnd(this);
        if (this.writeClosed) this.finish();
        return;
      }
      // Adapt: a full read means more is waiting; a small one means the flow is light.
      if (n === buf.length) this.readSize = Math.min(MAX_READ, this.readSize * 2);
      else if (n < buf.length >>> 2) this.readSize = Math.max(MIN_READ, this.readSize >>> 1);
      this.handler.onData(this, buf.subarray(0, n));
    }
  }

  get writableLength(): number {
    return this.queuedBytes;
  }

  write(data: Uint8Array): boolean {
    if (this.closed || this.endRequested) return false;
    this.queue.push(data);
    this.queuedBytes += data.length;
    if (!this.writing) void this.writeLoop();
    if (this.queuedBytes < HIGH_WATER) return true;
    // The caller pauses until onDrain: promise it, whatever the write loop sees by the time it checks.
    this.drainOwed = true;
    return false;
  }

  private async writeLoop(): Promise<void> {
    this.writing = true;
    const hadBackpressure = () => this.queuedBytes >= HIGH_WATER;
    let signalDrain = false;
    try {
      while (this.queue.length > 0 && !this.closed) {
        if (hadBackpressure()) signalDrain = true;
        let head = this.queue[0]!;
        while (head.length > 0) {
          const n: number = await this.conn.write(head);
          this.queuedBytes -= n;
          head = head.subarray(n);
        }
        this.queue.shift();
      }
      if (this.endRequested && !this.closed && !this.writeClosed) {
        this.writeClosed = true;
        await this.conn.closeWrite();
        if (this.readEnded) {
          this.writing = false;
          this.finish();
          return;
        }
      }
    } catch (err) {
      this.finish(err as Error);
      return;
    } finally {
      this.writing = false;
    }
    if ((signalDrain || this.drainOwed) && !this.closed && this.queue.length === 0) {
      this.drainOwed = false;
      this.handler.onDrain(this);
    }
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    const w = this.resumeWaiter;
    this.resumeWaiter = null;
    w?.();
  }

  end(): void {
    if (this.closed || this.endRequested) return;
    this.endRequested = true;
    if (!this.writing) void this.writeLoop();
  }

  close(): void {
    this.finish();
  }

  private finish(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
    try {
      this.conn.close();
    } catch { /* already closed */ }
    this.resume();
    this.handler.onClose(this, err);
  }

  setHandler(handler: ConnHandler): void {
    this.handler = handler;
  }

  setNoDelay(on: boolean): void {
    try {
      this.conn.setNoDelay?.(on);
    } catch { /* unix sockets */ }
  }

  tls(): TlsInfo | null {
    return this.tlsInfo;
  }
}

function listen(opts: ListenOptions): Listener {
  const a = opts.address;
  const isTls = opts.tls !== undefined;
  let l: DenoConn;
  if ("unix" in a) {
    l = D.listen({ transport: "unix", path: a.unix });
  } else if (opts.tls) {
    if (opts.tls.requestCert) {
      // Deno.listenTls cannot ask for client certificates. (node:tls in Deno can, but its listen()
      // binds asynchronously, which this synchronous contract cannot express.)
      throw new ProxyError("CONFIG", "internal", "Client certificates (client_cert = request | require) need Bun: Deno.listenTls cannot request them");
    }
    l = D.listenTls({
      hostname: a.hostname,
      port: a.port,
      reusePort: a.reusePort ?? false,
      cert: opts.tls.cert,
      key: opts.tls.key,
      alpnProtocols: opts.tls.alpn,
    });
  } else {
    l = D.listen({ hostname: a.hostname, port: a.port, reusePort: a.reusePort ?? false });
  }
  let open = true;
  (async () => {
    while (open) {
      let raw: DenoConn;
      try {
        raw = await l.accept();
      } catch {
        if (!open) return;
        continue; // EMFILE and friends: keep accepting
      }
      const c = new DenoConnAdapter(raw, isTls);
      const h = opts.onAccept(c);
      if (!h) continue;
      c.handler = h;
      void c.start();
    }
  })();
  return {
    hostname: "unix" in a ? a.unix : l.addr.hostname,
    port: "unix" in a ? 0 : l.addr.port,
    close() {
      open = false;
      try {
        l.close();
      } catch { /* closed */ }
    },
  };
}

async function connect(opts: ConnectOptions): Promise<Conn> {
  const a = opts.address;
  const where = "unix" in a ? `unix:${a.unix}` : `${a.hostname}:${a.port}`;
  const t = opts.tls;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  // Deno.connectTls checks the certificate against the address it dials: it has no separate server name.
  if (t?.servername !== undefined && !("unix" in a) && t.servername !== a.hostname) {
    throw new ProxyError("CONFIG", "internal", `TLS server name ${t.servername} differs from the address ${a.hostname}: Deno cannot send a different one (use Bun, or address the hop by that name)`);
  }
  const attempt: Promise<DenoConn> = "unix" in a
    ? D.connect({ transport: "unix", path: a.unix })
    : t
    ? D.connectTls({
      hostname: a.hostname,
      port: a.port,
      serverName: t.servername,
      caCerts: t.ca ? [t.ca] : undefined,
      cert: t.cert,
      key: t.key,
      alpnProtocols: t.alpn,
      unsafelyDisableHostnameVerification: t.rejectUnauthorized === false,
    })
    : D.connect({ hostname: a.hostname, port: a.port });
  const timeout = new Promise<never>((_, reject) => {
    if (!opts.timeoutMs) return;
    timer = setTimeout(() => {
      timedOut = true;
      reject(new ProxyError("UPSTREAM_CONNECT_TIMEOUT", "upstream", `Connecting to ${where} timed out after ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
  });
  let raw: DenoConn;
  try {
    raw = await Promise.race([attempt, timeout]);
  } catch (err) {
    if (timedOut) {
      attempt.then((c) => c.close(), () => {});
      throw err;
    }
    throw new ProxyError("UPSTREAM_CONNECT_REFUSED", "upstream", `Cannot connect to ${where}: ${(err as Error).message}`, { cause: err });
  } finally {
    if (timer) clearTimeout(timer);
  }
  const c = new DenoConnAdapter(raw, t !== undefined);
  // A TLS handshake that failed (bad certificate, no common ALPN) is a failed connect, not a connection: the
  // caller hears of it once, as this rejection naming the certificate error; its handler (which would otherwise
  // see the close of a connection it never got) takes over only once the connection is usable.
  const failed = await c.start(opts.handler);
  if (failed) throw new ProxyError("UPSTREAM_CONNECT_REFUSED", "upstream", `TLS handshake with ${where} failed: ${failed.message}`, { cause: failed });
  return c;
}

async function serveHttp(opts: HttpServeOptions): Promise<HttpServer> {
  let resolveAddr!: (a: { hostname: string; port: number }) => void;
  const ready = new Promise<{ hostname: string; port: number }>((r) => (resolveAddr = r));
  const tls = opts.tls ? { cert: opts.tls.cert, key: opts.tls.key } : {};
  const server = D.serve({ hostname: opts.hostname, port: opts.port, reusePort: opts.reusePort ?? false, ...tls, onListen: resolveAddr }, opts.fetch);
  const addr = await ready;
  return {
    hostname: addr.hostname,
    port: addr.port,
    async close() {
      await server.shutdown();
    },
  };
}

/** Deno.listenDatagram (needs --unstable-net): a receive loop per socket; sends are fire-and-forget promises. */
async function bindUdp(opts: UdpBindOptions): Promise<UdpSocket> {
  if (opts.reusePort) {
    // listenDatagram's `reuseAddress` is SO_REUSEADDR only: on Linux the last socket bound takes every datagram.
    throw new Error(`Cannot share UDP port ${opts.port} (SO_REUSEPORT): Deno.listenDatagram has no reusePort`);
  }
  const sock = D.listenDatagram({ transport: "udp", hostname: opts.hostname, port: opts.port });
  let open = true;
  (async () => {
    while (open) {
      let got: [Uint8Array, { hostname: string; port: number }];
      try {
        got = await sock.receive();
      } catch {
        if (!open) return;
        continue; // ICMP unreachable and friends surface here: keep receiving
      }
      opts.onDatagram(got[0], got[1].port, got[1].hostname);
    }
  })();
  return {
    hostname: sock.addr.hostname,
    port: sock.addr.port,
    send(data, port, address) {
      if (!open) return false;
      sock.send(data, { transport: "udp", hostname: address, port }).catch(() => {});
      return true;
    },
    close() {
      open = false;
      try {
        sock.close();
      } catch { /* closed */ }
    },
  };
}

function spawnWorker(url: URL, name: string): WorkerHandle {
  // Deno has no "thread ended" event; a crash arrives as "error", terminate() is ours.
  return new WorkerAdapter(new Worker(url.href, { type: "module", name }), null);
}

function onSignal(sig: Signal, fn: () => void): void {
  D.addSignalListener(sig, fn);
}

// No `inherit` (socket activation): Deno.listen cannot take an inherited
// descriptor (Deno 2.9 has no such option) and there is no dup() without FFI.
// node:net's `server.listen({ fd })` does adopt one on Deno, but yields node
// sockets rather than the Deno.Conn this adapter is built on. README,
// "Socket activation", has the details.
//
// No `quic`: Deno 2.9's QUIC (Deno.QuicEndpoint / connectQuic, quinn + rustls)
// cannot do what the tunnel needs (bench/README.md "QUIC probe"): its server
// can neither request nor read a client certificate (rustls
// `with_no_client_auth()`), so no mTLS agents and no pinned direct paths; and
// it cannot reset a stream (`writer.abort(code)` sends a FIN, so a cut-off
// stream looks complete to the peer). Callers fall back to TLS over TCP.
export const denoRuntime: Runtime = {
  clock: systemClock,
  name: "deno",
  get version() {
    return D.version.deno;
  },
  listen,
  connect,
  serveHttp,
  spawnWorker,
  bindUdp,
  udpReusePort: false,
  onSignal,
  onExit: (fn) => globalThis.addEventListener("unload", () => fn(process.exitCode === undefined ? 0 : Number(process.exitCode))),
  get pid() {
    return D.pid;
  },
  get args() {
    return D.args;
  },
  env: (name) => D.env.get(name),
  exit: (code): never => {
    D.exit(code);
    throw new Error("unreachable: Deno.exit returned");
  },
  cpuCount: () => availableParallelism(),
  rss: () => D.memoryUsage().rss,
  cpuUsageMicros: () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  },
};
