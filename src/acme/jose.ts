/**
 * The JOSE that ACME needs (RFC 8555 §6.2), with WebCrypto only: ES256 JWS
 * in the flattened JSON serialization (RFC 7515 §7.2.2), the account key's
 * JWK, its thumbprint (RFC 7638) and challenge key authorizations (§8.1).
 */

const enc = new TextEncoder();

export function b64url(data: Uint8Array | string): string {
  const b = typeof data === "string" ? enc.encode(data) : data;
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function b64urlDecode(s: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error("not base64url");
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const EC = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGN = { name: "ECDSA", hash: "SHA-256" } as const;

/** An EC private key as JSON (RFC 7517), the form the store keeps the account key in. */
export interface PrivateJwk {
  kty?: string;
  crv?: string;
  x?: string;
  y?: string;
  d?: string;
}

/** The public members of an EC JWK, the only ones a JWS header or a thumbprint may carry. */
export interface EcPublicJwk {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
}

export async function generateP256(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(EC, true, ["sign", "verify"])) as CryptoKeyPair;
}

export async function publicJwk(key: CryptoKey): Promise<EcPublicJwk> {
  const j = await crypto.subtle.exportKey("jwk", key);
  if (j.kty !== "EC" || j.crv !== "P-256" || !j.x || !j.y) throw new Error("account key must be an EC P-256 key");
  return { kty: "EC", crv: "P-256", x: j.x, y: j.y };
}

/** Key pair from a private JWK (d, x, y), as the store keeps the account key. */
export async function importPrivateJwk(jwk: PrivateJwk): Promise<CryptoKeyPair> {
  if (jwk.kty !== "EC" || jwk.crv !== "P-256" || !jwk.d || !jwk.x || !jwk.y) throw new Error("account key: want an EC P-256 private JWK");
  const privateKey = await crypto.subtle.importKey("jwk", { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, d: jwk.d }, EC, true, ["sign"]);
  const publicKey = await crypto.subtle.importKey("jwk", { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y }, EC, true, ["verify"]);
  return { privateKey, publicKey };
}

/**
 * RFC 7638 §3: the thumbprint is the SHA-256 of the JSON object with only the
 * required members, "in lexicographic order ... with no whitespace or line
 * breaks". For EC: crv, kty, x, y. For RSA (used only by the RFC's own
 * example, and by our test of it): e, kty, n.
 */
export async function jwkThumbprint(jwk: EcPublicJwk | { kty: "RSA"; n: string; e: string }): Promise<string> {
  const canonical = jwk.kty === "EC"
    ? `{"crv":"${jwk.crv}","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`
    : `{"e":"${jwk.e}","kty":"RSA","n":"${jwk.n}"}`;
  return b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(canonical))));
}

/** RFC 8555 §8.1: keyAuthorization = token || '.' || base64url(Thumbprint(accountKey)). */
export const keyAuthorization = (token: string, thumbprint: string): string => `${token}.${thumbprint}`;

/** RFC 8737 §3: the acmeIdentifier extension holds SHA-256(keyAuthorization). */
export async function keyAuthorizationDigest(keyAuth: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(keyAuth)));
}

export interface FlattenedJws {
  protected: string;
  payload: string;
  signature: string;
}

/**
 * RFC 8555 §6.2: the protected header has alg, nonce, url, and exactly one of
 * jwk (newAccount, and revocation by certificate key) or kid (the account URL).
 * A null payload is POST-as-GET (§6.3): the payload field is the empty string.
 */
export async function signJws(
  key: CryptoKey,
  header: { nonce: string; url: string } & ({ jwk: EcPublicJwk; kid?: undefined } | { kid: string; jwk?: undefined }),
  payload: unknown | null,
): Promise<FlattenedJws> {
  const prot = b64url(JSON.stringify({ alg: "ES256", ...header }));
  const body = payload === null ? "" : b64url(JSON.stringify(payload));
  // RFC 7518 §3.4: the ES256 signature is R || S, each 32 octets, which is WebCrypto's own output.
  const sig = await crypto.subtle.sign(SIGN, key, enc.encode(`${prot}.${body}`));
  return { protected: prot, payload: body, signature: b64url(new Uint8Array(sig)) };
}

/** Verifies an ES256 flattened JWS (for tests and self-checks). */
export async function verifyJws(publicKey: CryptoKey, jws: FlattenedJws): Promise<boolean> {
  return crypto.subtle.verify(SIGN, publicKey, b64urlDecode(jws.signature), enc.encode(`${jws.protected}.${jws.payload}`));
}
