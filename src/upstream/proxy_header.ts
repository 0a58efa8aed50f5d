/**
 * The outbound PROXY header (v1 text or v2 binary) a route may send before the
 * client's bytes, naming the original client: one encoder call for every listener.
 */
import { encodeProxyV1, encodeProxyV2, type ProxyAddresses, proxyV1Length, proxyV2Length, unmapV4 } from "../proto/mod.ts";
import type { Endpoints } from "./types.ts";

export function proxyAddresses(e: Endpoints): ProxyAddresses {
  const src = unmapV4(e.clientAddress);
  const dst = unmapV4(e.localAddress);
  // A unix-socket listener has no addresses: PROXY v1 "UNKNOWN", v2 UNSPEC.
  if (src === "" || dst === "") return { family: "unknown", srcAddress: "", srcPort: 0, dstAddress: "", dstPort: 0 };
  const v6 = src.includes(":") || dst.includes(":");
  return { family: v6 ? "tcp6" : "tcp4", srcAddress: src, srcPort: e.clientPort, dstAddress: dst, dstPort: e.localPort };
}

/** The header bytes for `mode`, or null for "none". */
export function proxyHeader(mode: "none" | "v1" | "v2", e: Endpoints): Uint8Array | null {
  if (mode === "none") return null;
  const addrs = proxyAddresses(e);
  const v1 = mode === "v1";
  const out = new Uint8Array(v1 ? proxyV1Length(addrs) : proxyV2Length(addrs));
  const n = v1 ? encodeProxyV1(addrs, out, 0) : encodeProxyV2(addrs, out, 0);
  return out.subarray(0, n);
}
