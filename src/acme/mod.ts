/**
 * ACME (RFC 8555) certificates for the http listener: the public face of
 * src/acme/. The supervisor's AcmeService (supervisor/acme.ts) makes the one
 * `AcmeManager`, calls `start()` and `manage(names)`, forwards every
 * certificate and `ChallengeEvent` to the workers, and exports `expiries()`
 * as `edgemux_tls_certificate_expiry_timestamp_seconds{name}`; each worker
 * answers the CA from a `ChallengeTable` (HTTP-01 on plain listeners,
 * TLS-ALPN-01 on acme https listeners).
 */
export {
  ACME_TLS_ALPN,
  type AcmeLog,
  AcmeManager,
  type AcmeManagerOptions,
  type ChallengeEvent,
  type ChallengeResponder,
  ChallengeTable,
} from "./manager.ts";
export { AcmeClient, type AcmeClientOptions, AcmeError, type AcmeErrorCode, type ChallengeSolver, type ChallengeType } from "./client.ts";
export { CertStore, isIssuableName, type StoredCert } from "./store.ts";
export { backoffMs, DEFAULT_POLICY, planRenewals, type RenewalEntry, type RenewalPlan, type RenewalPolicy, renewAt } from "./scheduler.ts";
export { type GuardOptions, type GuardVerdict, IssuanceGuard } from "./guard.ts";
export { type CertInfo, readCertInfo, leafOfPem } from "./x509.ts";
export { type FetchFn, fetchWithCa } from "../runtime/mod.ts";

import { readCertInfo, leafOfPem } from "./x509.ts";

/** {name, notAfter (epoch ms)} of a PEM chain's leaf, for certificates from files as well as from ACME. */
export function certificateExpiry(name: string, chainPem: string): { name: string; notAfter: number } {
  return { name, notAfter: readCertInfo(leafOfPem(chainPem)).notAfter };
}
