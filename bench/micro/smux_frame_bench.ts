/**
 * smux frame decoding and the session receive path: ns per chunk and the
 * implied throughput.
 *
 *   bun bench/micro/smux_frame_bench.ts [--json out.json]
 *
 * - "8 × 32 KiB PSH, one chunk": a 256 KiB read holding whole frames; payloads
 *   are views (zero copy) — the bulk case;
 * - "8 × 32 KiB PSH, 64 KiB chunks": the same bytes in reads that split
 *   frames, so most payloads are assembled by one copy;
 * - "1000 × 64 B PSH, one chunk": many small frames per read (header cost);
 * - "session onData": the same 256 KiB read through MuxSession.onData into a
 *   stream consumer (decode, dispatch, v2 read accounting).
 */
import { writeFileSync } from "node:fs";
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { MuxSession } from "../../src/mux/mod.ts";
import { encodeSmuxHeader, SMUX_HEADER_SIZE, SmuxCmd, SmuxFrameDecoder } from "../../src/proto/smux.ts";
import { memoryPair } from "../../src/runtime/mod.ts";

function frames(count: number, payload: number, version: 1 | 2, streamId = 3): Uint8Array {
  const out = new Uint8Array(count * (SMUX_HEADER_SIZE + payload));
  let o = 0;
  for (let i = 0; i < count; i++) {
    o = encodeSmuxHeader(out, o, version, SmuxCmd.PSH, payload, streamId);
    out.fill(i & 0xff, o, o + payload);
    o += payload;
  }
  return out;
}

const bulk = frames(8, 32768, 2);
const bulkSplit: Uint8Array[] = [];
for (let o = 0; o < bulk.length; o += 65536) bulkSplit.push(bulk.subarray(o, o + 65536));
const small = frames(1000, 64, 2);

function decodeAll(chunks: readonly Uint8Array[]): number {
  const d = new SmuxFrameDecoder(2);
  let bytes = 0;
  for (let i = 0; i < chunks.length; i++) {
    d.push(chunks[i]!);
    for (let f = d.next(); f !== null; f = d.next()) bytes += f.payload.length;
  }
  return bytes;
}

// Sanity: every input decodes to its full payload, or the numbers mean nothing.
if (decodeAll([bulk]) !== 8 * 32768 || decodeAll(bulkSplit) !== 8 * 32768 || decodeAll([small]) !== 64_000) {
  throw new Error("bench setup: decoded byte count is wrong");
}

// A server session with one accepted stream whose consumer counts bytes.
const [a, b] = memoryPair();
const session = new MuxSession(b, { client: false, version: 2, keepAliveIntervalMs: 0 });
let consumed = 0;
session.onStream = (s) => s.setHandler({ onData: (_c, d) => (consumed += d.length), onDrain() {}, onEnd() {}, onClose() {} });
const syn = new Uint8Array(SMUX_HEADER_SIZE);
encodeSmuxHeader(syn, 0, 2, SmuxCmd.SYN, 0, 3);
session.onData(b, syn);
session.onData(b, bulk);
if (consumed !== 8 * 32768 || session.closed) throw new Error("bench setup: session did not deliver");
void a;

group("smux decode (new decoder + push + next until null)", () => {
  summary(() => {
    bench("8 × 32 KiB PSH, one 256 KiB chunk", () => do_not_optimize(decodeAll([bulk])));
    bench("8 × 32 KiB PSH, 64 KiB chunks", () => do_not_optimize(decodeAll(bulkSplit)));
    bench("1000 × 64 B PSH, one chunk", () => do_not_optimize(decodeAll([small])));
  });
});

group("session receive path", () => {
  bench("session onData, 8 × 32 KiB PSH in one chunk", () => {
    session.onData(b, bulk);
    return consumed;
  });
});

const result = await run();

const rows = result.benchmarks.flatMap((bm) =>
  bm.runs.filter((r) => r.stats !== undefined).map((r) => ({ name: r.name, avgNs: r.stats!.avg, p50Ns: r.stats!.p50, p99Ns: r.stats!.p99 })),
);
const payloadBytes = (name: string) => (name.includes("1000 × 64 B") ? 64_000 : 8 * 32768);
console.log("\nns per input (avg, p50, p99), payload GB/s at the average:");
for (const r of rows) {
  const gbps = payloadBytes(r.name) / r.avgNs;
  console.log(
    `  ${r.name.padEnd(46)} ${r.avgNs.toFixed(0).padStart(9)} ${r.p50Ns.toFixed(0).padStart(9)} ${r.p99Ns.toFixed(0).padStart(9)}  ${gbps.toFixed(2)} GB/s`,
  );
}

const jsonAt = process.argv.indexOf("--json");
if (jsonAt >= 0 && process.argv[jsonAt + 1]) {
  writeFileSync(process.argv[jsonAt + 1]!, JSON.stringify({ bench: "smux_frame", results: rows }, null, 2) + "\n");
}
process.exit(0);
