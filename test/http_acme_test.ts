/**
 * `[acme]` end to end: a real `edgemux serve` (two workers) with a plain and
 * an HTTPS http listener, and Debian's `pebble` with `pebble-challtestsrv`
 * as its DNS (every name → 127.0.0.1), offline on 127.0.0.1 as in
 * acme_pebble_test.ts. Pebble's validation authority dials edgemux's plain
 * listener (its `httpPort`) for HTTP-01, whichever worker accepts it.
 *
 * Pebble is down when edgemux starts: edgemux starts anyway, its orders fail
 * and back off (retry_base = 1s), and once pebble is up the certificate is
 * issued, reaches both workers and is served: curl verifies it against
 * pebble's root. Its expiry shows in /metrics.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { join } from "node:path";
import { fetchWithCa } from "../src/runtime/mod.ts";
import { type EdgemuxProcess, run, startEdgemux, tempDir, waitFor } from "./support/edgemux.ts";
import { freeDnsPort, freePort, HAVE_PEBBLE, LoggedProcs, makePebbleCerts, which } from "./support/pebble.ts";

if (!HAVE_PEBBLE) console.warn("http_acme_test: SKIPPED: pebble and pebble-challtestsrv are not installed (apt-get install pebble)");
const NAME = "www.acme.test";

describe.skipIf(!HAVE_PEBBLE)("http listener with [acme] against pebble", () => {
  const dir = tempDir("edgemux-http-acme-");
  const children = new LoggedProcs(() => dir);
  let em: EdgemuxProcess;
  let backend: Server;
  let plainPort = 0;
  let acmePort = 0;
  let mgmtPort = 0;
  let dnsPort = 0;
  let challMgmtPort = 0;

  beforeAll(async () => {
    // pebble's own HTTPS certificate (its directory), from a throwaway CA that edgemux trusts through acme.ca.
    makePebbleCerts(dir);

    backend = createHttpServer((req, res) => res.end(JSON.stringify({ url: req.url, host: req.headers.host, xfp: req.headers["x-forwarded-proto"] })));
    await new Promise<void>((r) => backend.listen(0, "127.0.0.1", () => r()));
    const b = `127.0.0.1:${(backend.address() as { port: number }).port}`;
    [plainPort, acmePort, mgmtPort, dnsPort, challMgmtPort] = [await freePort(), await freePort(), await freePort(), await freeDnsPort(), await freePort()];

    // Pebble is not running yet: edgemux must start anyway.
    em = await startEdgemux(`
workers = 2
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "plain"
kind = "http"
address = "127.0.0.1:${plainPort}"
redirect_https = true

[[listeners]]
name = "web"
kind = "http"
address = "127.0.0.1:0"
[listeners.tls]
acme = true

[[routes]]
name = "www"
match = "${NAME}"
listeners = ["web"]
targets = ["${b}"]

[[routes]]
name = "wild"
match = "*.acme.test"
listeners = ["web"]
targets = ["${b}"]

[acme]
directory = "https://127.0.0.1:${acmePort}/dir"
email = "ops@example.test"
accept_terms = true
state_dir = "state"
ca = "ca.crt"
retry_base = "1s"
`, { dir });
  }, 60_000);

  afterAll(async () => {
    await em?.stop();
    children.killAll();
    backend?.closeAllConnections?.();
    backend?.close();
    if (children.logs.some((l) => /panic|fatal/i.test(l))) console.log(children.logs.join(""));
    rmSync(dir, { recursive: true, force: true });
  });

  test("pebble down at start: edgemux serves, its order fails and backs off", async () => {
    await em.waitForLine((l) => l.msg === "acme order failed" && l.name === NAME, 20_000);
    expect(em.exitCode).toBeNull();
    // The plain listener still works (a challenge path nobody asked for falls through to the redirect).
    const r = await run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", `Host: ${NAME}`, `http://127.0.0.1:${plainPort}/.well-known/acme-challenge/nothing`]);
    expect(r.stdout).toBe("301");
  }, 30_000);

  test("pebble comes up: the certificate is issued via HTTP-01, served by every worker, verified by curl, in /metrics", async () => {
    children.startDnsStub(dnsPort, challMgmtPort);
    writeFileSync(join(dir, "pebble.json"), JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: join(dir, "pebble.crt"),
        privateKey: join(dir, "pebble.key"),
        httpPort: plainPort,
        tlsPort: 1, // TLS-ALPN-01 is not used: edgemux orders with HTTP-01 only
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
      },
    }));
    children.spawn(which("pebble")!, ["-config", join(dir, "pebble.json"), "-dnsserver", `127.0.0.1:${dnsPort}`], { PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0" });

    const issued = await em.waitForLine((l) => l.msg === "acme certificate issued" && l.name === NAME, 60_000);
    expect(issued.not_after).toBeDefined();
    // The wildcard route is never ordered.
    expect(em.lines.some((l) => typeof l.name === "string" && String(l.name).includes("*"))).toBe(false);

    const caFetch = fetchWithCa(readFileSync(join(dir, "ca.crt"), "utf8"));
    const root = await waitFor(async () => {
      const r = await caFetch(`https://127.0.0.1:${mgmtPort}/roots/0`).catch(() => null);
      return r?.ok ? await r.text() : null;
    }, 20_000, "pebble's root");
    writeFileSync(join(dir, "root.pem"), root);

    const p = em.hostPort("web").port;
    // New connections land on either worker: each must have the certificate.
    for (let i = 0; i < 6; i++) {
      const r = await run("curl", ["-sS", "--max-time", "10", "--cacert", join(dir, "root.pem"), "--resolve", `${NAME}:${p}:127.0.0.1`, `https://${NAME}:${p}/hello`]);
      expect(r.stderr).toBe("");
      expect(JSON.parse(r.stdout)).toMatchObject({ url: "/hello", xfp: "https" });
    }

    const metrics = await (await em.adminGet("/metrics")).text();
    const m = new RegExp(`^edgemux_tls_certificate_expiry_timestamp_seconds\\{name="${NAME.replace(/\./g, "\\.")}"\\} (\\d+)$`, "m").exec(metrics);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBe(Math.floor(Date.parse(String(issued.not_after)) / 1000));
    expect(existsSync(join(dir, "state", "certs", `${NAME}.crt`))).toBe(true);
  }, 90_000);
});
