import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "smol-toml";
import { ProxyError } from "../errors/mod.ts";
import { ConfigError, defaultConfigToml, loadConfigFile, loadDefaultConfig, parseConfig } from "./mod.ts";
import { ACCESS_KEYS, ADMIN_KEYS, ADMIN_TLS_KEYS, ADMIN_TOKEN_KEYS, LISTENER_KEYS, LOG_KEYS, RELAY_KEYS, STATS_KEYS, TOP_KEYS } from "./validate.ts";
import { HBONE_KEYS, ROUTE_KEYS } from "./validate_routes.ts";
import { CONNECT_RULE_KEYS, EGRESS_KEYS, TOKEN_KEYS } from "./validate_policy.ts";
import { TLS_KEYS } from "./validate_tls.ts";
import { ACME_KEYS, HTTP_CERT_KEYS, HTTP_TLS_KEYS } from "./validate_acme.ts";
import { issuesOf, LISTENER } from "./test_util.ts";
import { CLUSTER_KEYS, CLUSTER_TLS_KEYS } from "./validate_cluster.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const FULL = join(HERE, "testdata", "full.toml");

const ROUTE = `
[[routes]]
match = "example.com"
targets = ["127.0.0.1:8080"]
`;

describe("defaults", () => {
  test("every option left out takes its documented default", () => {
    const c = parseConfig(LISTENER + ROUTE, { baseDir: "/etc/edgemux" });
    expect(c).toEqual({
      workers: 0,
      drainTimeoutMs: 30_000,
      log: { level: "info", format: "text", connections: true },
      admin: { address: { hostname: "127.0.0.1", port: 9901 }, tokens: [], insecure: false, tls: null },
      access: { allow: [], deny: [] },
      stats: { maxRoutes: 4096 },
      relay: { mode: "auto", maxPipes: 1024, promoteAfter: 131_072 },
      listeners: [
        {
          name: "sni",
          kind: "sni",
          address: { kind: "tcp", hostname: "127.0.0.1", port: 0 },
          acceptProxy: "none",
          handshakeTimeoutMs: 10_000,
          idleTimeoutMs: 600_000,
          maxClientHello: 16_384,
          maxConnections: 0,
        },
      ],
      routes: [
        {
          name: "example.com",
          match: "example.com",
          alpn: [],
          listeners: [],
          targets: [{ kind: "tcp", hostname: "127.0.0.1", port: 8080 }],
          balance: "round_robin",
          connectTimeoutMs: 3_000,
          proxyProtocol: "none",
          directory: null,
        },
      ],
      tokens: [],
      tokensFile: null,
      egress: { allowHosts: ["*"], allowPorts: [{ from: 443, to: 443 }], allowCidrs: [], denyCidrs: [], allowPrivate: false },
      connectRules: [],
      acme: null,
      cluster: null,
    });
  });

  test("the built-in config parses: admin, one sni listener, directory mode on ./sni.d", () => {
    const c = loadDefaultConfig();
    expect(c.admin.address).toEqual({ hostname: "127.0.0.1", port: 9901 });
    expect(c.listeners.map((l) => [l.name, l.kind, l.address])).toEqual([
      ["sni", "sni", { kind: "tcp", hostname: "127.0.0.1", port: 8443 }],
    ]);
    expect(c.routes).toHaveLength(1);
    expect(c.routes[0]!.match).toBe("*");
    expect(c.routes[0]!.targets).toEqual([]);
    expect(c.routes[0]!.directory).toBe(join(process.cwd(), "sni.d"));
    // Same text, same path: what `edgemux` prints is what it runs.
    expect(parseConfig(defaultConfigToml, { baseDir: process.cwd() })).toEqual(c);
  });
});

describe("full.toml sets every option", () => {
  test("parses to the expected values", () => {
    const c = loadConfigFile(FULL);
    expect(c.workers).toBe(4);
    expect(c.drainTimeoutMs).toBe(45_000);
    expect(c.log).toEqual({ level: "debug", format: "json", connections: false });
    expect(c.admin.address).toEqual({ hostname: "127.0.0.1", port: 9902 });
    expect(c.admin.insecure).toBe(true);
    expect(c.admin.tokens).toEqual([
      { name: "ops", sha256: "32323cfa9ec9d62750daad0836a4cf3d7b60d23723b7852a529667deed01669f", scope: "admin" },
      { name: "prometheus", sha256: "7ccc6f421648a8f89c218935d5b404a0a83efc4a90ac589c7bc0e318715bca93", scope: "read" },
    ]);
    expect(c.admin.tls?.certPath).toBe(join(HERE, "testdata", "pki", "plain.crt"));
    expect(c.admin.tls?.key).toContain("PRIVATE KEY");
    expect(c.access).toEqual({ allow: ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"], deny: ["10.6.6.0/24"] });
    expect(c.stats.maxRoutes).toBe(1024);
    expect(c.listeners[0]).toEqual({
      name: "public",
      kind: "sni",
      address: { kind: "tcp", hostname: "0.0.0.0", port: 443 },
      acceptProxy: "none",
      handshakeTimeoutMs: 5_000,
      idleTimeoutMs: 3_600_000,
      maxClientHello: 32_768,
      maxConnections: 100_000,
    });
    expect(c.listeners[1]!.acceptProxy).toBe("v2");
    expect(c.listeners[1]!.idleTimeoutMs).toBe(0);
    expect(c.listeners[1]!.address).toEqual({ kind: "tcp", hostname: "::1", port: 8443 });
    expect(c.routes[0]).toEqual({
      name: "web",
      match: "example.com",
      alpn: ["h2", "http/1.1"],
      listeners: ["public"],
      targets: [
        { kind: "tcp", hostname: "127.0.0.1", port: 8080 },
        { kind: "tcp", hostname: "::1", port: 8080 },
        { kind: "tcp", hostname: "backend.internal", port: 443 },
        { kind: "unix", path: "/run/web.sock" },
      ],
      balance: "least_conn",
      connectTimeoutMs: 500,
      proxyProtocol: "v2",
      directory: null,
    });
    expect(c.routes[1]!.match).toBe("*.xn--bcher-kva.example");
    expect(c.routes[1]!.name).toBe("*.xn--bcher-kva.example");
    // Relative to the file's directory, not the working directory.
    expect(c.routes[2]!.directory).toBe(join(HERE, "testdata", "sni.d"));
    expect(c.routes[2]!.connectTimeoutMs).toBe(1_000);
  });

  test("uses every key the validator knows, and the README's configuration reference documents exactly those keys", () => {
    const raw = parse(readFileSync(FULL, "utf8"));
    const used = new Set<string>();
    const walk = (t: Record<string, unknown>, prefix: string) => {
      for (const [k, v] of Object.entries(t)) {
        const path = prefix + k;
        if (Array.isArray(v) && v.length > 0 && typeof v[0] === "object") for (const e of v) walk(e as Record<string, unknown>, path + ".");
        // A route's response_headers table holds field names, not config keys.
        else if (k !== "response_headers" && typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date)) walk(v as Record<string, unknown>, path + ".");
        else used.add(path);
      }
    };
    walk(raw, "");

    const known = new Set<string>([
      ...TOP_KEYS.filter((k) => !["log", "admin", "access", "stats", "relay", "acme", "listeners", "routes", "tokens", "egress", "connect_rules", "cluster"].includes(k)),
      ...LOG_KEYS.map((k) => `log.${k}`),
      ...ADMIN_KEYS.filter((k) => k !== "tokens" && k !== "tls").map((k) => `admin.${k}`),
      ...ADMIN_TOKEN_KEYS.map((k) => `admin.tokens.${k}`),
      ...ADMIN_TLS_KEYS.map((k) => `admin.tls.${k}`),
      ...ACCESS_KEYS.map((k) => `access.${k}`),
      ...STATS_KEYS.map((k) => `stats.${k}`),
      ...RELAY_KEYS.map((k) => `relay.${k}`),
      ...LISTENER_KEYS.filter((k) => k !== "tls").map((k) => `listeners.${k}`),
      ...TLS_KEYS.map((k) => `listeners.tls.${k}`),
      ...HTTP_TLS_KEYS.filter((k) => k !== "certificates").map((k) => `listeners.tls.${k}`),
      ...HTTP_CERT_KEYS.map((k) => `listeners.tls.certificates.${k}`),
      ...ACME_KEYS.map((k) => `acme.${k}`),
      ...ROUTE_KEYS.filter((k) => k !== "hbone").map((k) => `routes.${k}`),
      ...HBONE_KEYS.map((k) => `routes.hbone.${k}`),
      ...TOKEN_KEYS.map((k) => `tokens.${k}`),
      ...EGRESS_KEYS.map((k) => `egress.${k}`),
      ...CONNECT_RULE_KEYS.map((k) => `connect_rules.${k}`),
      ...CLUSTER_KEYS.filter((k) => k !== "tls").map((k) => `cluster.${k}`),
      ...CLUSTER_TLS_KEYS.map((k) => `cluster.tls.${k}`),
    ]);
    expect([...used].sort()).toEqual([...known].sort());

    const documented = new Set<string>();
    let prefix = "";
    const readme = readFileSync(join(HERE, "../../README.md"), "utf8");
    const section = readme.slice(readme.indexOf("\n## Configuration\n"), readme.indexOf("\n## Admin API\n"));
    for (const line of section.split("\n")) {
      // "### `[[routes]]`" rows are route keys; "### `[routes.hbone]`" rows carry their full path.
      if (line.startsWith("### ")) prefix = /\[\[([a-z_]+)\]\]/.exec(line)?.[1]?.concat(".") ?? "";
      const m = /^\| `([a-z0-9_.]+)` \|/.exec(line);
      if (m) documented.add(prefix + m[1]);
    }
    expect([...documented].sort()).toEqual([...known].sort());
  });
});

describe("bounds: each bad value names its field and bound", () => {
  const L = (extra: string) => `[[listeners]]\nkind = "sni"\naddress = "127.0.0.1:0"\n${extra}\n`;
  const R = (extra: string) => `${LISTENER}\n[[routes]]\nmatch = "a.example"\ntargets = ["127.0.0.1:1"]\n${extra}\n`;
  test.each([
    [`workers = 257\n${LISTENER}`, "workers: must be 0..256, got 257"],
    [`workers = -1\n${LISTENER}`, "workers: must be 0..256, got -1"],
    [`workers = "four"\n${LISTENER}`, `workers: must be an integer 0..256, got "four"`],
    [`workers = 1.5\n${LISTENER}`, "workers: must be an integer 0..256, got 1.5"],
    [`workers = 99999999999999999999\n${LISTENER}`, "workers: must be 0..256, got 99999999999999999999"],
    [`drain_timeout = "2h"\n${LISTENER}`, `drain_timeout: must be 0s..1h, got "2h"`],
    [`drain_timeout = 30\n${LISTENER}`, `drain_timeout: must be a duration string like "30s" (0s..1h), got 30`],
    [`drain_timeout = "30 s"\n${LISTENER}`, `drain_timeout: must be a duration like "250ms", "10s", "1m30s" (units ms, s, m, h, d), got "30 s"`],
    [`log = "debug"\n${LISTENER}`, `log: must be a table ([log]), got "debug"`],
    [`[log]\nlevel = "verbose"\n${LISTENER}`, `log.level: must be one of debug | info | warn | error, got "verbose"`],
    [`[log]\nlevel = "warning"\n${LISTENER}`, `log.level: must be one of debug | info | warn | error, got "warning" (did you mean "warn"?)`],
    [`[log]\nformat = 1\n${LISTENER}`, `log.format: must be one of text | json, got 1`],
    [`[log]\nconnections = "yes"\n${LISTENER}`, `log.connections: must be true or false, got "yes"`],
    [`[admin]\naddress = "127.0.0.1"\n${LISTENER}`, `admin.address: must be "host:port" or "[v6]:port", got "127.0.0.1"; "off" disables the admin API`],
    [`[admin]\naddress = "unix:/x.sock"\n${LISTENER}`, `admin.address: must be "host:port" (no unix socket here), got "unix:/x.sock"; "off" disables the admin API`],
    [`[admin]\naddress = "127.0.0.1:70000"\n${LISTENER}`, `admin.address: port must be 0..65535, got 70000; "off" disables the admin API`],
    [`[access]\nallow = ["10.0.0.0/33"]\n${LISTENER}`, `access.allow[0]: prefix length must be 0..32, got "33"`],
    [`[access]\ndeny = ["::/0", "::1/129"]\n${LISTENER}`, `access.deny[1]: prefix length must be 0..128, got "129"`],
    [`[access]\nallow = "10.0.0.0/8"\n${LISTENER}`, `access.allow: must be an array of strings, got "10.0.0.0/8"`],
    [`[access]\nallow = ["10.0.0.0/8", 7]\n${LISTENER}`, `access.allow[1]: must be a string, got 7`],
    [`[access]\nallow = ["10.0.0.0/8", "10.0.0.0/8"]\n${LISTENER}`, `access.allow[1]: duplicate of access.allow[0] ("10.0.0.0/8")`],
    [`[stats]\nmax_routes = 0\n${LISTENER}`, "stats.max_routes: must be 1..65536, got 0"],
    [`[relay]\nmode = "splice"\n${LISTENER}`, `relay.mode: must be one of auto | kernel | js, got "splice"`],
    [`[relay]\nmax_pipes = 1\n${LISTENER}`, "relay.max_pipes: must be 2..16384, got 1"],
    [`[relay]\npromote_after = -1\n${LISTENER}`, "relay.promote_after: must be 0..1073741824, got -1"],
    [`[relay]\npipes = 4\n${LISTENER}`, "relay.pipes: unknown key"],
    [`[stats]\nmax_routes = 65537\n${LISTENER}`, "stats.max_routes: must be 1..65536, got 65537"],
    [L(`name = "Bad Name"`), `listeners[0].name: must match [a-z0-9_-]{1,64}, got "Bad Name"`],
    [L(`name = "${"a".repeat(65)}"`), `listeners[0].name: must match [a-z0-9_-]{1,64}, got "${"a".repeat(65)}"`],
    [`[[listeners]]\naddress = "127.0.0.1:0"`, "listeners[0].kind: is required (sni | connect | socks5 | tunnel | tcp | udp | http)"],
    [`[[listeners]]\nkind = "https"\naddress = "127.0.0.1:0"`, `listeners[0].kind: must be one of sni | connect | socks5 | tunnel | tcp | udp | http, got "https" (did you mean "http"?)`],
    [`[[listeners]]\nkind = "sni"`, "listeners[0].address: is required"],
    [`[[listeners]]\nkind = "sni"\naddress = "127.0.0.1:70000"`, "listeners[0].address: port must be 0..65535, got 70000"],
    [L(`accept_proxy = "v3"`), `listeners[0].accept_proxy: must be one of none | v1 | v2 | any, got "v3"`],
    [L(`handshake_timeout = "50ms"`), `listeners[0].handshake_timeout: must be 100ms..5m, got "50ms"`],
    [L(`handshake_timeout = "6m"`), `listeners[0].handshake_timeout: must be 100ms..5m, got "6m"`],
    [L(`idle_timeout = "500ms"`), `listeners[0].idle_timeout: must be "0s" (off) or 1s..7d, got "500ms"`],
    [L(`idle_timeout = "8d"`), `listeners[0].idle_timeout: must be "0s" (off) or 1s..7d, got "8d"`],
    [L(`max_client_hello = 511`), "listeners[0].max_client_hello: must be 512..65536, got 511"],
    [L(`max_client_hello = 65537`), "listeners[0].max_client_hello: must be 512..65536, got 65537"],
    [L(`max_connections = -1`), "listeners[0].max_connections: must be 0..10000000, got -1"],
    [L(`max_connections = 10000001`), "listeners[0].max_connections: must be 0..10000000, got 10000001"],
    [`listeners = 3`, "listeners: must be an array of tables ([[listeners]]), got 3"],
    [`[listeners]\nkind = "sni"`, "listeners: must be an array of tables ([[listeners]]), got a table"],
    [R(`name = "bad name"`), `routes[0].name: must be 1..253 of [A-Za-z0-9_.*:@/-], got "bad name"`],
    [R(`connect_timeout = "5ms"`), `routes[0].connect_timeout: must be 10ms..5m, got "5ms"`],
    [R(`connect_timeout = "301s"`), `routes[0].connect_timeout: must be 10ms..5m, got "301s"`],
    [R(`balance = "random"`), `routes[0].balance: must be one of round_robin | least_conn, got "random"`],
    [R(`balance = "least-conn"`), `routes[0].balance: must be one of round_robin | least_conn, got "least-conn" (did you mean "least_conn"?)`],
    [R(`proxy_protocol = "v3"`), `routes[0].proxy_protocol: must be one of none | v1 | v2, got "v3"`],
    [R(`alpn = [""]`), `routes[0].alpn[0]: must be 1..255 printable ASCII characters, got ""`],
    [R(`alpn = ["h2", "${"x".repeat(256)}"]`), `routes[0].alpn[1]: must be 1..255 printable ASCII characters, got "${"x".repeat(80)}…"`],
    [R(`alpn = ["h2", "h2"]`), `routes[0].alpn[1]: duplicate of routes[0].alpn[0] ("h2")`],
    [R(`alpn = [${Array(33).fill('"h2"').join(",")}]`), `routes[0].alpn: must have at most 32 entries, got 33`],
    [`${LISTENER}\n[[routes]]\nmatch = "a.example"\ntargets = ["127.0.0.1:0"]`, "routes[0].targets[0]: port must be 1..65535, got 0"],
    [`${LISTENER}\n[[routes]]\nmatch = "a.example"\ntargets = ["[::1]:443", "[0::1]:443"]`, `routes[0].targets[1]: duplicate of routes[0].targets[0] ("[::1]:443")`],
    [`${LISTENER}\n[[routes]]\ntargets = ["127.0.0.1:1"]`, "routes[0].match: is required"],
    [`${LISTENER}\n[[routes]]\nmatch = "*.*.example"\ntargets = ["127.0.0.1:1"]`, `routes[0].match: may use "*" only as the whole first label ("*.example.com") or alone ("*"), got "*.*.example"`],
  ])("%#", (toml, issue) => {
    expect(issuesOf(toml)).toEqual([issue]);
  });
});

describe("unknown keys", () => {
  test.each([
    [`worker = 4\n${LISTENER}`, `worker: unknown key (did you mean "workers"?)`],
    [`[logs]\nlevel = "info"\n${LISTENER}`, `logs: unknown key (did you mean "log"?)`],
    [`[log]\nlevl = "info"\n${LISTENER}`, `log.levl: unknown key (did you mean "level"?)`],
    [`[admin]\naddr = "off"\n${LISTENER}`, `admin.addr: unknown key (did you mean "address"?)`],
    [`[admin]\nport = 9901\n${LISTENER}`, `admin.port: unknown key`],
    [`frobnicate = 1\n${LISTENER}`, `frobnicate: unknown key`],
    [`${LISTENER}\n[[listeners]]\nkind = "sni"\nname = "b"\nadress = "127.0.0.1:0"\naddress = "127.0.0.1:0"`, `listeners[1].adress: unknown key (did you mean "address"?)`],
    [`${LISTENER}max-connections = 5`, `listeners[0].max-connections: unknown key (did you mean "max_connections"?)`],
    [`${LISTENER}\n[[routes]]\nmatch = "a.example"\ntarget = ["127.0.0.1:1"]\ntargets = ["127.0.0.1:1"]`, `routes[0].target: unknown key (did you mean "targets"?)`],
  ])("%#", (toml, issue) => {
    expect(issuesOf(toml)).toEqual([issue]);
  });
});

describe("cross-field rules", () => {
  test("a config needs a listener", () => {
    expect(issuesOf(`workers = 1`)).toEqual(["listeners: at least one [[listeners]] table is required"]);
    expect(issuesOf(`listeners = []`)).toEqual(["listeners: at least one [[listeners]] table is required"]);
  });

  test("listener names are unique; the default name is the kind", () => {
    expect(issuesOf(`${LISTENER}${LISTENER}`)).toEqual([
      `listeners[1].name: "sni" is already used by listeners[0] (name defaults to the kind; give each listener a name)`,
    ]);
    expect(issuesOf(`${LISTENER}name = "a"\n${LISTENER}name = "a"\n`)).toEqual([`listeners[1].name: "a" is already used by listeners[0]`]);
    expect(parseConfig(`${LISTENER}name = "a"\n${LISTENER}name = "b"\n`).listeners.map((l) => l.name)).toEqual(["a", "b"]);
  });

  test("two listeners on one address, or on the admin address, are refused; port 0 never clashes", () => {
    const two = (a: string, b: string) => `[[listeners]]\nname="a"\nkind="sni"\naddress="${a}"\n[[listeners]]\nname="b"\nkind="sni"\naddress="${b}"\n`;
    expect(issuesOf(two("127.0.0.1:8443", "127.0.0.1:8443"))).toEqual(["listeners[1].address: 127.0.0.1:8443 is already used by listeners[0]"]);
    expect(issuesOf(two("[::1]:8443", "[0:0::1]:8443"))).toEqual(["listeners[1].address: [::1]:8443 is already used by listeners[0]"]);
    expect(issuesOf(two("unix:/tmp/a", "unix:/tmp/a"))).toEqual(["listeners[1].address: unix:/tmp/a is already used by listeners[0]"]);
    expect(issuesOf(two("127.0.0.1:9901", "127.0.0.1:1"))).toEqual(["listeners[0].address: 127.0.0.1:9901 is already the admin address"]);
    expect(parseConfig(two("127.0.0.1:0", "127.0.0.1:0")).listeners).toHaveLength(2);
    expect(parseConfig(`[admin]\naddress = "off"\n` + two("127.0.0.1:9901", "127.0.0.1:1")).admin.address).toBeNull();
  });

  test("a route has exactly one of targets and directory", () => {
    const r = (body: string) => issuesOf(`${LISTENER}\n[[routes]]\nmatch = "a.example"\n${body}`);
    expect(r(``)).toEqual(["routes[0]: needs a non-empty targets list or a directory"]);
    expect(r(`targets = []\ndirectory = ""`)).toEqual(["routes[0]: needs a non-empty targets list or a directory"]);
    expect(r(`targets = ["127.0.0.1:1"]\ndirectory = "/srv/sni"`)).toEqual(["routes[0]: set either targets or directory, not both"]);
    expect(r(`directory = "/srv/sni"\nbalance = "least_conn"`)).toEqual(["routes[0].balance: only applies to targets, not to directory mode"]);
  });

  test("directory is resolved against baseDir and stored absolute", () => {
    const t = (dir: string) => parseConfig(`${LISTENER}\n[[routes]]\nmatch = "*"\ndirectory = "${dir}"`, { baseDir: "/etc/edgemux" }).routes[0]!.directory;
    expect(t("sni.d")).toBe("/etc/edgemux/sni.d");
    expect(t("../srv/./sni")).toBe("/etc/srv/sni");
    expect(t("/srv/sni/")).toBe("/srv/sni");
  });

  test("route listeners must name sni listeners", () => {
    const toml = `${LISTENER}name = "public"\n[[routes]]\nmatch = "a.example"\ntargets = ["127.0.0.1:1"]\nlisteners = ["publc", "public", "public"]`;
    expect(issuesOf(toml)).toEqual([
      `routes[0].listeners[0]: no sni, tcp, udp or http listener named "publc" (did you mean "public"?)`,
      `routes[0].listeners[2]: duplicate of routes[0].listeners[1] ("public")`,
    ]);
  });

  test("route names are unique; the default name is the canonical match", () => {
    const route = (match: string, extra = "") => `\n[[routes]]\nmatch = "${match}"\ntargets = ["127.0.0.1:1"]\n${extra}\n`;
    expect(issuesOf(LISTENER + route("a.example", `name = "x"`) + route("b.example", `name = "x"`))).toEqual([
      `routes[1].name: "x" is already used by routes[0]`,
    ]);
    expect(issuesOf(LISTENER + route("a.example", `alpn = ["h2"]`) + route("A.example.", `alpn = ["http/1.1"]`))).toEqual([
      `routes[1].name: "a.example" is already used by routes[0] (name defaults to match; give one of them a name)`,
    ]);
  });

  test("a route shadowed by an earlier one with the same match, alpn set and listener is refused", () => {
    const two = `[[listeners]]\nname="a"\nkind="sni"\naddress="127.0.0.1:0"\n[[listeners]]\nname="b"\nkind="sni"\naddress="127.0.0.1:0"\n`;
    const route = (name: string, extra: string) => `\n[[routes]]\nname = "${name}"\nmatch = "a.example"\ntargets = ["127.0.0.1:1"]\n${extra}\n`;
    expect(issuesOf(two + route("r0", `alpn = ["h2", "http/1.1"]`) + route("r1", `alpn = ["http/1.1", "h2"]`))).toEqual([
      `routes[1]: same match "a.example", alpn ["h2","http/1.1"] and listener "a" as routes[0]; it could never be chosen`,
    ]);
    // An empty listener list means every sni listener, so it overlaps a route on "b".
    expect(issuesOf(two + route("r0", `listeners = ["b"]`) + route("r1", ``))).toEqual([
      `routes[1]: same match "a.example", any alpn and listener "b" as routes[0]; it could never be chosen`,
    ]);
    // Different alpn sets or disjoint listeners are fine.
    expect(parseConfig(two + route("r0", `alpn = ["h2"]`) + route("r1", ``) + route("r2", `alpn = ["h2", "http/1.1"]`)).routes).toHaveLength(3);
    expect(parseConfig(two + route("r0", `listeners = ["a"]`) + route("r1", `listeners = ["b"]`)).routes).toHaveLength(2);
  });
});

describe("errors", () => {
  test("every problem is collected, and ConfigError lists them all", () => {
    const toml = `
workers = 300
worker = 4
[log]
level = "loud"
[[listeners]]
kind = "sni"
address = "127.0.0.1:70000"
max_client_hello = 10
[[routes]]
match = "a..example"
targets = ["127.0.0.1:0"]
`;
    let err: unknown;
    try {
      parseConfig(toml);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toBeInstanceOf(ProxyError);
    const ce = err as ConfigError;
    expect(ce.code).toBe("CONFIG");
    expect(ce.issues).toEqual([
      `worker: unknown key (did you mean "workers"?)`,
      "workers: must be 0..256, got 300",
      `log.level: must be one of debug | info | warn | error, got "loud"`,
      "listeners[0].address: port must be 0..65535, got 70000",
      "listeners[0].max_client_hello: must be 512..65536, got 10",
      `routes[0].match: has an empty label (two dots in a row), got "a..example"`,
      "routes[0].targets[0]: port must be 1..65535, got 0",
    ]);
    expect(ce.message.split("\n")).toEqual(["invalid configuration (7 problems):", ...ce.issues.map((i) => "  " + i)]);
  });

  test("TOML syntax errors carry line and column", () => {
    expect(issuesOf(`workers = 1\nworkers = 2\n`)).toEqual(["line 2, column 1: trying to redefine an already defined table or value"]);
    expect(issuesOf(`[log\n`)[0]).toStartWith("line 1, column ");
    expect(issuesOf(`__proto__ = 1\n`)[0]).toStartWith("line 1, column 1: ");
  });

  test("loadConfigFile names the file", () => {
    const missing = join(HERE, "testdata", "does-not-exist.toml");
    expect(() => loadConfigFile(missing)).toThrow(`${missing}: cannot read the config file`);
    try {
      loadConfigFile(join(HERE, "testdata", "full.toml"), { workers: "300" });
      throw new Error("expected a ConfigError");
    } catch (e) {
      expect((e as Error).message).toStartWith(`invalid configuration in ${join(HERE, "testdata", "full.toml")} (1 problem):`);
    }
  });
});

test("the metrics overflow label is not a route name", () => {
  expect(() =>
    parseConfig(`[[listeners]]\nkind = "sni"\naddress = "127.0.0.1:0"\n[[routes]]\nname = "_other"\nmatch = "a.test"\ntargets = ["127.0.0.1:1"]\n`)
  ).toThrow(/routes\[0\]\.name: "_other" is reserved/);
});
