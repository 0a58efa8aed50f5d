/**
 * ClientHello parsing: ns per hello, the way the SNI listener uses it (a new
 * ClientHelloParser per connection, push, next).
 *
 *   bun bench/micro/client_hello_bench.ts [--json out.json]
 *
 * Inputs are real captured hellos (src/proto/testdata): curl's 517-byte TLS 1.3
 * hello and Bun's 1498-byte one with an X25519MLKEM768 key share.
 * - "one chunk": the whole hello in one record in one chunk, parsed in place
 *   (zero copy) — what nearly every connection does;
 * - "two chunks": the same bytes split in the middle, as when a hello over one
 *   MSS arrives in two reads: the body is assembled into one buffer;
 * - "16 records": the hello re-framed into 16 records, in one chunk;
 * - "hostname only": canonicalHostnameBytes on the SNI bytes alone.
 */
import { writeFileSync } from "node:fs";
import { bench, do_not_optimize, group, run, summary } from "mitata";
import { canonicalHostnameBytes } from "../../src/proto/hostname.ts";
import { ClientHelloParser } from "../../src/proto/tls_client_hello.ts";
import { loadFixtures, toRecords, unframe } from "../../src/proto/testdata/build_hello.ts";

const fixtures = loadFixtures();
const curl = fixtures.get("curl_tls13_h2")!;
const bunPq = fixtures.get("bun_tls_sni_alpn")!;

function parseChunks(chunks: readonly Uint8Array[]) {
  const p = new ClientHelloParser();
  for (let i = 0; i < chunks.length; i++) p.push(chunks[i]!);
  return p.next();
}

const halves = (b: Uint8Array) => [b.subarray(0, b.length >> 1), b.subarray(b.length >> 1)];
const curlOne = [curl];
const curlTwo = halves(curl);
const curlHs = unframe(curl).handshake;
const curl16 = [toRecords(curlHs, Math.ceil(curlHs.length / 16))];
const bunOne = [bunPq];
const bunTwo = halves(bunPq);

// Sanity: every input parses to the same name, or the numbers mean nothing.
for (const [chunks, name] of [
  [curlOne, "curl.example.com"],
  [curlTwo, "curl.example.com"],
  [curl16, "curl.example.com"],
  [bunOne, "bun.example.com"],
  [bunTwo, "bun.example.com"],
] as const) {
  const r = parseChunks(chunks);
  if (r?.serverName !== name) throw new Error(`bench setup: got ${r?.serverName}`);
}
if (parseChunks(curl16)!.recordCount !== 16) throw new Error("bench setup: expected 16 records");

const nameBytes = new TextEncoder().encode("xEdge-Service.Example.COMx");
const nameLower = new TextEncoder().encode("edge-service.example.com");

group("ClientHello parse (new parser + push + next)", () => {
  summary(() => {
    bench("curl 517 B, one chunk", () => do_not_optimize(parseChunks(curlOne)));
    bench("curl 517 B, two chunks", () => do_not_optimize(parseChunks(curlTwo)));
    bench("curl 517 B, 16 records", () => do_not_optimize(parseChunks(curl16)));
    bench("bun PQ 1498 B, one chunk", () => do_not_optimize(parseChunks(bunOne)));
    bench("bun PQ 1498 B, two chunks", () => do_not_optimize(parseChunks(bunTwo)));
  });
});

group("hostname only", () => {
  bench("canonicalHostnameBytes lowercase", () => do_not_optimize(canonicalHostnameBytes(nameLower, 0, nameLower.length)));
  bench("canonicalHostnameBytes mixed case", () => do_not_optimize(canonicalHostnameBytes(nameBytes, 1, nameBytes.length - 1)));
});

const result = await run();

const rows = result.benchmarks.flatMap((b) =>
  b.runs.filter((r) => r.stats !== undefined).map((r) => ({ name: r.name, avgNs: r.stats!.avg, p50Ns: r.stats!.p50, p99Ns: r.stats!.p99 })),
);
console.log("\nns/hello (avg, p50, p99):");
for (const r of rows) console.log(`  ${r.name.padEnd(40)} ${r.avgNs.toFixed(1).padStart(8)} ${r.p50Ns.toFixed(1).padStart(8)} ${r.p99Ns.toFixed(1).padStart(8)}`);

const jsonAt = process.argv.indexOf("--json");
if (jsonAt >= 0 && process.argv[jsonAt + 1]) {
  writeFileSync(process.argv[jsonAt + 1]!, JSON.stringify({ bench: "client_hello", results: rows }, null, 2) + "\n");
}
