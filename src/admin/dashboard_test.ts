/**
 * The dashboard's inline script, run against a real /status document (and a
 * real /history one) with a tiny fake DOM. The status document is wrapped so
 * that reading a key /status does not have throws: a renamed field cannot
 * silently show "undefined". Fields a newer /status adds (backends, services)
 * are read only after checking they are there, so an older document renders "—".
 */
import { expect, test } from "bun:test";
import type { ListenerConfig, RouteConfig } from "../config/types.ts";
import { StatsRegistry, StatsWriter } from "../stats/mod.ts";
import { DASHBOARD_HTML } from "./dashboard.ts";
import { History, type HistoryJson } from "./history.ts";
import { buildStatus } from "./status.ts";

/** Just enough of the DOM for the dashboard script. */
class FakeNode {
  readonly children: FakeNode[] = [];
  readonly attrs: Record<string, string> = {};
  readonly listeners: Record<string, ((e: unknown) => void)[]> = {};
  readonly style: Record<string, string> = {};
  className = "";
  title = "";
  value = "";
  colSpan = 1;
  private ownText = "";
  constructor(readonly tag: string) {}
  get textContent(): string {
    return this.ownText + this.children.map((c) => c.textContent).join("");
  }
  set textContent(v: string) {
    this.children.length = 0;
    this.ownText = String(v);
  }
  append(...nodes: FakeNode[]): void {
    this.children.push(...nodes);
  }
  replaceChildren(...nodes: FakeNode[]): void {
    this.children.length = 0;
    this.ownText = "";
    this.children.push(...nodes);
  }
  setAttribute(k: string, v: string): void {
    this.attrs[k] = String(v);
  }
  getAttribute(k: string): string | null {
    return this.attrs[k] ?? null;
  }
  addEventListener(type: string, fn: (e: unknown) => void): void {
    (this.listeners[type] ??= []).push(fn);
  }
  insertRow(): FakeNode {
    const r = new FakeNode("tr");
    r.insertCell = () => {
      const c = new FakeNode("td");
      r.children.push(c);
      return c;
    };
    this.children.push(r);
    return r;
  }
  insertCell(): FakeNode {
    throw new Error("insertCell on a non-row");
  }
  getBoundingClientRect() {
    return { left: 0, top: 0, width: 300, height: 96 };
  }
  /** Every descendant with this tag. */
  all(tag: string): FakeNode[] {
    return this.children.flatMap((c) => [...(c.tag === tag ? [c] : []), ...c.all(tag)]);
  }
}

function strict<T>(v: T, path = "status"): T {
  if (v === null || typeof v !== "object") return v;
  return new Proxy(v as object, {
    get(target, key, receiver) {
      if (typeof key === "string" && !(key in target) && key !== "then" && key !== "toJSON") {
        throw new Error(`the dashboard reads ${path}.${key}, which /status does not have`);
      }
      return strict(Reflect.get(target, key, receiver), typeof key === "string" ? `${path}.${key}` : path);
    },
  }) as T;
}

function fixture() {
  const listener: ListenerConfig = {
    name: "tls",
    kind: "sni",
    address: { kind: "tcp", hostname: "127.0.0.1", port: 8443 },
    acceptProxy: "none",
    handshakeTimeoutMs: 10_000,
    idleTimeoutMs: 0,
    maxClientHello: 16_384,
    maxConnections: 0,
  };
  const route = { name: "app", match: "app.example", alpn: [], listeners: [], targets: [{ kind: "tcp", hostname: "10.0.0.1", port: 443 }], balance: "round_robin", connectTimeoutMs: 5000, proxyProtocol: "none", directory: null } as RouteConfig;
  const reg = new StatsRegistry(2);
  const slots = reg.assign(["tls"], ["app"]);
  const slab = reg.createSlab();
  const w = new StatsWriter(slab);
  const history = new History({ intervalMs: 5000, windowMs: 60_000 });
  w.heartbeat(1000);
  history.sample(reg.snapshot([slab], { nowMs: 0 }));
  w.opened(slots.listeners.tls!);
  w.error(slots.listeners.tls!, "NO_ROUTE");
  w.error(slots.listeners.tls!, "TLS_DECODE");
  w.opened(slots.routes.app!);
  w.bytes(slots.routes.app!, 100, 2000);
  w.bytes(slots.listeners.tls!, 100, 2000);
  w.error(slots.routes.app!, "UPSTREAM_CONNECT_REFUSED");
  w.handshake(slots.listeners.tls!, 0.003);
  history.sample(reg.snapshot([slab], { nowMs: 5000 }));
  history.sample(reg.snapshot([slab], { nowMs: 10_000 }));
  const status = (nowMs = 1200) =>
    buildStatus({
      version: "0.1.0",
      runtime: "bun 1.4.5",
      pid: 9,
      startedMs: 0,
      nowMs,
      listeners: [listener],
      routes: [route],
      snapshot: reg.snapshot([slab], { nowMs }),
      workers: [{ id: 0, threadId: 3, up: true, restarts: 1 }],
      tunnels: [{ id: "s1", listener: "t", worker: 0, agent: "a1", token: "k", peer: "127.0.0.1:1", transport: "smux", roles: ["destination"], services: ["web"], sinceMs: 500 }],
    });
  return { status, history: history.toJSON(), w, slots };
}

interface Page {
  node(id: string): FakeNode;
  table(id: string): string[][];
  rowClasses(id: string): string[];
  text(id: string): string;
  /** Runs the next scheduled poll. */
  poll(): Promise<void>;
  polls: number;
}

async function renderDashboard(docs: { status: () => unknown; history?: () => unknown }): Promise<Page> {
  const nodes: Record<string, FakeNode> = {};
  const node = (id: string) => (nodes[id] ??= new FakeNode(["workers", "listeners", "routes", "backends", "services", "tunnels"].includes(id) ? "table" : "div"));
  const document = {
    getElementById: node,
    createElement: (tag: string) => new FakeNode(tag),
    createElementNS: (_ns: string, tag: string) => new FakeNode(tag),
    createTextNode: (t: string) => {
      const n = new FakeNode("#text");
      n.textContent = t;
      return n;
    },
  };
  const fetch = async (url: string) => {
    if (url === "status") return { ok: true, json: async () => docs.status() };
    if (url.startsWith("history?window=") && docs.history) return { ok: true, json: async () => docs.history!() };
    return { ok: false, status: 404, json: async () => ({}) };
  };
  let pending: (() => void) | null = null;
  let polls = 0;
  const setTimeout = (fn: () => void) => {
    polls++;
    pending = fn;
  };
  let clock = 1;
  const performance = { now: () => (clock += 2000) };
  const script = DASHBOARD_HTML.split("<script>")[1]!.split("</script>")[0]!;
  new Function("document", "fetch", "setTimeout", "performance", script)(document, fetch, setTimeout, performance);
  const settle = async (want: number) => {
    for (let i = 0; i < 50 && polls < want; i++) await Promise.resolve();
    expect(polls).toBe(want);
  };
  await settle(1);
  const page: Page = {
    node,
    table: (id) => node(id).children.map((r) => r.children.map((c) => c.textContent)),
    rowClasses: (id) => node(id).children.slice(1).map((r) => r.className),
    text: (id) => node(id).textContent,
    poll: async () => {
      const want = page.polls + 1;
      pending!();
      await settle(want);
      page.polls = want;
    },
    polls: 1,
  };
  return page;
}

/** /status as an edgemux from before backends, services and per-session counters sent it. */
function older(doc: Record<string, unknown>): Record<string, unknown> {
  const d = JSON.parse(JSON.stringify(doc));
  delete d.backends;
  delete d.services;
  for (const s of d.tunnels.list) for (const k of ["streams", "active_streams", "bytes_in", "bytes_out"]) delete s[k];
  return d;
}

test("the dashboard reads only keys /status has, and shows errors by code", async () => {
  const { status } = fixture();
  const doc = JSON.parse(JSON.stringify(status()));
  const page = await renderDashboard({ status: () => strict(doc) });
  expect(page.text("error")).toBe("");
  expect(page.text("meta")).toBe("version 0.1.0 · bun 1.4.5 · pid 9 · up 1 s");
  const all = JSON.stringify(["summary", "workers", "listeners", "routes", "backends", "services", "tunnels"].map((id) => page.table(id)));
  expect(all).not.toContain("undefined");
  expect(all).not.toContain("NaN");
  expect(all).not.toContain("null");
  expect(page.table("workers")).toEqual([
    ["worker", "thread", "state", "restarts", "heartbeat age", "open connections"],
    ["0", "3", "up", "1", "200 ms", "1"],
  ]);
  const listeners = page.table("listeners");
  expect(listeners[0]).toContain("by code");
  expect(listeners[1]).toContain("TLS_DECODE 1, NO_ROUTE 1"); // in the order of the error table
  expect(listeners[1]).toContain("∞");
  const routes = page.table("routes");
  expect(routes[1]).toContain("UPSTREAM_CONNECT_REFUSED 1");
  expect(routes[1]).toContain("100 B");
  expect(routes[1]).toContain("2.0 KiB");
  expect(page.text("tunnels-title")).toBe("Tunnel sessions (1)");
  const session = page.table("tunnels")[1]!;
  expect(session[0]).toBe("a1");
  expect(session.at(-1)).toMatch(/ d ago$/); // since: relative; the ISO time is the cell's title
  expect(page.node("tunnels").children[1]!.children.at(-1)!.title).toBe("1970-01-01T00:00:00.500Z");
  expect(session.slice(8, 14)).toEqual(["0", "—", "0", "0 B", "0 B", "—"]); // streams, streams/s (one poll: no rate yet), open, in, out, in/s
});

test("an older /status without backends, services and session counters renders '—'", async () => {
  const { status } = fixture();
  const doc = older(status() as unknown as Record<string, unknown>);
  const page = await renderDashboard({ status: () => strict(doc) });
  expect(page.text("error")).toBe("");
  expect(page.table("backends")[1]).toEqual(["— (not reported by this edgemux)"]);
  expect(page.table("services")[1]).toEqual(["— (not reported by this edgemux)"]);
  expect(page.table("tunnels")[1]!.slice(8, 15)).toEqual(["—", "—", "—", "—", "—", "—", "—"]);
  const all = JSON.stringify(["backends", "services", "tunnels"].map((id) => page.table(id)));
  expect(all).not.toContain("undefined");
  expect(all).not.toContain("NaN");
});

test("no history yet, or none served: the plots say so and the tables still render", async () => {
  const { status } = fixture();
  const page = await renderDashboard({ status });
  expect(page.text("history-note")).toBe("history unavailable: history 404");
  expect(page.table("listeners")).toHaveLength(2);
});

test("backends and services: state colours like HAProxy's, agents, last error, rates", async () => {
  const { status } = fixture();

  const at = new Date(Date.now() - 3 * 60_000 - 5000).toISOString();
  const backend = (target: string, state: string, extra = {}) => ({
    route: "app", target, state, active: 2, connections: 10, failures: 1, connect_p50_ms: 0.4, connect_p99_ms: 12.5, last_error: null, ...extra,
  });
  let n = 0;
  const withMore = () => ({
    ...status(),
    backends: [
      backend("10.0.0.1:443", "up", { connections: 10 + 10 * n }),
      backend("10.0.0.2:443", "failing", { last_error: { code: "UPSTREAM_CONNECT_REFUSED", at } }),
      backend("10.0.0.3:443", "cooling_down"),
      { route: "app", target: "10.0.0.4:443", state: "unknown" },
    ],
    services: [
      { name: "web", online: true, agents: [{ session_id: "s1", agent: "a1", worker: 0 }], streams: 5 + 4 * n, active_streams: 1, bytes_in: 100, bytes_out: 1000 + 4096 * n, open_failures: 0 },
      { name: "db", online: false, agents: [], streams: 0, active_streams: 0, bytes_in: 0, bytes_out: 0, open_failures: 3 },
    ],
  });
  const page = await renderDashboard({ status: () => strict(JSON.parse(JSON.stringify(withMore()))) });
  expect(page.text("error")).toBe("");
  expect(page.rowClasses("backends")).toEqual(["st-up", "st-failing", "st-cooling_down", "st-unknown"]);
  const rows = page.table("backends");
  expect(rows[1]!.slice(0, 3)).toEqual(["app", "10.0.0.1:443", "up"]);
  expect(rows[2]!.at(-1)).toBe("UPSTREAM_CONNECT_REFUSED · 3 min ago");
  expect(page.node("backends").children[2]!.children.at(-1)!.title).toBe(at);
  expect(rows[3]![2]).toBe("cooling down");
  expect(rows[4]).toEqual(["app", "10.0.0.4:443", "unknown", "—", "—", "—", "—", "—", "—", "—"]);
  expect(rows[2]).toContain("0.40 ms");
  expect(rows[2]).toContain("12.5 ms");
  expect(page.rowClasses("services")).toEqual(["st-up", "st-failing"]);
  const services = page.table("services");
  expect(services[1]!.slice(0, 3)).toEqual(["web", "online", "a1 (worker 0, s1)"]);
  expect(services[2]!.slice(0, 3)).toEqual(["db", "offline", "—"]);
  expect(services[2]!.at(-1)).toBe("3");

  // A second poll 2 s later: rates on the rows.
  n = 1;
  await page.poll();
  expect(page.text("error")).toBe("");
  expect(page.table("backends")[1]![5]).toBe("5");
  const web = page.table("services")[1]!;
  expect(web[4]).toBe("2"); // streams/s
  expect(web[9]).toBe("2.0 KiB/s"); // out/s
});

test("the plots draw the history as SVG paths, per listener and per route", async () => {
  const { status, history } = fixture();
  const page = await renderDashboard({ status, history: () => history });
  expect(page.text("error")).toBe("");
  expect(page.text("history-note")).toBe("every 5 s; 2 samples");
  const total = page.node("total-plot").all("path");
  expect(total.length).toBeGreaterThanOrEqual(4);
  const cards = page.node("plots").children;
  expect(cards.map((c) => c.getAttribute("data-name"))).toEqual(["tls"]);
  const paths = cards[0]!.all("path");
  const byLabel = (label: string) => paths.find((p) => p.getAttribute("data-series") === label)!;
  const conn = byLabel("new");
  expect(conn.getAttribute("data-points")).toBe("2");
  // Two points: a rise then a drop to 0, not a flat line.
  const ys = [...conn.getAttribute("d")!.matchAll(/[ML][0-9.]+ ([0-9.]+)/g)].map((m) => Number(m[1]));
  expect(ys).toHaveLength(2);
  expect(ys[0]).toBeLessThan(ys[1]!);
  expect(paths.map((p) => p.getAttribute("data-series"))).toEqual(expect.arrayContaining(["in", "out", "NO_ROUTE", "TLS_DECODE", "handshake p50"]));
  // The legend shows the latest values.
  expect(cards[0]!.textContent).toContain("NO_ROUTE 0");

  // Routes, then one route alone.
  const kind = page.node("plot-kind");
  kind.listeners.change![0]!({ target: { value: "routes" } });
  expect(page.node("plots").children.map((c) => c.getAttribute("data-name"))).toEqual(["app"]);
  expect(page.node("plot-name").children.map((o) => o.textContent)).toEqual(["all (small multiples)", "app"]);
  page.node("plot-name").listeners.change![0]!({ target: { value: "app" } });
  expect(page.node("plots").className).toBe("grid one");
  const errs = page.node("plots").all("path").filter((p) => p.getAttribute("data-series") === "UPSTREAM_CONNECT_REFUSED");
  expect(errs).toHaveLength(1);
});

test("the history document stays small: numbers rounded, nulls for no data", () => {
  const { history } = fixture();
  const h: HistoryJson = history;
  expect(h.listeners[0]!.handshake_p50_ms[1]).toBeNull();
  expect(JSON.stringify(h)).not.toMatch(/\.\d{4,}/);
});

test("the strict wrapper catches a key /status lacks", async () => {
  const doc = fixture().status() as unknown as Record<string, unknown>;
  delete doc.uptime_seconds;
  const page = await renderDashboard({ status: () => strict(doc) });
  expect(page.text("error")).toContain("status.uptime_seconds");
});
