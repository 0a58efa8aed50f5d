/**
 * Access policy: the global CIDR lists that run before any other work on a
 * connection, the token store ([[tokens]]), the egress policy ([egress]) and
 * the HBONE identity policy ([[connect_rules]]).
 */

export {
  AccessList,
  CidrSet,
  compileAccessList,
  formatCidr,
  parseAddressInto,
  parseCidr,
  parseCidrOrProblem,
  type AccessLists,
  type Cidr,
} from "./cidr.ts";
export {
  certificateIdentity,
  hashToken,
  parseProxyAuthorization,
  type ProxyCredentials,
  SecretDigests,
  type TokenCheck,
  type TokenGrant,
  TokenStore,
} from "./tokens.ts";
export { type Destination, EgressPolicy, type Lookup, SPECIAL_PURPOSE_CIDRS, systemLookup } from "./egress.ts";
export { type IdentityDecision, IdentityPolicy, parseSpiffeId, type SpiffeId, spiffeFromUris } from "./identity.ts";
export { ANONYMOUS, type Principal, ProxyPolicy, TUNNEL_AUTHORITY_SUFFIX, tunnelServiceOf } from "./proxy_policy.ts";
