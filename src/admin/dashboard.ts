/**
 * The live dashboard at GET /: one static page, no external assets, no build
 * step. A few lines of inline JS poll ./status every 2 s and draw tables;
 * rates are differences between two polls. Values are inserted with
 * textContent only, so names from the config cannot inject markup.
 */

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgemux</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fafafa; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
  h2 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
  #meta, #error { color: #666; }
  #error { color: #b00; }
  table { border-collapse: collapse; background: #fff; min-width: 40rem; }
  th, td { padding: .25rem .7rem; border-bottom: 1px solid #e4e4e4; text-align: right; white-space: nowrap; }
  th:first-child, td:first-child, td.text { text-align: left; }
  th { font-weight: 600; background: #f0f0f0; }
  .down { color: #b00; font-weight: 600; }
  .up { color: #070; }
</style>
</head>
<body>
<h1>edgemux</h1>
<div id="meta">loading…</div>
<div id="error"></div>
<h2>Totals</h2>
<table id="totals"></table>
<h2>Workers</h2>
<table id="workers"></table>
<h2>Listeners</h2>
<table id="listeners"></table>
<h2>Routes</h2>
<table id="routes"></table>
<h2 id="tunnels-title">Tunnel sessions</h2>
<table id="tunnels"></table>
<script>
"use strict";
let prev = null;
const $ = (id) => document.getElementById(id);
function bytes(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(Math.round(n))) + " " + u[i];
}
function rate(now, before, dt) {
  return before === undefined || dt <= 0 ? "–" : ((now - before) / dt).toFixed(1);
}
function table(el, head, rows) {
  el.replaceChildren();
  const tr = el.insertRow();
  for (const h of head) { const th = document.createElement("th"); th.textContent = h; tr.append(th); }
  for (const row of rows) {
    const r = el.insertRow();
    for (const cell of row) {
      const td = r.insertCell();
      if (cell && typeof cell === "object") { td.textContent = cell.text; td.className = cell.cls; }
      else td.textContent = String(cell);
    }
  }
}
function codes(m) {
  const e = Object.entries(m);
  return e.length ? e.map(([code, n]) => code + " " + n).join(", ") : "–";
}
function render(s, dt) {
  const p = prev || { totals: {}, listeners: [], routes: [] };
  const byName = (list) => Object.fromEntries(list.map((x) => [x.name, x]));
  const pl = byName(p.listeners), pr = byName(p.routes);
  $("meta").textContent = "version " + s.version + " · " + s.runtime + " · pid " + s.pid + " · up " + s.uptime_seconds + " s";
  const t = s.totals;
  table($("totals"), ["", "accepted", "conn/s", "active", "refused", "errors", "in", "out", "in B/s", "out B/s"], [[
    "all", t.accepted, rate(t.accepted, p.totals.accepted, dt), t.active, t.refused, t.errors_total, bytes(t.bytes_in), bytes(t.bytes_out),
    p.totals.bytes_in === undefined ? "–" : bytes(Math.max(0, (t.bytes_in - p.totals.bytes_in) / dt)),
    p.totals.bytes_out === undefined ? "–" : bytes(Math.max(0, (t.bytes_out - p.totals.bytes_out) / dt)),
  ]]);
  table($("workers"), ["worker", "thread", "state", "restarts", "heartbeat age", "active"], s.workers.map((w) => [
    w.id, w.thread_id, w.up ? { text: "up", cls: "up" } : { text: "down", cls: "down" }, w.restarts,
    w.heartbeat_age_ms === null ? "–" : w.heartbeat_age_ms + " ms", w.active_connections,
  ]));
  table($("listeners"), ["listener", "kind", "address", "accepted", "conn/s", "active", "max", "refused", "errors", "by code", "in", "out"],
    s.listeners.map((l) => [
      l.name, { text: l.kind, cls: "text" }, { text: l.address, cls: "text" }, l.accepted, rate(l.accepted, (pl[l.name] || {}).accepted, dt),
      l.active, l.max_connections || "∞", l.refused, l.errors_total, { text: codes(l.errors), cls: "text" }, bytes(l.bytes_in), bytes(l.bytes_out),
    ]));
  table($("routes"), ["route", "match", "targets", "connections", "conn/s", "active", "errors", "by code", "in", "out"],
    s.routes.map((r) => [
      r.name, { text: r.match, cls: "text" }, { text: r.targets.join(", "), cls: "text" }, r.connections,
      rate(r.connections, (pr[r.name] || {}).connections, dt), r.active, r.errors_total, { text: codes(r.errors), cls: "text" },
      bytes(r.bytes_in), bytes(r.bytes_out),
    ]));
  const tu = s.tunnels;
  $("tunnels-title").textContent = "Tunnel sessions (" + tu.sessions + (tu.sessions > tu.list.length ? ", first " + tu.list.length + " shown" : "") + ")";
  table($("tunnels"), ["agent", "token", "peer", "listener", "worker", "transport", "roles", "services", "since"],
    tu.list.map((a) => [
      a.agent, { text: a.token, cls: "text" }, { text: a.peer, cls: "text" }, { text: a.listener, cls: "text" }, a.worker,
      { text: a.transport, cls: "text" }, { text: a.roles.join(", "), cls: "text" }, { text: a.services.join(", "), cls: "text" },
      { text: a.since, cls: "text" },
    ]));
}
let last = 0;
async function poll() {
  try {
    const res = await fetch("status", { cache: "no-store" });
    if (!res.ok) throw new Error("status " + res.status);
    const s = await res.json();
    const now = performance.now();
    render(s, last ? (now - last) / 1000 : 0);
    prev = s; last = now;
    $("error").textContent = "";
  } catch (e) {
    $("error").textContent = "cannot reach the admin API: " + e.message;
  }
  setTimeout(poll, 2000);
}
poll();
</script>
</body>
</html>
`;
