/**
 * The certificate objects ACME needs, built with der.ts and WebCrypto:
 * a PKCS#10 CSR for the order (RFC 2986), the TLS-ALPN-01 self-signed
 * certificate (RFC 8737 §3), and a reader for what the store and the
 * scheduler need from an issued certificate (validity and DNS names).
 */
import {
  bits,
  type Bytes,
  bool,
  children,
  contentView,
  DerError,
  ecdsaRawToDer,
  explicit,
  fromPem,
  implicitConstructed,
  implicitPrimitive,
  int,
  octets,
  oid,
  readOid,
  readTime,
  readTlv,
  seq,
  set,
  TAG,
  time,
  toPem,
  utf8,
} from "./der.ts";

export const OID = {
  ecdsaWithSHA256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  extensionRequest: "1.2.840.113549.1.9.14",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  /** RFC 8737 §6.1: id-pe-acmeIdentifier. */
  acmeIdentifier: "1.3.6.1.5.5.7.1.31",
} as const;

const SIGN = { name: "ECDSA", hash: "SHA-256" } as const;
const sigAlg = () => seq(oid(OID.ecdsaWithSHA256)); // RFC 5758 §3.2: parameters absent

/** Name with one CN, or the empty Name when the CN would pass its 64-character bound (RFC 5280 ub-common-name). */
function name(cn: string): Uint8Array {
  if (cn.length > 64) return seq();
  return seq(set(seq(oid(OID.commonName), utf8(cn))));
}

function san(dnsNames: readonly string[]): Uint8Array {
  // GeneralName ::= ... dNSName [2] IA5String (implicit tag).
  const names = dnsNames.map((n) => implicitPrimitive(2, new TextEncoder().encode(n)));
  return seq(oid(OID.subjectAltName), octets(seq(...names)));
}

async function signDer(key: CryptoKey, tbs: Bytes): Promise<Bytes> {
  const raw = new Uint8Array(await crypto.subtle.sign(SIGN, key, tbs));
  return ecdsaRawToDer(raw);
}

/**
 * PKCS#10 (RFC 2986 §4) for `names` (the first is also the CN), with the SAN
 * in an extensionRequest attribute. RFC 8555 §7.4: "The CSR MUST indicate
 * the exact same set of requested identifiers as the initial newOrder request."
 */
export async function buildCsr(names: readonly string[], keys: CryptoKeyPair): Promise<Bytes> {
  if (names.length === 0) throw new Error("CSR needs at least one name");
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const extReq = seq(oid(OID.extensionRequest), set(seq(san(names))));
  const info = seq(int(0), name(names[0]!), spki, implicitConstructed(0, extReq));
  return seq(info, sigAlg(), bits(await signDer(keys.privateKey, info)));
}

/**
 * RFC 8737 §3: "The ACME server ... MUST verify that the certificate contains
 * a subjectAltName extension containing dNSName entries ... [and] the
 * acmeIdentifier extension ... [which] MUST be critical." Its extnValue is the
 * DER of `Authorization ::= OCTET STRING (SIZE (32))` holding SHA-256 of the
 * key authorization. Self-signed, valid from an hour ago for a week.
 */
export async function buildTlsAlpnCert(
  dnsName: string,
  keyAuthDigest: Uint8Array,
  keys: CryptoKeyPair,
  nowMs: number,
): Promise<Bytes> {
  if (keyAuthDigest.length !== 32) throw new Error("acmeIdentifier wants 32 bytes");
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const serial = crypto.getRandomValues(new Uint8Array(16));
  serial[0]! &= 0x7f;
  const subject = name(dnsName);
  const exts = seq(
    san([dnsName]),
    seq(oid(OID.acmeIdentifier), bool(true), octets(octets(keyAuthDigest))),
  );
  const tbs = seq(
    explicit(0, int(2)), // v3
    int(serial),
    sigAlg(),
    subject,
    seq(time(nowMs - 3_600_000), time(nowMs + 7 * 86_400_000)),
    subject,
    spki,
    explicit(3, exts),
  );
  return seq(tbs, sigAlg(), bits(await signDer(keys.privateKey, tbs)));
}

export interface CertInfo {
  notBefore: number;
  notAfter: number;
  /** Subject alternative DNS names. */
  dnsNames: string[];
}

/** Validity and SAN DNS names of one DER certificate (RFC 5280 §4.1). */
export function readCertInfo(der: Uint8Array): CertInfo {
  const cert = readTlv(der, 0);
  if (cert.tag !== TAG.SEQUENCE) throw new DerError("certificate: not a SEQUENCE");
  const tbs = children(der, cert)[0];
  if (!tbs || tbs.tag !== TAG.SEQUENCE) throw new DerError("certificate: no tbsCertificate");
  const f = children(der, tbs);
  let i = f[0]?.tag === 0xa0 ? 1 : 0; // optional [0] version
  i += 2; // serialNumber, signature
  i += 1; // issuer
  const validity = f[i];
  if (!validity || validity.tag !== TAG.SEQUENCE) throw new DerError("certificate: no validity");
  const [nb, na] = children(der, validity);
  if (!nb || !na) throw new DerError("certificate: short validity");
  const dnsNames: string[] = [];
  const extsWrap = f.find((t) => t.tag === 0xa3);
  if (extsWrap) {
    const exts = readTlv(der, extsWrap.contentStart, extsWrap.end);
    for (const ext of children(der, exts)) {
      const parts = children(der, ext);
      if (parts.length < 2 || readOid(der, parts[0]!) !== OID.subjectAltName) continue;
      const value = parts[parts.length - 1]!;
      const gn = readTlv(der, value.contentStart, value.end);
      for (const g of children(der, gn)) {
        if (g.tag === 0x82) dnsNames.push(new TextDecoder().decode(contentView(der, g)));
      }
    }
  }
  return { notBefore: readTime(der, nb), notAfter: readTime(der, na), dnsNames };
}

/** The leaf (first certificate) of a PEM chain. */
export function leafOfPem(chainPem: string): Uint8Array {
  const certs = fromPem(chainPem, "CERTIFICATE");
  if (certs.length === 0) throw new DerError("no CERTIFICATE block in the PEM");
  return certs[0]!;
}

/** A new P-256 key pair for a certificate, and its PKCS#8 PEM (what TLS servers load). */
export async function newCertKey(): Promise<{ keys: CryptoKeyPair; pem: string }> {
  const keys = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  return { keys, pem: toPem("PRIVATE KEY", pkcs8) };
}
