import { describe, expect, test } from "bun:test";
import type { TokenConfig } from "../config/types.ts";
import { hashToken, parseProxyAuthorization, TokenStore } from "./tokens.ts";

const tok = (name: string, secret: string, extra: Partial<TokenConfig> = {}): TokenConfig => ({
  name,
  sha256: hashToken(secret),
  roles: ["proxy"],
  services: ["*"],
  allow: [],
  deny: [],
  maxSessions: 0,
  ...extra,
});

describe("TokenStore", () => {
  const store = new TokenStore([
    tok("ci", "s3cret"),
    tok("agent", "agent-secret", { roles: ["source", "destination"], services: ["web", "db-*"] }),
    tok("office", "office-secret", { allow: ["10.0.0.0/8"], deny: ["10.9.0.0/16"] }),
  ]);

  test("hashToken is the hex SHA-256 (what `edgemux hash-token` prints)", () => {
    expect(hashToken("hello")).toBe("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  });

  test("a known secret with the role passes; the grant carries the name", () => {
    const r = store.verify("s3cret", "proxy", "127.0.0.1");
    expect(r.ok && r.grant.name).toBe("ci");
    expect(store.verify(new TextEncoder().encode("s3cret"), "proxy", "::1").ok).toBe(true);
  });

  test("unknown secrets (wrong or empty) are AUTH_INVALID; a wrong role or address AUTH_DENIED", () => {
    expect(store.verify("nope", "proxy", "127.0.0.1")).toMatchObject({ ok: false, code: "AUTH_INVALID" });
    expect(store.verify("", "proxy", "127.0.0.1")).toMatchObject({ ok: false, code: "AUTH_INVALID" });
    expect(store.verify("agent-secret", "proxy", "127.0.0.1")).toMatchObject({ ok: false, code: "AUTH_DENIED" });
    expect(store.verify("office-secret", "proxy", "10.1.2.3").ok).toBe(true);
    expect(store.verify("office-secret", "proxy", "::ffff:10.1.2.3").ok).toBe(true);
    expect(store.verify("office-secret", "proxy", "10.9.0.1")).toMatchObject({ ok: false, code: "AUTH_DENIED" });
    expect(store.verify("office-secret", "proxy", "192.168.1.1")).toMatchObject({ ok: false, code: "AUTH_DENIED" });
  });

  test("service patterns: exact, globs anywhere, *; regex characters are literal", () => {
    const g = store.byName("agent")!;
    expect(["web", "db-main", "db-", "webx", "x-web"].map((s) => g.allowsService(s))).toEqual([true, true, true, false, false]);
    const t = new TokenStore([tok("a", "x", { services: ["web", "api-*", "*.dev", "a*z"] }), tok("b", "y", { services: [] }), tok("c", "z", { services: ["a.b*"] })]);
    const a = t.byToken("x")!;
    for (const ok of ["web", "api-", "api-v2", "site.dev", "az", "abcz"]) expect(a.allowsService(ok)).toBe(true);
    for (const no of ["webb", "xapi-1", "dev", "site.dev2", "a.z.y"]) expect(a.allowsService(no)).toBe(false);
    expect(t.byToken("y")!.allowsService("web")).toBe(false);
    expect(t.byToken("z")!.allowsService("a.bc")).toBe(true);
    expect(t.byToken("z")!.allowsService("axbc")).toBe(false);
  });

  test("tunnel roles: a token finds its grant by digest; roles asked for and the agent's address are checked", () => {
    expect(store.byToken("agent-secret")?.name).toBe("agent");
    expect(store.byToken("gamma")).toBeNull();
    expect(store.byToken("")).toBeNull();
    const g = new TokenStore([tok("a", "x", { roles: ["source"], allow: ["10.0.0.0/8"], deny: ["10.6.0.0/16"] })]).byToken("x")!;
    expect(g.missingRoles(["source"])).toEqual([]);
    expect(g.missingRoles(["destination", "source"])).toEqual(["destination"]);
    expect(g.allowsAddress("10.1.2.3")).toBe(true);
    expect(g.allowsAddress("::ffff:10.1.2.3")).toBe(true);
    expect(g.allowsAddress("10.6.1.1")).toBe(false);
    expect(g.allowsAddress("192.0.2.1")).toBe(false);
  });

  test("client certificates authenticate as the entry named by their identity (URI SAN, else DNS SAN, else CN)", () => {
    const t = new TokenStore([tok("spiffe://td/ns/a/sa/agent", "x"), tok("laptop.example", "y"), tok("cn-only", "w")]);
    expect(t.byCertificate({ uris: ["spiffe://td/ns/a/sa/agent"], dnsNames: ["other"], subjectCN: "cn", raw: null })?.name).toBe("spiffe://td/ns/a/sa/agent");
    expect(t.byCertificate({ uris: [], dnsNames: ["laptop.example"], subjectCN: null, raw: null })?.name).toBe("laptop.example");
    expect(t.byCertificate({ uris: [], dnsNames: [], subjectCN: "cn-only", raw: null })?.name).toBe("cn-only");
    expect(t.byCertificate({ uris: [], dnsNames: [], subjectCN: "nobody", raw: null })).toBeNull();
  });
});

describe("Proxy-Authorization", () => {
  test.each([
    ["Bearer abc.DEF-_~+/==", { user: null, secret: "abc.DEF-_~+/==" }],
    ["bearer tok", { user: null, secret: "tok" }],
    [`Basic ${Buffer.from("alice:s3cret").toString("base64")}`, { user: "alice", secret: "s3cret" }],
    [`BASIC ${Buffer.from(":x:y").toString("base64")}`, { user: "", secret: "x:y" }],
  ])("%s", (v, want) => {
    expect(parseProxyAuthorization(v)).toEqual(want);
  });
  test.each([null, "", "Bearer", "Bearer ", "Bearer a b", "Digest x", `Basic ${Buffer.from("nocolon").toString("base64")}`, `Basic ${Buffer.from("u:").toString("base64")}`, "Basic !!!"])(
    "refuses %j",
    (v) => {
      expect(parseProxyAuthorization(v)).toBeNull();
    },
  );
});
