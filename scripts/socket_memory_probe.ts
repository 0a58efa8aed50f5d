/**
 * What one idle socket costs in Bun itself, before any edgemux code: RSS per
 * socket this process opened with Bun.connect, and per socket it accepted
 * with Bun.listen (the other end lives in a child process, so only one side
 * is counted). The floor under the bench's "RSS per idle proxied connection".
 * (A measuring tool: it names Bun.* directly, like bench/peers/naive_bun.ts.)
 *
 *   bun scripts/socket_memory_probe.ts [N]
 */
const N = Number(process.argv[3] ?? process.argv[2] ?? 5000) || 5000;
const role = process.argv[2];
const quiet = { data() {}, open() {}, close() {}, connectError() {} };

if (role === "serve") {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: quiet });
  console.log(s.port);
  setInterval(() => {}, 1000);
} else if (role === "dial") {
  const port = Number(process.argv[3]);
  const socks = [];
  for (let i = 0; i < Number(process.argv[4]); i++) socks.push(await Bun.connect({ hostname: "127.0.0.1", port, socket: quiet }));
  console.log("done");
  setInterval(() => {}, 1000);
} else {
  const settle = async () => {
    Bun.gc(true);
    await Bun.sleep(300);
    return process.memoryUsage.rss();
  };
  // Opened sockets.
  const server = Bun.spawn([process.execPath, import.meta.path, "serve"], { stdout: "pipe" });
  const port = Number(await readLine(server.stdout));
  const before = await settle();
  const socks = [];
  for (let i = 0; i < N; i++) socks.push(await Bun.connect({ hostname: "127.0.0.1", port, socket: quiet }));
  const opened = ((await settle()) - before) / N;
  server.kill();
  // Accepted sockets.
  let n = 0;
  let all!: () => void;
  const done = new Promise<void>((r) => (all = r));
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { ...quiet, open() { if (++n === N) all(); } } });
  const before2 = await settle();
  const dialer = Bun.spawn([process.execPath, import.meta.path, "dial", String(l.port), String(N)], { stdout: "pipe" });
  await done;
  const accepted = ((await settle()) - before2) / N;
  dialer.kill();
  console.log(`Bun ${Bun.version}: ${Math.round(opened)} B RSS per opened socket, ${Math.round(accepted)} B per accepted socket (N=${N}, after GC)`);
  process.exit(0);
}

async function readLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  return new TextDecoder().decode(value).trim();
}
