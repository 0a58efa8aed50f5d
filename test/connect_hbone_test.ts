/**
 * HBONE (HTTP/2 CONNECT over mTLS) end to end with a client someone else
 * wrote: Go's golang.org/x/net/http2 Transport (test/go/hbone, built offline
 * from Debian's packages) presenting SPIFFE client certificates to a real
 * `edgemux serve`. 100 MiB through one stream with a SHA-256 check, 100
 * concurrent streams, the identity policy (default: same trust domain and
 * namespace; [[connect_rules]]), SSRF, and malformed and oversized requests
 * (from a raw client) that get their status while a transfer on another
 * connection, and a good stream on the same one, carry on.
 *
 * mTLS needs Bun (Deno.listenTls cannot ask for client certificates); under
 * EDGEMUX_RUNTIME=deno only the token-authenticated HTTP/2 listener runs.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { hashToken } from "../src/auth/mod.ts";
import { type EdgemuxProcess, ROOT, run, startEdgemux } from "./support/edgemux.ts";
import { RawH2 } from "./support/h2raw.ts";
import { echoServer, type EchoServer, spiffeCerts } from "./support/proxy.ts";

const onDeno = process.env.EDGEMUX_RUNTIME === "deno";
const mtls = onDeno ? test.skip : test;

let hbone = "";
let em: EdgemuxProcess;
let strict: EdgemuxProcess | null = null;
let echo: EchoServer;
let echo2: EchoServer;
let certs: ReturnType<typeof spiffeCerts>;

beforeAll(async () => {
  const built = await run("bash", [join(ROOT, "scripts/build_go_hbone.sh"), join(ROOT, ".tmp/go-hbone")], { timeoutMs: 180_000 });
  if (built.code !== 0) throw new Error(`building the Go HBONE peer failed: ${built.stderr}`);
  hbone = built.stdout.trim().split("\n").pop()!;
  certs = spiffeCerts();
  echo = await echoServer();
  echo2 = await echoServer();
  const tls = (clientCert: string) => `cert = "${certs.server.certPath}"
key = "${certs.server.keyPath}"
client_ca = "${certs.ca}"
client_cert = "${clientCert}"`;
  const mtlsListeners = `
[[listeners]]
name = "mesh"
kind = "connect"
address = "127.0.0.1:0"
max_header_bytes = 4096
[listeners.tls]
${tls("require")}

[[listeners]]
name = "ruled"
kind = "connect"
address = "127.0.0.1:0"
[listeners.tls]
${tls("require")}

[[connect_rules]]
identity = "spiffe://cluster.local/ns/*/sa/app"
destinations = ["127.0.0.1:${echo.port}"]
listeners = ["ruled"]
`;
  em = await startEdgemux(`
workers = 2
[admin]
address = "127.0.0.1:0"
${onDeno ? "" : mtlsListeners}
[[listeners]]
name = "tokenh2"
kind = "connect"
address = "127.0.0.1:0"
auth = "token"
[listeners.tls]
cert = "${certs.server.certPath}"
key = "${certs.server.keyPath}"

[[tokens]]
name = "mesh-ci"
sha256 = "${hashToken("s3cret")}"

[egress]
allow_cidrs = ["127.0.0.1/32"]
allow_ports = ["*"]
`);
  if (!onDeno) {
    strict = await startEdgemux(`
workers = 1
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "mesh"
kind = "connect"
address = "127.0.0.1:0"
[listeners.tls]
${tls("require")}
[egress]
allow_ports = ["*"]
`);
  }
}, 240_000);

afterAll(async () => {
  await Promise.all([em?.stop(), strict?.stop()]);
  await Promise.all([echo?.close(), echo2?.close()]);
});

interface GoResult {
  status: number;
  ok?: number;
  sent?: number;
  received?: number;
  sha_sent?: string;
  sha_received?: string;
  mismatched?: number;
  errors?: string[];
  error?: string;
}

/** Runs the Go client; `who` picks the client certificate (null: none). */
async function goClient(listener: string, authority: string, opts: { who?: "app" | "otherNs" | "otherTd" | "noSpiffe" | null; mode?: string; bytes?: number; streams?: number; method?: string; headers?: string[]; p?: EdgemuxProcess } = {}): Promise<GoResult> {
  const p = opts.p ?? em;
  const who = opts.who === undefined ? "app" : opts.who;
  const args = ["client", "-addr", `127.0.0.1:${p.hostPort(listener).port}`, "-authority", authority, "-ca", certs.ca, "-mode", opts.mode ?? "echo", "-bytes", String(opts.bytes ?? 1024), "-streams", String(opts.streams ?? 1), "-method", opts.method ?? "CONNECT", "-timeout", "100s"];
  if (who !== null) args.push("-cert", certs[who].certPath, "-key", certs[who].keyPath);
  for (const h of opts.headers ?? []) args.push("-H", h);
  const r = await run(hbone, args, { timeoutMs: 120_000 });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line) as GoResult;
  } catch {
    throw new Error(`Go client printed ${JSON.stringify(r.stdout)} / ${r.stderr}`);
  }
}

const echoAt = () => `127.0.0.1:${echo.port}`;

describe("HBONE with the Go x/net/http2 client", () => {
  mtls("100 MiB through one stream, SHA-256 equal both ways; trace headers are logged", async () => {
    const r = await goClient("mesh", echoAt(), {
      bytes: 100 * 1024 * 1024,
      headers: ["forwarded: for=10.1.2.3;proto=https", "baggage: team=edge", "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
    });
    expect(r.errors).toBeUndefined();
    expect([r.status, r.ok, r.mismatched]).toEqual([200, 1, 0]);
    expect(r.sent).toBe(100 * 1024 * 1024);
    expect(r.received).toBe(r.sent);
    expect(r.sha_received).toBe(r.sha_sent!);
    const line = await em.waitForLine((l) => l.msg === "tunnel" && l.listener === "mesh" && l.bytes_in === 100 * 1024 * 1024);
    expect(line).toMatchObject({
      proto: "h2",
      identity: "spiffe://cluster.local/ns/edge/sa/app",
      destination: echoAt(),
      status: 200,
      bytes_out: 100 * 1024 * 1024,
      error: null,
      forwarded: "for=10.1.2.3;proto=https",
      baggage: "team=edge",
      traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    });
  }, 120_000);

  mtls("100 concurrent streams over one connection", async () => {
    const r = await goClient("mesh", echoAt(), { bytes: 256 * 1024, streams: 100 });
    expect(r.errors).toBeUndefined();
    expect([r.status, r.ok, r.mismatched, r.sent, r.received]).toEqual([200, 100, 0, 100 * 256 * 1024, 100 * 256 * 1024]);
  }, 60_000);

  mtls("POST with x-tun is a tunnel too", async () => {
    const r = await goClient("mesh", echoAt(), { method: "POST" });
    expect([r.status, r.ok, r.mismatched]).toEqual([200, 1, 0]);
  });

  mtls("identity policy: other namespace 403, other trust domain 403, no SPIFFE ID 401, no certificate at all fails the handshake", async () => {
    const [ns, td, none, nocert] = await Promise.all([
      goClient("mesh", echoAt(), { who: "otherNs", mode: "status" }),
      goClient("mesh", echoAt(), { who: "otherTd", mode: "status" }),
      goClient("mesh", echoAt(), { who: "noSpiffe", mode: "status" }),
      goClient("mesh", echoAt(), { who: null, mode: "status" }),
    ]);
    expect([ns.status, td.status, none.status]).toEqual([403, 403, 401]);
    expect(nocert.status).toBe(0);
    expect(nocert.error ?? nocert.errors?.join()).toBeTruthy();
    const denied = await em.waitForLine((l) => l.msg === "tunnel" && l.identity === "spiffe://cluster.local/ns/other/sa/app" && l.listener === "mesh");
    expect([denied.status, denied.error]).toEqual([403, "IDENTITY_DENIED"]);
  });

  mtls("[[connect_rules]]: another namespace may reach the allowed destination only", async () => {
    const allowed = await goClient("ruled", echoAt(), { who: "otherNs" });
    expect([allowed.status, allowed.ok]).toEqual([200, 1]);
    const other = await goClient("ruled", `127.0.0.1:${echo2.port}`, { who: "otherNs", mode: "status" });
    expect(other.status).toBe(403);
    const wrongSa = await goClient("ruled", echoAt(), { who: "noSpiffe", mode: "status" });
    expect(wrongSa.status).toBe(401);
  });

  mtls("SSRF: with default egress, 127.0.0.1 and localhost are refused with 403", async () => {
    const [ip, name] = await Promise.all([goClient("mesh", echoAt(), { mode: "status", p: strict! }), goClient("mesh", `localhost:${echo.port}`, { mode: "status", p: strict! })]);
    expect([ip.status, name.status]).toEqual([403, 403]);
    const line = await strict!.waitForLine((l) => l.msg === "tunnel" && l.status === 403);
    expect(line.error).toBe("EGRESS_DENIED");
  });

  test("HTTP/2 over TLS with a bearer token (no client certificates; runs on Deno too)", async () => {
    const ok = await goClient("tokenh2", echoAt(), { who: null, bytes: 1 << 20, headers: ["proxy-authorization: Bearer s3cret"] });
    expect([ok.status, ok.ok, ok.mismatched]).toEqual([200, 1, 0]);
    expect(ok.received).toBe(1 << 20);
    const none = await goClient("tokenh2", echoAt(), { who: null, mode: "status" });
    expect(none.status).toBe(407);
    const line = await em.waitForLine((l) => l.msg === "tunnel" && l.listener === "tokenh2" && l.status === 200);
    expect(line.identity).toBe("mesh-ci");
  });
});

/**
 * On Bun the mTLS listener, on Deno the token one (same HTTP/2 code path,
 * only how the client authenticates differs).
 */
const via = (): { listener: string; raw: { cert?: string; key?: string }; auth: [string, string][]; go: { who?: null; headers?: string[] } } =>
  onDeno
    ? { listener: "tokenh2", raw: {}, auth: [["proxy-authorization", "Bearer s3cret"]], go: { who: null, headers: ["proxy-authorization: Bearer s3cret"] } }
    : { listener: "mesh", raw: { cert: certs.app.cert, key: certs.app.key }, auth: [], go: {} };

describe("bad requests close only their own stream", () => {
  test("malformed and oversized requests get 400/405/431 while a 100 MiB transfer and a good stream carry on", async () => {
    const v = via();
    const big = goClient(v.listener, echoAt(), { ...v.go, bytes: 100 * 1024 * 1024 });
    const raw = await RawH2.open(em.hostPort(v.listener).port, { ca: readFileSync(certs.ca, "utf8"), ...v.raw });
    const a = echoAt();
    const cases: [string, [string, string][], number][] = [
      ["CONNECT with :path", [[":method", "CONNECT"], [":authority", a], [":path", "/"]], 400],
      ["CONNECT without :authority", [[":method", "CONNECT"]], 400],
      ["authority without a port", [[":method", "CONNECT"], [":authority", "127.0.0.1"]], 400],
      ["upper-case field name", [[":method", "CONNECT"], [":authority", a], ["X-Up", "1"]], 400],
      ["connection-specific field", [[":method", "CONNECT"], [":authority", a], ["connection", "close"]], 400],
      ["extended CONNECT", [[":method", "CONNECT"], [":protocol", "websocket"], [":authority", a]], 400],
      ["GET", [[":method", "GET"], [":scheme", "https"], [":authority", a], [":path", "/"]], 405],
      ["header list over max_header_bytes", [[":method", "CONNECT"], [":authority", a], ["x-big", "v".repeat(20000)]], 431],
    ];
    const ids = cases.map(([, fields]) => raw.request([...fields, ...v.auth]));
    const results = await Promise.all(ids.map((id) => raw.wait(id, (s) => s.status !== null && (s.ended || s.reset !== null))));
    results.forEach((r, i) => expect(`${cases[i]![0]}: ${r.status}`).toBe(`${cases[i]![0]}: ${cases[i]![2]}`));
    // The same connection still carries a good tunnel.
    const good = raw.request([[":method", "CONNECT"], [":authority", a], ...v.auth]);
    await raw.wait(good, (s) => s.status !== null);
    raw.send(good, "still-fine", true);
    const r = await raw.wait(good, (s) => s.ended);
    expect([r.status, r.data.toString()]).toEqual([200, "still-fine"]);
    expect(raw.goaway).toBeNull();
    raw.close();
    const b = await big;
    expect(b.errors).toBeUndefined();
    expect([b.status, b.ok, b.mismatched, b.received]).toEqual([200, 1, 0, 100 * 1024 * 1024]);
  }, 120_000);

  test("a protocol error ends its connection with GOAWAY, not others", async () => {
    const v = via();
    const raw = await RawH2.open(em.hostPort(v.listener).port, { ca: readFileSync(certs.ca, "utf8"), ...v.raw });
    const id = raw.request([[":method", "CONNECT"], [":authority", echoAt()], ...v.auth]);
    await raw.wait(id, (s) => s.status !== null);
    raw.socket.write(Uint8Array.of(0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0)); // WINDOW_UPDATE of 0 on the connection
    await raw.wait(id, () => raw.goaway !== null || raw.closed, 5000);
    expect(raw.goaway).toBe(1); // PROTOCOL_ERROR
    raw.close();
    const r = await goClient(v.listener, echoAt(), v.go);
    expect([r.status, r.ok]).toEqual([200, 1]);
  });
});
