/**
 * The agent's state directory (`--state-dir DIR`, `state_dir`): what it
 * keeps between runs.
 *
 *   DIR/            0700 (created; a looser existing one is tightened, with a warning)
 *   agent.key       0600  its P-256 private key (PKCS#8 PEM), made once
 *   agent.crt       0644  a self-signed certificate for that key (CN = the agent's name),
 *                         remade when the name changes; its SHA-256 fingerprint is the
 *                         agent's identity for direct paths between agents (DESIGN.md)
 *   edges.json      0600  the edges it last reached: address, session, the address the
 *                         edge saw, when (newest first, at most MAX_EDGES)
 *
 * Written with write-to-temporary-then-rename, so a crash never leaves half a
 * file. The certificate is built with WebCrypto and the DER encoder of acme/.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bits, ecdsaRawToDer, explicit, fromPem, int, oid, seq, set, time, toPem, utf8 } from "../acme/der.ts";
import { wallMs } from "../runtime/clock.ts";

export const MAX_EDGES = 8;
const CERT_DAYS = 3650;

export interface EdgeRecord {
  edge: string;
  session: string;
  seen_as: string;
  at: string;
}

export interface AgentState {
  dir: string;
  keyPem: string;
  certPem: string;
  /** SHA-256 of the certificate's DER, lowercase hex. */
  fingerprint: string;
  /** What start-up had to fix (a loose mode), for a warning line. */
  warnings: string[];
}

function writeAtomic(path: string, text: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode); // the umask may have narrowed it, never widened: set it exactly
  renameSync(tmp, path);
}

async function selfSigned(name: string, keys: CryptoKeyPair, nowMs: number): Promise<Uint8Array> {
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0]! &= 0x7f;
  const sigAlg = seq(oid("1.2.840.10045.4.3.2")); // ecdsa-with-SHA256, parameters absent (RFC 5758 §3.2)
  const subject = seq(set(seq(oid("2.5.4.3"), utf8(name.slice(0, 64)))));
  const tbs = seq(explicit(0, int(2)), int(serial), sigAlg, subject, seq(time(nowMs - 3_600_000), time(nowMs + CERT_DAYS * 86_400_000)), subject, spki);
  const sig = ecdsaRawToDer(new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, keys.privateKey, tbs)));
  return seq(tbs, sigAlg, bits(sig));
}

function hex(b: ArrayBuffer): string {
  return [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** Reads the CN of a certificate we made (the first UTF8String after the validity): enough to see a rename. */
function certNameMatches(pem: string, name: string): boolean {
  const der = fromPem(pem, "CERTIFICATE")[0];
  if (der === undefined) return false;
  const want = utf8(name.slice(0, 64));
  outer: for (let i = 0; i + want.length <= der.length; i++) {
    for (let k = 0; k < want.length; k++) if (der[i + k] !== want[k]) continue outer;
    return true;
  }
  return false;
}

/** Opens (creating as needed) the state directory for agent `name`. */
export async function openState(dir: string, name: string, nowMs = wallMs()): Promise<AgentState> {
  const warnings: string[] = [];
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if (!st.isDirectory()) throw new Error(`state dir ${dir} is not a directory`);
  if ((st.mode & 0o077) !== 0) {
    chmodSync(dir, 0o700);
    warnings.push(`state dir ${dir} was mode ${(st.mode & 0o777).toString(8)}: set to 700`);
  }
  chmodSync(dir, 0o700);
  const keyPath = join(dir, "agent.key");
  const certPath = join(dir, "agent.crt");
  let keyPem: string;
  let keys: CryptoKeyPair;
  const newKey = !existsSync(keyPath);
  if (!newKey) {
    const ks = statSync(keyPath);
    if ((ks.mode & 0o077) !== 0) {
      chmodSync(keyPath, 0o600);
      warnings.push(`${keyPath} was mode ${(ks.mode & 0o777).toString(8)}: set to 600`);
    }
    keyPem = readFileSync(keyPath, "utf8");
    const pkcs8 = fromPem(keyPem, "PRIVATE KEY")[0];
    if (pkcs8 === undefined) throw new Error(`${keyPath}: no PRIVATE KEY block`);
    const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "ECDSA", namedCurve: "P-256" }, true, ["sign"]);
    // The public half, from the private key's JWK (x, y).
    const jwk = await crypto.subtle.exportKey("jwk", privateKey);
    const publicKey = await crypto.subtle.importKey("jwk", { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, ext: true }, { name: "ECDSA", namedCurve: "P-256" }, true, ["verify"]);
    keys = { privateKey, publicKey };
  } else {
    keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
    keyPem = toPem("PRIVATE KEY", new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey)));
    writeAtomic(keyPath, keyPem, 0o600);
  }
  let certPem = existsSync(certPath) ? readFileSync(certPath, "utf8") : "";
  if (certPem === "" || newKey || !certNameMatches(certPem, name)) {
    certPem = toPem("CERTIFICATE", await selfSigned(name, keys, nowMs));
    writeAtomic(certPath, certPem, 0o644);
  }
  const der = fromPem(certPem, "CERTIFICATE")[0]!;
  const fingerprint = hex(await crypto.subtle.digest("SHA-256", der));
  return { dir, keyPem, certPem, fingerprint, warnings };
}

/** The edges reached before, newest first ([] when none or unreadable). */
export function readEdges(dir: string): EdgeRecord[] {
  try {
    const v = JSON.parse(readFileSync(join(dir, "edges.json"), "utf8"));
    return Array.isArray(v) ? (v as EdgeRecord[]).slice(0, MAX_EDGES) : [];
  } catch {
    return [];
  }
}

/** Puts `r` first in edges.json (one entry per edge address). */
export function recordEdge(dir: string, r: EdgeRecord): void {
  const list = [r, ...readEdges(dir).filter((e) => e.edge !== r.edge)].slice(0, MAX_EDGES);
  writeAtomic(join(dir, "edges.json"), `${JSON.stringify(list, null, 2)}\n`, 0o600);
}
