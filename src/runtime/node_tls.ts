/**
 * A TLS listener that picks its certificate per handshake by SNI, on
 * node:tls (Bun). Bun.listen takes exactly one certificate (its `tls` must
 * be one object) and cannot change it while listening; node:tls's
 * SNICallback asks `selectCertificate` at every handshake, so a set of
 * certificates can grow and change (SIGHUP, a changed file, an ACME
 * issuance) without rebinding. Used only when the caller passes
 * `selectCertificate` (the http listener); other TLS listeners keep
 * Bun.listen.
 *
 * TLS-ALPN-01 (RFC 8737) needs the certificate chosen by the ClientHello's
 * ALPN list, which node:tls cannot do on Bun 1.4.5: BoringSSL picks the
 * certificate before it runs the ALPN callback, so `setKeyCert` from
 * `ALPNCallback` changes nothing (measured; oven-sh/bun#43216 is the open
 * fix). So a listener with `acmeTlsAlpnCertificate` reads the ClientHello
 * itself: it accepts plain TCP (node:net), parses the hello with the sni
 * listener's sans-I/O parser, puts the bytes back (`unshift`) and starts
 * TLS on the same socket with the context the hello asks for: the
 * `acme-tls/1` challenge certificate, or the SNI's certificate. Bun's
 * server-side `new TLSSocket(netSocket)` hands the unshifted bytes to its
 * native TLS as initial data and adopts the descriptor, so after the
 * handshake bytes flow as on a node:tls server, with no JavaScript hop.
 * The cost is per connection: one JavaScript read and parse of the hello
 * and the upgrade, 0.06-0.1 ms of server CPU per handshake on top of
 * 0.3-0.45 ms on loopback (README, ACME certificates). Listeners without
 * TLS-ALPN-01 keep the node:tls server and its SNICallback.
 */
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { createServer, createSecureContext, type SecureContext, TLSSocket } from "node:tls";
import { ClientHelloParser, encodeTlsAlert, TlsParseError } from "../proto/mod.ts";
import type { Conn, ConnHandler, Listener, ListenOptions, TlsCertificate, TlsInfo, TlsServerOptions } from "./types.ts";
import { NULL_HANDLER } from "./common.ts";

/** RFC 8737 §6.2: the ALPN protocol ID of TLS-ALPN-01. */
const ACME_TLS_1 = "acme-tls/1";
const DEFAULT_HELLO_TIMEOUT_MS = 10_000;
/** RFC 8446 §6.2 alert descriptions. */
const ALERT_UNRECOGNIZED_NAME = 112;
const ALERT_HANDSHAKE_FAILURE = 40;

/** Bytes queued in the socket before `write` asks the caller to pause. */
const HIGH_WATER = 64 * 1024;

class NodeTlsConn implements Conn {
  handler: ConnHandler = NULL_HANDLER;
  private closed = false;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;

  constructor(private readonly socket: TLSSocket) {
    this.remoteAddress = (socket.remoteAddress ?? "").replace(/^::ffff:/, "");
    this.remotePort = socket.remotePort ?? 0;
    this.localAddress = (socket.localAddress ?? "").replace(/^::ffff:/, "");
    this.localPort = socket.localPort ?? 0;
    socket.on("data", (chunk: Uint8Array) => this.handler.onData(this, chunk));
    socket.on("drain", () => this.handler.onDrain(this));
    socket.on("end", () => this.handler.onEnd(this));
    socket.on("error", () => {}); // "close" follows with hadError
    socket.on("close", () => {
      if (this.closed) return;
      this.closed = true;
      this.handler.onClose(this);
    });
  }

  write(data: Uint8Array): boolean {
    if (this.closed || this.socket.destroyed) return true;
    this.socket.write(data);
    return this.socket.writableLength < HIGH_WATER;
  }
  get writableLength(): number {
    return this.socket.writableLength;
  }
  pause(): void {
    this.socket.pause();
  }
  resume(): void {
    this.socket.resume();
  }
  end(): void {
    if (!this.closed) this.socket.end();
  }
  close(): void {
    if (!this.socket.destroyed) this.socket.destroy();
  }
  setHandler(handler: ConnHandler): void {
    this.handler = handler;
  }
  setNoDelay(on: boolean): void {
    this.socket.setNoDelay(on);
  }
  tls(): TlsInfo {
    const s = this.socket as TLSSocket & { servername?: string | false };
    return {
      alpn: typeof s.alpnProtocol === "string" ? s.alpnProtocol : null,
      servername: typeof s.servername === "string" && s.servername !== "" ? s.servername : null,
      authorized: false,
      peerCertificate: null,
    };
  }
}

/** `opts.tls.selectCertificate` must be set; unix addresses and adopted sockets are not supported here. */
export function listenSelectingTls(opts: ListenOptions): Promise<Listener> {
  const t = opts.tls!;
  const select = t.selectCertificate!;
  // One SecureContext per certificate object: selectors hand back the same object until it changes.
  const contexts = new WeakMap<TlsCertificate, SecureContext>();
  const contextOf = (c: TlsCertificate): SecureContext => {
    let ctx = contexts.get(c);
    if (ctx === undefined) contexts.set(c, (ctx = createSecureContext({ cert: c.cert, key: c.key, ALPNProtocols: t.alpn } as never)));
    return ctx;
  };
  const accepted = (socket: TLSSocket) => {
    const c = new NodeTlsConn(socket);
    const h = opts.onAccept(c);
    if (h) c.handler = h;
  };
  const a = opts.address;
  if ("unix" in a) return Promise.reject(new Error("a TLS listener with several certificates cannot listen on a unix socket"));
  if (t.acmeTlsAlpnCertificate !== undefined) {
    return listening(helloReadingServer(t, contextOf, accepted), a, () => ({}));
  }
  // A ClientHello without SNI never reaches SNICallback: it gets the server's own context, kept current below.
  let defaultCert = select(null);
  const server = createServer({
    ...(defaultCert ? { cert: defaultCert.cert, key: defaultCert.key } : {}),
    ALPNProtocols: t.alpn,
    allowHalfOpen: true,
    SNICallback(servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) {
      let c: TlsCertificate | null;
      try {
        c = select(servername.toLowerCase());
      } catch (e) {
        return cb(e as Error);
      }
      if (c === null) return cb(new Error(`no certificate for ${servername}`));
      try {
        cb(null, contextOf(c));
      } catch (e) {
        cb(e as Error);
      }
    },
  } as never);
  server.on("secureConnection", accepted);
  server.on("tlsClientError", (_err: Error, socket: TLSSocket) => socket.destroy());
  return listening(server, a, () => ({
    refreshCertificates() {
      const d = select(null);
      if (d === null || d === defaultCert) return;
      defaultCert = d;
      server.setSecureContext({ cert: d.cert, key: d.key, ALPNProtocols: t.alpn } as never);
    },
  }));
}

function listening(server: NetServer, a: { hostname: string; port: number; reusePort?: boolean }, extra: () => Partial<Listener>): Promise<Listener> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: a.hostname, port: a.port, reusePort: a.reusePort ?? false } as never, () => {
      server.off("error", reject);
      const addr = server.address() as { address: string; port: number };
      resolve({
        hostname: addr.address,
        port: addr.port,
        close() {
          server.close();
        },
        ...extra(),
      });
    });
  });
}

/**
 * Plain TCP; each connection's ClientHello is read here (bounded in size by
 * the parser and in time by `helloTimeoutMs`, which also covers the
 * handshake), then TLS starts on the socket with the hello's bytes put back.
 * RFC 8737 §3: "The ACME server MUST provide an ALPN extension with the
 * single protocol name "acme-tls/1"": such a hello gets the challenge
 * certificate and is closed once the handshake is done; any other hello
 * gets its SNI's certificate and becomes a connection.
 */
function helloReadingServer(t: TlsServerOptions, contextOf: (c: TlsCertificate) => SecureContext, accepted: (s: TLSSocket) => void): NetServer {
  const select = t.selectCertificate!;
  const challenge = t.acmeTlsAlpnCertificate!;
  const helloMs = t.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS;
  // Challenge certificates live for one validation: their contexts are not shared with contextOf's (other ALPN).
  const challengeContexts = new WeakMap<TlsCertificate, SecureContext>();
  const challengeContextOf = (c: TlsCertificate): SecureContext => {
    let ctx = challengeContexts.get(c);
    if (ctx === undefined) challengeContexts.set(c, (ctx = createSecureContext({ cert: c.cert, key: c.key, ALPNProtocols: [ACME_TLS_1] } as never)));
    return ctx;
  };
  return createNetServer({ allowHalfOpen: true } as never, (raw: Socket) => {
    const parser = new ClientHelloParser();
    let socket: TLSSocket | null = null;
    const timer = setTimeout(() => {
      socket?.destroy();
      raw.destroy();
    }, helloMs);
    const refuse = (alert: number) => {
      clearTimeout(timer);
      raw.end(encodeTlsAlert(alert));
      raw.destroySoon();
    };
    raw.on("error", () => {});
    raw.on("close", () => clearTimeout(timer));
    const onData = (chunk: Uint8Array) => {
      let hello;
      try {
        parser.push(chunk);
        hello = parser.next();
      } catch (e) {
        return refuse(e instanceof TlsParseError ? e.alert : ALERT_HANDSHAKE_FAILURE);
      }
      if (hello === null) return;
      raw.off("data", onData);
      raw.pause();
      const acme = hello.alpn.length === 1 && hello.alpn[0] === ACME_TLS_1;
      let cert: TlsCertificate | null = null;
      let ctx: SecureContext | null = null;
      try {
        cert = acme ? (hello.serverName === null ? null : challenge(hello.serverName)) : select(hello.serverName);
        if (cert !== null) ctx = acme ? challengeContextOf(cert) : contextOf(cert);
      } catch {
        ctx = null; // a certificate that does not load: refused like a missing one
      }
      if (ctx === null) return refuse(acme ? ALERT_UNRECOGNIZED_NAME : ALERT_HANDSHAKE_FAILURE);
      // Replayed to TLS below: Bun passes what the socket holds unread to its native TLS as the first bytes.
      const chunks = parser.bufferedChunks();
      for (let i = chunks.length - 1; i >= 0; i--) raw.unshift(chunks[i] as Buffer);
      const s = (socket = new TLSSocket(raw, { isServer: true, secureContext: ctx, ALPNProtocols: acme ? [ACME_TLS_1] : t.alpn } as never));
      s.on("error", () => s.destroy());
      s.on("close", () => clearTimeout(timer));
      s.once("secure", () => {
        clearTimeout(timer);
        // RFC 8737 §3: once the handshake is complete the validation is done; nothing more is exchanged.
        if (acme) s.end();
        else accepted(s);
      });
    };
    raw.on("data", onData);
  });
}
