/**
 * Backends for bench/connect_bench.ts, one process:
 *   echo: answers every byte (new-tunnel round trips);
 *   source: after the first byte, streams 1 MiB writes until the peer closes (bulk);
 *   sink: reads everything, closes after the peer's FIN (HBONE uploads).
 * Prints {"echo":P,"source":P,"sink":P} once listening on 127.0.0.1.
 */
import { createServer, type Server } from "node:net";
import type { AddressInfo } from "node:net";

const payload = Buffer.alloc(1 << 20, 0x5a);
const listen = (s: Server) => new Promise<number>((r) => s.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => r((s.address() as AddressInfo).port)));

const echo = createServer({ noDelay: true, allowHalfOpen: true }, (s) => {
  s.on("error", () => {});
  s.on("data", (d) => s.write(d));
  s.on("end", () => s.end());
});
const source = createServer({ noDelay: true }, (s) => {
  s.on("error", () => {});
  const pump = () => {
    while (!s.destroyed) if (!s.write(payload)) return;
  };
  s.once("data", () => {
    s.on("data", () => {});
    s.on("drain", pump);
    pump();
  });
});
const sink = createServer({ allowHalfOpen: true }, (s) => {
  s.on("error", () => {});
  s.on("data", () => {});
  s.on("end", () => s.end());
});
console.log(JSON.stringify({ echo: await listen(echo), source: await listen(source), sink: await listen(sink) }));
process.stdin.resume();
process.stdin.on("end", () => process.exit(0));
