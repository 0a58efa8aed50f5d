/**
 * The naive Bun forwarder: the baseline issue 3 names. Bun.listen → Bun.connect
 * to one fixed target, bytes piped both ways with pause/resume backpressure,
 * no SNI parsing, one thread. What anyone would write in twenty lines; edgemux
 * must beat it while doing more (parsing the ClientHello and routing).
 *
 *   bun bench/peers/naive_bun.ts --target 127.0.0.1:PORT [--port 0]
 *
 * Prints {"level":"info","msg":"ready","listeners":{"sni":"127.0.0.1:P"}} like edgemux.
 * (A bench peer, not project code: it may name Bun.* directly.)
 */
import type { Socket } from "bun";

const args = new Map<string, string>();
for (let i = 2; i + 1 < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ""), process.argv[i + 1]!);
const target = args.get("target") ?? "";
const m = /^([^:]+):(\d+)$/.exec(target);
if (!m) throw new Error(`--target host:port required, got '${target}'`);
const targetHost = m[1]!;
const targetPort = Number(m[2]);
const listenPort = Number(args.get("port") ?? 0);

interface Side {
  /** The other socket of the pair (null until the upstream connects). */
  peer: Socket<Side> | null;
  /** Bytes this socket could not take yet (its own write queue); the other side is paused meanwhile. */
  pending: Uint8Array | null;
  /** Client side only: bytes read before the upstream was up. */
  early: Uint8Array[];
  closed: boolean;
}

function send(to: Socket<Side>, from: Socket<Side>, data: Uint8Array): void {
  if (to.data.pending) {
    // Already waiting for drain: append (copy) and stay paused.
    const merged = new Uint8Array(to.data.pending.length + data.length);
    merged.set(to.data.pending);
    merged.set(data, to.data.pending.length);
    to.data.pending = merged;
    from.pause();
    return;
  }
  const n = to.write(data);
  if (n < data.length) {
    to.data.pending = data.slice(Math.max(n, 0)); // copy: Bun may reuse the read buffer
    from.pause();
  }
}

function flush(sock: Socket<Side>): void {
  const p = sock.data.pending;
  if (!p) return;
  const n = sock.write(p);
  if (n < p.length) {
    sock.data.pending = p.subarray(Math.max(n, 0));
    return;
  }
  sock.data.pending = null;
  if (sock.data.peer && !sock.data.peer.data.closed) sock.data.peer.resume();
}

function closePair(sock: Socket<Side>): void {
  sock.data.closed = true;
  const peer = sock.data.peer;
  if (peer && !peer.data.closed) {
    peer.data.closed = true;
    peer.end();
  }
}

const upstreamHandlers = {
  data(up: Socket<Side>, chunk: Uint8Array) {
    if (up.data.peer) send(up.data.peer, up, chunk);
  },
  drain: flush,
  close: closePair,
  error: closePair,
  connectError(up: Socket<Side>) {
    closePair(up);
  },
};

const server = Bun.listen<Side>({
  hostname: "127.0.0.1",
  port: listenPort,
  socket: {
    open(client) {
      client.data = { peer: null, pending: null, early: [], closed: false };
      Bun.connect<Side>({
        hostname: targetHost,
        port: targetPort,
        data: { peer: client, pending: null, early: [], closed: false },
        socket: {
          ...upstreamHandlers,
          open(up) {
            if (client.data.closed) {
              up.end();
              return;
            }
            client.data.peer = up;
            for (const b of client.data.early) send(up, client, b);
            client.data.early = [];
            if (!up.data.pending) client.resume();
          },
        },
      }).catch(() => closePair(client));
    },
    data(client, chunk) {
      const up = client.data.peer;
      if (up) send(up, client, chunk);
      else {
        client.data.early.push(chunk.slice()); // copy; upstream not connected yet
        client.pause();
      }
    },
    drain: flush,
    close: closePair,
    error: closePair,
  },
});
console.log(JSON.stringify({ level: "info", msg: "ready", listeners: { sni: `127.0.0.1:${server.port}` } }));
process.on("SIGTERM", () => {
  server.stop(true);
  process.exit(0);
});
