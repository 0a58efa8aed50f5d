/**
 * The backends behind the proxies: nginx http+TLS (the SNI section's
 * new-connection and keep-alive scenarios), the same nginx without TLS (the
 * tcp section's), the same nginx plain for the proxies plus a TLS port for
 * "direct" (the http section's), and the raw TCP backend of
 * bench/tools/tcp_backend.ts (bulk and idle). All are separate processes from
 * the load client.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Managed, ProcessRegistry } from "./procs.ts";
import { freePort, waitForPort } from "./ports.ts";
import { renderTemplate } from "./templates.ts";

export interface Backend {
  kind: "tls" | "http" | "web" | "bulk" | "hold";
  /** Where the proxies send their traffic. */
  port: number;
  /** Where "direct" connects when it is not `port` ("web": the TLS listener of the same nginx). */
  directPort?: number;
  /** The run's certificate, for proxies that terminate TLS (the http section). */
  tls?: BenchCert;
  proc: Managed;
  stop(): Promise<void>;
}

export interface BenchCert {
  cert: string;
  key: string;
  /** Chain and key in one file (HAProxy's `crt`). */
  pem: string;
}

/**
 * A throwaway ECDSA P-256 certificate for CN/SAN localhost (cheap handshakes),
 * made once per run: every backend and every TLS-terminating proxy of the run
 * serves the same one.
 */
export function makeCert(dir: string): BenchCert {
  const cert = join(dir, "localhost.crt");
  const key = join(dir, "localhost.key");
  const pem = join(dir, "localhost.pem");
  if (existsSync(pem)) return { cert, key, pem };
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", key, "-out", cert],
    { stdio: "ignore", timeout: 20_000 },
  );
  writeFileSync(pem, readFileSync(cert, "utf8") + readFileSync(key, "utf8"), { mode: 0o600 });
  return { cert, key, pem };
}

/**
 * nginx http with TLS ("tls"), without ("http": the tcp section's plain
 * HTTP/1.1 backend), or plain for the proxies plus a TLS port for "direct"
 * ("web": the http section's, where the proxies terminate TLS).
 */
export async function startTlsBackend(reg: ProcessRegistry, dir: string, repoRoot: string, workers: number, kind: "tls" | "http" | "web" = "tls"): Promise<Backend> {
  const tls = makeCert(dir);
  const tmpl = readFileSync(join(repoRoot, "bench", "peers", "backend_nginx.conf.tmpl"), "utf8");
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const directPort = kind === "web" ? await freePort() : port;
    const name = `backend_nginx_${kind}`;
    const cfg = join(dir, `${name}.conf`);
    writeFileSync(
      cfg,
      renderTemplate(tmpl, {
        WORKERS: workers,
        PORT: port,
        DIR: dir,
        CERT: tls.cert,
        KEY: tls.key,
        SSL: kind === "tls" ? "ssl" : "",
        NAME: name,
        DIRECT_LISTEN: kind === "web" ? `listen 127.0.0.1:${directPort} ssl reuseport backlog=4096;` : "# no second listener",
      }),
    );
    const proc = reg.spawn(name, "nginx", ["-c", cfg, "-p", dir, "-e", join(dir, `${name}_error.log`)], {
      logFile: join(dir, `${name}.log`),
    });
    try {
      await Promise.race([
        Promise.all([waitForPort(port, 10_000), waitForPort(directPort, 10_000)]),
        proc.exited.then((c) => {
          throw new Error(`backend nginx exited with ${c}:\n${proc.tail(20)}`);
        }),
      ]);
      return { kind, port, ...(kind === "web" ? { directPort } : {}), tls, proc, stop: () => proc.stop() };
    } catch (e) {
      lastErr = e;
      await proc.stop();
    }
  }
  throw lastErr;
}

export async function startTcpBackend(reg: ProcessRegistry, dir: string, repoRoot: string, mode: "bulk" | "hold"): Promise<Backend> {
  const proc = reg.spawn(`backend_${mode}`, "bun", ["bench/tools/tcp_backend.ts", "--mode", mode], {
    cwd: repoRoot,
    stdin: true,
    logFile: join(dir, `backend_${mode}.log`),
  });
  try {
    const line = await proc.waitForLine((l) => l.includes('"ready":true'), 15_000);
    const port = (JSON.parse(line) as { port: number }).port;
    return { kind: mode, port, proc, stop: () => proc.stop() };
  } catch (e) {
    await proc.stop();
    throw e;
  }
}
