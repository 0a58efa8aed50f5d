/**
 * The forward-proxy part of the config: connect and socks5 listeners,
 * [listeners.tls], [[tokens]] and tokens_file, [egress], [[connect_rules]]
 * and HBONE route targets.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfigFile, parseConfig, reloadProblems } from "./mod.ts";
import { canonicalDestination } from "./validate_policy.ts";
import { issuesOf } from "./test_util.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const TESTDATA = join(HERE, "testdata");
const PKI = join(TESTDATA, "pki");
const opts = { baseDir: TESTDATA };
const issues = (toml: string) => issuesOf(toml, opts);

const CONNECT = `[[listeners]]\nname = "p"\nkind = "connect"\naddress = "127.0.0.1:0"\n`;
const SOCKS = `[[listeners]]\nname = "s"\nkind = "socks5"\naddress = "127.0.0.1:0"\n`;
const TLS = `[listeners.tls]\ncert = "pki/server.crt"\nkey = "pki/server.key"\n`;
const TOKEN = `[[tokens]]\nname = "t"\nsha256 = "${"a".repeat(64)}"\n`;

describe("connect and socks5 listeners", () => {
  test("defaults", () => {
    const c = parseConfig(CONNECT + SOCKS, opts);
    expect(c.listeners[0]).toEqual({
      name: "p",
      kind: "connect",
      address: { kind: "tcp", hostname: "127.0.0.1", port: 0 },
      acceptProxy: "none",
      handshakeTimeoutMs: 10_000,
      idleTimeoutMs: 600_000,
      maxConnections: 0,
      maxHeaderBytes: 16_384,
      maxStreams: 1_000,
      connectTimeoutMs: 10_000,
      tls: null,
      auth: "none",
    });
    expect(c.listeners[1]).toEqual({
      name: "s",
      kind: "socks5",
      address: { kind: "tcp", hostname: "127.0.0.1", port: 0 },
      acceptProxy: "none",
      handshakeTimeoutMs: 10_000,
      idleTimeoutMs: 600_000,
      maxConnections: 0,
      connectTimeoutMs: 10_000,
      auth: "none",
    });
  });

  test("full.toml: connect with TLS, socks5, tokens (inline and file), egress, rules, hbone routes", () => {
    const c = loadConfigFile(join(TESTDATA, "full.toml"));
    const p = c.listeners.find((l) => l.name === "proxy")!;
    if (p.kind !== "connect" || p.tls === null) throw new Error("expected a TLS connect listener");
    expect(p.maxHeaderBytes).toBe(8192);
    expect(p.maxStreams).toBe(250);
    expect(p.connectTimeoutMs).toBe(5000);
    expect(p.auth).toBe("token");
    expect(p.handshakeTimeoutMs).toBe(3000);
    expect(p.tls.certPath).toBe(join(PKI, "server.crt"));
    expect(p.tls.cert).toBe(readFileSync(join(PKI, "server.crt"), "utf8"));
    expect(p.tls.clientCa).toBe(readFileSync(join(PKI, "ca.crt"), "utf8"));
    expect([p.tls.clientCert, p.tls.trustDomain, p.tls.namespace]).toEqual(["require", "cluster.local", "edge"]);
    expect(c.listeners.find((l) => l.name === "socks")).toMatchObject({ kind: "socks5", auth: "token" });
    expect(c.tokensFile).toBe(join(TESTDATA, "tokens.toml"));
    expect(c.tokens.map((t) => [t.name, t.sha256, t.roles, t.services, t.allow, t.deny, t.maxSessions])).toEqual([
      ["ci", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", ["proxy", "source"], ["web", "db-*"], ["10.0.0.0/8"], ["10.9.0.0/16"], 4],
      ["share", "3a6eb0790f39ac87c94f3856b2dd2c5d110e6811602261a9a923d3bb23adc8b7", ["http"], ["*"], [], [], 0],
      ["alice", "d0e8b8f11c98f369016eb2ed3c541e1f01382f9d5b3104c9ffd06b6175a46271", ["operator"], ["*"], [], [], 0],
      ["from-file", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", ["proxy"], ["*"], [], [], 0],
    ]);
    expect(c.tokens.find((t) => t.name === "alice")!.agents).toEqual(["dev-*"]);
    expect(c.egress).toEqual({
      allowHosts: ["*.example.com", "example.org"],
      allowPorts: [{ from: 443, to: 443 }, { from: 8000, to: 8099 }],
      allowCidrs: ["10.1.0.0/16"],
      denyCidrs: ["10.1.2.0/24"],
      allowPrivate: true,
    });
    expect(c.connectRules).toEqual([{ identity: "spiffe://cluster.local/ns/*/sa/*", destinations: ["*.svc.cluster.local:*", "10.1.0.0/16"], listeners: ["proxy"] }]);
    const mesh = c.routes.find((r) => r.name === "mesh")!;
    expect(mesh.targets).toEqual([{ kind: "tcp", hostname: "10.1.0.5", port: 15008 }]);
    expect(mesh.hbone).toMatchObject({ servername: "edge.example", authority: null, port: 8080, caPath: join(PKI, "ca.crt") });
    expect(c.routes.find((r) => r.name === "mesh-fixed")!.hbone).toMatchObject({ servername: null, authority: "web.internal:443", port: 0 });
    // Routes without hbone targets carry no hbone key at all.
    expect("hbone" in c.routes[0]!).toBe(false);
  });

  test("trust domain and namespace come from the certificate's SPIFFE ID when not set", () => {
    const c = parseConfig(CONNECT + TLS + `client_ca = "pki/ca.crt"\nclient_cert = "request"\n`, opts);
    const l = c.listeners[0]!;
    expect(l.kind === "connect" && [l.tls!.trustDomain, l.tls!.namespace]).toEqual(["cluster.local", "edge"]);
  });

  test.each([
    [CONNECT + `max_client_hello = 4096`, `listeners[0].max_client_hello: only applies to kind = "sni" listeners, this one is "connect"`],
    [SOCKS + `max_header_bytes = 4096`, `listeners[0].max_header_bytes: only applies to kind = "connect" or "http" listeners, this one is "socks5"`],
    [`[[listeners]]\nkind = "sni"\naddress = "127.0.0.1:0"\nauth = "token"`, `listeners[0].auth: only applies to kind = "connect" or "socks5" listeners, this one is "sni"`],
    [CONNECT + `max_header_bytes = 1023`, "listeners[0].max_header_bytes: must be 1024..65536, got 1023"],
    [CONNECT + `max_header_bytes = 65537`, "listeners[0].max_header_bytes: must be 1024..65536, got 65537"],
    [CONNECT + `max_streams = 0\n` + TLS, "listeners[0].max_streams: must be 1..100000, got 0"],
    [CONNECT + `max_streams = 10`, "listeners[0].max_streams: only applies with [listeners.tls] (HTTP/2 CONNECT is offered over TLS only)"],
    [CONNECT + `auth = "basic"`, `listeners[0].auth: must be one of none | token, got "basic"`],
    [SOCKS + `auth = "token"`, `listeners[0].auth: "token" needs a [[tokens]] entry with role "proxy" (inline or in tokens_file); none has it, so every client would be refused`],
    [CONNECT + `tls = "yes"`, `listeners[0].tls: must be a table ([listeners[0].tls]), got "yes"`],
    [CONNECT + `[listeners.tls]\ncert = "pki/server.crt"`, "listeners[0].tls.key: is required"],
    [CONNECT + TLS + `client_cert = "require"`, `listeners[0].tls.client_cert: "require" needs client_ca: the CA bundle that signs client certificates`],
    [CONNECT + TLS + `client_cert = "always"`, `listeners[0].tls.client_cert: must be one of none | request | require, got "always"`],
    [CONNECT + TLS + `ciphers = "x"`, `listeners[0].tls.ciphers: unknown key`],
    [CONNECT + TLS + `namespace = "a/b"`, `listeners[0].tls.namespace: must be 1..253 of [A-Za-z0-9._-], got "a/b"`],
    [CONNECT + `[listeners.tls]\ncert = "pki/server.crt"\nkey = "pki/client.key"`, `listeners[0].tls.key: ${join(PKI, "client.key")} is not the private key of listeners[0].tls.cert`],
    [CONNECT + `[listeners.tls]\ncert = "pki/server.key"\nkey = "pki/server.key"`, `listeners[0].tls.cert: ${join(PKI, "server.key")} is not a PEM certificate`],
  ])("%#", (toml, issue) => {
    const got = issues(toml);
    expect(got).toHaveLength(1);
    expect(got[0]!.startsWith(issue)).toBe(true);
  });

  test("a missing file names the field and the path", () => {
    const got = issues(CONNECT + `[listeners.tls]\ncert = "pki/nope.crt"\nkey = "pki/server.key"\n`);
    expect(got).toHaveLength(1);
    expect(got[0]).toStartWith(`listeners[0].tls.cert: cannot read ${join(PKI, "nope.crt")}: `);
  });

  test("client certificates without a trust domain, namespace or rules are refused; either lifts it", () => {
    const plain = CONNECT + `[listeners.tls]\ncert = "pki/plain.crt"\nkey = "pki/plain.key"\nclient_ca = "pki/ca.crt"\nclient_cert = "require"\n`;
    expect(issues(plain)).toEqual([
      "listeners[0].tls: HBONE clients are checked against the listener's own SPIFFE trust domain and namespace: set trust_domain and namespace, " +
      "use a certificate with a spiffe://<trust-domain>/ns/<namespace>/... URI SAN, or add [[connect_rules]] for this listener",
    ]);
    expect(issues(plain + `trust_domain = "td"\n`)).toHaveLength(1);
    const l = parseConfig(plain + `trust_domain = "td"\nnamespace = "ns"\n`, opts).listeners[0]!;
    expect(l.kind === "connect" && [l.tls!.trustDomain, l.tls!.namespace]).toEqual(["td", "ns"]);
    expect(parseConfig(plain + `[[connect_rules]]\nidentity = "*"\n`, opts).connectRules).toHaveLength(1);
    // A rule for another listener does not count.
    expect(issues(plain + `[[listeners]]\nname = "q"\nkind = "connect"\naddress = "127.0.0.1:0"\n[[connect_rules]]\nidentity = "*"\nlisteners = ["q"]\n`)).toHaveLength(1);
  });
});

describe("tokens", () => {
  test("roles and services default to proxy and *; sha256 is stored lowercase", () => {
    const c = parseConfig(`${CONNECT}auth = "token"\n[[tokens]]\nname = "a"\nsha256 = "${"AB".repeat(32)}"\n`, opts);
    expect(c.tokens).toEqual([{ name: "a", sha256: "ab".repeat(32), roles: ["proxy"], services: ["*"], allow: [], deny: [], maxSessions: 0 }]);
  });

  test.each([
    [`[[tokens]]\nsha256 = "${"a".repeat(64)}"`, "tokens[0].name: is required"],
    [`[[tokens]]\nname = "a"`, "tokens[0].sha256: is required"],
    [`[[tokens]]\nname = "a"\nsha256 = "abc"`, 'tokens[0].sha256: must be the 64 hex digits of the secret\'s SHA-256 (`edgemux hash-token` prints it), got "abc"'],
    [`[[tokens]]\nname = "a b"\nsha256 = "${"a".repeat(64)}"`, 'tokens[0].name: must be 1..253 of [A-Za-z0-9_.:@/-], got "a b"'],
    [`${TOKEN}roles = ["proxi"]`, 'tokens[0].roles[0]: must be one of proxy | source | destination | http | operator, got "proxi" (did you mean "proxy"?)'],
    [`${TOKEN}roles = []`, "tokens[0].roles: must name at least one role"],
    [`${TOKEN}services = ["a b"]`, 'tokens[0].services[0]: must be a service name or pattern of 1..253 [A-Za-z0-9_.-] with "*" globs, got "a b"'],
    [`${TOKEN}allow = ["10.0.0.1/8"]`, 'tokens[0].allow[0]: "10.0.0.1/8" has bits set past the /8 prefix (did you mean "10.0.0.0/8"?)'],
    [`${TOKEN}max_sessions = -1`, "tokens[0].max_sessions: must be 0..1000000, got -1"],
    [`${TOKEN}secret = "x"`, "tokens[0].secret: unknown key"],
    [`${TOKEN}${TOKEN}`, 'tokens[1].name: "t" is already used by tokens[0]'],
  ])("%#", (toml, issue) => {
    expect(issues(`${CONNECT}\n${toml}`)).toEqual([issue]);
  });

  test("tokens_file is read relative to the config, every load, and checked like inline tokens", () => {
    const dir = mkdtempSync(join(tmpdir(), "edgemux-config-"));
    const cfg = join(dir, "edgemux.toml");
    writeFileSync(cfg, `tokens_file = "more.toml"\n${CONNECT}auth = "token"\n${TOKEN}`);
    writeFileSync(join(dir, "more.toml"), `[[tokens]]\nname = "f"\nsha256 = "${"b".repeat(64)}"\n`);
    expect(loadConfigFile(cfg).tokens.map((t) => t.name)).toEqual(["t", "f"]);
    writeFileSync(join(dir, "more.toml"), `[[tokens]]\nname = "g"\nsha256 = "${"c".repeat(64)}"\n[[tokens]]\nname = "t"\nsha256 = "${"c".repeat(64)}"\nextra = 1\n`);
    expect(() => loadConfigFile(cfg)).toThrow(`${join(dir, "more.toml")}: tokens[1].extra: unknown key`);
    try {
      loadConfigFile(cfg);
    } catch (e) {
      expect((e as { issues: string[] }).issues).toEqual([
        `${join(dir, "more.toml")}: tokens[1].extra: unknown key`,
        `${join(dir, "more.toml")}: tokens[1].name: "t" is already used by tokens[0]`,
      ]);
    }
    writeFileSync(join(dir, "more.toml"), `[[tokens]\n`);
    expect(() => loadConfigFile(cfg)).toThrow(`tokens_file: ${join(dir, "more.toml")}: line 1, column`);
    writeFileSync(join(dir, "more.toml"), `workers = 3\n`);
    expect(() => loadConfigFile(cfg)).toThrow(`${join(dir, "more.toml")}:.workers: unknown key`);
  });

  test("a missing tokens_file is an error naming it", () => {
    expect(issues(`tokens_file = "nope.toml"\n${CONNECT}`)[0]).toStartWith(`tokens_file: cannot read ${join(TESTDATA, "nope.toml")}`);
  });
});

describe("egress", () => {
  test("defaults: any host, port 443, no private ranges", () => {
    expect(parseConfig(CONNECT, opts).egress).toEqual({ allowHosts: ["*"], allowPorts: [{ from: 443, to: 443 }], allowCidrs: [], denyCidrs: [], allowPrivate: false });
  });

  test("ports: numbers, ranges and *", () => {
    expect(parseConfig(`${CONNECT}[egress]\nallow_ports = [22, "1000-2000", "*"]\n`, opts).egress.allowPorts).toEqual([
      { from: 22, to: 22 },
      { from: 1000, to: 2000 },
      { from: 1, to: 65535 },
    ]);
  });

  test.each([
    [`allow_ports = []`, `egress.allow_ports: must not be empty: no tunnel could pass; use ["*"] for every port`],
    [`allow_ports = [0]`, "egress.allow_ports[0]: must be a port 1..65535, got 0"],
    [`allow_ports = ["9-1"]`, `egress.allow_ports[0]: must be a port range "lo-hi" with 1 <= lo <= hi <= 65535, or "*", got "9-1"`],
    [`allow_ports = 443`, `egress.allow_ports: must be an array of ports (443, "8000-8099", "*"), got 443`],
    [`allow_hosts = ["*.*.example"]`, `egress.allow_hosts[0]: may use "*" only as the whole first label ("*.example.com") or alone ("*"), got "*.*.example"`],
    [`allow_cidrs = ["300.0.0.0/8"]`, `egress.allow_cidrs[0]: must be an IP address or CIDR block ("10.0.0.0/8", "2001:db8::/32"), got "300.0.0.0/8"`],
    [`allow_private = "yes"`, `egress.allow_private: must be true or false, got "yes"`],
    [`allow_host = ["*"]`, `egress.allow_host: unknown key (did you mean "allow_hosts"?)`],
  ])("%#", (body, issue) => {
    expect(issues(`${CONNECT}[egress]\n${body}\n`)).toEqual([issue]);
  });
});

describe("connect_rules", () => {
  test("destinations are canonical", () => {
    expect(canonicalDestination("*.SVC.cluster.local:*")).toEqual({ destination: "*.svc.cluster.local:*" });
    expect(canonicalDestination("[fd00:0::1]:443")).toEqual({ destination: "[fd00::1]:443" });
    expect(canonicalDestination("10.0.0.1:5432")).toEqual({ destination: "10.0.0.1:5432" });
    expect(canonicalDestination("10.0.0.0/8")).toEqual({ destination: "10.0.0.0/8" });
    expect(canonicalDestination("*:*")).toEqual({ destination: "*:*" });
    expect("error" in canonicalDestination("db")).toBe(true);
    expect("error" in canonicalDestination("db:0")).toBe(true);
    expect("error" in canonicalDestination("[::1:443")).toBe(true);
  });

  test.each([
    [`identity = "spiffe://td/ns/*/sa/*"\nlisteners = ["q"]`, `connect_rules[0].listeners[0]: no connect listener named "q"`],
    [`identity = "http://x"`, `connect_rules[0].identity: must be a SPIFFE ID pattern like "spiffe://cluster.local/ns/*/sa/*" ("*" globs within a segment), or "*", got "http://x"`],
    [`destinations = ["x:1"]`, "connect_rules[0].identity: is required"],
    [`identity = "*"\ndestinations = ["db"]`, `connect_rules[0].destinations[0]: must be a CIDR ("10.0.0.0/8") or "host:port" with a hostname pattern or IP and a port or "*" ("*.svc.cluster.local:*", "[fd00::1]:443"), got "db"`],
  ])("%#", (body, issue) => {
    expect(issues(`${CONNECT}[[connect_rules]]\n${body}\n`)).toEqual([issue]);
  });
});

describe("hbone routes", () => {
  const SNI = `[[listeners]]\nkind = "sni"\naddress = "127.0.0.1:0"\n`;
  const HB = `[routes.hbone]\ncert = "pki/client.crt"\nkey = "pki/client.key"\nca = "pki/ca.crt"\n`;
  test.each([
    [`targets = ["hbone://h:15008"]`, `routes[0].hbone: hbone:// targets need [routes.hbone] with cert, key and ca (the client certificate for the hop and the CA that signs the hop's)`],
    [`targets = ["hbone://h:15008", "127.0.0.1:1"]\n${HB}`, `routes[0].targets: mixes hbone:// hops with plain targets; a route's targets are all HBONE hops or none`],
    [`targets = ["127.0.0.1:1"]\n${HB}`, `routes[0].hbone: only applies to a route whose targets are "hbone://host:port" hops`],
    [`targets = ["hbone://unix:/x"]\n${HB}`, `routes[0].targets[0]: must be "host:port" (no unix socket here), got "unix:/x"`],
    [`targets = ["hbone://h:15008"]\n${HB}authority = "a:1"\nport = 2`, `routes[0].hbone.port: only applies when authority is not set (it is the port used with the SNI name)`],
    [`targets = ["hbone://h:15008"]\n${HB}authority = "a"`, `routes[0].hbone.authority: must be "host:port" or "[v6]:port", got "a"`],
    [`targets = ["hbone://h:15008"]\n${HB}cipher = 1`, `routes[0].hbone.cipher: unknown key`],
  ])("%#", (body, issue) => {
    expect(issues(`${SNI}[[routes]]\nmatch = "a.example"\n${body}\n`)).toEqual([issue]);
  });
});

describe("reload", () => {
  test("tokens, egress and rules reload; TLS settings need a restart", () => {
    const a = parseConfig(`${CONNECT}${TLS}`, opts);
    const b = parseConfig(`${CONNECT}${TLS}${TOKEN}\n[egress]\nallow_private = true\n[[connect_rules]]\nidentity = "*"\n`, opts);
    expect(reloadProblems(a, b)).toEqual([]);
    const c = parseConfig(`${CONNECT}${TLS}client_ca = "pki/ca.crt"\nclient_cert = "request"\n`, opts);
    expect(reloadProblems(a, c)).toEqual([`listeners[0].tls: changing a listener's certificate, key, client_ca or client_cert needs a restart`]);
  });
});
