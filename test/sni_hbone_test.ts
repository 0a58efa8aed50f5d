/**
 * The SNI gateway pattern (Istio's port 15443): an sni listener whose route
 * targets are HBONE hops. curl's TLS connection is routed by its server name
 * and carried, untouched, inside an HTTP/2 CONNECT stream over mTLS to the
 * hop, which connects to the authority. Hops: Go's x/net/http2 relay (a peer
 * someone else wrote) and edgemux's own connect listener (which shows the
 * connection pool: many routed connections, one hop connection). The hops'
 * certificate carries IP:127.0.0.1, so the TLS name is the hop's address
 * (Deno cannot send another: see runtime/deno.ts).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { type EdgemuxProcess, ROOT, run, startEdgemux, waitFor } from "./support/edgemux.ts";
import { spiffeCerts } from "./support/proxy.ts";
import { type TlsBackend, testPki, tlsBackend } from "./support/tls.ts";


let goHop: ChildProcess;
let goHopPort = 0;
let edgeHop: EdgemuxProcess;
let gw: EdgemuxProcess;
let web: TlsBackend;

beforeAll(async () => {
  const built = await run("bash", [join(ROOT, "scripts/build_go_hbone.sh"), join(ROOT, ".tmp/go-hbone")], { timeoutMs: 180_000 });
  if (built.code !== 0) throw new Error(`building the Go HBONE peer failed: ${built.stderr}`);
  const bin = built.stdout.trim().split("\n").pop()!;
  const c = spiffeCerts();
  web = await tlsBackend("localhost", { names: ["localhost", "*.localhost"] });
  goHop = spawn(bin, ["server", "-listen", "127.0.0.1:0", "-cert", c.server.certPath, "-key", c.server.keyPath, "-ca", c.ca], { stdio: ["ignore", "pipe", "pipe"] });
  goHopPort = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("Go hop did not start")), 15_000);
    goHop.stdout!.once("data", (d: Buffer) => {
      clearTimeout(t);
      resolve(JSON.parse(d.toString().split("\n")[0]!).port);
    });
  });
  // The edgemux hop needs client certificates: Bun, whatever runs the gateway.
  const saved = process.env.EDGEMUX_RUNTIME;
  delete process.env.EDGEMUX_RUNTIME;
  try {
    edgeHop = await startEdgemux(`
workers = 2
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "hbone"
kind = "connect"
address = "127.0.0.1:0"
[listeners.tls]
cert = "${c.server.certPath}"
key = "${c.server.keyPath}"
client_ca = "${c.ca}"
client_cert = "require"
[egress]
allow_cidrs = ["127.0.0.1/32"]
allow_ports = ["*"]
`);
  } finally {
    if (saved !== undefined) process.env.EDGEMUX_RUNTIME = saved;
  }
  const hb = (extra: string) => `[routes.hbone]
cert = "${c.app.certPath}"
key = "${c.app.keyPath}"
ca = "${c.ca}"
${extra}`;
  gw = await startEdgemux(`
workers = 1
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "gw"
kind = "sni"
address = "127.0.0.1:0"

[[routes]]
name = "plain-name"
match = "localhost"
targets = ["hbone://127.0.0.1:${goHopPort}"]
${hb(`port = ${web.port}`)}

[[routes]]
name = "istio"
match = "*.localhost"
targets = ["hbone://127.0.0.1:${goHopPort}"]
${hb("")}

[[routes]]
name = "pooled"
match = "pooled.test"
targets = ["hbone://127.0.0.1:${edgeHop.hostPort("hbone").port}"]
${hb(`authority = "localhost:${web.port}"`)}

[[routes]]
name = "refused"
match = "refused.test"
targets = ["hbone://127.0.0.1:${edgeHop.hostPort("hbone").port}"]
${hb(`authority = "localhost:1"`)}
`);
}, 240_000);

afterAll(async () => {
  goHop?.kill();
  await Promise.all([gw?.stop(), edgeHop?.stop()]);
  await web?.close();
});

async function curl(host: string, extra: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const port = gw.hostPort("gw").port;
  return await run("curl", ["-sS", "--max-time", "10", "--cacert", testPki().caCertPath, "--resolve", `${host}:${port}:127.0.0.1`, ...extra, `https://${host}:${port}/`]);
}

describe("sni listener → HBONE hop", () => {
  test("a TLS connection routed by SNI rides a CONNECT stream to the Go hop (authority <sni>:<port>)", async () => {
    const r = await curl("localhost");
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("backend=localhost\n");
    const line = await gw.waitForLine((l) => l.msg === "connection" && l.route === "plain-name");
    // curl may reset its side once it has the response; the hop side must not have failed.
    expect([null, "DOWNSTREAM_RESET"]).toContain(line.error as string | null);
    expect(line.backend).toBe(`127.0.0.1:${goHopPort}`);
    expect(Number(line.bytes_in)).toBeGreaterThan(0);
    expect(Number(line.bytes_out)).toBeGreaterThan(0);
  });

  test("Istio's outbound_.<port>_.<subset>_.<fqdn> server names become <fqdn>:<port>", async () => {
    // The backend's port is only in the server name: reaching it proves the authority was parsed.
    const r = await curl(`outbound_.${web.port}_._.localhost`, ["-k"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("backend=localhost\n");
  });

  test("connections to a hop are pooled: five routed connections, one HTTP/2 connection", async () => {
    for (let i = 0; i < 5; i++) {
      const r = await curl("pooled.test", ["-k"]);
      expect(r.stdout).toBe("backend=localhost\n");
    }
    const s = await edgeHop.status();
    expect(s.listeners.find((l) => l.name === "hbone")!.accepted).toBe(1);
    await waitFor(() => edgeHop.lines.filter((l) => l.msg === "tunnel" && l.status === 200).length >= 5, 5000, "five tunnel lines");
    const t = edgeHop.lines.find((l) => l.msg === "tunnel" && l.status === 200)!;
    expect(t.identity).toBe("spiffe://cluster.local/ns/edge/sa/app");
    expect(String(t.forwarded)).toStartWith("for=127.0.0.1");
  });

  test("a hop that refuses (upstream down) fails the route's target: the client gets an internal_error alert", async () => {
    const r = await curl("refused.test", ["-k"]);
    expect(r.code).not.toBe(0);
    const line = await gw.waitForLine((l) => l.msg === "connection" && l.route === "refused");
    expect(line.error).toBe("UPSTREAM_CONNECT_REFUSED");
  });
});

