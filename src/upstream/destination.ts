/**
 * Reaching a destination a forward-proxy client named (CONNECT authority,
 * SOCKS5 request): resolve once, check [egress] and the HBONE identity rules
 * on each address, connect to the first allowed address that answers; or, for
 * `<service>.tunnel`, a stream to the agent exposing the service.
 */
import { wallMs } from "../runtime/mod.ts";
import { type Principal, type ProxyPolicy, tunnelServiceOf } from "../auth/mod.ts";
import { asProxyError, ProxyError } from "../errors/mod.ts";
import { type Authority, formatAuthority } from "../proto/mod.ts";
import type { ConnHandler } from "../runtime/types.ts";
import type { Dialed, UpstreamContext } from "./types.ts";

const NOTHING = (): void => {};

/** At most this many of a name's addresses are tried: a name with many dead addresses must not hold the client for long. */
const MAX_ADDRESSES = 3;

export async function dialDestination(
  ctx: UpstreamContext,
  policy: ProxyPolicy,
  dest: Authority,
  principal: Principal,
  timeoutMs: number,
  handler: ConnHandler,
  /** The client connection's id, for a tunnel service's agent. */
  connId?: string,
): Promise<Dialed> {
  // A reverse-tunnel service, before [egress] (which is for the internet).
  const service = tunnelServiceOf(dest.host);
  if (service !== null) {
    if (ctx.tunnels === null) throw new ProxyError("SERVICE_UNKNOWN", "downstream", `Cannot open tunnel service '${service}': this process runs no tunnel hub`);
    policy.checkTunnelService(principal, service);
    const conn = await ctx.tunnels.open({ service, proto: "tcp", client: "", server: "", proxy: "none", connId }, timeoutMs);
    conn.setHandler(handler);
    return { conn, label: `tunnel:${service}`, proxyProtocol: "none", release: NOTHING };
  }
  const deadline = wallMs() + timeoutMs;
  let addresses: string[];
  try {
    addresses = await policy.egress.resolve(dest, policy.lookup, timeoutMs);
  } catch (err) {
    throw asProxyError(err, "UPSTREAM_DNS", "upstream");
  }
  if (principal.spiffe !== null) {
    const id = principal.spiffe;
    const allowed = addresses.filter((a) => policy.identity.allows(id, dest.host, dest.port, a).ok);
    if (allowed.length === 0) {
      const d = policy.identity.allows(id, dest.host, dest.port, addresses[0]!);
      throw new ProxyError("IDENTITY_DENIED", "downstream", `Identity ${id.uri} refused: ${d.ok ? "" : d.reason}`);
    }
    addresses = allowed;
  }
  let last: ProxyError | null = null;
  for (const address of addresses.slice(0, MAX_ADDRESSES)) {
    const left = deadline - wallMs();
    if (left <= 0) break;
    try {
      const conn = await ctx.runtime.connect({ address: { hostname: address, port: dest.port }, timeoutMs: left, handler });
      return { conn, label: formatAuthority({ host: address, port: dest.port }), proxyProtocol: "none", release: NOTHING };
    } catch (err) {
      last = asProxyError(err, "UPSTREAM_CONNECT_REFUSED", "upstream");
    }
  }
  throw last ?? new ProxyError("UPSTREAM_CONNECT_TIMEOUT", "upstream", `Connecting to ${formatAuthority(dest)} timed out after ${timeoutMs} ms`);
}
