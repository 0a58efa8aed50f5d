/**
 * The admin dashboard in a real browser: a real `edgemux serve` (Bun, or Deno
 * with EDGEMUX_RUNTIME=deno) with tcp listeners (one to an echo server, one to
 * a refused port, one to a tunnel service), a tunnel listener and an
 * `edgemux agent` exposing the service; traffic through all three; then
 * Debian's headless Chromium (raw CDP, test/support/cdp.ts) opens the
 * dashboard with a read token and the test reads the DOM: tables rendered,
 * SVG plot paths carrying non-zero points after the traffic, backend states,
 * the service online and then offline once the agent is killed. Screenshots
 * go to a folder under $TMPDIR whose path is printed.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashToken } from "../src/auth/mod.ts";
import { Chromium, CdpPage, hasChromium } from "./support/cdp.ts";
import { type EdgemuxProcess, startEdgemux, waitFor } from "./support/edgemux.ts";
import { edgeTls, startAgentProcess } from "./support/tunnel.ts";

const READ = "dashboard-read-secret";
const DEST = "dashboard-dest-secret";
const skip = !hasChromium();
if (skip) console.warn("dashboard_chromium_test: skipped, /usr/bin/chromium is not installed (scripts/install.sh installs Debian's chromium)");

let echo: net.Server;
let echoPort = 0;
let edge: EdgemuxProcess;
let agent: EdgemuxProcess | null = null;
let browser: Chromium | null = null;
let page: CdpPage;
const out = mkdtempSync(join(tmpdir(), "edgemux-dashboard-"));

function config(): string {
  const tls = edgeTls();
  return `
workers = 2
[admin]
address = "127.0.0.1:0"

[[admin.tokens]]
name = "viewer"
sha256 = "${hashToken(READ)}"
scope = "read"

[[listeners]]
name = "plain"
kind = "tcp"
address = "127.0.0.1:0"

[[listeners]]
name = "broken"
kind = "tcp"
address = "127.0.0.1:0"

[[listeners]]
name = "via-tunnel"
kind = "tcp"
address = "127.0.0.1:0"

[[listeners]]
name = "tunnel"
kind = "tunnel"
address = "127.0.0.1:0"
[listeners.tls]
cert = "${tls.cert}"
key = "${tls.key}"

[[tokens]]
name = "dest"
sha256 = "${hashToken(DEST)}"
roles = ["destination"]

[[routes]]
name = "echo"
match = "*"
listeners = ["plain"]
targets = ["127.0.0.1:${echoPort}"]

[[routes]]
name = "refused"
match = "*"
listeners = ["broken"]
targets = ["127.0.0.1:1"]

[[routes]]
name = "svc"
match = "*"
listeners = ["via-tunnel"]
targets = ["tunnel:svc"]
`;
}

/** One connection through `listener`: sends `size` bytes, reads until the peer closes; resolves with the bytes read. */
function exchange(listener: string, size: number): Promise<number> {
  const { host, port } = edge.hostPort(listener);
  return new Promise((resolve) => {
    let got = 0;
    const c = net.connect(port, host, () => c.end(Buffer.alloc(size, 0x61)));
    c.on("data", (d) => (got += d.length));
    c.on("close", () => resolve(got));
    c.on("error", () => {});
  });
}

const auth = { authorization: `Bearer ${READ}` };

beforeAll(async () => {
  if (skip) return;
  echo = net.createServer((c) => {
    c.on("data", (d) => c.write(d));
    c.on("end", () => c.end());
    c.on("error", () => {});
  });
  await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
  echoPort = (echo.address() as net.AddressInfo).port;
  edge = await startEdgemux(config(), { workers: 2 });
  agent = await startAgentProcess(["--edge", `localhost:${edge.hostPort("tunnel").port}`, "--ca", edgeTls().ca, "--token", DEST, "--name", "dash-agent", "--expose", `svc=127.0.0.1:${echoPort}`]);
  await agent.waitForLine((l) => l.msg === "connected to the edge", 15_000);
  await waitFor(async () => {
    const s = (await (await edge.adminGet("/status", auth)).json()) as { services?: { name: string; online: boolean }[] };
    return s.services?.some((v) => v.name === "svc" && v.online) ?? false;
  }, 15_000, "service svc online in /status");
  browser = await Chromium.launch();
  page = await browser.newPage(auth);
  console.log(`dashboard_chromium_test: screenshots in ${out}`);
}, 90_000);

afterAll(async () => {
  await browser?.close();
  await agent?.stop();
  await edge?.stop();
  echo?.close();
});

test.skipIf(skip)("the dashboard renders tables and plots the traffic; a killed agent's service turns offline", async () => {
  // Traffic: echoed bytes, refused connects, and streams through the tunnel.
  for (let round = 0; round < 3; round++) {
    const got = await Promise.all([
      ...Array.from({ length: 4 }, () => exchange("plain", 64 * 1024)),
      ...Array.from({ length: 3 }, () => exchange("via-tunnel", 32 * 1024)),
      ...Array.from({ length: 2 }, () => exchange("broken", 10)),
    ]);
    expect(got.slice(0, 4)).toEqual([65536, 65536, 65536, 65536]);
    expect(got.slice(4, 7)).toEqual([32768, 32768, 32768]);
  }
  // The history samples every 5 s: wait for a point that saw the traffic.
  await waitFor(async () => {
    const h = (await (await edge.adminGet("/history", auth)).json()) as { listeners: { name: string; conn_per_s: (number | null)[] }[] };
    return h.listeners.find((l) => l.name === "plain")?.conn_per_s.some((v) => (v ?? 0) > 0) ?? false;
  }, 20_000, "a history point with traffic on listener plain");

  await page.goto(`http://${edge.admin}/`);
  await page.waitFor<boolean>(`document.querySelectorAll("#listeners tr").length === 5`, "the listeners table");
  // Rates are differences between two polls; plots want at least two samples to draw a line.
  await page.waitFor<boolean>(`document.querySelector("#listeners tr:nth-child(2)").cells[4].textContent !== "—"`, "a second poll's rates");
  await page.waitFor<boolean>(`Number((/(\\d+) samples/.exec(document.getElementById("history-note").textContent) || [])[1]) >= 2`, "two history samples", 20_000);
  expect(await page.eval<string>(`document.getElementById("error").textContent`)).toBe("");
  const meta = await page.eval<string>(`document.getElementById("meta").textContent`);
  expect(meta).toMatch(/^version \S+ · (bun|deno) \S+ · pid \d+ · up /);
  const workers = await page.eval<string[]>(`[...document.querySelectorAll("#workers tr")].slice(1).map((r) => r.cells[2].textContent)`);
  expect(workers).toEqual(["up", "up"]);

  // Plots: the card of each listener, with SVG paths whose points leave the zero line.
  await page.waitFor<boolean>(`document.querySelectorAll("#plots .card").length === 4`, "one plot card per listener");
  const plotted = await page.eval<{ card: string; series: string; points: number; ys: number[] }[]>(`
    [...document.querySelectorAll("#plots .card")].flatMap((card) =>
      [...card.querySelectorAll("path.line")].map((p) => ({
        card: card.dataset.name,
        series: p.dataset.series,
        points: Number(p.dataset.points),
        ys: [...p.getAttribute("d").matchAll(/[ML]([0-9.]+) ([0-9.]+)/g)].map((m) => Number(m[2])),
      })))`);
  const line = (card: string, series: string) => plotted.find((p) => p.card === card && p.series === series)!;
  // The zero line is at the bottom of the plot area (y = 96 - 14); data above it has a smaller y.
  const above = (ys: number[]) => ys.some((y) => y < 82 - 0.5);
  for (const [card, series] of [["plain", "new"], ["plain", "in"], ["plain", "out"], ["via-tunnel", "new"], ["via-tunnel", "out"], ["broken", "UPSTREAM_CONNECT_REFUSED"]] as const) {
    const l = line(card, series);
    expect(l, `${card}/${series}`).toBeDefined();
    expect(l.points, `${card}/${series} points`).toBeGreaterThan(0);
    expect(above(l.ys), `${card}/${series} non-zero: ${l.ys}`).toBe(true);
  }
  const totals = await page.eval<number[]>(`[...document.querySelectorAll("#total-plot path.line")].map((p) => Number(p.dataset.points))`);
  expect(Math.max(...totals)).toBeGreaterThan(0);

  // Routes as small multiples, then one route alone.
  await page.eval(`(() => { const s = document.getElementById("plot-kind"); s.value = "routes"; s.dispatchEvent(new Event("change")); })()`);
  expect(await page.eval<string[]>(`[...document.querySelectorAll("#plots .card")].map((c) => c.dataset.name)`)).toEqual(["echo", "refused", "svc"]);

  // Backends: HAProxy-style state colours; the refused target failing or cooling down, with its last error.
  const backends = await page.waitFor<{ cls: string; cells: string[] }[]>(`(() => {
      const rows = [...document.querySelectorAll("#backends tr")].slice(1).map((r) => ({ cls: r.className, cells: [...r.cells].map((c) => c.textContent) }));
      return rows.length === 2 && rows.every((r) => r.cls !== "st-unknown") ? rows : null;
    })()`, "both backends tried");
  const byTarget = Object.fromEntries(backends.map((b) => [b.cells[1], b]));
  expect(byTarget[`127.0.0.1:${echoPort}`]!.cls).toBe("st-up");
  expect(["st-failing", "st-cooling_down"]).toContain(byTarget["127.0.0.1:1"]!.cls);
  expect(byTarget["127.0.0.1:1"]!.cells.at(-1)).toMatch(/^UPSTREAM_CONNECT_REFUSED · (just now|\d+ s ago|\d+ min ago)$/);
  const upColour = await page.eval<string>(`getComputedStyle(document.querySelector("#backends tr.st-up td")).backgroundColor`);
  expect(upColour).toBe("rgb(198, 239, 198)");

  // The service online, held by the agent, with its streams counted.
  const service = () =>
    page.eval<{ cls: string; cells: string[] } | null>(`(() => {
      const r = [...document.querySelectorAll("#services tr")].find((r) => r.cells[0] && r.cells[0].textContent === "svc");
      return r ? { cls: r.className, cells: [...r.cells].map((c) => c.textContent) } : null;
    })()`);
  await page.waitFor<boolean>(`[...document.querySelectorAll("#services tr")].some((r) => r.cells[0].textContent === "svc" && r.cells[3].textContent !== "0")`, "svc streams counted");
  const online = (await service())!;
  expect(online.cls).toBe("st-up");
  expect(online.cells[1]).toBe("online");
  expect(online.cells[2]).toContain("dash-agent");
  const session = await page.eval<string[]>(`[...document.querySelectorAll("#tunnels tr")][1] ? [...[...document.querySelectorAll("#tunnels tr")][1].cells].map((c) => c.textContent) : []`);
  expect(session[0]).toBe("dash-agent");
  expect(session.at(-1)).toMatch(/ago$/);
  expect(await page.eval<string>(`[...document.querySelectorAll("#tunnels tr")][1].cells[15].title`)).toMatch(/^\d{4}-\d\d-\d\dT/);
  await page.screenshot(join(out, "dashboard-online.png"));

  // Kill the agent: its service turns offline on the page.
  agent!.proc.kill("SIGKILL");
  await agent!.waitExit();
  agent = null;
  await page.waitFor<boolean>(`[...document.querySelectorAll("#services tr")].some((r) => r.cells[0].textContent === "svc" && r.className === "st-failing" && r.cells[1].textContent === "offline")`, "svc offline", 30_000);
  expect((await service())!.cells[2]).toBe("—");
  await page.waitFor<boolean>(`document.getElementById("tunnels-title").textContent === "Tunnel sessions (0)"`, "no agent sessions");
  await page.screenshot(join(out, "dashboard-offline.png"));

  // One listener alone, full width.
  await page.eval(`(() => {
    const k = document.getElementById("plot-kind"); k.value = "listeners"; k.dispatchEvent(new Event("change"));
    const n = document.getElementById("plot-name"); n.value = "plain"; n.dispatchEvent(new Event("change"));
  })()`);
  expect(await page.eval<string[]>(`[...document.querySelectorAll("#plots .card")].map((c) => c.dataset.name)`)).toEqual(["plain"]);
  await page.screenshot(join(out, "dashboard-one-listener.png"));
  expect(browser!.consoleErrors).toEqual([]);
}, 120_000);
