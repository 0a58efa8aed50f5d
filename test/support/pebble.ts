/**
 * Debian's `pebble` (an ACME server) and `pebble-challtestsrv` (its DNS stub:
 * every name → 127.0.0.1), offline on 127.0.0.1, for the ACME tests. Ports
 * are found free by binding port 0 and closing it: pebble must be told its
 * own ports and the validation ports (httpPort, tlsPort) before it starts.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { createServer as createNetServer } from "node:net";
import { join } from "node:path";

export function which(cmd: string): string | null {
  for (const d of (process.env.PATH ?? "").split(":")) if (existsSync(join(d, cmd))) return join(d, cmd);
  return null;
}

export const HAVE_PEBBLE = which("pebble") !== null && which("pebble-challtestsrv") !== null;

/** A free TCP port on 127.0.0.1 (bound, read, closed). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A port free for both TCP and UDP (challtestsrv's DNS binds both). */
export async function freeDnsPort(): Promise<number> {
  const dgram = await import("node:dgram");
  for (;;) {
    const port = await freePort();
    const ok = await new Promise<boolean>((resolve) => {
      const u = dgram.createSocket("udp4");
      u.once("error", () => resolve(false));
      u.bind(port, "127.0.0.1", () => u.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

/**
 * pebble's own HTTPS certificate (its directory and management interface) in
 * `dir`: ca.crt/ca.key (the throwaway CA a client must trust), pebble.crt/pebble.key.
 */
export function makePebbleCerts(dir: string): void {
  const sh = (...args: string[]) => execFileSync(args[0]!, args.slice(1), { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=pebble test CA", "-keyout", "ca.key", "-out", "ca.crt");
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost", "-keyout", "pebble.key", "-out", "pebble.csr");
  sh("openssl", "x509", "-req", "-in", "pebble.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "1", "-days", "2", "-extfile", "ext.cnf", "-out", "pebble.crt");
}

/** Child processes with their output kept (printed by a test that failed). */
export class LoggedProcs {
  readonly procs: ChildProcess[] = [];
  readonly logs: string[] = [];
  constructor(private readonly cwd: () => string) {}

  spawn(cmd: string, args: string[], env: Record<string, string> = {}): ChildProcess {
    const p = spawn(cmd, args, { cwd: this.cwd(), stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    const tag = cmd.split("/").pop();
    p.stdout!.on("data", (d) => this.logs.push(`${tag}: ${d}`));
    p.stderr!.on("data", (d) => this.logs.push(`${tag}: ${d}`));
    this.procs.push(p);
    return p;
  }

  /** challtestsrv answering A 127.0.0.1 for every name (no AAAA: responders listen on IPv4 only), its own challenge servers off. */
  startDnsStub(dnsPort: number, mgmtPort: number): ChildProcess {
    return this.spawn(which("pebble-challtestsrv")!, [
      "-dns01", `127.0.0.1:${dnsPort}`,
      "-http01", "", "-https01", "", "-tlsalpn01", "",
      "-management", `127.0.0.1:${mgmtPort}`,
      "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
    ]);
  }

  killAll(): void {
    for (const p of this.procs) p.kill("SIGTERM");
  }
}
