import { describe, expect, test } from "bun:test";
import { IdentityPolicy, parseSpiffeId, spiffeFromUris } from "./identity.ts";

const id = (s: string) => parseSpiffeId(s)!;

describe("SPIFFE IDs", () => {
  test("parse", () => {
    expect(parseSpiffeId("spiffe://cluster.local/ns/web/sa/frontend")).toEqual({ uri: "spiffe://cluster.local/ns/web/sa/frontend", trustDomain: "cluster.local", namespace: "web", serviceAccount: "frontend" });
    expect(parseSpiffeId("spiffe://td/other/path")).toMatchObject({ trustDomain: "td", namespace: null, serviceAccount: null });
    expect(parseSpiffeId("spiffe://TD/ns/a/sa/b")).toBeNull();
    expect(parseSpiffeId("https://td/ns/a")).toBeNull();
    expect(spiffeFromUris(["https://x", "spiffe://td/ns/a/sa/b"])!.namespace).toBe("a");
  });
});

describe("default policy: same trust domain and namespace", () => {
  const p = new IdentityPolicy([], { trustDomain: "cluster.local", namespace: "web" });
  test.each([
    ["spiffe://cluster.local/ns/web/sa/x", true],
    ["spiffe://cluster.local/ns/db/sa/x", false],
    ["spiffe://other.td/ns/web/sa/x", false],
    ["spiffe://cluster.local/weird", false],
  ])("%s", (uri, ok) => {
    expect(p.identityMayPass(id(uri)).ok).toBe(ok);
    expect(p.allows(id(uri), "db.internal", 5432, "10.0.0.5").ok).toBe(ok);
  });
  test("without a trust domain nobody passes", () => {
    expect(new IdentityPolicy([], { trustDomain: null, namespace: null }).identityMayPass(id("spiffe://a/ns/b/sa/c")).ok).toBe(false);
  });
});

describe("rules", () => {
  const p = new IdentityPolicy(
    [
      { identity: "spiffe://cluster.local/ns/*/sa/frontend", destinations: ["*.svc.cluster.local:*", "db.internal:5432", "10.1.0.0/16"], listeners: [] },
      { identity: "spiffe://cluster.local/ns/admin/sa/*", destinations: [], listeners: [] },
    ],
    { trustDomain: "cluster.local", namespace: "web" },
  );
  test.each([
    ["spiffe://cluster.local/ns/a/sa/frontend", "web.a.svc.cluster.local", 80, "10.2.0.1", true],
    ["spiffe://cluster.local/ns/a/sa/frontend", "db.internal", 5432, "10.2.0.9", true],
    ["spiffe://cluster.local/ns/a/sa/frontend", "db.internal", 5433, "10.2.0.9", false],
    ["spiffe://cluster.local/ns/a/sa/frontend", "other.internal", 80, "10.1.2.3", true], // CIDR on the dialled address
    ["spiffe://cluster.local/ns/a/sa/frontend", "other.internal", 80, "10.3.2.3", false],
    ["spiffe://cluster.local/ns/a/b/sa/frontend", "db.internal", 5432, "10.2.0.9", false], // * stays within a segment
    ["spiffe://cluster.local/ns/admin/sa/root", "anything.example", 1, "1.2.3.4", true],
    ["spiffe://cluster.local/ns/web/sa/backend", "web.a.svc.cluster.local", 80, "10.2.0.1", false], // rules replace the default
  ])("%s → %s:%d", (uri, host, port, addr, ok) => {
    expect(p.allows(id(uri), host, port, addr).ok).toBe(ok);
  });
  test("identityMayPass screens before DNS", () => {
    expect(p.identityMayPass(id("spiffe://cluster.local/ns/web/sa/backend")).ok).toBe(false);
    expect(p.identityMayPass(id("spiffe://cluster.local/ns/x/sa/frontend")).ok).toBe(true);
  });
  test("* matches any verified identity", () => {
    const any = new IdentityPolicy([{ identity: "*", destinations: [], listeners: [] }], { trustDomain: null, namespace: null });
    expect(any.allows(id("spiffe://x/y"), "h", 1, "1.1.1.1").ok).toBe(true);
  });
});
