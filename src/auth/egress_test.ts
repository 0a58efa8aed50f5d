import { describe, expect, test } from "bun:test";
import type { EgressConfig } from "../config/types.ts";
import { ProxyError } from "../errors/mod.ts";
import { EgressPolicy, type Lookup } from "./egress.ts";

const cfg = (o: Partial<EgressConfig> = {}): EgressConfig => ({
  allowHosts: ["*"],
  allowPorts: [{ from: 443, to: 443 }],
  allowCidrs: [],
  denyCidrs: [],
  allowPrivate: false,
  ...o,
});

const fakeDns = (table: Record<string, string[]>): Lookup => async (h) => {
  const r = table[h];
  if (!r) throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
  return r;
};

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (e) {
    expect(e).toBeInstanceOf(ProxyError);
    return (e as ProxyError).code;
  }
}

describe("egress", () => {
  const dns = fakeDns({
    "public.example": ["93.184.216.34", "2606:2800:220:1::1"],
    "loop.example": ["127.0.0.1"],
    "mixed.example": ["127.0.0.1", "93.184.216.34"],
    "meta.example": ["169.254.169.254"],
    "v6loop.example": ["::1"],
    "mapped.example": ["::ffff:10.0.0.1"],
    "empty.example": [],
  });

  test("defaults: public addresses on 443 pass; every special-purpose range is refused", async () => {
    const p = new EgressPolicy(cfg());
    expect(await p.resolve({ host: "public.example", kind: "name", port: 443 }, dns)).toEqual(["93.184.216.34", "2606:2800:220:1::1"]);
    for (const ip of ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "fe80::1", "fd00::1", "::", "::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::"]) {
      expect(p.addressProblem(ip)).not.toBeNull();
    }
    for (const ip of ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"]) expect(p.addressProblem(ip)).toBeNull();
  });

  test("SSRF: names resolving to private addresses are refused; mixed answers keep only the allowed ones", async () => {
    const p = new EgressPolicy(cfg());
    expect(await code(p.resolve({ host: "loop.example", kind: "name", port: 443 }, dns))).toBe("EGRESS_DENIED");
    expect(await code(p.resolve({ host: "meta.example", kind: "name", port: 443 }, dns))).toBe("EGRESS_DENIED");
    expect(await code(p.resolve({ host: "v6loop.example", kind: "name", port: 443 }, dns))).toBe("EGRESS_DENIED");
    expect(await code(p.resolve({ host: "mapped.example", kind: "name", port: 443 }, dns))).toBe("EGRESS_DENIED");
    expect(await p.resolve({ host: "mixed.example", kind: "name", port: 443 }, dns)).toEqual(["93.184.216.34"]);
    expect(await code(p.resolve({ host: "127.0.0.1", kind: "ipv4", port: 443 }, dns))).toBe("EGRESS_DENIED");
  });

  test("ports, host patterns and IP literals", async () => {
    const p = new EgressPolicy(cfg({ allowHosts: ["*.example.com", "exact.org"], allowPorts: [{ from: 443, to: 443 }, { from: 8000, to: 8099 }] }));
    expect(await code(p.resolve({ host: "public.example", kind: "name", port: 80 }, dns))).toBe("EGRESS_DENIED");
    expect(p.hostAllowed("a.example.com")).toBe(true);
    expect(p.hostAllowed("a.b.example.com")).toBe(true);
    expect(p.hostAllowed("example.com")).toBe(false);
    expect(p.hostAllowed("exact.org")).toBe(true);
    expect(p.hostAllowed("x.exact.org")).toBe(false);
    expect([p.portAllowed(8050), p.portAllowed(8100), p.portAllowed(443)]).toEqual([true, false, true]);
    // An IP literal needs allow_hosts "*" or allow_cidrs.
    expect(await code(p.resolve({ host: "93.184.216.34", kind: "ipv4", port: 443 }, dns))).toBe("EGRESS_DENIED");
  });

  test("allow_cidrs lets private addresses through; deny_cidrs wins; allow_private opens the rest", async () => {
    const p = new EgressPolicy(cfg({ allowCidrs: ["127.0.0.1/32", "10.0.0.0/8"], denyCidrs: ["10.6.0.0/16"], allowHosts: [] }));
    expect(await p.resolve({ host: "127.0.0.1", kind: "ipv4", port: 443 }, dns)).toEqual(["127.0.0.1"]);
    expect(await code(p.resolve({ host: "10.6.0.1", kind: "ipv4", port: 443 }, dns))).toBe("EGRESS_DENIED");
    expect(p.addressProblem("::ffff:10.1.1.1")).toBeNull();
    expect(p.addressProblem("192.168.0.1")).not.toBeNull();
    const open = new EgressPolicy(cfg({ allowPrivate: true, denyCidrs: ["169.254.0.0/16"] }));
    expect(open.addressProblem("127.0.0.1")).toBeNull();
    expect(open.addressProblem("169.254.169.254")).not.toBeNull();
  });

  test("resolution failures are UPSTREAM_DNS, including slow resolvers", async () => {
    const p = new EgressPolicy(cfg());
    expect(await code(p.resolve({ host: "missing.example", kind: "name", port: 443 }, dns))).toBe("UPSTREAM_DNS");
    expect(await code(p.resolve({ host: "empty.example", kind: "name", port: 443 }, dns))).toBe("UPSTREAM_DNS");
    const hang: Lookup = () => new Promise(() => {});
    expect(await code(p.resolve({ host: "slow.example", kind: "name", port: 443 }, hang, 20))).toBe("UPSTREAM_DNS");
  });

  test("the system resolver resolves localhost (and policy refuses it)", async () => {
    const p = new EgressPolicy(cfg());
    expect(await code(p.resolve({ host: "localhost", kind: "name", port: 443 }))).toBe("EGRESS_DENIED");
  });
});
