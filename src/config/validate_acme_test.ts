/** http listener certificates (several, by SNI) and `[acme]`. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig, reloadProblems } from "./mod.ts";
import { issuesOf } from "./test_util.ts";
import { acmeNames } from "./validate_acme.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const opts = { baseDir: join(HERE, "testdata") };
const issues = (toml: string) => issuesOf(toml, opts);

const HTTPS = `[[listeners]]\nname = "web"\nkind = "http"\naddress = "127.0.0.1:0"\n`;
const PLAIN = `[[listeners]]\nname = "plain"\nkind = "http"\naddress = "127.0.0.1:0"\n`;
const route = (match: string, listener = "web") => `[[routes]]\nmatch = "${match}"\nlisteners = ["${listener}"]\ntargets = ["127.0.0.1:8080"]\n`;
const ACME = `[acme]\ndirectory = "https://ca.example/dir"\nemail = "ops@example.com"\naccept_terms = true\nstate_dir = "${mkdtempSync(join(tmpdir(), "edgemux-acme-cfg-"))}"\n`;

describe("http listener certificates", () => {
  test("cert/key plus [[listeners.tls.certificates]]: names from the SANs, the first is the default", () => {
    const c = parseConfig(
      `${HTTPS}[listeners.tls]\ncert = "pki/server.crt"\nkey = "pki/server.key"\n[[listeners.tls.certificates]]\ncert = "pki/plain.crt"\nkey = "pki/plain.key"\n${route("edge.example")}`,
      opts,
    );
    const l = c.listeners[0]!;
    if (l.kind !== "http" || l.tls === null) throw new Error("expected an https listener");
    expect(l.tls.certificates.map((x) => x.names)).toEqual([["edge.example"], ["plain.example"]]);
    expect(l.tls.acme).toBe(false);
    expect(l.tls.certificates[1]!.notAfter).toBe(Date.parse("2126-10-28T23:30:50Z"));
    expect(l.tls.certificates[0]!.certPath).toEndWith("pki/server.crt");
  });

  test("only [[listeners.tls.certificates]] is enough", () => {
    const c = parseConfig(`${HTTPS}[[listeners.tls.certificates]]\ncert = "pki/plain.crt"\nkey = "pki/plain.key"\n${route("plain.example")}`, opts);
    const l = c.listeners[0]!;
    expect(l.kind === "http" && l.tls?.certificates.length).toBe(1);
  });

  test("problems name the entry", () => {
    expect(issues(`${HTTPS}[listeners.tls]\n${route("a.example")}`)).toEqual(["listeners[0].tls: needs cert and key, [[listeners.tls.certificates]], or acme = true"]);
    expect(issues(`${HTTPS}[listeners.tls]\ncert = "pki/server.crt"\n${route("a.example")}`)).toEqual(["listeners[0].tls.key: cert and key go together: set both or neither"]);
    const wrongKey = issues(`${HTTPS}[[listeners.tls.certificates]]\ncert = "pki/plain.crt"\nkey = "pki/server.key"\n${route("a.example")}`);
    expect(wrongKey).toHaveLength(1);
    expect(wrongKey[0]).toStartWith("listeners[0].tls.certificates[0].key: ");
    expect(wrongKey[0]).toContain("is not the private key of");
    expect(issues(`${HTTPS}[[listeners.tls.certificates]]\ncert = "pki/plain.crt"\n${route("a.example")}`)).toEqual(["listeners[0].tls.certificates[0].key: is required"]);
    expect(issues(`${HTTPS}[[listeners.tls.certificates]]\ncert = "pki/plain.crt"\nkey = "pki/plain.key"\nchain = "x"\n${route("a.example")}`)[0]).toStartWith("listeners[0].tls.certificates[0].chain: unknown key");
  });
});

describe("[acme]", () => {
  const ACME_TLS = `[listeners.tls]\nacme = true\n`;

  test("every option", () => {
    const c = parseConfig(
      `${HTTPS}${ACME_TLS}${PLAIN}${route("a.example")}${route("b.example")}${route("*.wild.example")}` +
        ACME.replace("accept_terms", 'ca = "pki/ca.crt"\nnames = ["A.example"]\nchallenge = "tls-alpn-01"\nmax_concurrent = 3\nnew_names_per_hour = 20\nretry_base = "5s"\naccept_terms'),
      opts,
    );
    expect(c.acme).toMatchObject({
      directory: "https://ca.example/dir",
      contact: ["mailto:ops@example.com"],
      names: ["a.example"],
      maxConcurrent: 3,
      newNamesPerHour: 20,
      retryBaseMs: 5_000,
      challenge: "tls-alpn-01",
    });
    expect(c.acme!.ca).toContain("BEGIN CERTIFICATE");
    expect(c.acme!.caPath).toEndWith("pki/ca.crt");
    expect(acmeNames(c.acme!, c.listeners, c.routes)).toEqual(["a.example"]);
  });

  test("defaults: every exact route name of ACME listeners, never a wildcard or another listener's", () => {
    const c = parseConfig(`${HTTPS}${ACME_TLS}${PLAIN}${route("a.example")}${route("*.wild.example")}${route("*")}${route("plain.example", "plain")}${ACME}`, opts);
    expect(c.acme).toMatchObject({ names: [], maxConcurrent: 2, newNamesPerHour: 10, ca: null, challenge: "auto" });
    expect(acmeNames(c.acme!, c.listeners, c.routes)).toEqual(["a.example"]);
  });

  test("challenge: auto is HTTP-01 with a plain http listener, TLS-ALPN-01 without; http-01 needs one", () => {
    const withPlain = parseConfig(`${HTTPS}${ACME_TLS}${PLAIN}${route("a.example")}${ACME}`, opts);
    expect(withPlain.acme!.challengeType).toBe("http-01");
    const alone = parseConfig(`${HTTPS}${ACME_TLS}${route("a.example")}${ACME}`, opts);
    expect(alone.acme!.challengeType).toBe("tls-alpn-01");
    const forced = parseConfig(`${HTTPS}${ACME_TLS}${PLAIN}${route("a.example")}${ACME}challenge = "tls-alpn-01"\n`, opts);
    expect(forced.acme!.challengeType).toBe("tls-alpn-01");
    expect(issues(`${HTTPS}${ACME_TLS}${route("a.example")}${ACME}challenge = "http-01"\n`)[0]).toStartWith('acme.challenge: "http-01" needs a plain http listener');
    expect(issues(`${HTTPS}${ACME_TLS}${route("a.example")}${ACME}challenge = "dns-01"\n`)[0]).toStartWith("acme.challenge: must be one of auto | http-01 | tls-alpn-01");
  });

  test("required fields and cross-field rules", () => {
    expect(issues(`${HTTPS}${ACME_TLS}${PLAIN}${route("a.example")}[acme]\n`)).toEqual([
      "acme.directory: is required",
      "acme.accept_terms: is required: set accept_terms = true to agree to the CA's terms of service",
      "acme.state_dir: is required",
    ]);
    expect(issues(`${HTTPS}${ACME_TLS}${PLAIN}${route("a.example")}${ACME.replace("accept_terms = true", "accept_terms = false")}`)).toEqual([
      "acme.accept_terms: must be true: a CA issues only to accounts that agreed to its terms of service",
    ]);
    expect(issues(`${HTTPS}${ACME_TLS}${PLAIN}${route("a.example")}${ACME.replace("https://ca.example/dir", "http://ca.example/dir")}`)[0]).toStartWith("acme.directory: must be an https:// URL");
    expect(issues(`${HTTPS}${ACME_TLS}${PLAIN}${route("a.example")}${ACME.replace("ops@example.com", "not an email")}`)[0]).toStartWith("acme.email: must be an email address");
    expect(issues(`${HTTPS}${ACME_TLS}${PLAIN}${route("a.example")}`)).toEqual(["listeners[0].tls.acme: needs an [acme] section (the CA's directory, accept_terms, state_dir)"]);
    expect(issues(`${PLAIN}${route("a.example", "plain")}${ACME}`)[0]).toStartWith("acme: no http listener uses it");
    expect(issues(`${HTTPS}${ACME_TLS}${PLAIN}${route("a.example")}${ACME}names = ["other.example"]\n`)).toEqual([
      'acme.names[0]: "other.example" is not the match of a route of an http listener with acme = true: only routed names are issued',
    ]);
    expect(issues(`${HTTPS}${ACME_TLS}${PLAIN}${route("a.example")}${ACME}names = ["*.example"]\n`)[0]).toStartWith("acme.names[0]: wildcard names are not issued");
    expect(issues(`${HTTPS}${ACME_TLS}${PLAIN}${route("a.example")}${ACME}max_concurrent = 0\n`)).toEqual(["acme.max_concurrent: must be 1..16, got 0"]);
    expect(issues(`${HTTPS}${ACME_TLS}${PLAIN}${route("a.example")}${ACME}dir = "x"\n`)[0]).toStartWith("acme.dir: unknown key");
  });

  test("reload: names and routes change; the rest of [acme] needs a restart", () => {
    const base = `${HTTPS}${ACME_TLS}${PLAIN}${route("a.example")}${route("b.example")}`;
    const a = parseConfig(base + ACME, opts);
    expect(reloadProblems(a, parseConfig(base + ACME + 'names = ["b.example"]\n', opts))).toEqual([]);
    expect(reloadProblems(a, parseConfig(base + ACME.replace("ops@", "dev@"), opts))).toEqual(["acme: changing [acme] (other than names) needs a restart"]);
  });
});
