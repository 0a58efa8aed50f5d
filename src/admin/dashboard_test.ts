/**
 * The dashboard's inline script, run against a real /status document with a
 * tiny fake DOM. The document is wrapped so that reading a key /status does
 * not have throws: a renamed field cannot silently show "undefined".
 */
import { expect, test } from "bun:test";
import type { ListenerConfig, RouteConfig } from "../config/types.ts";
import { StatsRegistry, StatsWriter } from "../stats/mod.ts";
import { DASHBOARD_HTML } from "./dashboard.ts";
import { buildStatus } from "./status.ts";

interface Cell {
  textContent: string;
  className: string;
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

function statusDoc() {
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
  w.heartbeat(1000);
  w.opened(slots.listeners.tls!);
  w.error(slots.listeners.tls!, "NO_ROUTE");
  w.error(slots.listeners.tls!, "TLS_DECODE");
  w.opened(slots.routes.app!);
  w.bytes(slots.routes.app!, 100, 2000);
  w.error(slots.routes.app!, "UPSTREAM_CONNECT_REFUSED");
  return buildStatus({
    version: "0.1.0",
    runtime: "bun 1.4.5",
    pid: 9,
    startedMs: 0,
    nowMs: 1200,
    listeners: [listener],
    routes: [route],
    snapshot: reg.snapshot([slab], { nowMs: 1200 }),
    workers: [{ id: 0, threadId: 3, up: true, restarts: 1 }],
    tunnels: [{ id: "s1", listener: "t", worker: 0, agent: "a1", token: "k", peer: "127.0.0.1:1", transport: "smux", roles: ["destination"], services: ["web"], sinceMs: 500 }],
  });
}

async function renderDashboard(doc: unknown): Promise<Record<string, string[][] | string>> {
  const tables: Record<string, Cell[][]> = {};
  const texts: Record<string, { textContent: string }> = {};
  const element = (id: string) => {
    if (["meta", "error", "tunnels-title"].includes(id)) return (texts[id] ??= { textContent: "" });
    const rows: Cell[][] = (tables[id] = []);
    return {
      replaceChildren: () => void (rows.length = 0),
      insertRow: () => {
        const row: Cell[] = [];
        rows.push(row);
        return {
          append: (c: Cell) => void row.push(c),
          insertCell: () => {
            const c = { textContent: "", className: "" };
            row.push(c);
            return c;
          },
        };
      },
    };
  };
  const document = { getElementById: element, createElement: () => ({ textContent: "", className: "" }) };
  const fetch = async () => ({ ok: true, json: async () => doc });
  let polls = 0;
  const setTimeout = () => void polls++;
  const script = DASHBOARD_HTML.split("<script>")[1]!.split("</script>")[0]!;
  new Function("document", "fetch", "setTimeout", "performance", script)(document, fetch, setTimeout, { now: () => 1 });
  for (let i = 0; i < 20 && polls === 0; i++) await Promise.resolve();
  expect(polls).toBe(1);
  const out: Record<string, string[][] | string> = {};
  for (const [id, rows] of Object.entries(tables)) out[id] = rows.map((r) => r.map((c) => c.textContent));
  for (const [id, t] of Object.entries(texts)) out[id] = t.textContent;
  return out;
}

test("the dashboard reads only keys /status has, and shows errors by code", async () => {
  const view = await renderDashboard(strict(JSON.parse(JSON.stringify(statusDoc()))));
  expect(view.error).toBe("");
  expect(view.meta).toBe("version 0.1.0 · bun 1.4.5 · pid 9 · up 1 s");
  const all = JSON.stringify(view);
  expect(all).not.toContain("undefined");
  expect(all).not.toContain("NaN");
  expect(view.workers).toEqual([
    ["worker", "thread", "state", "restarts", "heartbeat age", "active"],
    ["0", "3", "up", "1", "200 ms", "1"],
  ]);
  const listeners = view.listeners as string[][];
  expect(listeners[0]).toContain("by code");
  expect(listeners[1]).toContain("TLS_DECODE 1, NO_ROUTE 1"); // in the order of the error table
  expect(listeners[1]).toContain("∞");
  const routes = view.routes as string[][];
  expect(routes[1]).toContain("UPSTREAM_CONNECT_REFUSED 1");
  expect(routes[1]).toContain("100 B");
  expect(routes[1]).toContain("2.0 KiB");
  // totals are the listeners': no bytes were counted on the listener here
  expect((view.totals as string[][])[1]).toEqual(["all", "1", "–", "1", "0", "2", "0 B", "0 B", "–", "–"]);
  expect(view["tunnels-title"]).toBe("Tunnel sessions (1)");
});

test("the strict wrapper catches a key /status lacks", async () => {
  const doc = statusDoc() as unknown as Record<string, unknown>;
  delete doc.uptime_seconds;
  const view = await renderDashboard(strict(doc));
  expect(view.error).toContain("status.uptime_seconds");
});
