/**
 * `[listeners.tls]` and the PEM files it names. Files are read when the
 * config is loaded (so a reload re-reads them and a worker never touches the
 * file system), and checked: the certificate parses, the key parses and
 * belongs to it, a client CA parses. Paths are taken from the config file's
 * directory. Each problem names the field.
 */

import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { ListenerTlsConfig } from "./types.ts";
import * as D from "./defaults.ts";
import { readEnum, readString } from "./fields.ts";
import { checkKeys, describe, type Issues, type RawTable } from "./issues.ts";

export const TLS_KEYS = ["cert", "key", "client_ca", "client_cert", "trust_domain", "namespace"] as const;

/** SPIFFE trust domains and Kubernetes namespaces as they appear in a SPIFFE ID path. */
const SPIFFE_PART = /^[A-Za-z0-9._-]{1,253}$/;

/** Reads a PEM file named by `t[key]`; null (and an issue) when missing, unreadable or too big. */
export function readPemFile(is: Issues, t: RawTable, key: string, field: string, baseDir: string, required: boolean): { path: string; pem: string } | null {
  const text = readString(is, t, key, field, required);
  if (text === null) return null;
  if (text === "" || text.length > D.MAX_PATH || text.includes("\0")) {
    is.add(field, `must be a file path of 1..${D.MAX_PATH} characters without NUL, got ${describe(text)}`);
    return null;
  }
  const path = isAbsolute(text) ? resolve(text) : resolve(baseDir, text);
  try {
    const size = statSync(path).size;
    if (size > D.MAX_PEM_BYTES) {
      is.add(field, `${path} is ${size} bytes; a PEM file must be at most ${D.MAX_PEM_BYTES}`);
      return null;
    }
    return { path, pem: readFileSync(path, "utf8") };
  } catch (err) {
    is.add(field, `cannot read ${path}: ${(err as Error).message}`);
    return null;
  }
}

/** The certificate, or null with an issue naming `field`. */
export function parseCertificate(is: Issues, field: string, file: { path: string; pem: string }): X509Certificate | null {
  try {
    return new X509Certificate(file.pem);
  } catch (err) {
    is.add(field, `${file.path} is not a PEM certificate: ${(err as Error).message}`);
    return null;
  }
}

/** Checks that `key` parses and (when the certificate parsed) belongs to it. */
export function checkKeyPair(is: Issues, at: string, cert: X509Certificate | null, key: { path: string; pem: string }, keyField = "key", certField = "cert"): void {
  let keyObj;
  try {
    keyObj = createPrivateKey(key.pem);
  } catch (err) {
    is.add(`${at}.${keyField}`, `${key.path} is not a PEM private key: ${(err as Error).message}`);
    return;
  }
  if (cert !== null && !cert.checkPrivateKey(keyObj)) {
    is.add(`${at}.${keyField}`, `${key.path} is not the private key of ${at}.${certField}`);
  }
}

/** spiffe://<trust-domain>/ns/<namespace>/... from a certificate's URI SANs, if it has one. */
export function spiffeOfCertificate(cert: X509Certificate): { trustDomain: string; namespace: string } | null {
  const san = cert.subjectAltName ?? "";
  for (const part of san.split(/,\s*/)) {
    if (!part.startsWith("URI:spiffe://")) continue;
    const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\//.exec(part.slice(4));
    if (m) return { trustDomain: m[1]!, namespace: m[2]! };
  }
  return null;
}

export function readListenerTls(is: Issues, t: RawTable, at: string, baseDir: string): ListenerTlsConfig | null {
  checkKeys(is, t, at, TLS_KEYS);
  const certFile = readPemFile(is, t, "cert", `${at}.cert`, baseDir, true);
  const keyFile = readPemFile(is, t, "key", `${at}.key`, baseDir, true);
  const caFile = readPemFile(is, t, "client_ca", `${at}.client_ca`, baseDir, false);
  const clientCert = readEnum(is, t, "client_cert", `${at}.client_cert`, D.CLIENT_CERT_MODES, "none");

  const cert = certFile ? parseCertificate(is, `${at}.cert`, certFile) : null;
  if (keyFile) checkKeyPair(is, at, cert, keyFile);
  if (caFile) parseCertificate(is, `${at}.client_ca`, caFile);
  if (clientCert !== "none" && t["client_ca"] === undefined) {
    is.add(`${at}.client_cert`, `"${clientCert}" needs client_ca: the CA bundle that signs client certificates`);
  }

  const part = (key: "trust_domain" | "namespace"): string | null => {
    const v = readString(is, t, key, `${at}.${key}`);
    if (v !== null && !SPIFFE_PART.test(v)) {
      is.add(`${at}.${key}`, `must be 1..253 of [A-Za-z0-9._-], got ${describe(v)}`);
      return null;
    }
    return v;
  };
  let trustDomain = part("trust_domain");
  let namespace = part("namespace");
  if ((trustDomain === null || namespace === null) && cert !== null) {
    const own = spiffeOfCertificate(cert);
    if (own) {
      trustDomain ??= own.trustDomain;
      namespace ??= own.namespace;
    }
  }

  if (certFile === null || keyFile === null) return null;
  return {
    certPath: certFile.path,
    keyPath: keyFile.path,
    clientCaPath: caFile?.path ?? null,
    cert: certFile.pem,
    key: keyFile.pem,
    clientCa: caFile?.pem ?? null,
    clientCert,
    trustDomain,
    namespace,
  };
}
