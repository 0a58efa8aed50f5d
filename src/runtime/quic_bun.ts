/**
 * QUIC on Bun, over its experimental `node:quic` (ngtcp2 + OpenSSL), behind
 * `Runtime.quic` (quic_types.ts). bench/README.md "QUIC probe" has the
 * measurements this adapter is built on; the stream side is quic_bun_stream.ts.
 *
 * `node:quic` is loaded on first use, never by importing this module: the
 * import costs and prints an ExperimentalWarning, which we swallow (that one
 * warning only) so it does not break structured logs.
 *
 * Quirks of Bun 1.4.5's `node:quic` handled here:
 * - `transportParams.maxIdleTimeout` is in seconds (`keepAlive` in ms).
 * - The endpoint defaults refuse a busy server (100 connections per host, 50
 *   new sessions/s per address): a listener raises them; admission is the front door's job.
 * - The default flow-control windows let a stalled reader buffer ~57 MiB:
 *   `maxStreamWindow` / `maxWindow` are always set.
 * - `connect()` without an endpoint reuses or creates one that nobody closes:
 *   each of our client sessions gets its own endpoint, closed with the session.
 * - How a session ended is only fully known inside its `kFinishClose(type,
 *   code, reason)` (type 0 transport, 1 application, 2 version negotiation,
 *   3 idle); `closed` resolves alike for an idle timeout and a close without
 *   error. We wrap that method on each session to read the arguments. The
 *   side whose own idle timer did not fire may still see type 0 code 0: that
 *   counts as "idle" when nothing was heard for the idle timeout.
 * - `destroy()` without a code sends nothing (the peer waits for its idle
 *   timeout): `close()` always sends an application CONNECTION_CLOSE.
 * - Client: one ALPN protocol; `verifyPeer: "manual"` hands over an
 *   unverified certificate, which is how `pinSha256` is checked.
 */
import { createPrivateKey } from "node:crypto";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import process from "node:process";
import { Buffer } from "node:buffer";
import { type ErrorSource, ProxyError } from "../errors/mod.ts";
import { monotonicMs } from "./clock.ts";
import { parsePeerCertificate } from "./common.ts";
import { BunQuicStream, quicErrorCode, STREAM_HIGH_WATER, type StreamOwner } from "./quic_bun_stream.ts";
import type {
  QuicCloseInfo,
  QuicConnectOptions,
  QuicListener,
  QuicListenOptions,
  QuicRuntime,
  QuicSession,
  QuicSessionHandler,
  QuicStream,
  QuicTransportOptions,
} from "./quic_types.ts";
import type { ConnHandler, PeerCertificate, TlsInfo } from "./types.ts";

// deno-lint-ignore no-explicit-any
type NodeQuic = any;
// deno-lint-ignore no-explicit-any
type NodeSession = any;

/** A variable, so neither bundlers nor `deno check` try to resolve it up front. */
const QUIC_MODULE = "node:quic";
let quicModule: Promise<NodeQuic> | null = null;
/** `kFinishClose` of QuicSession.prototype (see the header), or null if a later Bun renames it. */
let finishCloseKey: symbol | null = null;

function loadQuic(): Promise<NodeQuic> {
  return (quicModule ??= (async () => {
    const emit = process.emitWarning;
    // deno-lint-ignore no-explicit-any
    (process as any).emitWarning = function (w: unknown, ...rest: unknown[]) {
      const msg = typeof w === "string" ? w : (w as Error | undefined)?.message;
      if (typeof msg === "string" && msg.startsWith("quic is an experimental feature")) return;
      // deno-lint-ignore no-explicit-any
      return (emit as any).call(process, w, ...rest);
    };
    try {
      const q = await import(QUIC_MODULE);
      finishCloseKey = Object.getOwnPropertySymbols(q.QuicSession.prototype).find((s) => s.description === "kFinishClose") ?? null;
      return q;
    } finally {
      process.emitWarning = emit;
    }
  })());
}

/** CRYPTO_ERROR (0x100) + TLS alert bad_certificate (42): what a pin mismatch closes with. */
export const QUIC_BAD_CERTIFICATE = 0x100 + 42;
/** CRYPTO_ERROR + TLS alert certificate_required (116): a client without a certificate where one is required. */
export const QUIC_CERTIFICATE_REQUIRED = 0x100 + 116;
const DEFAULT_IDLE_MS = 30_000;
const INITIAL_WINDOW = 256 * 1024;

/** Options both ends share, in node:quic's words. */
function transportOptions(o: Omit<QuicTransportOptions, "alpn">) {
  const idleMs = o.idleTimeoutMs ?? DEFAULT_IDLE_MS;
  const streamWindow = o.streamWindow ?? 1024 * 1024;
  const connectionWindow = o.connectionWindow ?? 8 * 1024 * 1024;
  return {
    transportParams: {
      // Seconds in Bun 1.4.5; 0 = no idle timeout.
      maxIdleTimeout: idleMs > 0 ? Math.max(1, Math.ceil(idleMs / 1000)) : 0,
      initialMaxStreamsBidi: o.maxStreams ?? 100,
      // Edgemux uses bidirectional streams only; a peer's unidirectional ones are refused by QUIC itself.
      initialMaxStreamsUni: 0,
      maxDatagramFrameSize: o.datagrams === false ? 0 : 1200,
      // Bun's initial windows are 6 MiB per stream and 15 MiB per connection, past any `max*Window`:
      // start small and let ngtcp2 grow them up to the caps.
      initialMaxStreamDataBidiLocal: Math.min(streamWindow, INITIAL_WINDOW),
      initialMaxStreamDataBidiRemote: Math.min(streamWindow, INITIAL_WINDOW),
      initialMaxData: Math.min(connectionWindow, 4 * INITIAL_WINDOW),
    },
    ...(o.keepAliveMs ? { keepAlive: o.keepAliveMs } : {}),
    maxStreamWindow: streamWindow,
    maxWindow: connectionWindow,
  };
}

function ignore(): void {}

class BunQuicSession implements QuicSession, StreamOwner {
  private handler: QuicSessionHandler | null = null;
  /** Streams the peer opened before a handler was set (bounded by maxStreams). */
  private early: unknown[] | null = null;
  private readonly streams = new Set<BunQuicStream>();
  private localClose: { code: number; reason: string } | null = null;
  /** The arguments of node:quic's kFinishClose(type, code, reason). */
  finishArgs: [number, bigint, string | undefined] | null = null;
  private done = false;
  private lastHeard = monotonicMs();
  private tlsCache: TlsInfo | null = null;
  remoteAddress = "";
  remotePort = 0;
  localAddress = "";
  localPort = 0;
  alpn: string | null = null;
  servername: string | null = null;
  /** The peer certificate passed its check (CA, pin, or verifyClient). */
  verified = false;

  constructor(
    readonly s: NodeSession,
    readonly source: ErrorSource,
    /** Client sessions own their endpoint (one UDP socket each); null on a listener's sessions. */
    private readonly endpoint: { close(): unknown } | null,
    private idleMs: number,
    datagrams: boolean,
  ) {
    s.onerror = ignore; // marks opened/closed as handled; we read both
    s.onstream = (st: unknown) => this.incoming(st);
    if (datagrams) s.ondatagram = (d: Uint8Array) => this.datagram(d);
    const key = finishCloseKey;
    if (key !== null) {
      const original = Object.getPrototypeOf(s)[key];
      s[key] = (type: number, code: bigint, reason: string | undefined, ...rest: unknown[]) => {
        this.finishArgs = [type, code, reason];
        return original.call(s, type, code, reason, ...rest);
      };
    }
    s.closed.then(() => this.finished(null), (e: unknown) => this.finished(e));
  }

  // deno-lint-ignore no-explicit-any
  opened(info: any): void {
    this.alpn = typeof info.protocol === "string" ? info.protocol : null;
    this.servername = typeof info.servername === "string" ? info.servername : null;
    const path = this.s.path;
    this.remoteAddress = path?.remote?.address ?? info.remote?.address ?? "";
    this.remotePort = path?.remote?.port ?? info.remote?.port ?? 0;
    this.localAddress = path?.local?.address ?? "";
    this.localPort = path?.local?.port ?? 0;
    // The idle timeout in force is the smaller of both ends' (RFC 9000 §10.1); the peer's is in seconds.
    const peerIdle = Number(this.s.remoteTransportParams?.maxIdleTimeout ?? 0) * 1000;
    if (peerIdle > 0 && (this.idleMs === 0 || peerIdle < this.idleMs)) this.idleMs = peerIdle;
  }

  private incoming(st: unknown): void {
    this.lastHeard = monotonicMs();
    if (this.handler === null) (this.early ??= []).push(st);
    else this.deliver(st);
  }

  private deliver(st: unknown): void {
    const w = new BunQuicStream(this, NULL_STREAM_HANDLER);
    this.streams.add(w);
    // Reading starts a microtask later: the handler set in onStream gets the first bytes.
    w.attach(st);
    this.handler!.onStream(this, w);
  }

  private datagram(d: Uint8Array): void {
    this.lastHeard = monotonicMs();
    this.handler?.onDatagram(this, d);
  }

  setHandler(handler: QuicSessionHandler): void {
    this.handler = handler;
    const early = this.early;
    this.early = null;
    if (early !== null && !this.done) for (const st of early) this.deliver(st);
  }

  openStream(handler: ConnHandler): QuicStream {
    const w = new BunQuicStream(this, handler);
    if (this.done || this.localClose !== null) {
      queueMicrotask(() => w.attachFailed(new ProxyError(this.resetKind(), this.source, "QUIC session is closed: no new streams")));
      return w;
    }
    this.streams.add(w);
    // The stream exists synchronously inside node:quic; only the promise around it is async.
    this.s.createBidirectionalStream({ highWaterMark: STREAM_HIGH_WATER }).then(
      (st: unknown) => w.attach(st),
      (e: unknown) => w.attachFailed(new ProxyError(this.resetKind(), this.source, `Cannot open a QUIC stream: ${(e as Error)?.message ?? e}`, { cause: e })),
    );
    return w;
  }

  get maxDatagramSize(): number {
    return this.done ? 0 : Number(this.s.maxDatagramSize ?? 0);
  }

  sendDatagram(data: Uint8Array): boolean {
    if (this.done || this.localClose !== null) return false;
    const n = data.byteLength;
    // node:quic silently drops what is over the limit (the returned id is 0); refuse it here instead.
    if (n === 0 || n > this.s.maxDatagramSize) return false;
    (this.s.sendDatagram(data) as Promise<unknown>).catch(ignore);
    return true;
  }

  close(code: number, reason: string): void {
    if (this.done || this.localClose !== null) return;
    this.localClose = { code, reason };
    this.s.destroy(undefined, { code: BigInt(code), type: "application", reason });
  }

  tls(): TlsInfo {
    return (this.tlsCache ??= {
      alpn: this.alpn,
      servername: this.servername,
      authorized: this.verified,
      peerCertificate: this.peerCertificate(),
    });
  }

  tlsInfo(): TlsInfo {
    return this.tls();
  }

  private peerCertificate(): PeerCertificate | null {
    const x = this.s.peerCertificate;
    if (!x) return null;
    // node:crypto's X509Certificate; its legacy form is what TLS sockets' getPeerCertificate() returns.
    const legacy = typeof x.toLegacyObject === "function" ? x.toLegacyObject() : x;
    const pc = parsePeerCertificate(legacy);
    if (pc.raw === null && x.raw instanceof Uint8Array) pc.raw = x.raw;
    return pc;
  }

  rttMs(): number {
    const ns = this.s.stats?.smoothedRtt;
    return ns === undefined ? 0 : Number(ns) / 1e6;
  }

  streamClosed(s: BunQuicStream): void {
    this.streams.delete(s);
  }

  /** Streams count as hearing from the peer: called once per batch of chunks, not per chunk. */
  heard(): void {
    this.lastHeard = monotonicMs();
  }

  private resetKind(): "DOWNSTREAM_RESET" | "UPSTREAM_RESET" {
    return this.source === "downstream" ? "DOWNSTREAM_RESET" : "UPSTREAM_RESET";
  }

  /** `closed` settled: cut the streams, release the endpoint, tell the handler. */
  private finished(err: unknown): void {
    if (this.done) return;
    this.done = true;
    const info = this.closeInfo(err);
    const why = info.kind === "idle" ? "idle timeout" : `${info.kind} code ${info.code}${info.reason ? `: ${info.reason}` : ""}`;
    const streamErr = info.kind === "idle"
      ? new ProxyError("IDLE_TIMEOUT", this.source, "QUIC connection closed by its idle timeout")
      : new ProxyError(this.resetKind(), this.source, `QUIC connection closed${info.local ? "" : " by the peer"} (${why})`);
    for (const st of [...this.streams]) st.finish(streamErr);
    this.streams.clear();
    this.early = null;
    if (this.endpoint !== null) (this.endpoint.close() as Promise<unknown> | undefined)?.catch?.(ignore);
    this.handler?.onClose(this, info);
  }

  // deno-lint-ignore no-explicit-any
  private closeInfo(err: any): QuicCloseInfo {
    const lc = this.localClose;
    if (lc !== null) return { code: lc.code, reason: lc.reason, kind: "app", local: true };
    const fa = this.finishArgs;
    const type = fa ? fa[0] : err?.type === "application" ? 1 : 0;
    const code = fa ? Number(fa[1]) : (quicErrorCode(err) ?? 0);
    const reason = (fa ? fa[2] : err?.reason) ?? "";
    if (type === 1) return { code, reason, kind: "app", local: false };
    if (type === 3) return { code: 0, reason: "", kind: "idle", local: false };
    // Type 0 code 0 also ends the side whose own idle timer did not fire first (see the header).
    const quietMs = monotonicMs() - this.lastHeard;
    if (code === 0 && this.idleMs > 0 && quietMs >= this.idleMs - 50) return { code: 0, reason: "", kind: "idle", local: false };
    return { code, reason, kind: "transport", local: false };
  }
}

const NULL_STREAM_HANDLER: ConnHandler = { onData() {}, onDrain() {}, onEnd() {}, onClose() {} };

function bracket(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

async function listen(opts: QuicListenOptions): Promise<QuicListener> {
  const q = await loadQuic();
  const idleMs = opts.idleTimeoutMs ?? DEFAULT_IDLE_MS;
  const datagrams = opts.datagrams !== false;
  const requestCert = opts.requestCert === true;
  const onSession = opts.onSession;
  const endpoint = await q.listen((s: NodeSession) => {
    const session = new BunQuicSession(s, "downstream", null, idleMs, datagrams);
    s.opened.then(
      // deno-lint-ignore no-explicit-any
      (info: any) => {
        session.opened(info);
        if (requestCert && (!s.peerCertificate || info.validationErrorReason !== undefined)) {
          // Bun's server may finish the handshake (TLS 1.3: the client's Finished arrives with its
          // empty Certificate) before refusing it: never hand such a session over.
          s.destroy(undefined, { code: BigInt(QUIC_CERTIFICATE_REQUIRED), type: "transport", reason: "client certificate required" });
          return;
        }
        session.verified = requestCert;
        onSession(session);
      },
      ignore, // a failed handshake (ALPN, client certificate): the session closes itself
    );
  }, {
    endpoint: {
      address: `${bracket(opts.hostname)}:${opts.port}`,
      maxConnectionsPerHost: 0,
      maxConnectionsTotal: 0,
      sessionCreationRate: 1_000_000,
      sessionCreationBurst: 1_000_000,
    },
    sni: { "*": { keys: [createPrivateKey(opts.key)], certs: [Buffer.from(opts.cert)] } },
    alpn: opts.alpn,
    ...(opts.ca ? { ca: [Buffer.from(opts.ca)] } : {}),
    verifyClient: requestCert,
    streamIdleTimeout: 0,
    ...transportOptions(opts),
  });
  return {
    hostname: endpoint.address?.address ?? opts.hostname,
    port: endpoint.address?.port ?? opts.port,
    close() {
      (endpoint.close() as Promise<unknown>).catch(ignore);
    },
  };
}

function describe(opts: QuicConnectOptions): string {
  return `quic://${bracket(opts.hostname)}:${opts.port}`;
}

function normalizeFingerprint(fp: string): string {
  return fp.replaceAll(":", "").toLowerCase();
}

async function connect(opts: QuicConnectOptions): Promise<QuicSession> {
  const q = await loadQuic();
  let ip = opts.hostname;
  if (isIP(ip) === 0) {
    try {
      ip = (await lookup(opts.hostname)).address;
    } catch (e) {
      throw new ProxyError("UPSTREAM_DNS", "upstream", `Cannot resolve ${opts.hostname}: ${(e as Error).message}`, { cause: e });
    }
  }
  const pin = opts.pinSha256 ? normalizeFingerprint(opts.pinSha256) : null;
  const endpoint = new q.QuicEndpoint({ address: isIP(ip) === 6 ? "[::]:0" : "0.0.0.0:0" });
  let s: NodeSession;
  try {
    s = await q.connect(`${bracket(ip)}:${opts.port}`, {
      endpoint,
      alpn: opts.alpn,
      servername: opts.servername ?? opts.hostname,
      ...(pin !== null ? { verifyPeer: "manual" } : opts.ca ? { ca: [Buffer.from(opts.ca)] } : {}),
      ...(opts.cert && opts.key ? { keys: [createPrivateKey(opts.key)], certs: [Buffer.from(opts.cert)] } : {}),
      ...transportOptions(opts),
    });
  } catch (e) {
    (endpoint.close() as Promise<unknown>).catch(ignore);
    throw new ProxyError("UPSTREAM_CONNECT_REFUSED", "upstream", `Cannot connect to ${describe(opts)}: ${(e as Error).message}`, { cause: e });
  }
  const session = new BunQuicSession(s, "upstream", endpoint, opts.idleTimeoutMs ?? DEFAULT_IDLE_MS, opts.datagrams !== false);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // deno-lint-ignore no-explicit-any
  let info: any;
  try {
    info = await Promise.race([
      s.opened,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new ProxyError("UPSTREAM_CONNECT_TIMEOUT", "upstream", `QUIC handshake with ${describe(opts)} timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (e) {
    s.destroy();
    if (e instanceof ProxyError) throw e;
    throw new ProxyError("UPSTREAM_CONNECT_REFUSED", "upstream", `QUIC handshake with ${describe(opts)} failed: ${(e as Error)?.message ?? e}`, { cause: e });
  } finally {
    clearTimeout(timer);
  }
  session.opened(info);
  if (pin !== null) {
    const fp = s.peerCertificate?.fingerprint256;
    const got = typeof fp === "string" ? normalizeFingerprint(fp) : "";
    if (got !== pin) {
      s.destroy(undefined, { code: BigInt(QUIC_BAD_CERTIFICATE), type: "transport", reason: "certificate pin mismatch" });
      throw new ProxyError("UPSTREAM_CONNECT_REFUSED", "upstream", `QUIC handshake with ${describe(opts)}: the peer certificate's SHA-256 ${got || "(none)"} is not the pinned ${pin}`);
    }
  }
  // verifyPeer "auto" (the default) refuses the handshake when the certificate does not verify.
  session.verified = true;
  return session;
}

/** `Runtime.quic` on Bun. */
export const bunQuic: QuicRuntime = { listen, connect };
