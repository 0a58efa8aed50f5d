/**
 * The runtime adapter conformance suite, written once and run against each
 * adapter: by bun test for Bun (test/runtime_conformance_test.ts) and by
 * `deno run test/runtime_conformance_deno.ts` for Deno. Each case takes a
 * Runtime and throws on failure. Only standard APIs here (no bun:test).
 */
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Conn, ConnHandler, Runtime } from "../../src/runtime/types.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout>;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms))),
  ]);
}

/** A handler that records everything and lets a test await events. */
class Recorder implements ConnHandler {
  chunks: Uint8Array[] = [];
  bytes = 0;
  ended = false;
  closed = false;
  drains = 0;
  private waiters: { pred: () => boolean; resolve: () => void }[] = [];
  onData(_c: Conn, chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.kick();
  }
  onDrain(): void {
    this.drains++;
    this.kick();
  }
  onEnd(): void {
    this.ended = true;
    this.kick();
  }
  onClose(): void {
    this.closed = true;
    this.kick();
  }
  until(pred: () => boolean, what: string, ms = 10_000): Promise<void> {
    if (pred()) return Promise.resolve();
    return deadline(new Promise<void>((resolve) => this.waiters.push({ pred, resolve })), ms, what);
  }
  private kick(): void {
    this.waiters = this.waiters.filter((w) => (w.pred() ? (w.resolve(), false) : true));
  }
  sha(): string {
    const h = createHash("sha256");
    for (const c of this.chunks) h.update(c);
    return h.digest("hex");
  }
}

async function pair(rt: Runtime, opts: { unix?: string } = {}) {
  const server = new Recorder();
  let serverConn!: Conn;
  let accepted!: () => void;
  const gotConn = new Promise<void>((r) => (accepted = r));
  const l = rt.listen({
    address: opts.unix ? { unix: opts.unix } : { hostname: "127.0.0.1", port: 0 },
    onAccept(c) {
      serverConn = c;
      accepted();
      return server;
    },
  });
  const client = new Recorder();
  const clientConn = await rt.connect({ address: opts.unix ? { unix: opts.unix } : { hostname: "127.0.0.1", port: l.port }, handler: client, timeoutMs: 5000 });
  await deadline(gotConn, 5000, "accept");
  return { l, server, client, serverConn, clientConn };
}

/** Writes `total` bytes of a pattern with backpressure; resolves when all were accepted by write(). */
function pump(conn: Conn, rec: Recorder, total: number, chunkSize: number): Promise<string> {
  const h = createHash("sha256");
  let sent = 0;
  let seq = 0;
  return new Promise((resolve) => {
    const go = () => {
      while (sent < total) {
        const n = Math.min(chunkSize, total - sent);
        const chunk = new Uint8Array(n);
        for (let i = 0; i < n; i++) chunk[i] = (seq + i) & 0xff;
        seq += n;
        sent += n;
        h.update(chunk);
        if (!conn.write(chunk)) {
          const before = rec.drains;
          void rec.until(() => rec.drains > before, "drain", 30_000).then(go);
          return;
        }
      }
      resolve(h.digest("hex"));
    };
    go();
  });
}

export const conformance: Record<string, (rt: Runtime) => Promise<void>> = {
  async "8 MiB each way arrive intact (backpressure-driven writes)"(rt) {
    const { l, server, client, serverConn, clientConn } = await pair(rt);
    const total = 8 * 1024 * 1024;
    const [up, down] = await Promise.all([pump(clientConn, client, total, 100_000), pump(serverConn, server, total, 70_000)]);
    await server.until(() => server.bytes === total, "server received all");
    await client.until(() => client.bytes === total, "client received all");
    assert(server.sha() === up, "client→server bytes intact");
    assert(client.sha() === down, "server→client bytes intact");
    clientConn.close();
    await server.until(() => server.ended || server.closed, "server sees the client's close");
    await client.until(() => client.closed, "client's onClose fires");
    l.close();
  },

  async "a paused reader stops the writer; writableLength stays bounded; resume drains"(rt) {
    const { l, server, client, serverConn, clientConn } = await pair(rt);
    serverConn.pause();
    const chunk = new Uint8Array(256 * 1024);
    let written = 0;
    // Write until the adapter says stop; the kernel buffers fill because nobody reads.
    for (let i = 0; i < 4096; i++) {
      written += chunk.length;
      if (!clientConn.write(chunk)) break;
    }
    assert(written < 1024 * 1024 * 1024, "write() eventually reports backpressure");
    // Bounded: the caller stopped at the first false; the adapter holds at most its high-water mark plus that chunk.
    assert(clientConn.writableLength <= 64 * 1024 + chunk.length, `writableLength bounded, got ${clientConn.writableLength}`);
    const drainsBefore = client.drains;
    serverConn.resume();
    await client.until(() => client.drains > drainsBefore, "drain after the reader resumed");
    await server.until(() => server.bytes === written, `server got all ${written} bytes`);
    clientConn.close();
    l.close();
  },

  async "half-close: FIN passes, the other direction keeps flowing"(rt) {
    const { l, server, client, serverConn, clientConn } = await pair(rt);
    clientConn.write(new TextEncoder().encode("request"));
    clientConn.end();
    await server.until(() => server.ended && server.bytes === 7, "server sees data then FIN");
    serverConn.write(new TextEncoder().encode("response after FIN"));
    serverConn.end();
    await client.until(() => client.bytes === 18, "client reads after its own FIN");
    await client.until(() => client.closed, "client closed after both FINs");
    await server.until(() => server.closed, "server closed after both FINs");
    l.close();
  },

  async "unix socket listen and connect"(rt) {
    const dir = mkdtempSync(join(tmpdir(), "edgemux-rt-"));
    const { l, server, clientConn } = await pair(rt, { unix: join(dir, "s.sock") });
    clientConn.write(new Uint8Array([1, 2, 3]));
    await server.until(() => server.bytes === 3, "bytes over unix socket");
    clientConn.close();
    l.close();
  },

  async "connect to a closed port rejects with UPSTREAM_CONNECT_REFUSED"(rt) {
    const l = rt.listen({ address: { hostname: "127.0.0.1", port: 0 }, onAccept: () => null });
    const port = l.port;
    l.close();
    try {
      await rt.connect({ address: { hostname: "127.0.0.1", port }, handler: new Recorder(), timeoutMs: 5000 });
    } catch (err) {
      assert((err as { code?: string }).code === "UPSTREAM_CONNECT_REFUSED", `code, got ${(err as { code?: string }).code}`);
      return;
    }
    throw new Error("connect to a closed port succeeded");
  },

  async "two listeners share a port with reusePort"(rt) {
    const h = { onAccept: () => null };
    const a = rt.listen({ address: { hostname: "127.0.0.1", port: 0, reusePort: true }, ...h });
    const b = rt.listen({ address: { hostname: "127.0.0.1", port: a.port, reusePort: true }, ...h });
    assert(a.port === b.port && a.port > 0, "same port");
    a.close();
    b.close();
  },
};
