/**
 * PROXY header encode (and parse) cost per connection, into a reused buffer.
 *
 *   bun bench/micro/proxy_header_bench.ts [--json results.json]
 *
 * Prints mitata's table (time per op); with --json also writes
 * [{ name, nsPerOp, p50, p99 }] for bench/run.ts or CI to compare.
 */

import { writeFileSync } from "node:fs";
import { bench, do_not_optimize, group, run, summary } from "mitata";
import {
  encodeProxyV1,
  encodeProxyV2,
  PP2_TYPE,
  PP2_TYPE_EDGEMUX_IDENTITY,
  type ProxyAddresses,
  ProxyHeaderParser,
} from "../../src/proto/proxy_protocol.ts";

const out = new Uint8Array(1024); // reused by every iteration, as a worker would
const tcp4: ProxyAddresses = { family: "tcp4", srcAddress: "203.0.113.7", srcPort: 40000, dstAddress: "198.51.100.9", dstPort: 443 };
const tcp6: ProxyAddresses = { family: "tcp6", srcAddress: "2001:db8:85a3::8a2e:370:7334", srcPort: 40000, dstAddress: "2001:db8::1", dstPort: 443 };
const tlvs = [
  { type: PP2_TYPE.AUTHORITY, value: new TextEncoder().encode("app.example.com") },
  { type: PP2_TYPE_EDGEMUX_IDENTITY, value: new TextEncoder().encode("spiffe://td/ns/default/sa/web") },
];

group("encode", () => {
  summary(() => {
    bench("encode v1 tcp4", () => do_not_optimize(encodeProxyV1(tcp4, out)));
    bench("encode v1 tcp6", () => do_not_optimize(encodeProxyV1(tcp6, out)));
    bench("encode v2 tcp4", () => do_not_optimize(encodeProxyV2(tcp4, out)));
    bench("encode v2 tcp6", () => do_not_optimize(encodeProxyV2(tcp6, out)));
    bench("encode v2 tcp4 + 2 TLVs", () => do_not_optimize(encodeProxyV2(tcp4, out, 0, tlvs)));
    bench("encode v2 tcp4 + 2 TLVs + crc32c", () => do_not_optimize(encodeProxyV2(tcp4, out, 0, tlvs, { crc32c: true })));
  });
});

const v1Bytes = out.slice(0, encodeProxyV1(tcp4, out));
const v2Bytes = out.slice(0, encodeProxyV2(tcp4, out, 0, tlvs));
const v2Tcp6 = out.slice(0, encodeProxyV2(tcp6, out));

group("parse (new parser per connection)", () => {
  summary(() => {
    bench("parse v1 tcp4", () => {
      const p = new ProxyHeaderParser({ accept: "any" });
      p.push(v1Bytes);
      do_not_optimize(p.next());
    });
    bench("parse v2 tcp4 + 2 TLVs", () => {
      const p = new ProxyHeaderParser({ accept: "any" });
      p.push(v2Bytes);
      do_not_optimize(p.next());
    });
    bench("parse v2 tcp6", () => {
      const p = new ProxyHeaderParser({ accept: "any" });
      p.push(v2Tcp6);
      do_not_optimize(p.next());
    });
  });
});

const results = await run();

const jsonAt = process.argv.indexOf("--json");
if (jsonAt > 0 && process.argv[jsonAt + 1]) {
  const rows = results.benchmarks.flatMap((b) =>
    b.runs.filter((r) => r.stats).map((r) => ({
      name: r.name,
      nsPerOp: r.stats!.avg,
      p50: r.stats!.p50,
      p99: r.stats!.p99,
    })),
  );
  writeFileSync(process.argv[jsonAt + 1]!, JSON.stringify(rows, null, 2));
}
