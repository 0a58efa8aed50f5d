/** The http part of the config: `kind = "http"` listeners and the routes that name them. */
import { describe, expect, test } from "bun:test";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig, reloadProblems } from "./mod.ts";
import { issuesOf } from "./test_util.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const opts = { baseDir: join(HERE, "testdata") };
const issues = (toml: string) => issuesOf(toml, opts);

const HTTP = `[[listeners]]\nname = "web"\nkind = "http"\naddress = "127.0.0.1:0"\n`;
const TLS = `[listeners.tls]\ncert = "pki/server.crt"\nkey = "pki/server.key"\n`;
const ROUTE = `[[routes]]\nmatch = "app.example"\nlisteners = ["web"]\ntargets = ["127.0.0.1:8080"]\n`;
const TOKEN = (name: string, roles = '["http"]') => `[[tokens]]\nname = "${name}"\nsha256 = "${"c".repeat(64)}"\nroles = ${roles}\n`;

describe("http listeners", () => {
  test("defaults", () => {
    const c = parseConfig(HTTP + ROUTE, opts);
    expect(c.listeners[0]).toEqual({
      name: "web",
      kind: "http",
      address: { kind: "tcp", hostname: "127.0.0.1", port: 0 },
      acceptProxy: "none",
      handshakeTimeoutMs: 10_000,
      idleTimeoutMs: 600_000,
      maxConnections: 0,
      tls: null,
      maxHeaderBytes: 16_384,
      keepaliveTimeoutMs: 60_000,
      requestTimeoutMs: 60_000,
      redirectHttps: false,
      trustedProxies: [],
      upstreamKeepalive: 16,
      maxStreams: 128,
    });
    expect(c.routes[0]!.http).toEqual({ pathPrefix: "/", responseHeaders: [], basicAuth: null });
  });

  test("every option", () => {
    const c = parseConfig(
      `${HTTP}max_header_bytes = 8192\nkeepalive_timeout = "5s"\nrequest_timeout = "30s"\ntrusted_proxies = ["10.0.0.0/8", "::1"]\nupstream_keepalive = 0\nmax_streams = 64\n${TLS}` +
        `[[routes]]\nmatch = "*.example"\nlisteners = ["web"]\npath_prefix = "/api"\nbasic_auth = ["alice"]\ntargets = ["tunnel:laptop"]\n[routes.response_headers]\nStrict-Transport-Security = "max-age=63072000"\n` +
        TOKEN("alice"),
      opts,
    );
    const l = c.listeners[0]!;
    if (l.kind !== "http") throw new Error("expected an http listener");
    expect(l.tls?.certificates[0]?.cert).toContain("BEGIN CERTIFICATE");
    expect([l.maxHeaderBytes, l.keepaliveTimeoutMs, l.requestTimeoutMs, l.upstreamKeepalive, l.maxStreams]).toEqual([8192, 5_000, 30_000, 0, 64]);
    expect(l.trustedProxies).toEqual(["10.0.0.0/8", "::1/128"]);
    expect(c.routes[0]!.http).toEqual({ pathPrefix: "/api", responseHeaders: [["Strict-Transport-Security", "max-age=63072000"]], basicAuth: ["alice"] });
    expect(c.routes[0]!.tunnel).toBe("laptop");
  });

  test("bad listener options name the field", () => {
    expect(issues(`${HTTP}redirect_https = true\n${TLS}${ROUTE}`)).toEqual([
      "listeners[0].redirect_https: only applies to a plain listener (without [listeners.tls]): it sends clients to https://",
    ]);
    expect(issues(`${HTTP}trusted_proxies = ["10.0.0.0/33"]\n${ROUTE}`)[0]).toStartWith("listeners[0].trusted_proxies[0]: ");
    expect(issues(`${HTTP}request_timeout = "1ms"\n${ROUTE}`)[0]).toStartWith("listeners[0].request_timeout: ");
    expect(issues(`${HTTP}max_streams = 10\n${ROUTE}`)).toEqual(["listeners[0].max_streams: only applies with [listeners.tls] (HTTP/2 is offered over TLS only, by ALPN)"]);
    expect(issues(`${HTTP}accept_proxy = "v1"\n${TLS}${ROUTE}`)[0]).toStartWith("listeners[0].accept_proxy: cannot be used with [listeners.tls]");
    expect(issues(`${HTTP}${TLS}client_cert = "require"\nclient_ca = "pki/ca.crt"\n${ROUTE}`)).toContain(
      "listeners[0].tls.client_cert: does not apply to an http listener (client certificates and SPIFFE identities are for connect listeners)",
    );
    expect(issues(`${HTTP}max_client_hello = 1024\n${ROUTE}`)[0]).toBe('listeners[0].max_client_hello: only applies to kind = "sni" listeners, this one is "http"');
  });

  test("route options of http listeners, and only of them", () => {
    const sni = `[[listeners]]\nname = "s"\nkind = "sni"\naddress = "127.0.0.1:0"\n`;
    expect(issues(`${sni}[[routes]]\nmatch = "*"\npath_prefix = "/x"\ntargets = ["127.0.0.1:1"]\n`)).toEqual([
      "routes[0].path_prefix: only applies to routes of http listeners (name one in listeners)",
    ]);
    const bad = (extra: string) => issues(`${HTTP}[[routes]]\nmatch = "a.example"\nlisteners = ["web"]\ntargets = ["127.0.0.1:1"]\n${extra}`);
    expect(bad(`path_prefix = "api"\n`)[0]).toStartWith('routes[0].path_prefix: must start with "/"');
    expect(bad(`path_prefix = "/a?b"\n`)[0]).toStartWith('routes[0].path_prefix: must start with "/"');
    expect(bad(`proxy_protocol = "v2"\n`)[0]).toStartWith("routes[0].proxy_protocol: does not apply to http listener");
    expect(bad(`alpn = ["h2"]\n`)[0]).toStartWith("routes[0].alpn: does not apply to http listener");
    expect(bad(`basic_auth = "yes"\n`)[0]).toStartWith("routes[0].basic_auth: must be true, false or a list");
    expect(bad(`basic_auth = true\n`)).toEqual([
      'routes[0].basic_auth: needs a [[tokens]] entry with role "http" (inline or in tokens_file); none has it, so every client would be refused',
    ]);
    expect(bad(`basic_auth = ["bob", "carol"]\n${TOKEN("bob", '["proxy"]')}`)).toEqual([
      'routes[0].basic_auth[0]: token "bob" needs role "http" to pass Basic auth',
      'routes[0].basic_auth[1]: no [[tokens]] entry is named "carol"',
    ]);
    expect(bad(`[routes.response_headers]\nContent-Length = "1"\n`)[0]).toBe("routes[0].response_headers.Content-Length: is set by the proxy (framing or hop-by-hop), not by a route");
    expect(bad(`[routes.response_headers]\n"Bad Name" = "1"\n`)[0]).toStartWith('routes[0].response_headers.Bad Name: a field name is a token');
    expect(bad(`[routes.response_headers]\nX-A = "a\\nb"\n`)[0]).toStartWith("routes[0].response_headers.X-A: must be a string of at most 4096 printable ASCII");
    const mixed = issues(`${HTTP}${sni}[[routes]]\nmatch = "*"\nlisteners = ["web", "s"]\ntargets = ["127.0.0.1:1"]\n`);
    expect(mixed[0]).toStartWith("routes[0].listeners: a route of http listener");
  });

  test("one host with several path prefixes is not shadowing; the same prefix twice is", () => {
    const r = (prefix: string, name: string) => `[[routes]]\nname = "${name}"\nmatch = "a.example"\nlisteners = ["web"]\npath_prefix = "${prefix}"\ntargets = ["127.0.0.1:1"]\n`;
    expect(parseConfig(HTTP + r("/", "root") + r("/api", "api"), opts).routes.map((x) => x.http!.pathPrefix)).toEqual(["/", "/api"]);
    expect(issues(HTTP + r("/api", "one") + r("/api", "two"))[0]).toStartWith("routes[1]: same match");
  });

  test("the http token role", () => {
    expect(parseConfig(HTTP + ROUTE + TOKEN("t"), opts).tokens[0]!.roles).toEqual(["http"]);
  });

  test("a new certificate or route is a reload; plain <-> TLS needs a restart", () => {
    const a = parseConfig(HTTP + TLS + ROUTE, opts);
    const b = parseConfig(HTTP + TLS.replace("server.crt", "plain.crt").replace("server.key", "plain.key") + ROUTE, opts);
    expect(reloadProblems(a, b)).toEqual([]);
    expect(reloadProblems(a, parseConfig(HTTP + ROUTE, opts))).toEqual(["listeners[0].tls: adding or removing [listeners.tls] or its acme on an http listener needs a restart (tls -> plain)"]);
    expect(reloadProblems(a, parseConfig(HTTP + TLS + ROUTE.replace("app.example", "other.example"), opts))).toEqual([]);
  });
});
