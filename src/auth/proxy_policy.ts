/**
 * What a forward-proxy listener (connect or socks5) decides before a tunnel
 * opens, compiled once per config: who the client is (token or SPIFFE
 * identity) and whether it may go where it asks ([egress], [[connect_rules]]).
 * The dial itself (resolve once, check, connect to the checked IP) is
 * upstream/destination.ts.
 */
import { EgressPolicy, type Lookup, systemLookup } from "./egress.ts";
import { IdentityPolicy, type SpiffeId, spiffeFromUris } from "./identity.ts";
import { type TokenGrant, TokenStore } from "./tokens.ts";
import type { Config, ConnectListenerConfig, Socks5ListenerConfig } from "../config/types.ts";
import { ProxyError } from "../errors/mod.ts";
import type { TlsInfo } from "../runtime/types.ts";

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
   * Checks a token secret for role "proxy"; throws AUTH_REQUIRED (no
   * credentials), AUTH_INVALID (a secret no entry has) or AUTH_DENIED (role,
   * client address).
   */
  checkToken(secret: string | null, user: string | null, clientIp: string): Principal {
    if (secret === null) throw new ProxyError("AUTH_REQUIRED", "downstream", "Proxy authentication required: a [[tokens]] secret (Bearer, or Basic with the token as password)");
    const r = this.tokens.verify(secret, "proxy", clientIp);
    if (!r.ok) throw new ProxyError(r.code, "downstream", r.reason);
    return { name: r.grant.name, user, spiffe: null, grant: r.grant };
  }

  /**
   * `CONNECT <service>.tunnel:<port>`: only a token whose `services` patterns
   * allow the service may (anonymous clients and bare SPIFFE identities may
   * not: a forward proxy must not become a way into the services agents expose).
   */
  checkTunnelService(p: Principal, service: string): void {
    const grant = p.grant ?? null;
    if (grant === null || !grant.allowsService(service)) {
      throw new ProxyError("SERVICE_DENIED", "downstream", `${p.name ?? "An unauthenticated client"} may not reach tunnel service '${service}' (it needs a token whose services allow it)`);
    }
  }

  /** Identity screen before resolving (saves a DNS query for a workload that may go nowhere). */
  screenIdentity(p: Principal): void {
    if (p.spiffe === null) return;
    const d = this.identity.identityMayPass(p.spiffe);
    if (!d.ok) throw new ProxyError("IDENTITY_DENIED", "downstream", `Identity ${p.spiffe.uri} refused: ${d.reason}`);
  }
}

