/**
 * Raw TCP load client for the bulk and idle scenarios. Each connection first
 * sends a real TLS ClientHello with SNI (so SNI routers route it), or with
 * `--hello plain` a short text line instead (the tcp section: plain L4
 * forwarding, nothing for a proxy to parse; the backend starts on any first
 * bytes), then:
 *
 *   bulk: bun bench/tools/tcp_client.ts --mode bulk --port P --streams S --seconds D [--sni localhost] [--hello tls|plain]
 *         reads for D seconds from each stream's first byte, then closes;
 *         prints {"ok":true,"bytes","gbps","streams":[{bytes,seconds}]}.
 *   idle: bun bench/tools/tcp_client.ts --mode idle --port P --conns N [--concurrency 256] [--hold-max 120]
 *         opens N connections, each waits for the backend's one-byte answer;
 *         prints {"ready":n,"failed":f,"ms":t,"p50Ms","p99Ms"} once all are up or
 *         failed, then holds them until stdin says "close" (or closes, or
 *         hold-max seconds pass), closes them all and exits.
 */
import { connect, type Socket } from "node:net";
import { buildClientHello } from "../harness/client_hello.ts";

const args = new Map<string, string>();
for (let i = 2; i + 1 < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ""), process.argv[i + 1]!);
const num = (k: string, d: number, lo: number, hi: number) => {
  const v = Number(args.get(k) ?? d);
  if (!Number.isFinite(v) || v < lo || v > hi) throw new Error(`--${k} must be in ${lo}..${hi}, got ${args.get(k)}`);
  return v;
};
const mode = args.get("mode") ?? "bulk";
const port = num("port", 0, 1, 65535);
const sni = args.get("sni") ?? "localhost";
const helloKind = args.get("hello") ?? "tls";
if (helloKind !== "tls" && helloKind !== "plain") throw new Error(`--hello must be tls or plain, got ${helloKind}`);
const hello = helloKind === "tls" ? buildClientHello({ serverName: sni, alpn: ["http/1.1"] }) : new TextEncoder().encode("bulk please\n");

function sortedPct(v: number[], p: number): number {
  if (v.length === 0) return Number.NaN;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.max(Math.ceil((p / 100) * s.length) - 1, 0)]!;
}

async function bulk(): Promise<void> {
  const streams = num("streams", 1, 1, 64);
  const seconds = num("seconds", 3, 0.2, 600);
  const results = await Promise.all(
    Array.from({ length: streams }, () =>
      new Promise<{ bytes: number; seconds: number; error?: string }>((resolve) => {
        let bytes = 0;
        let t0 = 0;
        let settled = false;
        const finish = (error?: string) => {
          if (settled) return;
          settled = true;
          clearTimeout(noData);
          const dt = t0 ? (performance.now() - t0) / 1000 : 0;
          sock.destroy();
          resolve({ bytes, seconds: dt, ...(error ? { error } : {}) });
        };
        const sock = connect({ port, host: "127.0.0.1", noDelay: true }, () => sock.write(hello));
        const noData = setTimeout(() => finish("no data within 5 s"), 5000);
        sock.on("data", (b: Buffer) => {
          if (t0 === 0) {
            t0 = performance.now();
            clearTimeout(noData);
            setTimeout(() => finish(), seconds * 1000);
            return; // the window starts after the first chunk: do not count it
          }
          bytes += b.length;
        });
        sock.on("error", (e) => finish(e.message));
        sock.on("close", () => finish(t0 ? undefined : "closed before any data"));
      }),
    ),
  );
  const gbps = results.reduce((s, r) => s + (r.seconds > 0 ? (r.bytes * 8) / r.seconds / 1e9 : 0), 0);
  const errors = results.filter((r) => r.error).map((r) => r.error);
  console.log(
    JSON.stringify({
      ok: errors.length === 0,
      bytes: results.reduce((s, r) => s + r.bytes, 0),
      gbps,
      streams: results,
      errors,
    }),
  );
}

async function idle(): Promise<void> {
  const conns = num("conns", 1000, 1, 19_000);
  const concurrency = num("concurrency", 256, 1, 4096);
  const holdMax = num("hold-max", 120, 1, 1800);
  const socks: Socket[] = [];
  const setupMs: number[] = [];
  let failed = 0;
  const firstError = new Map<string, number>();
  const t0 = performance.now();
  let next = 0;
  const openOne = () =>
    new Promise<void>((resolve) => {
      const start = performance.now();
      let done = false;
      const settle = (err?: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) {
          failed++;
          firstError.set(err, (firstError.get(err) ?? 0) + 1);
          sock.destroy();
        } else {
          setupMs.push(performance.now() - start);
        }
        resolve();
      };
      const sock = connect({ port, host: "127.0.0.1" }, () => sock.write(hello));
      socks.push(sock);
      const timer = setTimeout(() => settle("no answer within 15 s"), 15_000);
      sock.once("data", () => settle());
      sock.on("error", (e) => settle(e.message));
      sock.once("close", () => settle("closed"));
    });
  const worker = async () => {
    while (next < conns) {
      next++;
      await openOne();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, conns) }, worker));
  console.log(
    JSON.stringify({
      ready: conns - failed,
      failed,
      ms: performance.now() - t0,
      p50Ms: sortedPct(setupMs, 50),
      p99Ms: sortedPct(setupMs, 99),
      errors: Object.fromEntries(firstError),
    }),
  );
  const closeAll = () => {
    for (const s of socks) s.destroy();
    process.exit(0);
  };
  setTimeout(closeAll, holdMax * 1000);
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (s: string) => {
    if (s.includes("close")) closeAll();
  });
  process.stdin.on("end", closeAll);
}

if (mode === "bulk") {
  await bulk();
  process.exit(0);
} else if (mode === "idle") await idle();
else throw new Error(`--mode must be bulk or idle, got ${mode}`);
