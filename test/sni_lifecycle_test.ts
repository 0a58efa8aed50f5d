/**
 * The runtime shape end to end: two workers share the listener, a killed
 * worker comes back while traffic continues, SIGHUP reloads routes without
 * breaking an in-flight transfer (and refuses an invalid config), SIGTERM
 * drains, max_connections and access lists refuse at accept.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { type EdgemuxProcess, run, startEdgemux, waitFor } from "./support/edgemux.ts";
import { exchange, fixtureHello, rewriteSni } from "./support/net.ts";
import { type TlsBackend, testPki, tlsBackend } from "./support/tls.ts";

let a: TlsBackend, b: TlsBackend;

beforeAll(async () => {
  a = await tlsBackend("a.test");
  b = await tlsBackend("b.test");
});
afterAll(async () => {
  await a?.close();
  await b?.close();
});

function configWith(routes: string, extra = "", listenerExtra = ""): string {
  return `
workers = 2
drain_timeout = "20s"
${extra}
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "sni"
kind = "sni"
address = "127.0.0.1:0"
${listenerExtra}
${routes}`;
}

const routeA = () => `
[[routes]]
match = "a.test"
targets = ["${a.address}"]
`;

function curlArgs(em: EdgemuxProcess, host: string, path = "/"): string[] {
  const { port } = em.hostPort("sni");
  return ["-sS", "--max-time", "30", "--cacert", testPki().caCertPath, "--resolve", `${host}:${port}:127.0.0.1`, `https://${host}:${port}${path}`];
}

async function curl(em: EdgemuxProcess, host: string, path = "/"): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return await run("curl", curlArgs(em, host, path), { timeoutMs: 40_000 });
}

/** Starts a slow download (rate-limited by curl) and returns its promise. */
function slowDownload(em: EdgemuxProcess, host: string, bytes: number, rate: string) {
  return run("curl", ["--limit-rate", rate, "-o", "-", ...curlArgs(em, host, `/bytes/${bytes}`)], { timeoutMs: 60_000 });
}

describe("workers", () => {
  test("two workers both take connections", async () => {
    const em = await startEdgemux(configWith(routeA()), { workers: 2 });
    try {
      for (let i = 0; i < 40; i++) expect((await curl(em, "a.test")).stdout).toBe("backend=a.test\n");
      const lines = await waitFor(() => {
        const ls = em.lines.filter((l) => l.msg === "connection");
        return ls.length >= 40 ? ls : null;
      });
      const workers = new Set(lines.map((l) => l.worker));
      expect(workers.size).toBe(2);
      const status = await em.status();
      expect(status.workers.length).toBe(2);
      expect(status.listeners[0].accepted).toBe(40);
    } finally {
      await em.stop();
    }
  });

  test("a killed worker is restarted; traffic continues meanwhile", async () => {
    const em = await startEdgemux(configWith(routeA()), { workers: 2 });
    try {
      const res = await fetch(`http://${em.admin}/workers/0/restart`, { method: "POST" });
      expect(res.status).toBe(202);
      // Traffic keeps flowing while worker 0 is down and after it returns.
      for (let i = 0; i < 10; i++) expect((await curl(em, "a.test")).stdout).toBe("backend=a.test\n");
      const status = await waitFor(async () => {
        const s = await em.status();
        return s.workers[0].up && s.workers[0].restarts === 1 ? s : null;
      });
      expect(status.workers[1].restarts).toBe(0);
      // Asked for, so logged at info, not as a crash.
      expect(await em.waitForLine((l) => l.msg === "worker restarted by operator")).toMatchObject({ level: "info", worker: 0 });
      expect(em.lines.filter((l) => l.level === "error")).toEqual([]);
      expect((await em.adminGet("/healthz")).status).toBe(200);
      for (let i = 0; i < 10; i++) expect((await curl(em, "a.test")).stdout).toBe("backend=a.test\n");
    } finally {
      await em.stop();
    }
  });
});

describe("reload (SIGHUP)", () => {
  test("new routes apply; a transfer in flight completes; an invalid config is refused", async () => {
    const em = await startEdgemux(configWith(routeA()), { workers: 2 });
    try {
      expect((await curl(em, "b.test")).code).not.toBe(0); // no route yet
      const size = 3 * 1024 * 1024;
      const inflight = slowDownload(em, "a.test", size, "1M");
      await waitFor(() => a.requests > 0 || null); // the download has started
      writeFileSync(em.configPath, configWith(routeA() + `
[[routes]]
match = "b.test"
targets = ["${b.address}"]
`));
      em.signal("SIGHUP");
      await em.waitForLine((l) => l.msg === "config reloaded");
      expect((await waitFor(async () => {
        const r = await curl(em, "b.test");
        return r.stdout === "backend=b.test\n" ? r : null;
      })).stdout).toBe("backend=b.test\n");
      // An invalid config is refused with its error; the running one stays.
      writeFileSync(em.configPath, configWith(routeA()).replace('kind = "sni"', 'kind = "sni"\nbogus_key = 1'));
      em.signal("SIGHUP");
      const refused = await em.waitForLine((l) => l.msg.startsWith("reload refused"));
      expect(String(refused.reason)).toContain("bogus_key");
      expect((await curl(em, "b.test")).stdout).toBe("backend=b.test\n");
      const done = await inflight;
      expect(done.code).toBe(0);
      expect(done.stdout.length).toBe(size);
    } finally {
      await em.stop();
    }
  });
});

describe("drain (SIGTERM)", () => {
  test("stops accepting, lets the transfer finish, exits 0", async () => {
    const em = await startEdgemux(configWith(routeA()), { workers: 2 });
    const size = 2 * 1024 * 1024;
    const before = a.requests;
    const inflight = slowDownload(em, "a.test", size, "1M");
    await waitFor(() => a.requests > before || null);
    em.signal("SIGTERM");
    await waitFor(() => em.lines.filter((l) => l.msg === "stopped accepting").length === 2 || null);
    // New connections are refused (listener closed) while the old one runs.
    const { port } = em.hostPort("sni");
    const refused = await exchange({ host: "127.0.0.1", port }, [fixtureHello()], { timeoutMs: 2000 });
    expect(refused.closed).toBe(true);
    expect(refused.data.length).toBe(0);
    const done = await inflight;
    expect(done.code).toBe(0);
    expect(done.stdout.length).toBe(size);
    expect(await em.waitExit(20_000)).toBe(0);
  });
});

describe("limits at accept", () => {
  test("max_connections across workers refuses the extra connection", async () => {
    const em = await startEdgemux(configWith(routeA(), "", 'max_connections = 2\nhandshake_timeout = "5s"'), { workers: 2 });
    try {
      const { port } = em.hostPort("sni");
      // Two silent clients hold both permits (they sit in the handshake phase).
      const { connect } = await import("node:net");
      const holders = [connect(port, "127.0.0.1"), connect(port, "127.0.0.1")];
      await waitFor(async () => (await em.status()).listeners[0].active === 2 || null);
      const third = await exchange({ host: "127.0.0.1", port }, [fixtureHello()], { timeoutMs: 3000 });
      expect(third.closed).toBe(true);
      expect(third.data.length).toBe(0);
      const s = await em.status();
      expect(s.listeners[0].refused).toBeGreaterThanOrEqual(1);
      for (const h of holders) h.destroy();
      await waitFor(async () => (await em.status()).listeners[0].active === 0 || null);
      expect((await curl(em, "a.test")).stdout).toBe("backend=a.test\n");
    } finally {
      await em.stop();
    }
  });

  test("idle_timeout closes a relayed pair that moves no bytes", async () => {
    const { recordingServer } = await import("./support/net.ts");
    const backend = await recordingServer();
    const em = await startEdgemux(configWith(`
[[routes]]
match = "*"
targets = ["${backend.address}"]
`, "", 'idle_timeout = "1s"'), { workers: 1 });
    try {
      const r = await exchange(em.hostPort("sni"), [fixtureHello()], { timeoutMs: 5000 });
      expect(r.closed).toBe(true);
      expect(r.ms).toBeGreaterThanOrEqual(950);
      expect(r.ms).toBeLessThan(3000);
      const line = await em.waitForLine((l) => l.msg === "connection");
      expect(line.error).toBe("IDLE_TIMEOUT");
      expect(line.bytes_in).toBe(fixtureHello().length);
    } finally {
      await em.stop();
      await backend.close();
    }
  });

  test("access deny list closes before any work", async () => {
    const em = await startEdgemux(configWith(routeA(), `[access]\ndeny = ["127.0.0.0/8"]\n`), { workers: 1 });
    try {
      const r = await exchange(em.hostPort("sni"), [rewriteSni(fixtureHello(), "a.test")], { timeoutMs: 3000 });
      expect(r.closed).toBe(true);
      expect(r.data.length).toBe(0);
      const metrics = await (await em.adminGet("/metrics")).text();
      expect(metrics).toMatch(/code="ACCESS_DENIED"[^\n]* 1/);
    } finally {
      await em.stop();
    }
  });
});

export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}
