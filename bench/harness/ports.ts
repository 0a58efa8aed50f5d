/** Free TCP ports on 127.0.0.1, for peers that cannot bind port 0 and report it. */
import { createServer } from "node:net";

/** Binds 127.0.0.1:0, reads the port, closes. A small race remains (another process may take it); peers that fail to bind are retried by the caller. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error("no port from the kernel"))));
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port (bounded by timeoutMs). */
export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const { connect } = await import("node:net");
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 25)); // polling a port that is not up yet; not a test sleep
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}
