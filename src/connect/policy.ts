/**
 * What a forward-proxy listener (connect or socks5) decides before a tunnel
 * opens, compiled once per config: who the client is (token or SPIFFE
 * identity), whether it may go where it asks ([egress], [[connect_rules]]),
 * and the dial itself (resolve once, check, connect to the checked IP).
 */
import {
  EgressPolicy,
  IdentityPolicy,
  type Lookup,
  serviceAllowed,
  type SpiffeId,
  spiffeFromUris,
  systemLookup,
  type TokenGrant,
  TokenStore,
} from "../auth/mod.ts";
import type { Config, ConnectListenerConfig, Socks5ListenerConfig } from "../config/types.ts";
import { asProxyError, ProxyError } from "../errors/mod.ts";
import { type Authority, formatAuthority } from "../proto/mod.ts";
import type { Conn, ConnHandler, Runtime, TlsInfo } from "../runtime/types.ts";

/** Who opened a tunnel, for policy and the log. */
export interface Principal {
  /** The token's name, the SPIFFE ID, or null (auth = "none"). */
  name: string | null;
  /** Basic auth's user name or SOCKS5 username, when given (informational). */
  user: string | null;
  /** Set when the client authenticated with a certificate carrying a SPIFFE ID. */
  spiffe: SpiffeId | null;
  /** The token's grant, when the client authenticated with a token (tunnel services). */
  grant?: TokenGrant | null;
}

export const ANONYMOUS: Principal = { name: null, user: null, spiffe: null };

/** Authorities `<service>.tunnel:<port>` name a reverse-tunnel service (the port is ignored). */
export const TUNNEL_AUTHORITY_SUFFIX = ".tunnel";

/** The tunnel service a CONNECT authority names, or null for an ordinary destination. */
export function tunnelServiceOf(host: string): string | null {
  if (!host.endsWith(TUNNEL_AUTHORITY_SUFFIX)) return null;
  const name = host.slice(0, -TUNNEL_AUTHORITY_SUFFIX.length);
  return name.length > 0 ? name : null;
}

export class ProxyPolicy {
  readonly tokens: TokenStore;
  readonly egress: EgressPolicy;
  readonly identity: IdentityPolicy;
  /** The listener asks clients for certificates (HBONE identity). */
  readonly clientCerts: boolean;

  constructor(
    config: Config,
    listener: ConnectListenerConfig | Socks5ListenerConfig,
    readonly lookup: Lookup = systemLookup,
    /** Reverse-tunnel services reachable as `<service>.tunnel` (the worker's hub). */
    readonly tunnels: TunnelOpener | null = null,
  ) {
    this.tokens = new TokenStore(config.tokens);
    this.egress = new EgressPolicy(config.egress);
    const tls = listener.kind === "connect" ? listener.tls : null;
    this.clientCerts = tls !== null && tls.clientCert !== "none";
    const rules = config.connectRules.filter((r) => r.listeners.length === 0 || r.listeners.includes(listener.name));
    this.identity = new IdentityPolicy(rules, { trustDomain: tls?.trustDomain ?? null, namespace: tls?.namespace ?? null });
  }

  /** The verified SPIFFE identity of a TLS peer, or null. */
  peerIdentity(tls: TlsInfo | null): SpiffeId | null {
    if (tls === null || !tls.authorized || tls.peerCertificate === null) return null;
    return spiffeFromUris(tls.peerCertificate.uris);
  }

  /**
   * Checks a token secret for role "proxy"; throws AUTH_REQUIRED (no or
   * unknown credentials) or AUTH_DENIED (role, client address).
   */
  checkToken(secret: string | null, user: string | null, clientIp: string): Principal {
    if (secret === null) throw new ProxyError("AUTH_REQUIRED", "downstream", "Proxy authentication required: a [[tokens]] secret (Bearer, or Basic with the token as password)");
    const r = this.tokens.verify(secret, "proxy", clientIp);
    if (!r.ok) throw new ProxyError(r.code, "downstream", r.reason);
    return { name: r.grant.name, user, spiffe: null, grant: r.grant };
  }

  /** Identity screen before resolving (saves a DNS query for a workload that may go nowhere). */
  screenIdentity(p: Principal): void {
    if (p.spiffe === null) return;
    const d = this.identity.identityMayPass(p.spiffe);
    if (!d.ok) throw new ProxyError("IDENTITY_DENIED", "downstream", `Identity ${p.spiffe.uri} refused: ${d.reason}`);
  }

  /**
   * Resolves the destination once, checks egress (and the identity rules for
   * SPIFFE principals) on each address, and connects to the first allowed
   * address that answers, within `timeoutMs` for the whole. Returns the
   * connection (with `handler` already attached) and the address dialled.
   */
  async dial(runtime: Runtime, dest: Authority, principal: Principal, timeoutMs: number, handler: ConnHandler): Promise<{ conn: Conn; address: string }> {
    // A reverse-tunnel service, before [egress] (which is for the internet).
    const service = tunnelServiceOf(dest.host);
    if (service !== null) return await this.dialTunnel(service, principal, timeoutMs, handler);
    const deadline = Date.now() + timeoutMs;
    let addresses: string[];
    try {
      addresses = await this.egress.resolve(dest, this.lookup, timeoutMs);
    } catch (err) {
      throw asProxyError(err, "UPSTREAM_DNS", "upstream");
    }
    if (principal.spiffe !== null) {
      const id = principal.spiffe;
      const allowed = addresses.filter((a) => this.identity.allows(id, dest.host, dest.port, a).ok);
      if (allowed.length === 0) {
        const d = this.identity.allows(id, dest.host, dest.port, addresses[0]!);
        throw new ProxyError("IDENTITY_DENIED", "downstream", `Identity ${id.uri} refused: ${d.ok ? "" : d.reason}`);
      }
      addresses = allowed;
    }
    let last: ProxyError | null = null;
    // At most three addresses: a name with many dead addresses must not hold the client for long.
    for (const address of addresses.slice(0, 3)) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        const conn = await runtime.connect({ address: { hostname: address, port: dest.port }, timeoutMs: left, handler });
        return { conn, address: formatAuthority({ host: address, port: dest.port }) };
      } catch (err) {
        last = asProxyError(err, "UPSTREAM_CONNECT_REFUSED", "upstream");
      }
    }
    throw last ?? new ProxyError("UPSTREAM_CONNECT_TIMEOUT", "upstream", `Connecting to ${formatAuthority(dest)} timed out after ${timeoutMs} ms`);
  }

  /**
   * `CONNECT <service>.tunnel:<port>`: a stream to the agent exposing the
   * service. Only a token whose `services` patterns allow the service may
   * (anonymous clients and bare SPIFFE identities may not: a forward proxy
   * must not become a way into the services agents expose).
   */
  private async dialTunnel(service: string, principal: Principal, timeoutMs: number, handler: ConnHandler): Promise<{ conn: Conn; address: string }> {
    if (this.tunnels === null) {
      throw new ProxyError("SERVICE_UNKNOWN", "downstream", `Cannot open tunnel service '${service}': this process runs no tunnel hub`);
    }
    const grant = principal.grant ?? null;
    if (grant === null || !serviceAllowed(grant, service)) {
      throw new ProxyError("SERVICE_DENIED", "downstream", `${principal.name ?? "An unauthenticated client"} may not reach tunnel service '${service}' (it needs a token whose services allow it)`);
    }
    const conn = await this.tunnels.open({ service, proto: "tcp", client: "", server: "", proxy: "none" }, timeoutMs);
    conn.setHandler(handler);
    return { conn, address: `tunnel:${service}` };
  }
}

/** The part of the tunnel hub a forward proxy uses. */
export interface TunnelOpener {
  open(req: { service: string; proto: "tcp"; client: string; server: string; proxy: "none" }, timeoutMs: number): Promise<Conn>;
}
