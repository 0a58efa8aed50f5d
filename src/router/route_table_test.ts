import { describe, expect, test } from "bun:test";
import type { RouteConfig } from "../config/types.ts";
import { ProxyError } from "../errors/mod.ts";
import { compileRouteTable, createRouteBackends, hashFromRight, type RouteTable } from "./route_table.ts";

function route(match: string, extra: Partial<RouteConfig> = {}): RouteConfig {
  return {
    name: extra.name ?? match,
    match,
    alpn: [],
    listeners: [],
    targets: [{ kind: "tcp", hostname: "127.0.0.1", port: 1 }],
    balance: "round_robin",
    connectTimeoutMs: 1000,
    proxyProtocol: "none",
    directory: null,
    ...extra,
  };
}

const NO_ALPN: readonly string[] = [];
const name = (t: RouteTable, sni: string | null, alpn: readonly string[] = NO_ALPN) => t.lookup(sni, alpn)?.route.name ?? null;

describe("precedence", () => {
  const routes = [
    route("*", { name: "default" }),
    route("*.example.com", { name: "wild-example" }),
    route("*.b.example.com", { name: "wild-b" }),
    route("a.b.example.com", { name: "exact-ab" }),
    route("example.com", { name: "exact-bare" }),
    route("*.com", { name: "wild-com" }),
  ];
  const t = compileRouteTable(routes, "l");

  test("exact beats every wildcard", () => {
    expect(name(t, "a.b.example.com")).toBe("exact-ab");
    expect(name(t, "example.com")).toBe("exact-bare");
  });

  test("longest wildcard wins", () => {
    expect(name(t, "x.b.example.com")).toBe("wild-b");
    expect(name(t, "y.x.b.example.com")).toBe("wild-b");
    expect(name(t, "c.example.com")).toBe("wild-example");
    expect(name(t, "b.example.com")).toBe("wild-example"); // "*.b.example.com" never matches its bare suffix
    expect(name(t, "other.com")).toBe("wild-com");
    expect(name(t, "a.b.other.com")).toBe("wild-com");
  });

  test("a wildcard never matches its bare suffix; unmatched names go to the default", () => {
    expect(name(t, "com")).toBe("default");
    expect(name(t, "example.org")).toBe("default");
    expect(name(t, "xexample.com")).toBe("wild-com"); // not "*.example.com": the label boundary matters
  });

  test("no SNI goes to the default route", () => {
    expect(name(t, null)).toBe("default");
    expect(name(t, null, ["h2"])).toBe("default");
  });

  test("no default route: unmatched names and no SNI get null", () => {
    const t2 = compileRouteTable([route("a.test"), route("*.b.test")], "l");
    expect(t2.lookup("z.test", NO_ALPN)).toBeNull();
    expect(t2.lookup("b.test", NO_ALPN)).toBeNull();
    expect(t2.lookup(null, NO_ALPN)).toBeNull();
    expect(name(t2, "x.b.test")).toBe("*.b.test");
  });

  test("index is the position in the config's route list", () => {
    expect(t.lookup("c.example.com", NO_ALPN)!.index).toBe(1);
    expect(t.lookup(null, NO_ALPN)!.index).toBe(0);
    expect(t.lookup("example.com", NO_ALPN)!.index).toBe(4);
  });
});

describe("alpn conditions", () => {
  const routes = [
    route("svc.test", { name: "svc-plain" }),
    route("svc.test", { name: "svc-h2", alpn: ["h2"] }),
    route("svc.test", { name: "svc-acme", alpn: ["acme-tls/1"] }),
    route("only-h2.test", { name: "only-h2", alpn: ["h2"] }),
    route("*.w.test", { name: "w-plain" }),
    route("*.x.w.test", { name: "xw-h2", alpn: ["h2", "h3"] }),
    route("*.test", { name: "test-plain" }),
    route("*", { name: "default" }),
    route("*", { name: "default-acme", alpn: ["acme-tls/1"] }),
  ];
  const t = compileRouteTable(routes, "l");

  test("a satisfied condition beats the route without one", () => {
    expect(name(t, "svc.test", ["h2", "http/1.1"])).toBe("svc-h2");
    expect(name(t, "svc.test", ["acme-tls/1"])).toBe("svc-acme");
    expect(name(t, "svc.test", ["http/1.1"])).toBe("svc-plain");
    expect(name(t, "svc.test", [])).toBe("svc-plain");
  });

  test("several satisfied conditions: the first in config order wins", () => {
    expect(name(t, "svc.test", ["acme-tls/1", "h2"])).toBe("svc-h2");
  });

  test("unsatisfied with no plain route: falls through to less specific patterns", () => {
    expect(name(t, "only-h2.test", ["h2"])).toBe("only-h2");
    expect(name(t, "only-h2.test", ["http/1.1"])).toBe("test-plain");
    expect(name(t, "a.x.w.test", ["h3"])).toBe("xw-h2");
    expect(name(t, "a.x.w.test", ["http/1.1"])).toBe("w-plain"); // next shorter wildcard
    expect(name(t, "a.x.w.test", [])).toBe("w-plain");
    expect(name(t, "q.test", ["h2"])).toBe("test-plain");
  });

  test("the default pattern honours conditions too", () => {
    expect(name(t, "nothing.example", ["acme-tls/1"])).toBe("default-acme");
    expect(name(t, null, ["acme-tls/1"])).toBe("default-acme");
    expect(name(t, "nothing.example", ["h2"])).toBe("default");
  });

  test("nothing matches when every candidate needs an unoffered ALPN", () => {
    const t2 = compileRouteTable([route("*", { alpn: ["h2"] }), route("a.test", { alpn: ["h2"] })], "l");
    expect(t2.lookup("a.test", ["http/1.1"])).toBeNull();
    expect(t2.lookup("a.test", ["h2"])!.index).toBe(1);
    expect(t2.lookup("b.test", ["h2"])!.index).toBe(0);
  });
});

describe("listener scoping", () => {
  const routes = [
    route("a.test", { name: "a-any" }),
    route("b.test", { name: "b-public", listeners: ["public"] }),
    route("b.test", { name: "b-internal", listeners: ["internal", "other"] }),
    route("*", { name: "default-public", listeners: ["public"] }),
  ];
  const backends = createRouteBackends(routes);
  const pub = compileRouteTable(routes, "public", backends);
  const internal = compileRouteTable(routes, "internal", backends);

  test("routes apply to the listeners they name, or all when none", () => {
    expect(name(pub, "a.test")).toBe("a-any");
    expect(name(internal, "a.test")).toBe("a-any");
    expect(name(pub, "b.test")).toBe("b-public");
    expect(name(internal, "b.test")).toBe("b-internal");
    expect(name(pub, "zzz.test")).toBe("default-public");
    expect(name(internal, "zzz.test")).toBeNull();
    expect(pub.size).toBe(3);
    expect(internal.size).toBe(2);
  });

  test("index and backends are shared across listeners", () => {
    const a1 = pub.lookup("a.test", NO_ALPN)!;
    const a2 = internal.lookup("a.test", NO_ALPN)!;
    expect(a1.index).toBe(0);
    expect(a2.index).toBe(0);
    expect(a1.backends).toBe(a2.backends);
    expect(internal.lookup("b.test", NO_ALPN)!.index).toBe(2);
  });
});

describe("backends", () => {
  test("target routes get a balancer, directory routes a resolver", () => {
    const t = compileRouteTable(
      [
        route("t.test", { targets: [{ kind: "tcp", hostname: "10.0.0.1", port: 443 }, { kind: "unix", path: "/run/x" }] }),
        route("*.d.test", { targets: [], directory: "/srv/hosts" }),
      ],
      "l",
    );
    const t1 = t.lookup("t.test", NO_ALPN)!.backends;
    expect(t1.kind).toBe("targets");
    if (t1.kind === "targets") expect(t1.balancer.target(t1.balancer.order(0)[0]!)).toEqual({ kind: "tcp", hostname: "10.0.0.1", port: 443 });
    const d = t.lookup("x.d.test", NO_ALPN)!.backends;
    expect(d.kind).toBe("directory");
    if (d.kind === "directory") expect(d.resolver.dir).toBe("/srv/hosts");
  });

  test("a route with neither targets nor directory is a config error", () => {
    expect(() => createRouteBackends([route("a.test"), route("b.test", { targets: [] })])).toThrow(/routes\[1\]/);
  });
});

test("wildcard suffixes whose hashes collide are told apart", () => {
  // Found by search: two suffixes with the same 32-bit hash.
  const a = "c395976.test";
  const b = "c883264.test";
  expect(hashFromRight(a)).toBe(hashFromRight(b));
  const t = compileRouteTable([route(`*.${a}`, { name: "A" }), route(`*.${b}`, { name: "B" }), route("*", { name: "D" })], "l");
  expect(name(t, `x.${a}`)).toBe("A");
  expect(name(t, `x.${b}`)).toBe("B");
  // Same hash, same length, different text: no false hit.
  expect(name(t, "x.c395977.test")).toBe("D");
  const t2 = compileRouteTable([route(`*.${b}`, { name: "B" })], "l");
  expect(t2.lookup(`x.${a}`, NO_ALPN)).toBeNull();
});

describe("malformed patterns", () => {
  for (const bad of ["", "*.", "*.*.a", "a.*.b", "A.test", "a..b", ".a", "a.", "**", "*a.test", "a b"]) {
    test(JSON.stringify(bad), () => {
      let err: unknown;
      try {
        compileRouteTable([route("ok.test"), route(bad)], "l");
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProxyError);
      expect((err as ProxyError).code).toBe("CONFIG");
      expect((err as ProxyError).message).toMatch(/^routes\[1\]\.match: /);
    });
  }
});

describe("10,000 routes", () => {
  const N = 10_000;
  const routes: RouteConfig[] = [];
  for (let i = 0; i < 6000; i++) routes.push(route(`svc${i}.zone${i % 97}.example.com`));
  for (let i = 0; i < 3000; i++) routes.push(route(`*.tenant${i}.apps.example.net`));
  for (let i = 0; i < 998; i++) routes.push(route(`*.r${i}.example.com`));
  routes.push(route("*.example.com", { name: "wild-example" }));
  routes.push(route("*", { name: "default" }));
  expect(routes.length).toBe(N);
  const t = compileRouteTable(routes, "l");

  /** The obviously correct answer by scanning every route (no ALPN conditions here). */
  function reference(sni: string): number {
    let best = -1;
    let bestLen = -1;
    for (let i = 0; i < routes.length; i++) {
      const m = routes[i]!.match;
      if (m === sni) return i;
      if (m.startsWith("*.")) {
        const suffix = m.slice(1); // ".suffix"
        if (sni.endsWith(suffix) && sni.length > suffix.length && suffix.length > bestLen) {
          best = i;
          bestLen = suffix.length;
        }
      }
    }
    if (best >= 0) return best;
    return routes.findIndex((r) => r.match === "*");
  }

  test("spot checks against a linear-scan reference", () => {
    const rand = (() => {
      let s = 12345;
      return (n: number) => {
        s = (Math.imul(s, 1103515245) + 12345) >>> 0;
        return s % n;
      };
    })();
    const names: string[] = [];
    for (let k = 0; k < 300; k++) {
      const i = rand(7000);
      switch (k % 6) {
        case 0:
          names.push(`svc${i}.zone${i % 97}.example.com`); // exact hit (or near miss past 6000)
          break;
        case 1:
          names.push(`x.y.tenant${i % 3500}.apps.example.net`); // wildcard hit or miss
          break;
        case 2:
          names.push(`svc${i}.zone${(i + 1) % 97}.example.com`); // wrong zone: *.example.com
          break;
        case 3:
          names.push(`a.r${i % 1200}.example.com`);
          break;
        case 4:
          names.push(`tenant${i}.apps.example.net`); // bare suffix: no wildcard
          break;
        default:
          names.push(`n${i}.example.org`);
      }
    }
    let exact = 0;
    let wild = 0;
    let dflt = 0;
    for (const sni of names) {
      const want = reference(sni);
      const got = t.lookup(sni, NO_ALPN)!.index;
      if (got !== want) expect({ sni, got }).toEqual({ sni, got: want });
      const m = routes[want]!.match;
      if (m === "*") dflt++;
      else if (m.startsWith("*.")) wild++;
      else exact++;
    }
    // Every kind of outcome was exercised.
    expect(exact).toBeGreaterThan(20);
    expect(wild).toBeGreaterThan(20);
    expect(dflt).toBeGreaterThan(20);
  });
});
