/**
 * The admin API's `[[admin.tokens]]` and `[admin.tls]` end to end: a real
 * `edgemux serve` (Bun, or Deno with EDGEMUX_RUNTIME=deno) checked with curl.
 * /healthz stays open; everything else needs a token, `read` for /metrics,
 * `admin` for POST /reload; a reload re-reads the tokens; with [admin.tls] the
 * API is HTTPS. Only 127.0.0.1, port 0.
 */

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { hashToken } from "../src/auth/mod.ts";
import { edgemuxCommand, type EdgemuxProcess, run, startEdgemux, tempDir } from "./support/edgemux.ts";
import { testPki } from "./support/tls.ts";

const READ = "read-secret-1f9a";
const ADMIN = "admin-secret-7c2e";
const NEW_READ = "read-secret-rotated";

const config = (o: { readSecret?: string; tls?: { cert: string; key: string } } = {}) => `
workers = 1
[admin]
address = "127.0.0.1:0"

[[admin.tokens]]
name = "prometheus"
sha256 = "${hashToken(o.readSecret ?? READ)}"
scope = "read"

[[admin.tokens]]
name = "ops"
sha256 = "${hashToken(ADMIN)}"
scope = "admin"
${o.tls ? `\n[admin.tls]\ncert = "${o.tls.cert}"\nkey = "${o.tls.key}"\n` : ""}
[[listeners]]
name = "sni"
kind = "sni"
address = "127.0.0.1:0"

[[routes]]
match = "*"
targets = ["127.0.0.1:9"]
`;

interface CurlResult {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** curl with the response head and body split apart; `args` before the URL. */
async function curl(url: string, args: string[] = []): Promise<CurlResult> {
  const r = await run("curl", ["-sS", "--max-time", "10", "-D", "-", ...args, url]);
  if (r.code !== 0) throw new Error(`curl ${url} failed (${r.code}): ${r.stderr}`);
  const split = r.stdout.indexOf("\r\n\r\n");
  const [statusLine, ...fields] = r.stdout.slice(0, split).split("\r\n");
  const headers: Record<string, string> = {};
  for (const f of fields) {
    const i = f.indexOf(":");
    headers[f.slice(0, i).toLowerCase()] = f.slice(i + 1).trim();
  }
  return { status: Number(statusLine!.split(" ")[1]), headers, body: r.stdout.slice(split + 4) };
}

const bearer = (s: string) => ["-H", `Authorization: Bearer ${s}`];
const post = ["-X", "POST"];

describe("admin API with [[admin.tokens]] over HTTP", () => {
  let p: EdgemuxProcess;
  let base: string;
  beforeAll(async () => {
    p = await startEdgemux(config());
    base = `http://${p.admin}`;
  });
  afterAll(async () => {
    await p?.stop();
  });

  test("/healthz is open to everyone and answers text/plain", async () => {
    const r = await curl(`${base}/healthz`);
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("text/plain; charset=utf-8");
    expect(r.body).toBe("ok\n");
  });

  test("/metrics without credentials is 401 with a Basic challenge", async () => {
    const r = await curl(`${base}/metrics`);
    expect(r.status).toBe(401);
    expect(r.headers["www-authenticate"]).toBe('Basic realm="edgemux"');
    expect((await curl(`${base}/metrics`, bearer("wrong"))).status).toBe(401);
    expect((await curl(`${base}/`, ["-u", "me:wrong"])).status).toBe(401);
  });

  test("a read token gets /metrics with Bearer and with Basic (any user name), and /status", async () => {
    const viaBearer = await curl(`${base}/metrics`, bearer(READ));
    expect(viaBearer.status).toBe(200);
    expect(viaBearer.body).toContain("edgemux_");
    expect((await curl(`${base}/metrics`, ["-u", `grafana:${READ}`])).status).toBe(200);
    expect((await curl(`${base}/`, ["-u", `:${READ}`])).headers["content-type"]).toMatch(/^text\/html/);
    const status = await p.adminGet("/status", { authorization: `Bearer ${READ}` });
    expect(status.status).toBe(200);
    expect(((await status.json()) as { workers: unknown[] }).workers).toHaveLength(1);
  });

  test("POST /reload is 403 with a read token and 200 with an admin token", async () => {
    const denied = await curl(`${base}/reload`, [...post, ...bearer(READ)]);
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body)).toEqual({ error: `token 'prometheus' has scope "read"; this needs scope "admin"` });
    expect((await curl(`${base}/workers/0/restart`, [...post, "-u", `x:${READ}`])).status).toBe(403);
    const ok = await curl(`${base}/reload`, [...post, ...bearer(ADMIN)]);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ ok: true });
  });

  test("a reload re-reads the admin tokens", async () => {
    writeFileSync(p.configPath, config({ readSecret: NEW_READ }));
    expect((await curl(`${base}/reload`, [...post, ...bearer(ADMIN)])).status).toBe(200);
    expect((await curl(`${base}/metrics`, bearer(READ))).status).toBe(401);
    expect((await curl(`${base}/metrics`, bearer(NEW_READ))).status).toBe(200);
  });
});

describe("admin API with [admin.tls]", () => {
  let p: EdgemuxProcess;
  beforeAll(async () => {
    const c = testPki().issue("admin", ["IP:127.0.0.1"]);
    p = await startEdgemux(config({ tls: { cert: c.certPath, key: c.keyPath } }));
  });
  afterAll(async () => {
    await p?.stop();
  });

  test("curl --cacert reaches it over https; tokens apply as over http", async () => {
    const tls = ["--cacert", testPki().caCertPath];
    const health = await curl(`https://${p.admin}/healthz`, tls);
    expect(health.status).toBe(200);
    expect(health.body).toBe("ok\n");
    expect((await curl(`https://${p.admin}/metrics`, tls)).status).toBe(401);
    expect((await curl(`https://${p.admin}/metrics`, [...tls, ...bearer(READ)])).status).toBe(200);
    expect((await curl(`https://${p.admin}/reload`, [...tls, ...post, ...bearer(ADMIN)])).status).toBe(200);
  });

  test("plain http on the TLS port gets no admin answer", async () => {
    const r = await run("curl", ["-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", `http://${p.admin}/healthz`]);
    expect(r.stdout).not.toBe("200");
  });
});

test("check-config refuses a non-loopback admin address without tokens (validation only; nothing is bound)", async () => {
  const dir = tempDir();
  const path = `${dir}/edgemux.toml`;
  writeFileSync(path, `[admin]\naddress = "0.0.0.0:9901"\n[[listeners]]\nkind = "sni"\naddress = "127.0.0.1:0"\n[[routes]]\nmatch = "*"\ntargets = ["127.0.0.1:9"]\n`);
  const { cmd, argv } = edgemuxCommand(["check-config", path]);
  const r = await run(cmd, argv, { timeoutMs: 30_000 });
  expect(r.code).toBe(1);
  expect(r.stdout + r.stderr).toContain("admin.address: a non-loopback admin API needs [[admin.tokens]] (or admin.insecure = true)");
});
