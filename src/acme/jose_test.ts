import { describe, expect, test } from "bun:test";
import {
  b64url,
  b64urlDecode,
  generateP256,
  importPrivateJwk,
  jwkThumbprint,
  keyAuthorization,
  keyAuthorizationDigest,
  publicJwk,
  signJws,
  verifyJws,
} from "./jose.ts";

describe("base64url", () => {
  test("no padding, URL alphabet, round trip", () => {
    expect(b64url(Uint8Array.of(0xfb, 0xff))).toBe("-_8");
    expect(b64url("")).toBe("");
    for (let n = 0; n < 40; n++) {
      const b = crypto.getRandomValues(new Uint8Array(n));
      expect(b64urlDecode(b64url(b))).toEqual(b);
    }
    expect(() => b64urlDecode("a+b")).toThrow();
  });
});

describe("JWK thumbprint (RFC 7638)", () => {
  test("the RFC's §3.1 example", async () => {
    const n =
      "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    expect(await jwkThumbprint({ kty: "RSA", n, e: "AQAB" })).toBe("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  });

  test("EC: SHA-256 over {crv,kty,x,y} in that order, no whitespace", async () => {
    const jwk = { kty: "EC" as const, crv: "P-256" as const, x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" };
    const canonical = `{"crv":"P-256","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`;
    const want = b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical))));
    expect(await jwkThumbprint(jwk)).toBe(want);
    expect(want).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  test("key authorization and its TLS-ALPN-01 digest", async () => {
    expect(keyAuthorization("tok", "thumb")).toBe("tok.thumb");
    const d = await keyAuthorizationDigest("tok.thumb");
    expect(d.length).toBe(32);
  });
});

describe("ES256 JWS (RFC 8555 §6.2)", () => {
  test("the signature verifies with crypto.subtle.verify; header carries alg, nonce, url, jwk", async () => {
    const keys = await generateP256();
    const jwk = await publicJwk(keys.publicKey);
    const jws = await signJws(keys.privateKey, { nonce: "n0nce", url: "https://ca/new-acct", jwk }, { termsOfServiceAgreed: true });
    const header = JSON.parse(new TextDecoder().decode(b64urlDecode(jws.protected)));
    expect(header).toEqual({ alg: "ES256", nonce: "n0nce", url: "https://ca/new-acct", jwk });
    expect(JSON.parse(new TextDecoder().decode(b64urlDecode(jws.payload)))).toEqual({ termsOfServiceAgreed: true });
    // RFC 7518 §3.4: 64 bytes R || S.
    expect(b64urlDecode(jws.signature).length).toBe(64);
    const ok = await crypto.subtle.verify(
      { name: "ECDSA", hash: "SHA-256" },
      keys.publicKey,
      b64urlDecode(jws.signature),
      new TextEncoder().encode(`${jws.protected}.${jws.payload}`),
    );
    expect(ok).toBe(true);
    expect(await verifyJws(keys.publicKey, jws)).toBe(true);
    // A changed payload does not verify.
    expect(await verifyJws(keys.publicKey, { ...jws, payload: b64url("{}") })).toBe(false);
  });

  test("POST-as-GET has an empty payload and a kid header", async () => {
    const keys = await generateP256();
    const jws = await signJws(keys.privateKey, { nonce: "n", url: "https://ca/order/1", kid: "https://ca/acct/1" }, null);
    expect(jws.payload).toBe("");
    expect(JSON.parse(new TextDecoder().decode(b64urlDecode(jws.protected))).kid).toBe("https://ca/acct/1");
    expect(await verifyJws(keys.publicKey, jws)).toBe(true);
  });

  test("the stored private JWK signs for the same public key", async () => {
    const keys = await generateP256();
    const stored = await crypto.subtle.exportKey("jwk", keys.privateKey);
    const back = await importPrivateJwk(stored);
    expect(await publicJwk(back.publicKey)).toEqual(await publicJwk(keys.publicKey));
    const jws = await signJws(back.privateKey, { nonce: "n", url: "u", kid: "k" }, { a: 1 });
    expect(await verifyJws(keys.publicKey, jws)).toBe(true);
    await expect(importPrivateJwk({ kty: "RSA" })).rejects.toThrow(/P-256/);
  });
});
