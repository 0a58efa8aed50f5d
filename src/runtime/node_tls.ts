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
 * Certificates are chosen before ALPN is looked at (node:tls calls its
 * ALPNCallback after the SNICallback, with the context already set), so a
 * certificate cannot depend on the ClientHello's ALPN list: TLS-ALPN-01 is
 * not served here.
 */
import { createServer, createSecureContext, type SecureContext, type TLSSocket } from "node:tls";
import type { Conn, ConnHandler, Listener, ListenOptions, TlsCertificate, TlsInfo } from "./types.ts";
import { NULL_HANDLER } from "./common.ts";

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
  server.on("secureConnection", (socket: TLSSocket) => {
    const c = new NodeTlsConn(socket);
    const h = opts.onAccept(c);
    if (h) c.handler = h;
  });
  server.on("tlsClientError", (_err: Error, socket: TLSSocket) => socket.destroy());
  const a = opts.address;
  if ("unix" in a) return Promise.reject(new Error("a TLS listener with several certificates cannot listen on a unix socket"));
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
        refreshCertificates() {
          const d = select(null);
          if (d === null || d === defaultCert) return;
          defaultCert = d;
          server.setSecureContext({ cert: d.cert, key: d.key, ALPNProtocols: t.alpn } as never);
        },
      });
    });
  });
}
