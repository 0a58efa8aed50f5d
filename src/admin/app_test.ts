import { describe, expect, test } from "bun:test";
import { hashToken } from "../auth/mod.ts";
import type { AdminTokenConfig } from "../config/types.ts";
import { createAdminApp, healthProblems } from "./app.ts";
import { requiredScope } from "./auth.ts";
import { History } from "./history.ts";
import { StatsRegistry, StatsWriter } from "../stats/mod.ts";
import type { AdminSource, ReloadResult, StatusJson, WorkerStatus } from "./types.ts";

function worker(id: number, over: Partial<WorkerStatus> = {}): WorkerStatus {
  return { id, thread_id: id + 1, up: true, restarts: 0, heartbeat_age_ms: 100, active_connections: 0, ...over };
}

const STATUS: StatusJson = {
  version: "0.1.0",
  runtime: "bun 1.4.5",
  uptime_seconds: 12,
  pid: 4242,
  started_at: "2026-01-01T00:00:00.000Z",
  workers: [worker(0)],
  listeners: [],
  routes: [],
  totals: { accepted: 0, active: 0, closed: 0, refused: 0, bytes_in: 0, bytes_out: 0, errors_total: 0, errors: {}, aborts: {} },
  tunnels: { sessions: 0, list: [] },
  backends: [],
  services: [],
};

class FakeSource implements AdminSource {
  list: WorkerStatus[] = [worker(0), worker(1)];
  restarted: number[] = [];
  reloads = 0;
  reloadResult: ReloadResult = { ok: true };
  status(): StatusJson {
    return { ...STATUS, workers: this.list };
  }
  metrics(): string {
    return "# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n";
  }
  workers(): WorkerStatus[] {
    return this.list;
  }
  restartWorker(id: number): boolean {
    if (id >= this.list.length) return false;
    this.restarted.push(id);
    return true;
  }
  reload(): ReloadResult {
    this.reloads++;
    return this.reloadResult;
  }
}

describe("GET /healthz", () => {
  test("200 ok when every worker is up with a fresh heartbeat", async () => {
    const app = createAdminApp(new FakeSource());
    const res = await app.request("/healthz");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(await res.text()).toBe("ok\n");
  });

  test("503 with the reason when a worker is down, silent or stale", async () => {
    const src = new FakeSource();
    const app = createAdminApp(src, { heartbeatStaleMs: 1000 });
    src.list = [worker(0), worker(1, { up: false }), worker(2, { heartbeat_age_ms: null }), worker(3, { heartbeat_age_ms: 1500 })];
    const res = await app.request("/healthz");
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(await res.text()).toBe(
      "unhealthy: worker 1 is down; worker 2 has not sent a heartbeat yet; worker 3 heartbeat is 1500 ms old\n",
    );
    src.list = [];
    const empty = await app.request("/healthz");
    expect(empty.status).toBe(503);
    expect(await empty.text()).toContain("no workers");
  });

  test("the stale threshold is inclusive", () => {
    expect(healthProblems([worker(0, { heartbeat_age_ms: 1000 })], 1000)).toEqual([]);
    expect(healthProblems([worker(0, { heartbeat_age_ms: 1001 })], 1000)).toHaveLength(1);
  });
});

describe("GET /status, /metrics, /", () => {
  test("/status is the source's JSON", async () => {
    const res = await createAdminApp(new FakeSource()).request("/status");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const body = (await res.json()) as StatusJson;
    expect(body.version).toBe("0.1.0");
    expect(body.workers.map((w) => w.id)).toEqual([0, 1]);
  });

  test("/metrics has the Prometheus 0.0.4 content type", async () => {
    const res = await createAdminApp(new FakeSource()).request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(await res.text()).toContain("x_total 1\n");
  });

  test("/ is a self-contained dashboard page that polls status", async () => {
    const res = await createAdminApp(new FakeSource()).request("/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain('fetch("status"');
    expect(html).toContain("2000");
    expect(html).not.toMatch(/<(script|link)[^>]+(src|href)=/); // no external assets
    expect(html).not.toContain("innerHTML");
    const script = html.split("<script>")[1]!.split("</script>")[0]!;
    expect(() => new Function(script)).not.toThrow(); // the inline JS at least parses
  });

  test("HEAD works on GET endpoints", async () => {
    const res = await createAdminApp(new FakeSource()).request("/healthz", { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
  });

  test("an exception in the source is a JSON 500", async () => {
    const src = new FakeSource();
    src.status = () => {
      throw new Error("boom");
    };
    const res = await createAdminApp(src).request("/status");
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: "internal error", message: "boom" });
  });
});

describe("GET /history", () => {
  const history = () => {
    const reg = new StatsRegistry(4);
    const slots = reg.assign(["sni"], ["app"]);
    const slab = reg.createSlab();
    const w = new StatsWriter(slab);
    const h = new History({ intervalMs: 5000, windowMs: 60_000 });
    for (let t = 0; t <= 30_000; t += 5000) {
      w.opened(slots.listeners.sni!);
      w.bytes(slots.listeners.sni!, 500, 5000);
      h.sample(reg.snapshot([slab], { nowMs: t }));
    }
    return h;
  };

  test("the series as JSON; ?window=N keeps the last N seconds", async () => {
    const h = history();
    const app = createAdminApp(new FakeSource(), { history: (w) => h.toJSON(w) });
    const res = await app.request("/history");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const all = (await res.json()) as ReturnType<History["toJSON"]>;
    expect(all.interval_s).toBe(5);
    expect(all.t).toHaveLength(6);
    expect(all.listeners[0]!.name).toBe("sni");
    expect(all.listeners[0]!.conn_per_s).toEqual([0.2, 0.2, 0.2, 0.2, 0.2, 0.2]);
    expect(all.total.bytes_out_per_s).toEqual([1000, 1000, 1000, 1000, 1000, 1000]);
    const short = (await (await app.request("/history?window=10")).json()) as ReturnType<History["toJSON"]>;
    expect(short.t).toEqual(all.t.slice(-2));
    expect(short.window_s).toBe(10);
  });

  test("a bad window is 400; without a history source 501; POST 405", async () => {
    const h = history();
    const app = createAdminApp(new FakeSource(), { history: (w) => h.toJSON(w) });
    for (const q of ["-1", "abc", "1e3", "", "99999999"]) expect((await app.request(`/history?window=${q}`)).status).toBe(400);
    expect((await app.request("/history", { method: "POST" })).status).toBe(405);
    expect((await createAdminApp(new FakeSource()).request("/history")).status).toBe(501);
  });

  test("needs a read token when tokens are configured", async () => {
    const h = history();
    const tokens: AdminTokenConfig[] = [{ name: "prom", sha256: hashToken("r"), scope: "read" }];
    const app = createAdminApp(new FakeSource(), { tokens: () => tokens, history: (w) => h.toJSON(w) });
    expect((await app.request("/history")).status).toBe(401);
    expect((await app.request("/history?window=60", { headers: { authorization: "Bearer r" } })).status).toBe(200);
  });
});

describe("POST endpoints", () => {
  test("/workers/:id/restart", async () => {
    const src = new FakeSource();
    const app = createAdminApp(src);
    const ok = await app.request("/workers/1/restart", { method: "POST" });
    expect(ok.status).toBe(202);
    expect(await ok.json()).toEqual({ ok: true, worker: 1 });
    expect(src.restarted).toEqual([1]);

    expect((await app.request("/workers/7/restart", { method: "POST" })).status).toBe(404);
    expect((await app.request("/workers/-1/restart", { method: "POST" })).status).toBe(400);
    expect((await app.request("/workers/1x/restart", { method: "POST" })).status).toBe(400);
    expect((await app.request("/workers/1/restart")).status).toBe(405);
    expect(src.restarted).toEqual([1]);
  });

  test("/reload reports the source's result", async () => {
    const src = new FakeSource();
    const app = createAdminApp(src);
    const ok = await app.request("/reload", { method: "POST" });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ok: true });
    src.reloadResult = { ok: false, error: "routes[0].match: must be a hostname" };
    const bad = await app.request("/reload", { method: "POST" });
    expect(bad.status).toBe(500);
    expect(await bad.json()).toEqual({ ok: false, error: "routes[0].match: must be a hostname" });
    expect(src.reloads).toBe(2);
  });

  test("501 when the source has no reload or restart", async () => {
    const bare: AdminSource = { status: () => STATUS, metrics: () => "", workers: () => [] };
    const app = createAdminApp(bare);
    expect((await app.request("/reload", { method: "POST" })).status).toBe(501);
    expect((await app.request("/workers/0/restart", { method: "POST" })).status).toBe(501);
  });

  test("cross-site browser requests are refused, same-origin and non-browser ones pass", async () => {
    const src = new FakeSource();
    const app = createAdminApp(src);
    const post = (headers: Record<string, string>) =>
      app.request("http://127.0.0.1:9901/reload", { method: "POST", headers: { host: "127.0.0.1:9901", ...headers } });
    expect((await post({ origin: "https://evil.example" })).status).toBe(403);
    expect((await post({ "sec-fetch-site": "cross-site" })).status).toBe(403);
    expect((await post({ origin: "null" })).status).toBe(403);
    expect(src.reloads).toBe(0);
    expect((await post({ origin: "http://127.0.0.1:9901", "sec-fetch-site": "same-origin" })).status).toBe(200);
    expect((await post({})).status).toBe(200);
    expect(src.reloads).toBe(2);
  });
});

test("unknown paths are a JSON 404", async () => {
  const res = await createAdminApp(new FakeSource()).request("/nope/x");
  expect(res.status).toBe(404);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  expect(await res.json()).toEqual({ error: "not found", path: "/nope/x" });
});

test("wrong method on a known path is 405 with allow", async () => {
  const res = await createAdminApp(new FakeSource()).request("/metrics", { method: "POST" });
  expect(res.status).toBe(405);
  expect(res.headers.get("allow")).toBe("GET, HEAD");
});

describe("[[admin.tokens]]", () => {
  const READ = "read-secret";
  const ADMIN = "admin-secret";
  const tokens: AdminTokenConfig[] = [
    { name: "prom", sha256: hashToken(READ), scope: "read" },
    { name: "ops", sha256: hashToken(ADMIN), scope: "admin" },
  ];
  const bearer = (s: string) => ({ authorization: `Bearer ${s}` });
  const basic = (user: string, s: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${s}`).toString("base64")}` });
  const setup = (list: readonly AdminTokenConfig[] = tokens) => {
    const src = new FakeSource();
    return { src, app: createAdminApp(src, { tokens: () => list }) };
  };

  test("/healthz is open to everyone and answers text/plain", async () => {
    const { app } = setup();
    const res = await app.request("/healthz");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await res.text()).toBe("ok\n");
    expect((await app.request("/healthz", { method: "HEAD" })).status).toBe(200);
  });

  test("without credentials: 401 with a Basic challenge, on every other path", async () => {
    const { app, src } = setup();
    for (const [path, method] of [["/", "GET"], ["/status", "GET"], ["/metrics", "GET"], ["/metrics", "HEAD"], ["/reload", "POST"], ["/workers/0/restart", "POST"], ["/nope", "GET"]] as const) {
      const res = await app.request(path, { method });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Basic realm="edgemux"');
      expect(res.headers.get("cache-control")).toBe("no-store");
    }
    expect(src.reloads).toBe(0);
    expect(src.restarted).toEqual([]);
  });

  test("a wrong secret or a malformed header is 401 too", async () => {
    const { app } = setup();
    for (const authorization of ["Bearer wrong", "Basic " + Buffer.from("x:wrong").toString("base64"), "Bearer", "Digest abc", "Basic !!!", `Bearer ${hashToken(READ)}`]) {
      const res = await app.request("/metrics", { headers: { authorization } });
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Basic realm="edgemux"');
      expect(await res.json()).toHaveProperty("error");
    }
  });

  test("a read token may GET /, /status and /metrics, by Bearer or Basic with any user name", async () => {
    const { app } = setup();
    for (const headers of [bearer(READ), basic("", READ), basic("grafana", READ), { authorization: `bearer ${READ}` }]) {
      for (const path of ["/", "/status", "/metrics"]) expect((await app.request(path, { headers })).status).toBe(200);
    }
  });

  test("a read token gets 403 on the admin endpoints, which do nothing", async () => {
    const { app, src } = setup();
    for (const headers of [bearer(READ), basic("u", READ)]) {
      const reload = await app.request("/reload", { method: "POST", headers });
      expect(reload.status).toBe(403);
      expect(reload.headers.get("www-authenticate")).toBeNull();
      expect(await reload.json()).toEqual({ error: `token 'prom' has scope "read"; this needs scope "admin"` });
      expect((await app.request("/workers/0/restart", { method: "POST", headers })).status).toBe(403);
    }
    expect(src.reloads).toBe(0);
    expect(src.restarted).toEqual([]);
  });

  test("an admin token may do everything (admin implies read)", async () => {
    const { app, src } = setup();
    for (const headers of [bearer(ADMIN), basic("me", ADMIN)]) {
      for (const path of ["/", "/status", "/metrics"]) expect((await app.request(path, { headers })).status).toBe(200);
      expect((await app.request("/reload", { method: "POST", headers })).status).toBe(200);
      expect((await app.request("/workers/1/restart", { method: "POST", headers })).status).toBe(202);
      expect((await app.request("/nope", { headers })).status).toBe(404);
      expect((await app.request("/metrics", { method: "POST", headers })).status).toBe(405);
    }
    expect(src.reloads).toBe(2);
    expect(src.restarted).toEqual([1, 1]);
  });

  test("the cross-origin check still applies to an admin token", async () => {
    const { app, src } = setup();
    const res = await app.request("http://127.0.0.1:9901/reload", { method: "POST", headers: { ...bearer(ADMIN), host: "127.0.0.1:9901", origin: "https://evil.example" } });
    expect(res.status).toBe(403);
    expect(src.reloads).toBe(0);
  });

  test("no tokens: open, as before", async () => {
    const { app, src } = setup([]);
    expect((await app.request("/metrics")).status).toBe(200);
    expect((await app.request("/reload", { method: "POST" })).status).toBe(200);
    expect(src.reloads).toBe(1);
  });

  test("the token list is asked per request, so a reload applies to the next one", async () => {
    let list: readonly AdminTokenConfig[] = [];
    const app = createAdminApp(new FakeSource(), { tokens: () => list });
    expect((await app.request("/status")).status).toBe(200);
    list = [tokens[0]!];
    expect((await app.request("/status")).status).toBe(401);
    expect((await app.request("/status", { headers: bearer(READ) })).status).toBe(200);
    list = [{ ...tokens[0]!, scope: "admin" }];
    expect((await app.request("/reload", { method: "POST", headers: bearer(READ) })).status).toBe(200);
    list = [tokens[1]!];
    expect((await app.request("/status", { headers: bearer(READ) })).status).toBe(401);
  });

  test("requiredScope: read-only paths by GET/HEAD, /healthz none, anything else admin", () => {
    expect(requiredScope("GET", "/healthz")).toBeNull();
    expect(requiredScope("HEAD", "/healthz")).toBeNull();
    expect(requiredScope("POST", "/healthz")).toBe("admin");
    for (const p of ["/", "/status", "/metrics", "/history"]) {
      expect(requiredScope("GET", p)).toBe("read");
      expect(requiredScope("POST", p)).toBe("admin");
    }
    for (const p of ["/reload", "/workers/0/restart", "/drain", "/status/", "/unknown"]) expect(requiredScope("GET", p)).toBe("admin");
  });
});
