/**
 * The http listener's certificates (`[listeners.tls]` with `cert`/`key`,
 * `[[listeners.tls.certificates]]` and `acme`) and `[acme]`. Certificate
 * files are read and checked when the config is loaded, like every PEM file
 * (validate_tls.ts); the names a certificate serves are its SAN DNS names.
 */
import { X509Certificate } from "node:crypto";
import { isAbsolute, resolve } from "node:path";
import type { AcmeConfig, CertificateFile, HttpTlsConfig, ListenerConfig, RouteConfig } from "./types.ts";
import * as D from "./defaults.ts";
import { readBool, readDuration, readEnum, readInt, readString, readStringArray, readTable, readTableArray } from "./fields.ts";
import { canonicalHostname } from "./hostname.ts";
import { checkKeys, describe, isTable, type Issues, type RawTable } from "./issues.ts";
import { checkKeyPair, parseCertificate, readPemFile } from "./validate_tls.ts";

export const HTTP_TLS_KEYS = ["cert", "key", "certificates", "acme"] as const;
export const HTTP_CERT_KEYS = ["cert", "key"] as const;
export const ACME_KEYS = ["directory", "email", "accept_terms", "state_dir", "ca", "names", "max_concurrent", "new_names_per_hour", "retry_base", "challenge"] as const;

/** One cert/key pair of `t`, or null (with issues). `required`: both keys must be there. */
function readPair(is: Issues, t: RawTable, at: string, baseDir: string, required: boolean): CertificateFile | null {
  const certFile = readPemFile(is, t, "cert", `${at}.cert`, baseDir, required);
  const keyFile = readPemFile(is, t, "key", `${at}.key`, baseDir, required);
  if (!required && (t["cert"] === undefined) !== (t["key"] === undefined)) {
    is.add(`${at}.${t["cert"] === undefined ? "cert" : "key"}`, "cert and key go together: set both or neither");
  }
  const cert = certFile ? parseCertificate(is, `${at}.cert`, certFile) : null;
  if (keyFile) checkKeyPair(is, at, cert, keyFile);
  if (certFile === null || keyFile === null || cert === null) return null;
  return { certPath: certFile.path, keyPath: keyFile.path, cert: certFile.pem, key: keyFile.pem, names: certificateNames(cert), notAfter: Date.parse(cert.validTo) };
}

/** SAN DNS names (lower case), else the subject's CN. */
export function certificateNames(cert: X509Certificate): string[] {
  const names: string[] = [];
  for (const part of (cert.subjectAltName ?? "").split(/,\s*/)) {
    if (part.startsWith("DNS:")) names.push(part.slice(4).toLowerCase());
  }
  if (names.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject ?? "");
    if (cn) names.push(cn[1]!.trim().toLowerCase());
  }
  return [...new Set(names)];
}

/** `[listeners.tls]` of an http listener. */
export function readHttpTls(is: Issues, t: RawTable, at: string, baseDir: string): HttpTlsConfig {
  const notHere = ["trust_domain", "namespace", "client_ca", "client_cert"];
  for (const k of notHere) {
    if (t[k] !== undefined) is.add(`${at}.${k}`, "does not apply to an http listener (client certificates and SPIFFE identities are for connect listeners)");
  }
  checkKeys(is, t, at, [...HTTP_TLS_KEYS, ...notHere]);
  const certificates: CertificateFile[] = [];
  const own = t["cert"] !== undefined || t["key"] !== undefined ? readPair(is, t, at, baseDir, false) : null;
  if (own) certificates.push(own);
  for (const { value, index } of readTableArray(is, t, "certificates", `${at}.certificates`, D.HTTP_MAX_CERTIFICATES)) {
    const cat = `${at}.certificates[${index}]`;
    checkKeys(is, value, cat, HTTP_CERT_KEYS);
    const c = readPair(is, value, cat, baseDir, true);
    if (c) certificates.push(c);
  }
  const acme = readBool(is, t, "acme", `${at}.acme`, false);
  const some = t["cert"] !== undefined || t["key"] !== undefined || t["certificates"] !== undefined;
  if (!some && !acme) is.add(at, "needs cert and key, [[listeners.tls.certificates]], or acme = true");
  return { certificates, acme };
}

/** `[acme]`, or null when absent. */
export function readAcme(is: Issues, raw: RawTable, baseDir: string): AcmeConfig | null {
  if (raw["acme"] === undefined) return null;
  const t = readTable(is, raw, "acme", "acme");
  if (!isTable(raw["acme"])) return null;
  checkKeys(is, t, "acme", ACME_KEYS);
  const directory = readString(is, t, "directory", "acme.directory", true);
  if (directory !== null) {
    let ok = false;
    try {
      ok = new URL(directory).protocol === "https:";
    } catch { /* reported below */ }
    if (!ok) is.add("acme.directory", `must be an https:// URL (the CA's directory), got ${describe(directory)}`);
  }
  const email = readString(is, t, "email", "acme.email");
  if (email !== null && !/^[^\s@,<>]{1,64}@[A-Za-z0-9.-]{1,253}$/.test(email)) is.add("acme.email", `must be an email address, got ${describe(email)}`);
  if (t["accept_terms"] === undefined) is.add("acme.accept_terms", "is required: set accept_terms = true to agree to the CA's terms of service");
  else if (readBool(is, t, "accept_terms", "acme.accept_terms", false) !== true) is.add("acme.accept_terms", "must be true: a CA issues only to accounts that agreed to its terms of service");
  const stateText = readString(is, t, "state_dir", "acme.state_dir", true);
  if (stateText !== null && (stateText === "" || stateText.length > D.MAX_PATH || stateText.includes("\0"))) {
    is.add("acme.state_dir", `must be a directory path of 1..${D.MAX_PATH} characters without NUL, got ${describe(stateText)}`);
  }
  const caFile = readPemFile(is, t, "ca", "acme.ca", baseDir, false);
  if (caFile) parseCertificate(is, "acme.ca", caFile);
  const names: string[] = [];
  for (const { value, index } of readStringArray(is, t, "names", "acme.names", D.ACME_MAX_NAMES)) {
    const r = value.includes("*") ? { error: "wildcard names are not issued (neither HTTP-01 nor TLS-ALPN-01 can validate them): name each host" } : canonicalHostname(value);
    if ("error" in r) is.add(`acme.names[${index}]`, r.error);
    else if (names.includes(r.name)) is.add(`acme.names[${index}]`, `${describe(r.name)} is listed twice`);
    else names.push(r.name);
  }
  const maxConcurrent = readInt(is, t, "max_concurrent", "acme.max_concurrent", D.ACME_MAX_CONCURRENT);
  const newNamesPerHour = readInt(is, t, "new_names_per_hour", "acme.new_names_per_hour", D.ACME_NEW_NAMES_PER_HOUR);
  const retryBaseMs = readDuration(is, t, "retry_base", "acme.retry_base", D.ACME_RETRY_BASE);
  const challenge = readEnum(is, t, "challenge", "acme.challenge", D.ACME_CHALLENGES, "auto");
  if (directory === null || stateText === null) return null;
  return {
    directory,
    contact: email === null ? [] : [`mailto:${email}`],
    stateDir: isAbsolute(stateText) ? resolve(stateText) : resolve(baseDir, stateText),
    ca: caFile?.pem ?? null,
    caPath: caFile?.path ?? null,
    names,
    maxConcurrent,
    newNamesPerHour,
    retryBaseMs,
    challenge,
    challengeType: challenge === "auto" ? "http-01" : challenge, // resolved by checkAcme
  };
}

/** Exact (non-wildcard) route names of http listeners with `tls.acme`: what ACME may issue for. */
export function acmeRouteNames(listeners: readonly ListenerConfig[], routes: readonly RouteConfig[]): string[] {
  const acmeListeners = new Set(listeners.filter((l) => l.kind === "http" && l.tls?.acme === true).map((l) => l.name));
  const out = new Set<string>();
  for (const r of routes) {
    if (r.match === "*" || r.match.startsWith("*.")) continue;
    if (r.listeners.some((n) => acmeListeners.has(n))) out.add(r.match);
  }
  return [...out].sort();
}

/** The names `[acme]` issues for: `names` when set, else every exact route name of ACME listeners. */
export function acmeNames(acme: AcmeConfig, listeners: readonly ListenerConfig[], routes: readonly RouteConfig[]): string[] {
  const routed = acmeRouteNames(listeners, routes);
  return acme.names.length > 0 ? acme.names.filter((n) => routed.includes(n)) : routed;
}

/**
 * Cross-field rules: ACME listeners need `[acme]`; HTTP-01 needs a plain http
 * listener; `names` must be routed. Sets `challengeType`: `challenge` when
 * set; `auto` is HTTP-01 when a plain http listener exists (it answers the
 * CA on port 80), else TLS-ALPN-01 (answered by the acme https listeners
 * themselves, port 443).
 */
export function checkAcme(is: Issues, acme: AcmeConfig | null, listeners: readonly ListenerConfig[], routes: readonly RouteConfig[], present = acme !== null): void {
  let acmeListeners = 0;
  let plain = 0;
  listeners.forEach((l, i) => {
    if (l.kind !== "http") return;
    if (l.tls === null) plain++;
    else if (l.tls.acme) {
      acmeListeners++;
      if (!present) is.add(`listeners[${i}].tls.acme`, "needs an [acme] section (the CA's directory, accept_terms, state_dir)");
    }
  });
  if (acme === null) return;
  acme.challengeType = acme.challenge !== "auto" ? acme.challenge : plain > 0 ? "http-01" : "tls-alpn-01";
  if (acmeListeners === 0) is.add("acme", "no http listener uses it: set acme = true in an http listener's [listeners.tls]");
  if (plain === 0 && acme.challenge === "http-01") {
    is.add("acme.challenge", "\"http-01\" needs a plain http listener (kind = \"http\" without [listeners.tls], on port 80 for a public CA): the CA's HTTP-01 requests come there; or use \"tls-alpn-01\"");
  }
  const routed = acmeRouteNames(listeners, routes);
  acme.names.forEach((n, i) => {
    if (!routed.includes(n)) is.add(`acme.names[${i}]`, `${describe(n)} is not the match of a route of an http listener with acme = true: only routed names are issued`);
  });
}
