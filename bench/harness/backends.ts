/**
 * The backends behind the proxies: nginx http+TLS (the SNI section's
 * new-connection and keep-alive scenarios), the same nginx without TLS (the
 * tcp section's), and the raw TCP backend of bench/tools/tcp_backend.ts (bulk
 * and idle). All are separate processes from the load client.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Managed, ProcessRegistry } from "./procs.ts";
import { freePort, waitForPort } from "./ports.ts";
import { renderTemplate } from "./templates.ts";

export interface Backend {
  kind: "tls" | "http" | "bulk" | "hold";
  port: number;
  proc: Managed;
  stop(): Promise<void>;
}

/** A throwaway ECDSA P-256 certificate for CN/SAN localhost (cheap handshakes). */
export function makeCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, "localhost.crt");
  const key = join(dir, "localhost.key");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", key, "-out", cert],
    { stdio: "ignore", timeout: 20_000 },
  );
  return { cert, key };
}

/** nginx http with TLS ("tls") or without ("http": the tcp section's plain HTTP/1.1 backend). */
export async function startTlsBackend(reg: ProcessRegistry, dir: string, repoRoot: string, workers: number, kind: "tls" | "http" = "tls"): Promise<Backend> {
  const { cert, key } = makeCert(dir);
  const tmpl = readFileSync(join(repoRoot, "bench", "peers", "backend_nginx.conf.tmpl"), "utf8");
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const name = `backend_nginx_${kind}`;
    const cfg = join(dir, `${name}.conf`);
    writeFileSync(cfg, renderTemplate(tmpl, { WORKERS: workers, PORT: port, DIR: dir, CERT: cert, KEY: key, SSL: kind === "tls" ? "ssl" : "", NAME: name }));
    const proc = reg.spawn(name, "nginx", ["-c", cfg, "-p", dir, "-e", join(dir, `${name}_error.log`)], {
      logFile: join(dir, `${name}.log`),
    });
    try {
      await Promise.race([
        waitForPort(port, 10_000),
        proc.exited.then((c) => {
          throw new Error(`backend nginx exited with ${c}:\n${proc.tail(20)}`);
        }),
      ]);
      return { kind, port, proc, stop: () => proc.stop() };
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
