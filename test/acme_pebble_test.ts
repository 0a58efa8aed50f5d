/**
 * The ACME client against a real ACME server: Debian's `pebble`, offline on
 * 127.0.0.1, with `pebble-challtestsrv` as its DNS (every name → 127.0.0.1).
 * Pebble's validation authority dials our HTTP-01 responder on its `httpPort`
 * and our TLS-ALPN-01 responder on its `tlsPort`, both bound here on port 0
 * before pebble starts.
 *
 * The TLS-ALPN-01 responder is a node:tls server whose SNICallback asks the
 * manager's `tlsAlpnChallengeCertificate(servername)`; the HTTPS listener
 * asks the same when a ClientHello offers only `acme-tls/1` (node_tls.ts,
 * test/http_acme_test.ts).
 *
 * Pebble rejects 20% of good nonces here (PEBBLE_WFE_NONCEREJECT=20), so the
 * badNonce retry runs for real.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import * as tls from "node:tls";
import { join } from "node:path";
import { AcmeError, AcmeManager, type StoredCert } from "../src/acme/mod.ts";
import { detectRuntime, fetchWithCa, type HttpServer } from "../src/runtime/mod.ts";
import { tempDir } from "./support/edgemux.ts";
import { freeDnsPort, freePort, HAVE_PEBBLE, LoggedProcs, makePebbleCerts, which } from "./support/pebble.ts";

async function until<T>(what: string, fn: () => Promise<T | null>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await fn();
      if (v !== null) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${last}`);
    await new Promise((r) => setTimeout(r, 50)); // polling a process we do not control; bounded by the deadline
  }
}

function sh(cwd: string, cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"] }).toString();
}

describe.skipIf(!HAVE_PEBBLE)("ACME against pebble", () => {
  let dir = "";
  const children = new LoggedProcs(() => dir);
  const managers: AcmeManager[] = [];
  let httpServer: HttpServer | null = null;
  let alpnServer: tls.Server | null = null;
  let directoryUrl = "";
  let mgmtUrl = "";
  let pebbleCa = "";
  let rootPem = "";
  let badNonces = 0;
  let countingFetch: ReturnType<typeof fetchWithCa>;
  /** The manager whose challenges the responders answer (each test sets it). */
  let responder: AcmeManager | null = null;

  beforeAll(async () => {
    dir = tempDir("edgemux-acme-pebble-");
    // pebble's own TLS certificate (its ACME and management interfaces), from a throwaway CA.
    makePebbleCerts(dir);
    pebbleCa = readFileSync(join(dir, "ca.crt"), "utf8");

    const rt = detectRuntime();
    // HTTP-01 responder: GET /.well-known/acme-challenge/TOKEN.
    httpServer = await rt.serveHttp({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const m = new URL(req.url).pathname.match(/^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/);
        const body = m && responder ? responder.httpChallengeResponse(m[1]!) : null;
        return body === null ? new Response("not found\n", { status: 404 }) : new Response(body, { headers: { "content-type": "application/octet-stream" } });
      },
    });
    // TLS-ALPN-01 responder: the challenge certificate for the SNI name, ALPN acme-tls/1 only.
    alpnServer = tls.createServer({
      ALPNProtocols: ["acme-tls/1"],
      SNICallback(servername, cb) {
        const c = responder?.tlsAlpnChallengeCertificate(servername) ?? null;
        if (!c) return cb(new Error(`no TLS-ALPN-01 challenge for ${servername}`), undefined);
        cb(null, tls.createSecureContext({ cert: c.cert, key: c.key }));
      },
    }, (s) => s.end());
    await new Promise<void>((r) => alpnServer!.listen(0, "127.0.0.1", () => r()));
    const tlsPort = (alpnServer.address() as { port: number }).port;

    const [acmePort, mgmtPort, dnsPort, challMgmtPort] = [await freePort(), await freePort(), await freeDnsPort(), await freePort()];
    children.startDnsStub(dnsPort, challMgmtPort);
    writeFileSync(join(dir, "pebble.json"), JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: join(dir, "pebble.crt"),
        privateKey: join(dir, "pebble.key"),
        httpPort: httpServer.port,
        tlsPort,
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
      },
    }));
    children.spawn(which("pebble")!, ["-config", join(dir, "pebble.json"), "-dnsserver", `127.0.0.1:${dnsPort}`], {
      PEBBLE_VA_NOSLEEP: "1",
      PEBBLE_WFE_NONCEREJECT: "20",
      PEBBLE_AUTHZREUSE: "0",
    });
    directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
    mgmtUrl = `https://127.0.0.1:${mgmtPort}`;
    const plain = fetchWithCa(pebbleCa);
    countingFetch = async (input, init) => {
      const res = await plain(input, init);
      if (res.status === 400 && (res.headers.get("content-type") ?? "").includes("problem")) {
        const body = await res.clone().text();
        if (body.includes("badNonce")) badNonces++;
      }
      return res;
    };
    await until("pebble's directory", async () => ((await plain(directoryUrl)).ok ? true : null));
    // The DNS stub answers once its management interface does.
    await until("pebble-challtestsrv", async () => ((await fetch(`http://127.0.0.1:${challMgmtPort}/`)).status > 0 ? true : null));
    rootPem = await until("pebble's root", async () => {
      const r = await plain(`${mgmtUrl}/roots/0`);
      return r.ok ? r.text() : null;
    });
    writeFileSync(join(dir, "root.pem"), rootPem);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(managers.map((m) => m.stop()));
    children.killAll();
    await httpServer?.close();
    alpnServer?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function manager(stateDir: string, challenges: ("http-01" | "tls-alpn-01")[], extra: Partial<ConstructorParameters<typeof AcmeManager>[0]> = {}): AcmeManager {
    const m = new AcmeManager({
      directoryUrl,
      contact: ["ops@example.test"],
      acceptTerms: true,
      stateDir,
      allow: (n) => n.endsWith(".acme.test"),
      challenges,
      fetch: countingFetch,
      requestTimeoutMs: 10_000,
      pollTimeoutMs: 30_000,
      ...extra,
    });
    managers.push(m);
    responder = m;
    return m;
  }

  /** The chain verifies against pebble's root (openssl: leaf, intermediates as untrusted). */
  function verifyChain(cert: StoredCert, name: string): void {
    const base = join(dir, `${name}-check`);
    writeFileSync(`${base}.chain.pem`, cert.chainPem);
    const leaf = cert.chainPem.slice(0, cert.chainPem.indexOf("-----END CERTIFICATE-----") + 26);
    writeFileSync(`${base}.leaf.pem`, leaf);
    const out = sh(dir, "openssl", "verify", "-CAfile", "root.pem", "-untrusted", `${base}.chain.pem`, "-verify_hostname", name, `${base}.leaf.pem`);
    expect(out).toContain(": OK");
  }

  const stateA = () => join(dir, "state-a");

  test("HTTP-01: a certificate for two names, its chain verifies against pebble's root", async () => {
    const m = manager(stateA(), ["http-01"]);
    await m.start();
    expect(statSync(stateA()).mode & 0o777).toBe(0o700);
    const [a, b] = await Promise.all([m.obtain("www.acme.test"), m.obtain("api.acme.test")]);
    verifyChain(a, "www.acme.test");
    verifyChain(b, "api.acme.test");
    expect(a.dnsNames).toEqual(["www.acme.test"]);
    expect(m.certificateFor("www.acme.test")?.chainPem).toBe(a.chainPem);
    expect(m.expiries().map((e) => e.name)).toEqual(["api.acme.test", "www.acme.test"]);
    expect(m.expiries()[1]!.notAfter).toBe(a.notAfter);
    expect(a.notAfter).toBeGreaterThan(Date.now());
    for (const f of ["account.json", "certs/www.acme.test.crt", "certs/www.acme.test.key"]) expect(statSync(join(stateA(), f)).mode & 0o777).toBe(0o600);
    // Challenges are gone once validation is over.
    expect(m.httpChallengeResponse("anything")).toBeNull();
    console.log(`acme_pebble_test: badNonce answers retried so far: ${badNonces}`);
  }, 90_000);

  test("a name outside the predicate is never ordered", async () => {
    const m = manager(join(dir, "state-deny"), ["http-01"]);
    await m.start();
    expect(m.certificateFor("evil.example")).toBeNull();
    await expect(m.obtain("evil.example")).rejects.toThrow(/not-allowed/);
    await expect(m.obtain("*.acme.test")).rejects.toBeInstanceOf(AcmeError);
  });

  test("TLS-ALPN-01: the CA validates the acme-tls/1 certificate", async () => {
    const m = manager(join(dir, "state-alpn"), ["tls-alpn-01"]);
    await m.start();
    const c = await m.obtain("alpn.acme.test");
    verifyChain(c, "alpn.acme.test");
    expect(m.tlsAlpnChallengeCertificate("alpn.acme.test")).toBeNull();
  }, 90_000);

  test("a second run with the same state_dir reuses the account and the certificates", async () => {
    const accountBefore = readFileSync(join(stateA(), "account.json"), "utf8");
    const chainBefore = readFileSync(join(stateA(), "certs/www.acme.test.crt"), "utf8");
    let ordered = 0;
    const m = manager(stateA(), ["http-01"], {
      fetch: async (input, init) => {
        ordered++;
        return countingFetch(input, init);
      },
    });
    await m.start();
    // Served from the store without a word to the CA.
    expect(m.certificateFor("www.acme.test")?.chainPem).toBe(chainBefore);
    expect(m.certificateFor("api.acme.test")).not.toBeNull();
    expect(ordered).toBe(0);
    // A new name orders under the stored account (no new key, no new account).
    const c = await m.obtain("new.acme.test");
    verifyChain(c, "new.acme.test");
    expect(readFileSync(join(stateA(), "account.json"), "utf8")).toBe(accountBefore);
    const acct = JSON.parse(accountBefore);
    expect(acct.accounts[directoryUrl]).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/my-account\//);
  }, 90_000);

  test("renewal at two thirds of the lifetime (clock moved forward): every held name gets a fresh certificate", async () => {
    const names = ["api.acme.test", "new.acme.test", "www.acme.test"];
    const held = new Map(names.map((n) => [n, readFileSync(join(stateA(), `certs/${n}.crt`), "utf8")]));
    let offset = 0;
    const renewed: StoredCert[] = [];
    let done = () => {};
    const all = new Promise<void>((resolve) => (done = resolve));
    const m = manager(stateA(), ["http-01"], {
      now: () => Date.now() + offset,
      onCertificate: (c) => {
        renewed.push(c);
        if (renewed.length === names.length) done();
      },
    });
    await m.start(); // nothing due yet: no orders
    expect(renewed.length).toBe(0);
    const latest = Math.max(...m.certificates().map((c) => c.notBefore + ((c.notAfter - c.notBefore) * 2) / 3));
    offset = latest - Date.now() + 60_000;
    m.schedule(); // all three are due now; the guard runs two orders at a time
    await all;
    await m.stop();
    expect(renewed.map((c) => c.name).sort()).toEqual(names); // each once: no renewal loop
    for (const c of renewed) {
      expect(c.chainPem).not.toBe(held.get(c.name));
      expect(readFileSync(join(stateA(), `certs/${c.name}.crt`), "utf8")).toBe(c.chainPem);
      verifyChain(c, c.name);
    }
  }, 120_000);

  test("a CA that is down: start succeeds, the failure backs off instead of hammering", async () => {
    let calls = 0;
    const dead = `https://127.0.0.1:${await freePort()}/dir`;
    const m = manager(join(dir, "state-down"), ["http-01"], {
      directoryUrl: dead,
      fetch: (input, init) => {
        calls++;
        return fetchWithCa(pebbleCa)(input, init);
      },
    });
    await m.start();
    await expect(m.obtain("down.acme.test")).rejects.toThrow(/failed/);
    const after = calls;
    for (let i = 0; i < 50; i++) expect(m.certificateFor("down.acme.test")).toBeNull();
    await expect(m.obtain("down.acme.test")).rejects.toThrow(/backoff/);
    expect(calls).toBe(after);
  });

  afterAll(() => {
    if (children.logs.some((l) => /panic|fatal/i.test(l))) console.log(children.logs.join(""));
  });
});
