/** The tunnel part of the config: `kind = "tunnel"` listeners and `tunnel:NAME` route targets. */
import { describe, expect, test } from "bun:test";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfigFile, parseConfig, reloadProblems } from "./mod.ts";
import { LISTENER, issuesOf } from "./test_util.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const TESTDATA = join(HERE, "testdata");
const opts = { baseDir: TESTDATA };
const issues = (toml: string) => issuesOf(toml, opts);

const TUNNEL = `[[listeners]]\nname = "t"\nkind = "tunnel"\naddress = "127.0.0.1:0"\n`;
const TLS = `[listeners.tls]\ncert = "pki/server.crt"\nkey = "pki/server.key"\n`;
const AGENT_TOKEN = `[[tokens]]\nname = "a"\nsha256 = "${"b".repeat(64)}"\nroles = ["destination"]\n`;

describe("tunnel listeners", () => {
  test("defaults", () => {
    const c = parseConfig(TUNNEL + TLS + AGENT_TOKEN, opts);
    const l = c.listeners[0]!;
    if (l.kind !== "tunnel") throw new Error("expected a tunnel listener");
    expect({ ...l, tls: undefined }).toEqual({
      name: "t",
      kind: "tunnel",
      address: { kind: "tcp", hostname: "127.0.0.1", port: 0 },
      acceptProxy: "none",
      handshakeTimeoutMs: 10_000,
      idleTimeoutMs: 600_000,
      maxConnections: 0,
      maxStreams: 1_000,
      streamWindow: 262_144,
      keepaliveIntervalMs: 10_000,
      keepaliveTimeoutMs: 30_000,
      goawayDelayMs: 1_000,
      openTimeoutMs: 10_000,
      tls: undefined,
    });
    expect(l.tls.clientCert).toBe("none");
    expect(l.tls.cert).toContain("BEGIN CERTIFICATE");
  });

  test("full.toml: every tunnel key, and a tunnel:NAME route", () => {
    const c = loadConfigFile(join(TESTDATA, "full.toml"));
    const l = c.listeners.find((x) => x.name === "agents")!;
    if (l.kind !== "tunnel") throw new Error("expected a tunnel listener");
    expect([l.maxStreams, l.streamWindow, l.keepaliveIntervalMs, l.keepaliveTimeoutMs, l.goawayDelayMs, l.openTimeoutMs]).toEqual([2048, 524_288, 5_000, 20_000, 3_000, 4_000]);
    expect(l.tls.clientCert).toBe("request");
    const r = c.routes.find((x) => x.name === "laptop")!;
    expect(r.tunnel).toBe("laptop-web");
    expect(r.targets).toEqual([]);
  });

  test.each([
    [TUNNEL + AGENT_TOKEN, "listeners[0].tls: is required for a tunnel listener ([listeners.tls] with cert and key): agents authenticate over TLS"],
    [TUNNEL + TLS, `listeners[0]: a tunnel listener needs a [[tokens]] entry with role "source" or "destination" (inline or in tokens_file); none has one, so every agent would be refused`],
    [TUNNEL + `accept_proxy = "v2"\n` + TLS + AGENT_TOKEN, "listeners[0].accept_proxy: cannot be used on a tunnel listener: a PROXY header comes before the TLS handshake, which the runtime terminates"],
    [TUNNEL + `stream_window = 1024\n` + TLS + AGENT_TOKEN, "listeners[0].stream_window: must be 16384..4194304, got 1024"],
    [TUNNEL + `keepalive_interval = "10s"\nkeepalive_timeout = "15s"\n` + TLS + AGENT_TOKEN, "listeners[0].keepalive_timeout: must be at least twice keepalive_interval (10000 ms), got 15000 ms: one late keepalive must not end a session"],
    [TUNNEL + `goaway_delay = "6m"\n` + TLS + AGENT_TOKEN, `listeners[0].goaway_delay: must be 0s..5m, got "6m"`],
    [TUNNEL + TLS + `trust_domain = "td"\n` + AGENT_TOKEN, "listeners[0].tls.trust_domain: only applies to connect listeners (HBONE identity policy); tunnel agents are matched to [[tokens]] by name"],
    [LISTENER + `stream_window = 65536\n`, `listeners[0].stream_window: only applies to kind = "tunnel" listeners, this one is "sni"`],
  ])("%#", (toml, issue) => {
    expect(issues(toml)).toEqual([issue]);
  });
});

describe("tunnel:NAME route targets", () => {
  const route = (targets: string, extra = "") => `${LISTENER}\n[[routes]]\nmatch = "a.example"\ntargets = [${targets}]\n${extra}`;

  test("a tunnel target names the service; the route has no plain targets", () => {
    const c = parseConfig(route(`"tunnel:web-1"`, `proxy_protocol = "v1"`), opts);
    expect(c.routes[0]!.tunnel).toBe("web-1");
    expect(c.routes[0]!.targets).toEqual([]);
    expect(c.routes[0]!.proxyProtocol).toBe("v1");
  });

  test.each([
    [route(`"tunnel:Web"`), `routes[0].targets[0]: a tunnel target is "tunnel:NAME" with NAME of [a-z0-9][a-z0-9_.-]{0,62}, got "tunnel:Web"`],
    [route(`"tunnel:"`), `routes[0].targets[0]: a tunnel target is "tunnel:NAME" with NAME of [a-z0-9][a-z0-9_.-]{0,62}, got "tunnel:"`],
    [route(`"tunnel:a", "127.0.0.1:1"`), `routes[0].targets: a "tunnel:NAME" target must be the route's only target`],
    [route(`"tunnel:a"`, `balance = "least_conn"`), "routes[0].balance: does not apply to a tunnel target: streams are spread over the agents exposing the service"],
  ])("%#", (toml, issue) => {
    expect(issues(toml)).toEqual([issue]);
  });

  test("reload: a tunnel listener's TLS change needs a restart; its limits do not", () => {
    const a = parseConfig(TUNNEL + TLS + AGENT_TOKEN, opts);
    const b = parseConfig(TUNNEL + `max_streams = 10\ngoaway_delay = "5s"\n` + TLS + AGENT_TOKEN, opts);
    expect(reloadProblems(a, b)).toEqual([]);
    const c = parseConfig(TUNNEL + TLS + `client_ca = "pki/ca.crt"\nclient_cert = "request"\n` + AGENT_TOKEN, opts);
    expect(reloadProblems(a, c)).toEqual(["listeners[0].tls: changing a listener's certificate, key, client_ca or client_cert needs a restart"]);
  });
});
