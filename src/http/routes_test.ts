import { describe, expect, test } from "bun:test";
import type { RouteConfig } from "../config/types.ts";
import { createRouteBackends } from "../router/mod.ts";
import { compileHttpRoutes, pathMatches } from "./routes.ts";

const route = (name: string, match: string, pathPrefix = "/", listeners = ["web"]): RouteConfig => ({
  name,
  match,
  alpn: [],
  listeners,
  targets: [{ kind: "tcp", hostname: "127.0.0.1", port: 1 }],
  balance: "round_robin",
  connectTimeoutMs: 1000,
  proxyProtocol: "none",
  directory: null,
  http: { pathPrefix, responseHeaders: [], basicAuth: null },
});

const ROUTES = [
  route("app", "app.example"),
  route("app-api", "app.example", "/api"),
  route("app-api-v2", "app.example", "/api/v2/"),
  route("wild", "*.example"),
  route("deep-wild", "*.b.example"),
  route("wild-admin", "*.example", "/admin"),
  route("fallback", "*"),
  route("other-listener", "app.example", "/x", ["other"]),
];
const table = compileHttpRoutes(ROUTES, "web", createRouteBackends(ROUTES));
const pick = (host: string | null, path: string) => table.lookup(host, path)?.route.name ?? null;

describe("http routes: Host, then the longest path prefix", () => {
  test("only routes naming the listener", () => {
    expect(table.size).toBe(7);
    expect(pick("app.example", "/x")).toBe("app");
  });
  test("exact host, longest prefix, on segment boundaries", () => {
    expect(pick("app.example", "/")).toBe("app");
    expect(pick("app.example", "/api")).toBe("app-api");
    expect(pick("app.example", "/api/users")).toBe("app-api");
    expect(pick("app.example", "/apix")).toBe("app");
    expect(pick("app.example", "/api/v2/x")).toBe("app-api-v2");
    expect(pick("app.example", "/api/v2")).toBe("app-api");
  });
  test("the longest wildcard, never the bare suffix; then the default", () => {
    expect(pick("x.example", "/")).toBe("wild");
    expect(pick("x.b.example", "/")).toBe("deep-wild");
    // The host decides first: the longer wildcard wins even though the shorter has a longer prefix.
    expect(pick("x.b.example", "/admin/1")).toBe("deep-wild");
    expect(pick("example", "/")).toBe("fallback");
    expect(pick("b.example", "/admin")).toBe("wild-admin");
    expect(pick(null, "/")).toBe("fallback");
    expect(pick("unknown.test", "/")).toBe("fallback");
  });
  test("a host pattern whose prefixes all miss falls through to the next pattern", () => {
    const rs = [route("only-api", "a.example", "/api"), route("any", "*")];
    const t = compileHttpRoutes(rs, "web", createRouteBackends(rs));
    expect(t.lookup("a.example", "/api/1")?.route.name).toBe("only-api");
    expect(t.lookup("a.example", "/other")?.route.name).toBe("any");
    const none = compileHttpRoutes([rs[0]!], "web", createRouteBackends([rs[0]!]));
    expect(none.lookup("a.example", "/other")).toBeNull();
  });
  test("pathMatches", () => {
    expect(pathMatches("/", "/anything")).toBe(true);
    expect(pathMatches("/a", "/a")).toBe(true);
    expect(pathMatches("/a", "/a/b")).toBe(true);
    expect(pathMatches("/a", "/a?q")).toBe(true);
    expect(pathMatches("/a", "/ab")).toBe(false);
    expect(pathMatches("/a/", "/a")).toBe(false);
  });
});
