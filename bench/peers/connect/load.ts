/**
 * Load client for bench/connect_bench.ts (its own process, so it does not
 * share an event loop with the proxies).
 *
 *   newconn: --port P --target HOST:PORT --seconds S --concurrency C
 *     each worker loops: connect, CONNECT, wait for 200, send one byte, read
 *     it back (through the echo backend), close. Prints {"tunnels","rate","failed"}.
 *   bulk: --port P --target HOST:PORT --seconds S [--direct 1]
 *     one tunnel to the source backend (or, with --direct 1, a plain
 *     connection to it); counts bytes for S seconds after the first chunk.
 *     Prints {"bytes","mibps"}.
 */
import { connect, type Socket } from "node:net";

const args = new Map<string, string>();
for (let i = 3; i + 1 < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ""), process.argv[i + 1]!);
const mode = process.argv[2];
const port = Number(args.get("port"));
const target = args.get("target")!;
const seconds = Number(args.get("seconds") ?? 3);
const request = Buffer.from(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);

function tunnel(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: "127.0.0.1", noDelay: true });
    let head = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      head = Buffer.concat([head, d]);
      const i = head.indexOf("\r\n\r\n");
      if (i < 0) return;
      s.off("data", onData);
      if (!/^HTTP\/1\.[01] 200/.test(head.toString("latin1"))) {
        s.destroy();
        return reject(new Error(head.toString("latin1").split("\r\n")[0]));
      }
      if (head.length > i + 4) s.unshift(head.subarray(i + 4));
      resolve(s);
    };
    s.on("data", onData);
    s.on("error", reject);
    s.on("connect", () => s.write(request));
  });
}

async function newconn(): Promise<void> {
  const concurrency = Number(args.get("concurrency") ?? 32);
  const end = performance.now() + seconds * 1000;
  let tunnels = 0;
  let failed = 0;
  const one = () =>
    tunnel().then(
      (s) =>
        new Promise<void>((resolve) => {
          s.once("data", () => {
            tunnels++;
            s.destroy();
            resolve();
          });
          s.once("error", () => resolve());
          s.write("x");
        }),
      () => {
        failed++;
      },
    );
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) await one();
  }));
  const took = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ tunnels, failed, rate: tunnels / took }));
}

/** --direct 1: straight to the backend, no proxy (the ceiling of this client and backend). */
function direct(): Promise<Socket> {
  const [h, p] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  return new Promise((resolve, reject) => {
    const s = connect({ port: p, host: h, noDelay: true });
    s.on("connect", () => resolve(s));
    s.on("error", reject);
  });
}

async function bulk(): Promise<void> {
  const s = args.get("direct") === "1" ? await direct() : await tunnel();
  let bytes = 0;
  let t0 = 0;
  await new Promise<void>((resolve) => {
    s.on("data", (d: Buffer) => {
      if (t0 === 0) {
        t0 = performance.now();
        return;
      }
      bytes += d.length;
      if (performance.now() - t0 >= seconds * 1000) {
        s.destroy();
        resolve();
      }
    });
    s.on("close", () => resolve());
    s.write("go");
  });
  const took = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ bytes, mibps: bytes / (1 << 20) / took }));
}

await (mode === "newconn" ? newconn() : bulk());
process.exit(0);
