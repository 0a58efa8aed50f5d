/**
 * Access policy that runs before any other work on a connection.
 * For now: CIDR allow/deny lists (token policy joins here later).
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
