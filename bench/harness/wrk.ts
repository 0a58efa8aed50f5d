/** Runs wrk (Debian's 4.x) with bench/tools/wrk_report.lua and parses its one JSON line. */
import { join } from "node:path";
import { type ProcessRegistry, runToEnd } from "./procs.ts";

export interface WrkResult {
  durationUs: number;
  requests: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyUs: { p50: number; p90: number; p99: number; mean: number; max: number };
}

/** Finds and parses the `WRKJSON {...}` line; null when absent or malformed. */
export function parseWrkOutput(output: string): WrkResult | null {
  const line = output.split("\n").find((l) => l.startsWith("WRKJSON "));
  if (!line) return null;
  let o: Record<string, number>;
  try {
    o = JSON.parse(line.slice("WRKJSON ".length)) as Record<string, number>;
  } catch {
    return null;
  }
  const need = ["duration_us", "requests", "bytes", "lat_p50_us", "lat_p99_us"];
  if (!need.every((k) => typeof o[k] === "number")) return null;
  return {
    durationUs: o.duration_us!,
    requests: o.requests!,
    bytes: o.bytes!,
    errors: {
      connect: o.connect_errors ?? 0,
      read: o.read_errors ?? 0,
      write: o.write_errors ?? 0,
      status: o.status_errors ?? 0,
      timeout: o.timeouts ?? 0,
    },
    latencyUs: { p50: o.lat_p50_us!, p90: o.lat_p90_us ?? Number.NaN, p99: o.lat_p99_us!, mean: o.lat_mean_us ?? Number.NaN, max: o.lat_max_us ?? Number.NaN },
  };
}

export interface WrkOptions {
  port: number;
  threads: number;
  connections: number;
  seconds: number;
  /** Send `Connection: close`: one TCP connection (and with tls, one TLS handshake) per request. */
  close: boolean;
  /** https://localhost (SNI "localhost") when true; plain http://127.0.0.1 for the tcp section. */
  tls: boolean;
  /** Send `Host: <host>` instead of wrk's own (the URL's host and port): what the http section routes by. */
  host?: string;
}

export async function runWrk(reg: ProcessRegistry, repoRoot: string, o: WrkOptions): Promise<WrkResult> {
  // With TLS the URL host is both what wrk resolves (127.0.0.1 via /etc/hosts) and the SNI it sends.
  const args = [
    // wrk takes whole seconds only ("-d 2.5s" is an error); the rate uses the duration wrk reports.
    "-t", String(o.threads), "-c", String(o.connections), "-d", `${Math.max(1, Math.round(o.seconds))}s`, "--timeout", "5s",
    "-s", join(repoRoot, "bench", "tools", "wrk_report.lua"),
    ...(o.close ? ["-H", "Connection: close"] : []),
    ...(o.host ? ["-H", `Host: ${o.host}`] : []),
    o.tls ? `https://localhost:${o.port}/` : `http://127.0.0.1:${o.port}/`,
  ];
  const r = await runToEnd(reg, "wrk", "wrk", args, (o.seconds + 20) * 1000);
  const parsed = parseWrkOutput(r.output);
  if (!parsed) throw new Error(`wrk gave no result (exit ${r.code}${r.timedOut ? ", timed out" : ""}):\n${r.output.slice(-2000)}`);
  return parsed;
}
