import { describe, expect, test } from "bun:test";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig, reloadProblems } from "./mod.ts";
import { issuesOf, LISTENER } from "./test_util.ts";
import { isLoopback } from "./validate_admin.ts";

const PKI = join(dirname(fileURLToPath(import.meta.url)), "testdata", "pki");
const SHA_A = "32323cfa9ec9d62750daad0836a4cf3d7b60d23723b7852a529667deed01669f";
const SHA_B = "7ccc6f421648a8f89c218935d5b404a0a83efc4a90ac589c7bc0e318715bca93";
const NEEDS_TOKENS = "admin.address: a non-loopback admin API needs [[admin.tokens]] (or admin.insecure = true)";

const admin = (body: string) => `[admin]\n${body}\n${LISTENER}`;
const token = (name: string, sha: string, scope = "admin") => `[[admin.tokens]]\nname = "${name}"\nsha256 = "${sha}"\nscope = "${scope}"\n`;

describe("[admin] without tokens", () => {
  test("on loopback the admin API stays open, as before", () => {
    for (const address of ["127.0.0.1:9901", "127.5.6.7:0", "[::1]:9901"]) {
      const c = parseConfig(admin(`address = "${address}"`));
      expect(c.admin.tokens).toEqual([]);
      expect(c.admin.insecure).toBe(false);
      expect(c.admin.tls).toBeNull();
    }
    expect(parseConfig(LISTENER).admin.tokens).toEqual([]); // the default address is loopback
  });

  test("on any other address it is refused unless insecure = true", () => {
    for (const address of ["0.0.0.0:9901", "[::]:9901", "10.1.2.3:9901", "[2001:db8::1]:9901", "128.0.0.1:9901"]) {
      expect(issuesOf(admin(`address = "${address}"`))).toEqual([NEEDS_TOKENS]);
      expect(issuesOf(admin(`address = "${address}"\ntokens = []`))).toEqual([NEEDS_TOKENS]);
      expect(issuesOf(admin(`address = "${address}"\ninsecure = false`))).toEqual([NEEDS_TOKENS]);
      expect(parseConfig(admin(`address = "${address}"\ninsecure = true`)).admin.insecure).toBe(true);
    }
  });

  test("with tokens any address is fine; off needs nothing", () => {
    expect(parseConfig(admin(`address = "0.0.0.0:9901"\n${token("ops", SHA_A)}`)).admin.tokens).toHaveLength(1);
    expect(parseConfig(admin(`address = "off"`)).admin.address).toBeNull();
  });

  test("a --admin flag naming a non-loopback address is reported under the flag", () => {
    expect(issuesOf(LISTENER, { flags: { admin: "0.0.0.0:9901" } })).toEqual([
      "--admin: a non-loopback admin API needs [[admin.tokens]] (or admin.insecure = true)",
    ]);
  });

  test("isLoopback: 127.0.0.0/8, ::1 and their IPv4-mapped form", () => {
    for (const h of ["127.0.0.1", "127.255.255.254", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"]) expect(isLoopback(h)).toBe(true);
    for (const h of ["0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "::2", "::ffff:10.0.0.1", "1::1", "localhost"]) expect(isLoopback(h)).toBe(false);
  });
});

describe("[[admin.tokens]]", () => {
  test("entries are read with their scope; the digest is stored lowercase", () => {
    const c = parseConfig(admin(`${token("ops", SHA_A.toUpperCase())}${token("prom", SHA_B, "read")}`));
    expect(c.admin.tokens).toEqual([
      { name: "ops", sha256: SHA_A, scope: "admin" },
      { name: "prom", sha256: SHA_B, scope: "read" },
    ]);
  });

  test("each bad field is named with its bound", () => {
    expect(issuesOf(admin(`[[admin.tokens]]\nname = "a b"\nsha256 = "abc"\nscope = "write"\nrole = "x"`))).toEqual([
      `admin.tokens[0].role: unknown key`,
      `admin.tokens[0].name: must be 1..253 of [A-Za-z0-9_.:@/-], got "a b"`,
      "admin.tokens[0].sha256: must be the 64 hex digits of the secret's SHA-256 (`edgemux hash-token` prints it), got \"abc\"",
      `admin.tokens[0].scope: must be one of read | admin, got "write"`,
    ]);
    expect(issuesOf(admin(`[[admin.tokens]]\nscope = "read"`))).toEqual([
      "admin.tokens[0].name: is required",
      "admin.tokens[0].sha256: is required",
    ]);
    expect(issuesOf(admin(`[[admin.tokens]]\nname = "a"\nsha256 = "${SHA_A}"`))).toEqual(["admin.tokens[0].scope: is required (read | admin)"]);
    expect(issuesOf(admin(`tokens = "x"`))).toEqual([`admin.tokens: must be an array of tables ([[admin.tokens]]), got "x"`]);
    expect(issuesOf(admin(`insecure = "yes"`))).toEqual([`admin.insecure: must be true or false, got "yes"`]);
  });

  test("invalid entries on a non-loopback address report the entries, not a missing table", () => {
    expect(issuesOf(admin(`address = "0.0.0.0:9901"\n[[admin.tokens]]\nname = "a"\nsha256 = "${SHA_A}"`))).toEqual([
      "admin.tokens[0].scope: is required (read | admin)",
    ]);
  });

  test("duplicate names and duplicate secrets are errors", () => {
    expect(issuesOf(admin(`${token("ops", SHA_A)}${token("ops", SHA_B, "read")}`))).toEqual([`admin.tokens[1].name: "ops" is already used by admin.tokens[0]`]);
    expect(issuesOf(admin(`${token("a", SHA_A)}${token("b", SHA_A.toUpperCase(), "read")}`))).toEqual([
      "admin.tokens[1].sha256: the same secret as admin.tokens[0]; give each entry its own",
    ]);
  });

  test("admin tokens and [[tokens]] are separate tables: the same name may appear in both", () => {
    const c = parseConfig(admin(`${token("ops", SHA_A)}\n[[tokens]]\nname = "ops"\nsha256 = "${SHA_B}"`));
    expect(c.admin.tokens.map((t) => t.name)).toEqual(["ops"]);
    expect(c.tokens.map((t) => t.name)).toEqual(["ops"]);
  });
});

describe("[admin.tls]", () => {
  test("cert and key are read relative to the config file", () => {
    const c = parseConfig(admin(`[admin.tls]\ncert = "plain.crt"\nkey = "plain.key"`), { baseDir: PKI });
    expect(c.admin.tls).toMatchObject({ certPath: join(PKI, "plain.crt"), keyPath: join(PKI, "plain.key") });
    expect(c.admin.tls?.cert).toContain("BEGIN CERTIFICATE");
  });

  test("missing files, a key of another certificate and unknown keys are named", () => {
    expect(issuesOf(admin(`[admin.tls]\ncert = "plain.crt"`), { baseDir: PKI })).toEqual(["admin.tls.key: is required"]);
    expect(issuesOf(admin(`[admin.tls]\ncert = "plain.crt"\nkey = "server.key"\nclient_ca = "ca.crt"`), { baseDir: PKI })).toEqual([
      "admin.tls.client_ca: unknown key",
      `admin.tls.key: ${join(PKI, "server.key")} is not the private key of admin.tls.cert`,
    ]);
    const missing = issuesOf(admin(`[admin.tls]\ncert = "nope.crt"\nkey = "plain.key"`), { baseDir: PKI });
    expect(missing).toHaveLength(1);
    expect(missing[0]).toStartWith(`admin.tls.cert: cannot read ${join(PKI, "nope.crt")}`);
  });
});

describe("reload", () => {
  const base = (body: string) => parseConfig(admin(body), { baseDir: PKI });
  test("admin tokens and insecure reload", () => {
    expect(reloadProblems(base(""), base(`insecure = true\n${token("ops", SHA_A)}`))).toEqual([]);
    expect(reloadProblems(base(token("ops", SHA_A)), base(token("ops", SHA_B, "read")))).toEqual([]);
  });

  test("[admin.tls] needs a restart, like the address", () => {
    const tls = `[admin.tls]\ncert = "plain.crt"\nkey = "plain.key"`;
    expect(reloadProblems(base(""), base(tls))).toEqual(["admin.tls: changing the admin API's certificate or key needs a restart"]);
    expect(reloadProblems(base(tls), base(""))).toEqual(["admin.tls: changing the admin API's certificate or key needs a restart"]);
    expect(reloadProblems(base(tls), base(tls))).toEqual([]);
  });
});
