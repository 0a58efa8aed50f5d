/**
 * `[admin]`: the admin API's address, its `[[admin.tokens]]` (hashed like
 * `[[tokens]]`, each with a scope), `insecure`, and `[admin.tls]`. An admin
 * API that anyone on the network could reach and use to reload or restart
 * workers is refused: without tokens the address must be loopback, unless
 * the operator says `insecure = true`.
 */

import type { Address, AdminConfig, AdminScope, AdminTlsConfig, AdminTokenConfig, HostPort } from "./types.ts";
import { addressFrom } from "./address.ts";
import * as D from "./defaults.ts";
import { readBool, readEnum, readString, readTable, readTableArray } from "./fields.ts";
import { canonicalIp } from "./ip.ts";
import { checkKeys, describe, type Issues, type RawTable } from "./issues.ts";
import { checkKeyPair, parseCertificate, readPemFile } from "./validate_tls.ts";

export const ADMIN_KEYS = ["address", "insecure", "tokens", "tls"] as const;
export const ADMIN_TOKEN_KEYS = ["name", "sha256", "scope"] as const;
export const ADMIN_TLS_KEYS = ["cert", "key"] as const;

const HEX64 = /^[0-9a-fA-F]{64}$/;

export function readAdmin(is: Issues, raw: RawTable, baseDir: string): AdminConfig {
  const t = readTable(is, raw, "admin", "admin");
  checkKeys(is, t, "admin", ADMIN_KEYS);
  const address = readAdminAddress(is, t);
  const insecure = readBool(is, t, "insecure", "admin.insecure", false);
  const tokens = readAdminTokens(is, t);
  const tls = t["tls"] === undefined ? null : readAdminTls(is, readTable(is, t, "tls", "admin.tls"), baseDir);
  // Entries that were written but are invalid have been reported already; `tokens = []` counts as none.
  const written = Array.isArray(t["tokens"]) ? t["tokens"].length : 0;
  if (address !== null && written === 0 && !insecure && !isLoopback(address.hostname)) {
    is.add("admin.address", "a non-loopback admin API needs [[admin.tokens]] (or admin.insecure = true)");
  }
  return { address, tokens, insecure, tls };
}

/** 127.0.0.0/8, ::1, and 127.0.0.0/8 written IPv4-mapped (::ffff:127.x.y.z). */
export function isLoopback(hostname: string): boolean {
  const ip = canonicalIp(hostname);
  if (ip === null) return false;
  if (ip.family === 4) return ip.bytes[0] === 127;
  const b = ip.bytes;
  const zeros = (n: number) => b.slice(0, n).every((x) => x === 0);
  if (zeros(15) && b[15] === 1) return true;
  return zeros(10) && b[10] === 0xff && b[11] === 0xff && b[12] === 127;
}

function readAdminAddress(is: Issues, t: RawTable): HostPort | null {
  const text = readString(is, t, "address", "admin.address") ?? D.DEFAULT_ADMIN;
  if (text === "off") return null;
  const r = addressFrom(text, { allowPortZero: true, allowHostnames: false, allowUnix: false });
  if ("error" in r) {
    is.add("admin.address", `${r.error}; "off" disables the admin API`);
    return null;
  }
  const a = r.address as Extract<Address, { kind: "tcp" }>;
  return { hostname: a.hostname, port: a.port };
}

function readAdminTokens(is: Issues, t: RawTable): AdminTokenConfig[] {
  const out: AdminTokenConfig[] = [];
  const names = new Map<string, number>();
  const secrets = new Map<string, number>();
  for (const { value, index } of readTableArray(is, t, "tokens", "admin.tokens", D.MAX_ADMIN_TOKENS)) {
    const at = `admin.tokens[${index}]`;
    checkKeys(is, value, at, ADMIN_TOKEN_KEYS);
    let name = readString(is, value, "name", `${at}.name`, true);
    if (name !== null && !D.TOKEN_NAME.test(name)) {
      is.add(`${at}.name`, `must be 1..253 of [A-Za-z0-9_.:@/-], got ${describe(name)}`);
      name = null;
    }
    let sha = readString(is, value, "sha256", `${at}.sha256`, true);
    if (sha !== null && !HEX64.test(sha)) {
      is.add(`${at}.sha256`, `must be the 64 hex digits of the secret's SHA-256 (\`edgemux hash-token\` prints it), got ${describe(sha)}`);
      sha = null;
    }
    const scope: AdminScope | null = value["scope"] === undefined ? null : readEnum(is, value, "scope", `${at}.scope`, D.ADMIN_SCOPES, "read");
    if (scope === null) is.add(`${at}.scope`, `is required (${D.ADMIN_SCOPES.join(" | ")})`);

    if (name !== null) {
      const prev = names.get(name);
      if (prev !== undefined) is.add(`${at}.name`, `${describe(name)} is already used by admin.tokens[${prev}]`);
      else names.set(name, index);
    }
    if (sha !== null) {
      sha = sha.toLowerCase();
      // One secret, two entries: which scope it has would depend on the order.
      const prev = secrets.get(sha);
      if (prev !== undefined) is.add(`${at}.sha256`, `the same secret as admin.tokens[${prev}]; give each entry its own`);
      else secrets.set(sha, index);
    }
    if (name !== null && sha !== null && scope !== null) out.push({ name, sha256: sha, scope });
  }
  return out;
}

function readAdminTls(is: Issues, t: RawTable, baseDir: string): AdminTlsConfig | null {
  checkKeys(is, t, "admin.tls", ADMIN_TLS_KEYS);
  const certFile = readPemFile(is, t, "cert", "admin.tls.cert", baseDir, true);
  const keyFile = readPemFile(is, t, "key", "admin.tls.key", baseDir, true);
  const cert = certFile ? parseCertificate(is, "admin.tls.cert", certFile) : null;
  if (keyFile) checkKeyPair(is, "admin.tls", cert, keyFile);
  if (certFile === null || keyFile === null) return null;
  return { certPath: certFile.path, keyPath: keyFile.path, cert: certFile.pem, key: keyFile.pem };
}
