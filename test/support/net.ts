/** Raw TCP/unix helpers for end-to-end tests (node:net, works in Bun). */
import { readFileSync } from "node:fs";
import { createServer, type Server, type Socket, connect } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { ROOT } from "./edgemux.ts";

/** A captured ClientHello from src/proto/testdata (SNI openssl.example.com unless said otherwise). */
export function fixtureHello(name = "openssl_tls13_sni_alpn"): Uint8Array {
  return new Uint8Array(readFileSync(join(ROOT, "src/proto/testdata", `${name}.bin`)));
}

export interface Exchange {
  data: Uint8Array;
  /** The server closed (FIN or reset) before the deadline. */
  closed: boolean;
  reset: boolean;
  ms: number;
}

/**
 * Connects, sends `chunks` (each written separately), optionally half-closes,
 * and collects everything until the peer closes or `timeoutMs` passes.
 */
export function exchange(
  target: { host: string; port: number } | { path: string },
  chunks: (Uint8Array | string)[],
  opts: { timeoutMs?: number; end?: boolean } = {},
): Promise<Exchange> {
  const started = Date.now();
  return new Promise((resolve) => {
    const sock: Socket = "path" in target ? connect(target.path) : connect(target.port, target.host);
    const parts: Buffer[] = [];
    let reset = false;
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data: new Uint8Array(Buffer.concat(parts)), closed, reset, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), opts.timeoutMs ?? 5000);
    sock.on("connect", () => {
      for (const c of chunks) sock.write(c);
      if (opts.end) sock.end();
    });
    sock.on("data", (d: Buffer) => parts.push(d));
    sock.on("error", () => {
      reset = true;
    });
    sock.on("close", () => finish(true));
  });
}

/** A plain TCP (or unix) server that records what each connection sent and echoes nothing unless asked. */
export interface RecordingServer {
  port: number;
  address: string;
  received: Buffer[][];
  server: Server;
  close(): Promise<void>;
}

export async function recordingServer(opts: { unixPath?: string; onConn?: (s: Socket, data: Buffer[]) => void } = {}): Promise<RecordingServer> {
  const received: Buffer[][] = [];
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    const data: Buffer[] = [];
    received.push(data);
    s.on("data", (d: Buffer) => data.push(d));
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
    opts.onConn?.(s, data);
  });
  await new Promise<void>((r) => (opts.unixPath ? server.listen(opts.unixPath, r) : server.listen(0, "127.0.0.1", r)));
  const port = opts.unixPath ? 0 : (server.address() as AddressInfo).port;
  return {
    port,
    address: opts.unixPath ?? `127.0.0.1:${port}`,
    received,
    server,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A port nothing listens on (bound then released). */
export async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The 7-byte fatal alert record for `description`. */
export function alertBytes(description: number): number[] {
  return [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description];
}

/**
 * Returns a copy of a captured ClientHello whose server_name is `name`,
 * with every enclosing length fixed up. The fixture has exactly one record.
 */
export function rewriteSni(hello: Uint8Array, name: string): Uint8Array {
  const buf = Buffer.from(hello);
  // record(5) handshake hdr(4) version(2) random(32)
  let p = 5 + 4 + 2 + 32;
  p += 1 + buf[p]!; // session id
  p += 2 + buf.readUInt16BE(p); // cipher suites
  p += 1 + buf[p]!; // compression
  const extStart = p + 2;
  const extEnd = extStart + buf.readUInt16BE(p);
  let q = extStart;
  while (q < extEnd) {
    const type = buf.readUInt16BE(q);
    const len = buf.readUInt16BE(q + 2);
    if (type === 0) {
      const nameBytes = Buffer.from(name, "ascii");
      const ext = Buffer.alloc(4 + 2 + 3 + nameBytes.length);
      ext.writeUInt16BE(0, 0);
      ext.writeUInt16BE(2 + 3 + nameBytes.length, 2);
      ext.writeUInt16BE(3 + nameBytes.length, 4);
      ext[6] = 0;
      ext.writeUInt16BE(nameBytes.length, 7);
      nameBytes.copy(ext, 9);
      const out = Buffer.concat([buf.subarray(0, q), ext, buf.subarray(q + 4 + len)]);
      const delta = ext.length - (4 + len);
      out.writeUInt16BE(out.readUInt16BE(p) + delta, p); // extensions length
      out.writeUInt16BE(out.readUInt16BE(3) + delta, 3); // record length
      const hs = (out[6]! << 16 | out[7]! << 8 | out[8]!) + delta; // handshake length
      out[6] = hs >> 16;
      out[7] = (hs >> 8) & 0xff;
      out[8] = hs & 0xff;
      return new Uint8Array(out);
    }
    q += 4 + len;
  }
  throw new Error("fixture has no server_name extension");
}
