/**
 * The small contract the core needs from a JavaScript runtime. `bun.ts` and
 * `deno.ts` implement it; `memory.ts` gives an in-memory pair for unit tests.
 * Nothing outside src/runtime/ names Bun.* or Deno.*.
 *
 * Events go to one handler object per connection (usually the session class
 * itself), so the hot path allocates no closure per chunk.
 */
import type { Clock } from "./clock.ts";
import type { QuicRuntime } from "./quic_types.ts";

export interface ConnHandler {
  /**
   * Bytes from the peer. The chunk is a fresh buffer owned by the handler:
   * keeping views of it is safe. Called synchronously by the runtime's read
   * path; may still be called once after `pause()` (the read already in flight).
   */
  onData(conn: Conn, chunk: Uint8Array): void;
  /** Everything written so far has been handed to the kernel. */
  onDrain(conn: Conn): void;
  /** The peer half-closed (FIN). Our side may still write. */
  onEnd(conn: Conn): void;
  /** The connection is gone both ways. Called exactly once. */
  onClose(conn: Conn, err?: Error): void;
}

export interface PeerCertificate {
  /** Subject alternative names of kind URI, e.g. spiffe://td/ns/x/sa/y */
  uris: string[];
  /** Subject alternative DNS names */
  dnsNames: string[];
  subjectCN: string | null;
  /** DER bytes, when the runtime exposes them */
  raw: Uint8Array | null;
}

export interface TlsInfo {
  alpn: string | null;
  servername: string | null;
  /** Whether the peer certificate verified against the configured CA. */
  authorized: boolean;
  peerCertificate: PeerCertificate | null;
}

export interface Conn {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  /**
   * Queue bytes for the peer. Returns true when the caller may keep writing;
   * false when bytes are held back by the adapter (at most this chunk more
   * than the high-water mark): pause your source until `onDrain`.
   * The adapter may keep a view of `data` until it is flushed.
   */
  write(data: Uint8Array): boolean;
  /** Bytes accepted by `write` but not yet handed to the kernel. */
  readonly writableLength: number;
  /** Stop delivering `onData` (the kernel's receive window then fills). */
  pause(): void;
  resume(): void;
  /** Half-close: flush what is queued, then send FIN. Reading continues. */
  end(): void;
  /** Close both ways now; anything still queued is dropped. */
  close(): void;
  setHandler(handler: ConnHandler): void;
  setNoDelay(on: boolean): void;
  /** TLS details for TLS connections, null for plain TCP/unix. */
  tls(): TlsInfo | null;
}

/** A certificate chain and its key, PEM text. */
export interface TlsCertificate {
  cert: string;
  key: string;
}

export interface TlsServerOptions {
  cert: string; // PEM
  key: string; // PEM
  /** PEM bundle of CAs that sign client certificates (mTLS). */
  ca?: string;
  /** Ask for a client certificate. */
  requestCert?: boolean;
  /** Refuse clients without a valid certificate (with requestCert). */
  rejectUnauthorized?: boolean;
  alpn?: string[];
  /**
   * Several certificates, chosen per handshake by the ClientHello's SNI
   * (lower case; null when the client sent none). Only `listenSelectingTls`
   * calls it, at every handshake (return the same object for the same
   * certificate: its TLS context is cached by identity); null refuses the
   * handshake. `cert`/`key` above are then what a runtime without it serves.
   */
  selectCertificate?(servername: string | null): TlsCertificate | null;
  /**
   * TLS-ALPN-01 (RFC 8737) on a `listenSelectingTls` listener: a ClientHello
   * that offers ALPN `acme-tls/1` alone gets this certificate for its SNI
   * name (null: refused), negotiates `acme-tls/1` and is closed after the
   * handshake, never reaching `onAccept`. With it set, the listener reads
   * each ClientHello itself before the handshake (node_tls.ts).
   */
  acmeTlsAlpnCertificate?(servername: string): TlsCertificate | null;
  /** With `acmeTlsAlpnCertificate`: a client whose ClientHello is not complete by then is cut off. Default 10 s. */
  helloTimeoutMs?: number;
}

export interface TlsClientOptions {
  servername?: string;
  ca?: string;
  cert?: string;
  key?: string;
  alpn?: string[];
  /** Default true. */
  rejectUnauthorized?: boolean;
}

export type ListenAddress =
  | { hostname: string; port: number; reusePort?: boolean }
  | { unix: string };

export interface ListenOptions {
  address: ListenAddress;
  tls?: TlsServerOptions;
  /** Returns the handler for a new connection; return null after `conn.close()` to refuse. */
  onAccept(conn: Conn): ConnHandler | null;
}

export interface Listener {
  readonly hostname: string;
  readonly port: number;
  /** Stop accepting; open connections are untouched. */
  close(): void;
  /** `listenSelectingTls` listeners: ask `selectCertificate(null)` again for clients without SNI. */
  refreshCertificates?(): void;
}

export type ConnectAddress = { hostname: string; port: number } | { unix: string };

export interface ConnectOptions {
  address: ConnectAddress;
  tls?: TlsClientOptions;
  /** Give up after this long; rejects with UPSTREAM_CONNECT_TIMEOUT. */
  timeoutMs?: number;
  /** Receives events from the moment the connection opens. */
  handler: ConnHandler;
}

export interface HttpServeOptions {
  hostname: string;
  port: number;
  /** Share the port with other sockets that set it (SO_REUSEPORT), e.g. a new process during an upgrade. */
  reusePort?: boolean;
  /** Serve HTTPS with this certificate chain and key (PEM text); plain HTTP when absent. */
  tls?: { cert: string; key: string };
  fetch(req: Request): Response | Promise<Response>;
}

export interface HttpServer {
  readonly hostname: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface WorkerHandle {
  postMessage(msg: unknown, transfer?: ArrayBuffer[]): void;
  terminate(): void;
  /** Called once when the worker ends for any reason (crash, terminate, exit). */
  onExit(fn: (reason: string) => void): void;
  onMessage(fn: (msg: unknown) => void): void;
  readonly threadId: number;
}

/**
 * Socket activation: listening sockets handed over by systemd (LISTEN_FDS)
 * or inetd/s6 (stdin). Linux only.
 */
export interface SocketInheritance {
  /**
   * What descriptor `fd` holds: the address of a listening stream socket
   * ("127.0.0.1:443", "[::]:443", "unix:/run/x.sock"), or why it cannot be adopted.
   */
  inspect(fd: number): { address: string } | { error: string };
  /**
   * From now on `listen()` on this address (hostname and port exactly as
   * given to listen, or the unix path) adopts a duplicate of `fd` instead of
   * binding, in this thread and in worker threads spawned later. Every
   * adopter gets its own duplicate, so closing one (a worker's drain, a
   * crashed worker) leaves the socket open for the others.
   */
  adopt(fd: number, address: ListenAddress): void;
}

/** A bound UDP socket (tunnel UDP services). `send` never blocks: a datagram the kernel will not take is dropped. */
export interface UdpSocket {
  readonly hostname: string;
  readonly port: number;
  /** Sends one datagram to `address` (an IP, no DNS) and `port`; false when it was dropped. */
  send(data: Uint8Array, port: number, address: string): boolean;
  close(): void;
}

export interface UdpBindOptions {
  hostname: string;
  /** 0 = kernel picks. */
  port: number;
  /**
   * Share the port with other sockets that set it (SO_REUSEPORT): the kernel
   * spreads datagrams over them by source address. Only where
   * `Runtime.udpReusePort`; elsewhere the bind rejects.
   */
  reusePort?: boolean;
  /** One datagram; `data` is a fresh buffer owned by the callee. */
  onDatagram(data: Uint8Array, port: number, address: string): void;
}

export type Signal = "SIGHUP" | "SIGTERM" | "SIGINT" | "SIGUSR2";

export interface KernelRelayOptions {
  /** Pipes this worker's loop may hold (two per relay, two descriptors each). */
  maxPipes: number;
  /** Bytes per pipe (F_SETPIPE_SZ); absent: the kernel's default, 64 KiB. */
  pipeSize?: number;
}

/** Told once when a relay the native loop held is finished. */
export interface KernelRelayOwner {
  /**
   * Totals since the handover; `failed`: which socket failed (a reset, a
   * write to a closed peer) with its errno, or null for FIN both ways or a close asked with `close()`.
   */
  kernelRelayEnded(toUpstream: number, toClient: number, failed: "client" | "upstream" | null, errno: number): void;
}

/** One relay held by the native loop. */
export interface KernelRelayHandle {
  /** Bytes moved since the handover (live counters the loop writes to shared memory). */
  readonly toUpstream: number;
  readonly toClient: number;
  /** Close both sockets now (idle timeout, drain deadline); `kernelRelayEnded` follows. */
  close(): void;
}

/**
 * Established relays moved out of JavaScript: both sockets handed to a native
 * loop that splices their bytes in the kernel (Bun on Linux; kernel_relay/).
 */
export interface KernelRelay {
  /** Starts this thread's loop (once; later calls return the first answer): null when it runs, else why it cannot. */
  start(opts: KernelRelayOptions): string | null;
  /** Whether both connections are plain sockets with nothing queued (not TLS, not a stream inside a tunnel). */
  canAdopt(client: Conn, upstream: Conn): boolean;
  /**
   * Hands both connections to the loop: from now on no event reaches their
   * handlers. Null when it cannot now (pool empty, bytes queued): keep relaying.
   */
  adopt(client: Conn, upstream: Conn, owner: KernelRelayOwner): KernelRelayHandle | null;
  /** Relays the loop holds now. */
  readonly active: number;
  /** Pipes the loop holds (in use and pooled). */
  pipesOpen(): number;
}

/** What `Runtime.spawnPty` starts (remote shells). */
export interface PtySpawnOptions {
  /** Program and arguments (no shell in between). */
  command: string[];
  cwd?: string;
  env: Record<string, string>;
  cols: number;
  rows: number;
  /** Output of the terminal; cannot be paused. */
  onData(data: Uint8Array): void;
}

/** A process on a pseudo-terminal. */
export interface PtyProcess {
  readonly pid: number;
  /** Bytes to the terminal (what the user types). */
  write(data: Uint8Array): void;
  resize(cols: number, rows: number): void;
  /** Signals the process (default SIGHUP, as a terminal hang-up). */
  kill(signal?: string): void;
  /** Releases the terminal (after the process exited). */
  close(): void;
  /** The exit status; 128 + N when signal N ended it. */
  readonly exited: Promise<number>;
}

export interface Runtime {
  readonly name: "bun" | "deno" | "memory";
  /** Wall and monotonic time (clock.ts); the hot path reads the per-thread coarse clock instead. */
  readonly clock: Clock;
  readonly version: string;
  listen(opts: ListenOptions): Listener;
  connect(opts: ConnectOptions): Promise<Conn>;
  serveHttp(opts: HttpServeOptions): Promise<HttpServer>;
  spawnWorker(url: URL, name: string): WorkerHandle;
  /** Binds a UDP socket (Deno needs --unstable-net). */
  bindUdp(opts: UdpBindOptions): Promise<UdpSocket>;
  /** Whether `bindUdp` can share a port across workers (`reusePort`): Bun yes, Deno 2.9 no. */
  readonly udpReusePort: boolean;
  /** Absent when the runtime cannot adopt an inherited listening socket. */
  readonly inherit?: SocketInheritance;
  /** Absent when the runtime has no kernel relay (Deno, the in-memory runtime). */
  readonly kernelRelay?: KernelRelay;
  /** QUIC (quic_types.ts); absent where the runtime's QUIC cannot carry the tunnel (Deno): use TLS over TCP. */
  readonly quic?: QuicRuntime;
  /**
   * A TLS listener whose certificate is picked per handshake by SNI
   * (`tls.selectCertificate`), changeable while it listens. Absent when the
   * runtime cannot (Deno: Deno.listenTls takes one certificate).
   */
  listenSelectingTls?(opts: ListenOptions): Promise<Listener>;
  /** Starts a process on a pseudo-terminal; absent where the runtime has none (Deno 2.9). */
  spawnPty?(opts: PtySpawnOptions): PtyProcess;
  onSignal(sig: Signal, fn: () => void): void;
  /** Called as the process exits, with its exit code (for a last log line). */
  onExit(fn: (code: number) => void): void;
  readonly pid: number;
  readonly args: string[];
  env(name: string): string | undefined;
  exit(code: number): never;
  cpuCount(): number;
  /** Resident set size of the process in bytes. */
  rss(): number;
  /** User+system CPU time of the process, in microseconds. */
  cpuUsageMicros(): number;
}
