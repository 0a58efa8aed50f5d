import { describe, expect, test } from "bun:test";
import { sha256, type TokenEntry, TokenTable } from "./policy.ts";

const entry = (name: string, token: string, over: Partial<TokenEntry> = {}): TokenEntry => ({
  name,
  sha256: sha256(token),
  roles: ["destination"],
  services: ["*"],
  allow: [],
  deny: [],
  maxSessions: 0,
  ...over,
});

describe("token policy", () => {
  test("a token finds its entry by digest; unknown tokens find none", () => {
    const t = new TokenTable([entry("a", "alpha"), entry("b", "beta")]);
    expect(t.byToken("alpha")?.name).toBe("a");
    expect(t.byToken("beta")?.name).toBe("b");
    expect(t.byToken("gamma")).toBeNull();
    expect(t.byToken("")).toBeNull();
    expect(t.size).toBe(2);
  });

  test("service patterns: exact, globs anywhere, *", () => {
    const g = new TokenTable([entry("a", "x", { services: ["web", "api-*", "*.dev", "a*z"] })]).byToken("x")!;
    for (const ok of ["web", "api-", "api-v2", "site.dev", "az", "abcz"]) expect(g.allowsService(ok)).toBe(true);
    for (const no of ["webb", "xapi-1", "dev", "site.dev2", "a.z.y"]) expect(g.allowsService(no)).toBe(false);
    expect(new TokenTable([entry("b", "y", { services: [] })]).byToken("y")!.allowsService("web")).toBe(false);
    // Regex metacharacters in a pattern are literal.
    const dots = new TokenTable([entry("c", "z", { services: ["a.b*"] })]).byToken("z")!;
    expect(dots.allowsService("a.bc")).toBe(true);
    expect(dots.allowsService("axbc")).toBe(false);
  });

  test("roles and CIDRs", () => {
    const g = new TokenTable([entry("a", "x", { roles: ["source"], allow: ["10.0.0.0/8"], deny: ["10.6.0.0/16"] })]).byToken("x")!;
    expect(g.missingRoles(["source"])).toEqual([]);
    expect(g.missingRoles(["destination", "source"])).toEqual(["destination"]);
    expect(g.allowsAddress("10.1.2.3")).toBe(true);
    expect(g.allowsAddress("::ffff:10.1.2.3")).toBe(true);
    expect(g.allowsAddress("10.6.1.1")).toBe(false);
    expect(g.allowsAddress("192.0.2.1")).toBe(false);
  });

  test("client certificates authenticate as the entry named by their identity", () => {
    const t = new TokenTable([entry("spiffe://td/ns/a/sa/agent", "x"), entry("laptop.example", "y")]);
    expect(t.byCertificate({ uris: ["spiffe://td/ns/a/sa/agent"], dnsNames: ["other"], subjectCN: "cn", raw: null })?.name).toBe("spiffe://td/ns/a/sa/agent");
    expect(t.byCertificate({ uris: [], dnsNames: ["laptop.example"], subjectCN: null, raw: null })?.name).toBe("laptop.example");
    expect(t.byCertificate({ uris: [], dnsNames: [], subjectCN: "nobody", raw: null })).toBeNull();
  });
});
