/**
 * Helpers for the forward-proxy end-to-end tests: an echo backend, a raw
 * HTTP/1.1 CONNECT client that keeps its tunnel open, and the test PKI's
 * SPIFFE certificates. Nothing sleeps; every wait has a deadline.
 */
import { createServer, type Server, type Socket, connect } from "node:net";
import type { AddressInfo } from "node:net";
import { testPki } from "./tls.ts";

export interface EchoServer {
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** A TCP server that echoes every byte and half-closes when the client does. */
export async function echoServer(): Promise<EchoServer> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
    s.on("data", (d) => s.write(d));
    s.on("end", () => s.end());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface Tunnel {
  socket: Socket;
  /** The proxy's response head (status line and fields), text. */
  head: string;
  status: number;
  /** Bytes after the head (the start of the tunnel, or an error body). */
  rest: Buffer;
  /** Whether the proxy closed the connection. */
  closed: Promise<void>;
  /** Sends `data` and resolves with the next `n` bytes that come back. */
  roundTrip(data: string | Uint8Array, n?: number, timeoutMs?: number): Promise<Buffer>;
}

/**
 * Connects to a proxy, writes `request` (chunks written separately), and
 * resolves once a complete response head arrived (or the proxy closed).
 */
export function rawRequest(port: number, request: (string | Uint8Array)[], timeoutMs = 10_000): Promise<Tunnel> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    let settled = false;
    let closedResolve!: () => void;
    const closed = new Promise<void>((r) => (closedResolve = r));
    const waiters: { n: number; resolve: (b: Buffer) => void }[] = [];
    let tunnelBuf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      if (!settled) {
        settled = true;
        socket.destroy();
        reject(new Error(`no response head within ${timeoutMs} ms; got ${JSON.stringify(buf.toString("latin1").slice(0, 200))}`));
      }
    }, timeoutMs);
    const finishHead = (headEnd: number) => {
      settled = true;
      clearTimeout(timer);
      const head = buf.subarray(0, headEnd).toString("latin1");
      const rest = buf.subarray(headEnd);
      tunnelBuf = Buffer.from(rest);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      resolve({
        socket,
        head,
        status: m ? Number(m[1]) : 0,
        rest: Buffer.from(rest),
        closed,
        roundTrip(data, n = typeof data === "string" ? Buffer.byteLength(data) : data.length, t = 10_000) {
          return new Promise((res, rej) => {
            const timer2 = setTimeout(() => rej(new Error(`round trip: got ${tunnelBuf.length} of ${n} bytes`)), t);
            waiters.push({
              n,
              resolve: (b) => {
                clearTimeout(timer2);
                res(b);
              },
            });
            socket.write(data);
            check();
          });
        },
      });
    };
    const check = () => {
      while (waiters.length > 0 && tunnelBuf.length >= waiters[0]!.n) {
        const w = waiters.shift()!;
        const out = tunnelBuf.subarray(0, w.n);
        tunnelBuf = tunnelBuf.subarray(w.n);
        w.resolve(Buffer.from(out));
      }
    };
    socket.on("connect", () => {
      for (const c of request) socket.write(c);
    });
    socket.on("data", (d: Buffer) => {
      if (settled) {
        tunnelBuf = Buffer.concat([tunnelBuf, d]);
        check();
        return;
      }
      buf = Buffer.concat([buf, d]);
      const i = buf.indexOf("\r\n\r\n");
      if (i >= 0) finishHead(i + 4);
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      closedResolve();
      if (!settled) finishHead(buf.length);
    });
  });
}

/** Resolves when `p` settles, or rejects after `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout>;
  return Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms)))]).finally(() => clearTimeout(t));
}

/** Certificates of the shared test CA for HBONE: server and workloads with SPIFFE URI SANs. */
export function spiffeCerts() {
  const pki = testPki();
  return {
    ca: pki.caCertPath,
    server: pki.issue("hbone-gateway", ["localhost", "IP:127.0.0.1", "URI:spiffe://cluster.local/ns/edge/sa/gateway"]),
    app: pki.issue("app", ["URI:spiffe://cluster.local/ns/edge/sa/app"]),
    otherNs: pki.issue("other-ns", ["URI:spiffe://cluster.local/ns/other/sa/app"]),
    otherTd: pki.issue("other-td", ["URI:spiffe://evil.example/ns/edge/sa/app"]),
    noSpiffe: pki.issue("plain-client", ["plain-client.example"]),
  };
}
