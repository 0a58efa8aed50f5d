/**
 * Raw TCP backend for the bulk and idle scenarios (a separate process from the
 * load client so each side has its own 20,000 file descriptors).
 *
 *   bun bench/tools/tcp_backend.ts --mode bulk|hold [--chunk 1048576]
 *
 * Waits for the first bytes of each connection (the ClientHello the proxy
 * replays), then
 *   bulk: sends bytes as fast as the socket takes them, until the peer closes;
 *   hold: answers one byte "+" (so the client knows the path is up) and keeps
 *         the connection open, discarding anything else.
 * Prints one JSON line {"ready":true,"port":N} when listening on 127.0.0.1:0.
 */
import { createServer, type Socket } from "node:net";

const args = new Map<string, string>();
for (let i = 2; i + 1 < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ""), process.argv[i + 1]!);
const mode = args.get("mode") ?? "bulk";
if (mode !== "bulk" && mode !== "hold") throw new Error(`--mode must be bulk or hold, got ${mode}`);
const chunkSize = Math.min(Math.max(Number(args.get("chunk") ?? 1 << 20), 4096), 16 << 20);
// One shared payload buffer: every write hands the same bytes to the kernel (no per-write allocation).
const payload = Buffer.alloc(chunkSize, 0x5a);
const plus = Buffer.from("+");
let open = 0;

function pump(sock: Socket): void {
  // write() returns false once the socket's buffer is past its high-water mark: wait for 'drain'.
  for (let i = 0; i < 64 && !sock.destroyed; i++) if (!sock.write(payload)) return;
  if (!sock.destroyed) setImmediate(() => pump(sock));
}

const server = createServer({ noDelay: true }, (sock) => {
  open++;
  sock.on("error", () => {});
  sock.once("close", () => open--);
  sock.once("data", () => {
    if (mode === "hold") {
      sock.write(plus);
      sock.on("data", () => {});
      return;
    }
    sock.on("data", () => {});
    sock.on("drain", () => pump(sock));
    pump(sock);
  });
});
server.on("error", (e) => {
  console.error(`tcp_backend: ${e.message}`);
  process.exit(1);
});
server.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => {
  const addr = server.address();
  console.log(JSON.stringify({ ready: true, port: typeof addr === "object" && addr ? addr.port : 0, mode }));
});
// Report on request, for the harness's own checks.
process.stdin.setEncoding("utf8");
process.stdin.on("data", (s: string) => {
  if (s.includes("count")) console.log(JSON.stringify({ open }));
});
process.stdin.on("end", () => process.exit(0));
