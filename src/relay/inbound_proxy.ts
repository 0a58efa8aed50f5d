/**
 * accept_proxy: the PROXY protocol header a listener behind another load
 * balancer receives before the client's own bytes. Every listener kind reads
 * it the same way, so it lives here once.
 */
import type { AccessList } from "../auth/mod.ts";
import { asProxyError, ProxyError } from "../errors/mod.ts";
import type { ProxyHeaderParser } from "../proto/mod.ts";

export interface InboundProxyResult {
  /** The client the header names; null for LOCAL / UNKNOWN headers (keep the socket's peer). */
  client: { address: string; port: number } | null;
  /** Bytes that followed the header in the same reads, untouched. */
  rest: readonly Uint8Array[];
}

/**
 * Feeds one chunk to the parser. Returns null while the header is
 * incomplete. Throws ProxyError PROXY_PROTOCOL for a malformed or missing
 * header, and ACCESS_DENIED when the [access] lists refuse the client the
 * header names (the socket's peer, the load balancer, was checked at accept).
 */
export function readInboundProxy(parser: ProxyHeaderParser, chunk: Uint8Array, access: AccessList): InboundProxyResult | null {
  let header;
  try {
    parser.push(chunk);
    header = parser.next();
  } catch (err) {
    throw asProxyError(err, "PROXY_PROTOCOL", "downstream");
  }
  if (header === null) return null;
  let client: InboundProxyResult["client"] = null;
  if (header.addresses !== null && header.command === "proxy") {
    client = { address: header.addresses.srcAddress, port: header.addresses.srcPort };
    if (!access.allows(client.address)) {
      throw new ProxyError("ACCESS_DENIED", "downstream", `Client ${client.address} is denied by the access lists`);
    }
  }
  return { client, rest: parser.rest() };
}
