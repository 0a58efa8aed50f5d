/**
 * Load for the switch-over tests (zero-downtime upgrade, socket activation
 * hand-over): many short TLS requests in a few loops, and a few long
 * transfers whose bytes are checked. Every outcome is counted by kind, so a
 * test can assert "no refused connection, no broken transfer".
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect as netConnect } from "node:net";
import { connect } from "node:tls";

export interface Target {
  host: string;
  port: number;
  /** The SNI name the route matches; the backend answers "backend=<name>\n". */
  servername: string;
  caCertPath: string;
  caCert: string;
}

/** One HTTPS GET / on a fresh connection: "ok", or what went wrong (an error code, "timeout", "bad response ..."). */
export function shortRequest(t: Target, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve) => {
    let body = "";
    let settled = false;
    const done = (outcome: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(outcome);
    };
    const sock = connect({ host: t.host, port: t.port, servername: t.servername, ca: t.caCert, ALPNProtocols: ["http/1.1"] }, () => {
      sock.write(`GET / HTTP/1.1\r\nhost: ${t.servername}\r\nconnection: close\r\n\r\n`);
    });
    let stage = "connecting";
    sock.on("connect", () => (stage = "tls handshake"));
    sock.on("secureConnect", () => (stage = "waiting for the answer"));
    const timer = setTimeout(() => done(`timeout (${stage}, ${body.length} bytes)`), timeoutMs);
    const want = `backend=${t.servername}\n`;
    const complete = () => body.startsWith("HTTP/1.1 200") && body.endsWith(want);
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      body += d;
      // The whole answer is in: done, without waiting for the backend to close (node:https may linger under load).
      if (complete()) done("ok");
    });
    sock.on("error", (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    sock.on("close", () => done(complete() ? "ok" : `bad response ${JSON.stringify(body.slice(0, 60))}`));
  });
}

/** `concurrency` loops of short requests until `stop()`; every outcome is counted with the time it finished. */
export class ShortLoad {
  readonly outcomes: { at: number; outcome: string }[] = [];
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(private readonly target: Target, private readonly concurrency: number, private readonly maxRequests = 20_000) {}

  start(): void {
    this.running = true;
    for (let i = 0; i < this.concurrency; i++) this.loops.push(this.loop());
  }

  private async loop(): Promise<void> {
    while (this.running && this.outcomes.length < this.maxRequests) {
      const outcome = await shortRequest(this.target);
      this.outcomes.push({ at: Date.now(), outcome });
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  ok(since = 0): number {
    return this.outcomes.filter((o) => o.at >= since && o.outcome === "ok").length;
  }

  /** Outcome (other than ok) -> count. */
  failures(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const o of this.outcomes) if (o.outcome !== "ok") out[o.outcome] = (out[o.outcome] ?? 0) + 1;
    return out;
  }
}

export interface TransferResult {
  kind: "download" | "echo";
  ok: boolean;
  bytes: number;
  expectedBytes: number;
  /** Whether the received bytes hash to what was expected. */
  checksumOk: boolean;
  curlExit: number | null;
  stderr: string;
  ms: number;
}

function curlArgs(t: Target, path: string): string[] {
  return ["-sS", "--http1.1", "--max-time", "60", "--cacert", t.caCertPath, "--resolve", `${t.servername}:${t.port}:${t.host}`, `https://${t.servername}:${t.port}${path}`];
}

function runCurl(args: string[]): Promise<{ code: number | null; out: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn("curl", args, { stdio: ["ignore", "pipe", "pipe"] });
    const parts: Buffer[] = [];
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => parts.push(d));
    p.stderr.setEncoding("utf8");
    p.stderr.on("data", (d: string) => (stderr += d));
    const t = setTimeout(() => p.kill("SIGKILL"), 90_000);
    p.on("exit", (code) => {
      clearTimeout(t);
      resolve({ code, out: Buffer.concat(parts), stderr });
    });
  });
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** A rate-limited download of `bytes` bytes of "a" (the test backend's /bytes/N), checked byte for byte. */
export async function download(t: Target, bytes: number, rate: string): Promise<TransferResult> {
  const started = Date.now();
  const r = await runCurl(["--limit-rate", rate, "-o", "-", ...curlArgs(t, `/bytes/${bytes}`)]);
  const checksumOk = r.out.length === bytes && sha256(r.out) === sha256(Buffer.alloc(bytes, 0x61));
  return { kind: "download", ok: r.code === 0 && checksumOk, bytes: r.out.length, expectedBytes: bytes, checksumOk, curlExit: r.code, stderr: r.stderr.slice(0, 300), ms: Date.now() - started };
}

/** A rate-limited upload of random bytes to the backend's /echo; the echo must hash the same. */
export async function echo(t: Target, dir: string, bytes: number, rate: string): Promise<TransferResult> {
  const body = randomBytes(bytes);
  const file = join(dir, `echo-${bytes}-${Date.now()}-${Math.random().toString(36).slice(2)}.bin`);
  writeFileSync(file, body);
  const started = Date.now();
  const r = await runCurl(["--limit-rate", rate, "-X", "POST", "-H", "content-type: application/octet-stream", "--data-binary", `@${file}`, "-o", "-", ...curlArgs(t, "/echo")]);
  const checksumOk = r.out.length === bytes && sha256(r.out) === sha256(body);
  return { kind: "echo", ok: r.code === 0 && checksumOk, bytes: r.out.length, expectedBytes: bytes, checksumOk, curlExit: r.code, stderr: r.stderr.slice(0, 300), ms: Date.now() - started };
}

/**
 * A raw TCP connection that sends a ClientHello for the target's name and
 * waits for the first byte of the answer (the backend's ServerHello, relayed):
 * cheap enough to have hundreds in flight at the moment a listener closes.
 */
export function helloProbe(t: Target, hello: Uint8Array, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (outcome: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(outcome);
    };
    const sock = netConnect(t.port, t.host, () => sock.write(hello));
    const timer = setTimeout(() => done("timeout"), timeoutMs);
    sock.on("data", () => done("ok"));
    sock.on("error", (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    sock.on("close", () => done("closed without an answer"));
  });
}

/** `n` hello probes at once; outcome -> count. */
export async function helloStorm(t: Target, hello: Uint8Array, n: number): Promise<Record<string, number>> {
  const outcomes = await Promise.all(Array.from({ length: n }, () => helloProbe(t, hello)));
  const out: Record<string, number> = {};
  for (const o of outcomes) out[o] = (out[o] ?? 0) + 1;
  return out;
}
