/**
 * Test PKI and TLS backends: a CA made with openssl once per process, server
 * certificates for the names a test needs, and HTTPS backends (node:https)
 * that answer every request with their own name, on 127.0.0.1 port 0 or on a
 * unix socket.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { tempDir } from "./edgemux.ts";

export interface Pki {
  dir: string;
  caCertPath: string;
  caCert: string;
  issue(name: string, sans?: string[]): { certPath: string; keyPath: string; cert: string; key: string };
}

let pki: Pki | null = null;

export function testPki(): Pki {
  if (pki) return pki;
  const dir = tempDir("edgemux-pki-");
  const ossl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=edgemux test CA", "-keyout", "ca.key", "-out", "ca.crt");
  let serial = 1;
  pki = {
    dir,
    caCertPath: join(dir, "ca.crt"),
    caCert: readFileSync(join(dir, "ca.crt"), "utf8"),
    issue(name, sans = [name]) {
      const base = `${name.replace(/[^a-z0-9.-]/gi, "_")}-${serial}`;
      const ext = join(dir, `${base}.ext`);
      writeFileSync(ext, `subjectAltName=${sans.map((s) => (s.includes(":") ? s : `DNS:${s}`)).join(",")}\n`);
      ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=${name}`, "-keyout", `${base}.key`, "-out", `${base}.csr`);
      ossl("x509", "-req", "-in", `${base}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", String(serial++), "-days", "2", "-extfile", ext, "-out", `${base}.crt`);
      const certPath = join(dir, `${base}.crt`);
      const keyPath = join(dir, `${base}.key`);
      return { certPath, keyPath, cert: readFileSync(certPath, "utf8"), key: readFileSync(keyPath, "utf8") };
    },
  };
  return pki;
}

export interface TlsBackend {
  name: string;
  port: number;
  /** "127.0.0.1:port" or the unix path */
  address: string;
  /** Requests served (each answered with the backend's name). */
  requests: number;
  close(): Promise<void>;
  server: Server;
}

/**
 * An HTTPS server with a certificate for `names`, answering `GET /` with
 * `backend=<name>` and `GET /bytes/<n>` with n bytes; `POST /echo` echoes.
 */
export async function tlsBackend(name: string, opts: { names?: string[]; unixPath?: string; alpn?: string[] } = {}): Promise<TlsBackend> {
  const { cert, key } = testPki().issue(name, opts.names ?? [name]);
  const b: TlsBackend = { name, port: 0, address: "", requests: 0, close: async () => {}, server: null as unknown as Server };
  const server = createServer({ cert, key, ALPNProtocols: opts.alpn }, (req, res) => {
    b.requests++;
    const url = req.url ?? "/";
    if (url.startsWith("/bytes/")) {
      const n = Math.min(Number(url.slice(7)) || 0, 512 * 1024 * 1024);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(n) });
      const chunk = new Uint8Array(64 * 1024).fill(0x61);
      let left = n;
      const pump = () => {
        while (left > 0) {
          const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= part.length;
          if (!res.write(part)) return void res.once("drain", pump);
        }
        res.end();
      };
      return pump();
    }
    if (url.startsWith("/echo")) {
      const parts: Buffer[] = [];
      req.on("data", (d: Buffer) => parts.push(d));
      req.on("end", () => res.end(Buffer.concat(parts)));
      return;
    }
    res.end(`backend=${name}\n`);
  });
  b.server = server;
  await new Promise<void>((resolve) => {
    if (opts.unixPath) server.listen(opts.unixPath, resolve);
    else server.listen(0, "127.0.0.1", resolve);
  });
  if (opts.unixPath) {
    b.address = opts.unixPath;
  } else {
    b.port = (server.address() as AddressInfo).port;
    b.address = `127.0.0.1:${b.port}`;
  }
  b.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    });
  return b;
}
