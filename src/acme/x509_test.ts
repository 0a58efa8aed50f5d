import { afterAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bool, children, contentView, ecdsaDerToRaw, octets, oid, readTlv, seq, toPem } from "./der.ts";
import { keyAuthorizationDigest } from "./jose.ts";
import { CertStore, isIssuableName } from "./store.ts";
import { buildCsr, buildTlsAlpnCert, leafOfPem, newCertKey, readCertInfo } from "./x509.ts";

const dir = mkdtempSync(join(process.env.TMPDIR ?? tmpdir(), "edgemux-acme-x509-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function openssl(...args: string[]): string {
  return execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] }).toString();
}

describe("CSR (PKCS#10)", () => {
  test("openssl verifies its signature and reads the subject and SAN", async () => {
    const { keys } = await newCertKey();
    const csr = await buildCsr(["a.example.com", "b.example.com"], keys);
    writeFileSync(join(dir, "a.csr"), csr);
    const text = execFileSync("openssl", ["req", "-inform", "DER", "-in", "a.csr", "-verify", "-noout", "-text"], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    const out = text.toString();
    expect(out).toMatch(/CN\s*=\s*a\.example\.com/);
    expect(out).toContain("DNS:a.example.com, DNS:b.example.com");
    expect(out).toMatch(/ecdsa-with-SHA256/);
  });

  test("a first name over 64 characters leaves the subject empty (ub-common-name)", async () => {
    const { keys } = await newCertKey();
    const long = `${"a".repeat(60)}.example.com`;
    writeFileSync(join(dir, "long.csr"), await buildCsr([long], keys));
    const out = openssl("req", "-inform", "DER", "-in", "long.csr", "-verify", "-noout", "-text");
    expect(out).toContain(`DNS:${long}`);
    expect(out).not.toMatch(/CN\s*=/);
  });
});

describe("TLS-ALPN-01 certificate (RFC 8737)", () => {
  test("SAN, critical acmeIdentifier with the key authorization digest, valid self-signature", async () => {
    const { keys } = await newCertKey();
    const digest = await keyAuthorizationDigest("token.thumbprint");
    const now = Date.UTC(2026, 5, 1, 12);
    const der = await buildTlsAlpnCert("alpn.example.com", digest, keys, now);
    writeFileSync(join(dir, "alpn.pem"), toPem("CERTIFICATE", der));
    const out = openssl("x509", "-in", "alpn.pem", "-noout", "-text");
    expect(out).toContain("DNS:alpn.example.com");
    expect(out).toMatch(/1\.3\.6\.1\.5\.5\.7\.1\.31: critical/);
    // The extension, whole: SEQUENCE { id-pe-acmeIdentifier, critical TRUE, OCTET STRING { OCTET STRING (32) digest } }.
    const ext = seq(oid("1.3.6.1.5.5.7.1.31"), bool(true), octets(octets(digest)));
    expect(Buffer.from(der).indexOf(Buffer.from(ext))).toBeGreaterThan(0);
    // Self-signature: verify tbsCertificate with the public key.
    const top = readTlv(der, 0);
    const [tbs, , sig] = children(der, top);
    const sigDer = contentView(der, sig!).subarray(1); // BIT STRING: skip the unused-bits octet
    const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, keys.publicKey, ecdsaDerToRaw(sigDer), der.subarray(tbs!.start, tbs!.end));
    expect(ok).toBe(true);
    // openssl agrees (self-signed: its own issuer; openssl does not know acmeIdentifier, hence -ignore_critical).
    expect(openssl("verify", "-partial_chain", "-ignore_critical", "-attime", String(now / 1000), "-CAfile", "alpn.pem", "alpn.pem")).toContain("OK");
    const info = readCertInfo(der);
    expect(info.dnsNames).toEqual(["alpn.example.com"]);
    expect(info.notBefore).toBe(now - 3_600_000);
    expect(info.notAfter).toBe(now + 7 * 86_400_000);
  });
});

describe("readCertInfo", () => {
  test("agrees with openssl on a certificate openssl made", () => {
    writeFileSync(join(dir, "ext.cnf"), "subjectAltName=DNS:one.example,DNS:two.example\n");
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj", "/CN=one.example", "-addext", "subjectAltName=DNS:one.example,DNS:two.example", "-keyout", "o.key", "-out", "o.crt");
    const pem = readFileSync(join(dir, "o.crt"), "utf8");
    const info = readCertInfo(leafOfPem(pem));
    const end = openssl("x509", "-in", "o.crt", "-noout", "-enddate").trim().replace("notAfter=", "");
    const start = openssl("x509", "-in", "o.crt", "-noout", "-startdate").trim().replace("notBefore=", "");
    expect(info.notAfter).toBe(Date.parse(end));
    expect(info.notBefore).toBe(Date.parse(start));
    expect(info.dnsNames).toEqual(["one.example", "two.example"]);
  });
});

describe("CertStore", () => {
  test("0700 directories, 0600 files, certificates load back", async () => {
    const state = join(dir, "state");
    const store = new CertStore(state);
    await store.init();
    expect(statSync(state).mode & 0o777).toBe(0o700);
    expect(statSync(store.certDir).mode & 0o777).toBe(0o700);
    await store.saveAccount({ key: { kty: "EC", crv: "P-256", x: "x", y: "y", d: "d" }, accounts: { "https://ca/dir": "https://ca/acct/1" } });
    expect(statSync(join(state, "account.json")).mode & 0o777).toBe(0o600);
    expect((await store.loadAccount())!.accounts["https://ca/dir"]).toBe("https://ca/acct/1");

    const { keys, pem: keyPem } = await newCertKey();
    const chain = toPem("CERTIFICATE", await buildTlsAlpnCert("s.example", new Uint8Array(32), keys, Date.UTC(2026, 0, 1)));
    const saved = await store.saveCert("s.example", chain, keyPem);
    expect(saved.notAfter).toBe(Date.UTC(2026, 0, 8));
    for (const f of ["s.example.crt", "s.example.key"]) expect(statSync(join(store.certDir, f)).mode & 0o777).toBe(0o600);
    writeFileSync(join(store.certDir, "broken.example.crt"), "not a pem");
    writeFileSync(join(store.certDir, "broken.example.key"), "x");
    const bad: string[] = [];
    const all = await new CertStore(state).loadCerts((n) => bad.push(n));
    expect(all.map((c) => c.name)).toEqual(["s.example"]);
    expect(all[0]!.keyPem).toBe(keyPem);
    expect(bad).toEqual(["broken.example"]);
    await expect(store.saveCert("../evil", chain, keyPem)).rejects.toThrow(/hostname/);
  });

  test("issuable names: canonical hostnames only", () => {
    for (const ok of ["a.example", "x-1.b.example.com", "localhost"]) expect(isIssuableName(ok)).toBe(true);
    for (const bad of ["*.example.com", "../x", "A.example", "a..b", "-a.example", "a.example.", "", "a/b"]) expect(isIssuableName(bad)).toBe(false);
  });
});
