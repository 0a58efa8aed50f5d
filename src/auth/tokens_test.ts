import { describe, expect, test } from "bun:test";
import type { TokenConfig } from "../config/types.ts";
import { globMatch, hashToken, parseProxyAuthorization, serviceAllowed, TokenStore } from "./tokens.ts";

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

  test("unknown secrets are AUTH_REQUIRED; a wrong role or address AUTH_DENIED", () => {
    expect(store.verify("nope", "proxy", "127.0.0.1")).toMatchObject({ ok: false, code: "AUTH_REQUIRED" });
    expect(store.verify("", "proxy", "127.0.0.1")).toMatchObject({ ok: false, code: "AUTH_REQUIRED" });
    expect(store.verify("agent-secret", "proxy", "127.0.0.1")).toMatchObject({ ok: false, code: "AUTH_DENIED" });
    expect(store.verify("office-secret", "proxy", "10.1.2.3").ok).toBe(true);
    expect(store.verify("office-secret", "proxy", "::ffff:10.1.2.3").ok).toBe(true);
    expect(store.verify("office-secret", "proxy", "10.9.0.1")).toMatchObject({ ok: false, code: "AUTH_DENIED" });
    expect(store.verify("office-secret", "proxy", "192.168.1.1")).toMatchObject({ ok: false, code: "AUTH_DENIED" });
  });

  test("service patterns", () => {
    const g = store.byName("agent")!;
    expect(["web", "db-main", "db-", "webx", "x-web"].map((s) => serviceAllowed(g, s))).toEqual([true, true, true, false, false]);
    expect(globMatch("a*b*c", "axxbyyc")).toBe(true);
    expect(globMatch("a*b*c", "acb")).toBe(false);
    expect(globMatch("*.dev", "x.dev")).toBe(true);
    expect(globMatch("ab*ba", "aba")).toBe(false);
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
