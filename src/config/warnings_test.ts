/** The warning rules (warnings.ts): parsed configs only, nothing is bound. */
import { describe, expect, test } from "bun:test";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig, warnings } from "./mod.ts";

const TESTDATA = join(dirname(fileURLToPath(import.meta.url)), "testdata");
const opts = { baseDir: TESTDATA };
const fieldsOf = (toml: string) => warnings(parseConfig(toml, opts)).map((w) => w.field);

const ROUTE_ALL = `[[routes]]\nmatch = "*"\ntargets = ["127.0.0.1:8443"]\n`;
const TOKEN = `[[tokens]]\nname = "t"\nsha256 = "${"a".repeat(64)}"\nroles = ["proxy"]\n`;
const TLS = `[listeners.tls]\ncert = "pki/server.crt"\nkey = "pki/server.key"\nclient_ca = "pki/ca.crt"\n`;
const proxy = (kind: string, address: string, extra = "") => `[[listeners]]\nname = "p"\nkind = "${kind}"\naddress = "${address}"\n${extra}\n`;
const sni = (name: string) => `[[listeners]]\nname = "${name}"\nkind = "sni"\naddress = "127.0.0.1:0"\n`;

describe("warnings", () => {
  test("none for the built-in style config and for proxies on loopback", () => {
    expect(fieldsOf(sni("a") + ROUTE_ALL)).toEqual([]);
    for (const address of ["127.0.0.1:0", "127.9.9.9:3128", "[::1]:1080", "unix:/run/p.sock"]) {
      expect(fieldsOf(proxy("connect", address))).toEqual([]);
      expect(fieldsOf(proxy("socks5", address))).toEqual([]);
    }
  });

  test("a connect or socks5 listener off loopback with auth = none is an open proxy", () => {
    for (const address of ["0.0.0.0:3128", "[::]:3128", "10.1.2.3:1080", "[2001:db8::1]:1080"]) {
      for (const kind of ["connect", "socks5"]) {
        const w = warnings(parseConfig(proxy(kind, address), opts));
        expect(w).toHaveLength(1);
        expect(w[0]!.field).toBe("listeners[0].auth");
        expect(w[0]!.message).toContain(`${kind} listener "p" on ${address.slice(0, address.lastIndexOf(":"))} with auth = "none" is an open proxy`);
      }
    }
  });

  test("not open: auth = token, or a connect listener that requires a client certificate", () => {
    expect(fieldsOf(TOKEN + proxy("socks5", "0.0.0.0:1080", `auth = "token"`))).toEqual([]);
    expect(fieldsOf(TOKEN + proxy("connect", "0.0.0.0:3128", `auth = "token"`))).toEqual([]);
    expect(fieldsOf(proxy("connect", "[::]:15008", `${TLS}client_cert = "require"`))).toEqual([]);
    // A certificate that is only requested does not authenticate everyone.
    expect(fieldsOf(proxy("connect", "[::]:15008", `${TLS}client_cert = "request"`))).toEqual(["listeners[0].auth"]);
  });

  test("[egress] allow_private = true", () => {
    const w = warnings(parseConfig(sni("a") + ROUTE_ALL + `[egress]\nallow_private = true\n`, opts));
    expect(w.map((x) => x.field)).toEqual(["egress.allow_private"]);
    expect(w[0]!.message).toContain("loopback, RFC 1918");
    expect(fieldsOf(sni("a") + ROUTE_ALL + `[egress]\nallow_private = false\n`)).toEqual([]);
  });

  test("an sni listener no route can match", () => {
    const named = (on: string) => `[[routes]]\nname = "to-${on}"\nmatch = "*"\nlisteners = ["${on}"]\ntargets = ["127.0.0.1:8443"]\n`;
    // Routes name only "a": "b" never matches.
    const w = warnings(parseConfig(sni("a") + sni("b") + named("a"), opts));
    expect(w).toEqual([{ field: "listeners[1]", message: expect.stringContaining(`no route can match on sni listener "b" (every [[routes]] entry names other listeners)`) }]);
    // A route with no listeners covers every sni listener; naming it covers it too.
    expect(fieldsOf(sni("a") + sni("b") + named("b") + `[[routes]]\nmatch = "x.example"\ntargets = ["127.0.0.1:8443"]\n`)).toEqual([]);
    expect(fieldsOf(sni("a") + sni("b") + named("a") + named("b"))).toEqual([]);
    // No route at all.
    expect(warnings(parseConfig(sni("a"), opts))[0]!.message).toContain("(there is no [[routes]] entry)");
  });

  test("every rule at once, in field order", () => {
    const toml = sni("a") + proxy("socks5", "0.0.0.0:1080") + `[egress]\nallow_private = true\n`;
    expect(fieldsOf(toml)).toEqual(["listeners[0]", "listeners[1].auth", "egress.allow_private"]);
  });
});
