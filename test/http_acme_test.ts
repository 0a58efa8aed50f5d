/**
 * `[acme]` end to end: real `edgemux serve` processes (two workers each) and
 * Debian's `pebble` with `pebble-challtestsrv` as its DNS (every name →
 * 127.0.0.1), offline on 127.0.0.1 as in acme_pebble_test.ts.
 *
 * Two edgemux instances share one pebble, one per challenge type:
 * - "one" has a plain http listener on pebble's `httpPort` and orders
 *   www.acme.test with HTTP-01 (`challenge = "http-01"`); its HTTPS listener
 *   also serves a file certificate for files.acme.test;
 * - "two" has only an HTTPS listener, on pebble's `tlsPort`, and orders
 *   alpn.acme.test with TLS-ALPN-01 (`challenge` left at `auto`, which is
 *   TLS-ALPN-01 without a plain listener). Nothing else answers pebble there,
 *   so its certificate can only come from a TLS-ALPN-01 validation.
 *
 * Pebble is down when both start: they start anyway, the file certificate is
 * served, the orders fail and back off (retry_base = 1s); once pebble is up
 * both names are issued, reach every worker and are served (curl verifies
 * against pebble's root), and their expiry shows in /metrics. Then "two" is
 * restarted with its ACME clock moved past two thirds of the certificate's
 * life (EDGEMUX_ACME_CLOCK_OFFSET_MS): it renews at once through a new order
 * and a new TLS-ALPN-01 validation (pebble's authorization reuse is off), on
 * the listener that serves the old certificate meanwhile, and then serves a
 * certificate with another serial.
 *
 * Deno: skipped. Deno.listenTls serves one certificate per listener and
 * cannot choose one by the ClientHello's ALPN, so neither the several
 * certificates nor TLS-ALPN-01 exist there (README, ACME certificates).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import { fetchWithCa } from "../src/runtime/mod.ts";
import { type EdgemuxProcess, run, startEdgemux, tempDir, waitFor } from "./support/edgemux.ts";
import { freeDnsPort, freePort, HAVE_PEBBLE, LoggedProcs, makePebbleCerts, which } from "./support/pebble.ts";

const DENO = process.env.EDGEMUX_RUNTIME === "deno";
if (!HAVE_PEBBLE) console.warn("http_acme_test: SKIPPED: pebble and pebble-challtestsrv are not installed (apt-get install pebble)");
if (DENO) console.warn("http_acme_test: SKIPPED on Deno: Deno.listenTls takes one certificate and cannot choose it by SNI or ALPN (no several certificates, no TLS-ALPN-01)");
const WWW = "www.acme.test"; // HTTP-01, instance one
const ALPN = "alpn.acme.test"; // TLS-ALPN-01, instance two
const FILES = "files.acme.test"; // a file certificate on instance one
/** Pebble's certificates live a day here: two thirds of it is 16 hours, which the clock offset skips. */
const VALIDITY_S = 86_400;

describe.skipIf(!HAVE_PEBBLE || DENO)("http listeners with [acme] against pebble: HTTP-01 and TLS-ALPN-01", () => {
  const dir = tempDir("edgemux-http-acme-");
  const children = new LoggedProcs(() => dir);
  let one: EdgemuxProcess;
  let two: EdgemuxProcess;
  let backend: Server;
  let backendAddr = "";
  let plainPort = 0;
  let alpnPort = 0;
  let acmePort = 0;
  let mgmtPort = 0;
  let dnsPort = 0;
  let challMgmtPort = 0;
  const dirOne = join(dir, "one");
  const dirTwo = join(dir, "two");

  const configTwo = () => `
workers = 2
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "web"
kind = "http"
address = "127.0.0.1:${alpnPort}"
[listeners.tls]
acme = true

[[routes]]
name = "alpn"
match = "${ALPN}"
listeners = ["web"]
targets = ["${backendAddr}"]

[acme]
directory = "https://127.0.0.1:${acmePort}/dir"
accept_terms = true
state_dir = "state"
ca = "${join(dir, "ca.crt")}"
retry_base = "1s"
`;

  beforeAll(async () => {
    // pebble's own HTTPS certificate (its directory), from a throwaway CA that edgemux trusts through acme.ca;
    // the same CA signs the file certificate of files.acme.test.
    makePebbleCerts(dir);
    const sh = (...args: string[]) => execFileSync(args[0]!, args.slice(1), { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    writeFileSync(join(dir, "files.ext"), `subjectAltName=DNS:${FILES}\n`);
    sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=${FILES}`, "-keyout", "files.key", "-out", "files.csr");
    sh("openssl", "x509", "-req", "-in", "files.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "2", "-days", "2", "-extfile", "files.ext", "-out", "files.crt");
    mkdirSync(dirOne);
    mkdirSync(dirTwo);

    backend = createHttpServer((req, res) => res.end(JSON.stringify({ url: req.url, host: req.headers.host, xfp: req.headers["x-forwarded-proto"] })));
    await new Promise<void>((r) => backend.listen(0, "127.0.0.1", () => r()));
    backendAddr = `127.0.0.1:${(backend.address() as { port: number }).port}`;
    [plainPort, alpnPort, acmePort, mgmtPort, dnsPort, challMgmtPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freeDnsPort(), await freePort()];

    // Pebble is not running yet: both must start anyway.
    one = await startEdgemux(`
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
[[listeners.tls.certificates]]
cert = "${join(dir, "files.crt")}"
key = "${join(dir, "files.key")}"

[[routes]]
name = "www"
match = "${WWW}"
listeners = ["web"]
targets = ["${backendAddr}"]

[[routes]]
name = "files"
match = "${FILES}"
listeners = ["web"]
targets = ["${backendAddr}"]

[[routes]]
name = "wild"
match = "*.acme.test"
listeners = ["web"]
targets = ["${backendAddr}"]

[acme]
directory = "https://127.0.0.1:${acmePort}/dir"
email = "ops@example.test"
accept_terms = true
state_dir = "state"
ca = "${join(dir, "ca.crt")}"
retry_base = "1s"
challenge = "http-01"
names = ["${WWW}"] # files.acme.test has its file certificate
`, { dir: dirOne });
    two = await startEdgemux(configTwo(), { dir: dirTwo });
  }, 60_000);

  afterAll(async () => {
    await one?.stop();
    await two?.stop();
    children.killAll();
    backend?.closeAllConnections?.();
    backend?.close();
    if (children.logs.some((l) => /panic|fatal/i.test(l))) console.log(children.logs.join(""));
    rmSync(dir, { recursive: true, force: true });
  });

  const curl = (em: EdgemuxProcess, name: string, cacert: string, path = "/hello") => {
    const p = em.hostPort("web").port;
    return run("curl", ["-sS", "--max-time", "10", "--cacert", cacert, "--resolve", `${name}:${p}:127.0.0.1`, `https://${name}:${p}${path}`]);
  };

  /** The serial of the certificate `em` serves for `name`, verified against `ca`. */
  const servedSerial = (em: EdgemuxProcess, name: string, ca: string) =>
    new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: "127.0.0.1", port: em.hostPort("web").port, servername: name, ca, ALPNProtocols: ["http/1.1"] }, () => {
        const serial = s.getPeerCertificate().serialNumber;
        s.end();
        resolve(serial);
      });
      s.on("error", reject);
    });

  test("pebble down at start: both serve, a file certificate keeps working, the orders fail and back off", async () => {
    const startedOne = await one.waitForLine((l) => l.msg === "acme started", 5_000);
    const startedTwo = await two.waitForLine((l) => l.msg === "acme started", 5_000);
    expect(startedOne.challenge).toBe("http-01");
    expect(startedTwo.challenge).toBe("tls-alpn-01"); // auto, without a plain http listener
    await one.waitForLine((l) => l.msg === "acme order failed" && l.name === WWW, 20_000);
    await two.waitForLine((l) => l.msg === "acme order failed" && l.name === ALPN, 20_000);
    expect(one.exitCode).toBeNull();
    expect(two.exitCode).toBeNull();
    // The file certificate is served (curl verifies it) while the ACME name has none yet.
    const files = await curl(one, FILES, join(dir, "ca.crt"));
    expect(files.stderr).toBe("");
    expect(JSON.parse(files.stdout)).toMatchObject({ url: "/hello", host: `${FILES}:${one.hostPort("web").port}`, xfp: "https" });
    const www = await curl(one, WWW, join(dir, "ca.crt"));
    expect(www.code).not.toBe(0); // the default (files) certificate does not name it
    // The plain listener still works (a challenge path nobody asked for falls through to the redirect).
    const r = await run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", `Host: ${WWW}`, `http://127.0.0.1:${plainPort}/.well-known/acme-challenge/nothing`]);
    expect(r.stdout).toBe("301");
  }, 30_000);

  test("pebble comes up: one name via HTTP-01, one via TLS-ALPN-01, served by every worker, verified by curl, in /metrics", async () => {
    children.startDnsStub(dnsPort, challMgmtPort);
    writeFileSync(join(dir, "pebble.json"), JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: join(dir, "pebble.crt"),
        privateKey: join(dir, "pebble.key"),
        httpPort: plainPort, // HTTP-01: instance one's plain listener
        tlsPort: alpnPort, // TLS-ALPN-01: instance two's HTTPS listener
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
        certificateValidityPeriod: VALIDITY_S,
      },
    }));
    // Authorization reuse off: a renewal validates again.
    children.spawn(which("pebble")!, ["-config", join(dir, "pebble.json"), "-dnsserver", `127.0.0.1:${dnsPort}`], { PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" });

    const issuedWww = await one.waitForLine((l) => l.msg === "acme certificate issued" && l.name === WWW, 60_000);
    const issuedAlpn = await two.waitForLine((l) => l.msg === "acme certificate issued" && l.name === ALPN, 60_000);
    // The wildcard route is never ordered.
    expect(one.lines.some((l) => typeof l.name === "string" && String(l.name).includes("*"))).toBe(false);
    // Each instance answered its own challenge type.
    expect(one.lines.some((l) => l.msg === "acme challenge" && l.challenge === "http-01" && l.present === true)).toBe(true);
    expect(two.lines.some((l) => l.msg === "acme challenge" && l.challenge === "tls-alpn-01" && l.name === ALPN && l.present === true)).toBe(true);
    expect(two.lines.some((l) => l.msg === "acme challenge" && l.challenge === "http-01")).toBe(false);

    const caFetch = fetchWithCa(readFileSync(join(dir, "ca.crt"), "utf8"));
    const root = await waitFor(async () => {
      const r = await caFetch(`https://127.0.0.1:${mgmtPort}/roots/0`).catch(() => null);
      return r?.ok ? await r.text() : null;
    }, 20_000, "pebble's root");
    writeFileSync(join(dir, "root.pem"), root);

    // New connections land on either worker: each must have the certificate.
    for (const [em, name] of [[one, WWW], [two, ALPN]] as const) {
      for (let i = 0; i < 6; i++) {
        const r = await curl(em, name, join(dir, "root.pem"));
        expect(r.stderr).toBe("");
        expect(JSON.parse(r.stdout)).toMatchObject({ url: "/hello", host: `${name}:${em.hostPort("web").port}`, xfp: "https" });
      }
    }
    // The file certificate is still what files.acme.test gets.
    expect((await curl(one, FILES, join(dir, "ca.crt"))).stderr).toBe("");

    for (const [em, name, issued] of [[one, WWW, issuedWww], [two, ALPN, issuedAlpn]] as const) {
      const metrics = await (await em.adminGet("/metrics")).text();
      const m = new RegExp(`^edgemux_tls_certificate_expiry_timestamp_seconds\\{name="${name.replace(/\./g, "\\.")}"\\} (\\d+)$`, "m").exec(metrics);
      expect(m).not.toBeNull();
      expect(Number(m![1])).toBe(Math.floor(Date.parse(String(issued.not_after)) / 1000));
    }
    expect(existsSync(join(dirOne, "state", "certs", `${WWW}.crt`))).toBe(true);
    expect(existsSync(join(dirTwo, "state", "certs", `${ALPN}.crt`))).toBe(true);
  }, 90_000);

  test("renewal: restarted with the clock past two thirds of the lifetime, a new order over TLS-ALPN-01 and a new certificate served", async () => {
    const root = readFileSync(join(dir, "root.pem"), "utf8");
    const before = await servedSerial(two, ALPN, root);
    const stored = new X509Certificate(readFileSync(join(dirTwo, "state", "certs", `${ALPN}.crt`)));
    expect(stored.serialNumber.toLowerCase()).toBe(before.toLowerCase());
    const notBefore = Date.parse(stored.validFrom);
    const notAfter = Date.parse(stored.validTo);
    expect(notAfter - notBefore).toBeLessThanOrEqual(VALIDITY_S * 1000 + 1000);
    // Past the renewal time (two thirds), still before the end: the held certificate stays valid meanwhile.
    const offset = Math.round(notBefore + ((notAfter - notBefore) * 2) / 3 - Date.now() + 60_000);
    expect(Date.now() + offset).toBeLessThan(notAfter);

    await two.stop();
    process.env.EDGEMUX_ACME_CLOCK_OFFSET_MS = String(offset);
    try {
      two = await startEdgemux(configTwo(), { dir: dirTwo });
    } finally {
      delete process.env.EDGEMUX_ACME_CLOCK_OFFSET_MS;
    }
    const started = await two.waitForLine((l) => l.msg === "acme started", 5_000);
    expect(started.clock_offset_ms).toBe(offset);
    const renewed = await two.waitForLine((l) => l.msg === "acme certificate issued" && l.name === ALPN, 60_000);
    expect(Date.parse(String(renewed.not_after))).toBeGreaterThan(notAfter);
    // A real new validation: pebble reuses no authorization, and this process answered TLS-ALPN-01 for it.
    expect(two.lines.some((l) => l.msg === "acme challenge" && l.challenge === "tls-alpn-01" && l.name === ALPN && l.present === true)).toBe(true);

    const after = await waitFor(async () => {
      const s = await servedSerial(two, ALPN, root);
      return s !== before ? s : null;
    }, 10_000, "the renewed certificate to be served");
    expect(after).not.toBe(before);
    const file = new X509Certificate(readFileSync(join(dirTwo, "state", "certs", `${ALPN}.crt`)));
    expect(file.serialNumber.toLowerCase()).toBe(after.toLowerCase());
    // Every worker serves the new one; curl verifies it against pebble's root.
    for (let i = 0; i < 6; i++) {
      expect(await servedSerial(two, ALPN, root)).toBe(after);
      const r = await curl(two, ALPN, join(dir, "root.pem"));
      expect(r.stderr).toBe("");
    }
  }, 90_000);
});
