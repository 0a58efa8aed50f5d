/**
 * The live dashboard at GET /: one static page, no external assets, no build
 * step, no library. Inline JS polls ./status every 2 s (tables; rates on every
 * row are differences between two polls) and ./history every 5 s (time-series
 * plots drawn as hand-written SVG paths, per listener and per route, as small
 * multiples or one at a time). Values are inserted with textContent and
 * setAttribute only, so names from the config cannot inject markup.
 *
 * Fields another edgemux version may not have (backends, services, the
 * tunnel sessions' stream and byte counters) are read with `opt` and shown
 * as "—" when absent.
 */

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgemux</title>
<style>
  :root { --up: #c6efc6; --up-ink: #146c14; --fail: #f6c0c0; --fail-ink: #a40000; --cool: #ffe2a0; --cool-ink: #8a5a00; --unk: #e6e6e6; }
  body { font: 13px/1.4 system-ui, sans-serif; margin: 1.2rem 1.5rem; color: #222; background: #f6f7f9; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
  h2 { font-size: 1rem; margin: 1.4rem 0 .4rem; }
  #meta { color: #555; }
  #error { color: #b00; min-height: 1.2em; }
  .stats { display: flex; flex-wrap: wrap; gap: .6rem; margin: .6rem 0; }
  .stat { background: #fff; border: 1px solid #dde; border-radius: 6px; padding: .35rem .8rem; min-width: 7.5rem; }
  .stat b { display: block; font-size: 1.25rem; font-variant-numeric: tabular-nums; }
  .stat span { color: #666; font-size: .8rem; }
  .controls { display: flex; gap: 1rem; align-items: center; margin: .3rem 0 .6rem; flex-wrap: wrap; }
  .controls label { color: #444; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: .7rem; }
  .grid.one { grid-template-columns: 1fr; }
  .card { background: #fff; border: 1px solid #dde; border-radius: 6px; padding: .4rem .6rem .5rem; }
  .card h3 { font-size: .9rem; margin: 0 0 .3rem; }
  .card h3 small { color: #888; font-weight: normal; }
  .charts { display: grid; grid-template-columns: 1fr 1fr; gap: .2rem .8rem; }
  .chart-title { color: #444; font-size: .78rem; }
  .chart svg { width: 100%; height: auto; display: block; }
  .chart svg text { font: 9px system-ui, sans-serif; fill: #777; }
  .legend { font-size: .72rem; color: #444; min-height: 1.1em; }
  .legend span { margin-right: .7rem; white-space: nowrap; }
  .legend i { display: inline-block; width: .8rem; height: .2rem; vertical-align: middle; margin-right: .25rem; }
  table { border-collapse: collapse; background: #fff; min-width: 40rem; }
  th, td { padding: .22rem .6rem; border-bottom: 1px solid #e4e4e4; text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
  th:first-child, td:first-child, td.text { text-align: left; }
  th { font-weight: 600; background: #eceef2; }
  td.none { color: #999; text-align: center; }
  tr.st-up td { background: var(--up); }
  tr.st-failing td { background: var(--fail); }
  tr.st-cooling_down td { background: var(--cool); }
  tr.st-unknown td { background: var(--unk); }
  .badge { display: inline-block; padding: 0 .45rem; border-radius: 3px; font-weight: 600; font-size: .78rem; }
  .b-up { background: var(--up); color: var(--up-ink); }
  .b-failing, .b-down, .b-offline { background: var(--fail); color: var(--fail-ink); }
  .b-cooling_down, .b-stale { background: var(--cool); color: var(--cool-ink); }
  .b-unknown { background: var(--unk); color: #555; }
  td.err { color: #a40000; }
  .note { color: #777; font-size: .8rem; }
</style>
</head>
<body>
<h1>edgemux</h1>
<div id="meta">loading…</div>
<div id="error"></div>
<div class="stats" id="summary"></div>
<h2>Traffic</h2>
<div class="controls">
  <label>show <select id="plot-kind"><option value="listeners">listeners</option><option value="routes">routes</option></select></label>
  <label><select id="plot-name"><option value="">all (small multiples)</option></select></label>
  <label>window <select id="plot-window"><option value="300">5 min</option><option value="900" selected>15 min</option></select></label>
  <span class="note" id="history-note"></span>
</div>
<div class="grid one" id="total-plot"></div>
<div class="grid" id="plots"></div>
<h2>Workers</h2>
<table id="workers"></table>
<h2>Listeners</h2>
<table id="listeners"></table>
<h2>Routes</h2>
<table id="routes"></table>
<h2>Backends</h2>
<table id="backends"></table>
<h2>Tunnel services</h2>
<table id="services"></table>
<h2 id="tunnels-title">Tunnel sessions</h2>
<table id="tunnels"></table>
<script>
"use strict";
const SVG = "http://www.w3.org/2000/svg";
const DASH = "\\u2014";
const $ = (id) => document.getElementById(id);
const view = { kind: "listeners", name: "", window: 900 };
let prev = null, prevAt = 0, hist = null, histAt = -1e9, histError = "";

/** A key of a document that an older edgemux may not send; undefined when absent. */
function opt(o, k) { return o !== null && typeof o === "object" && k in o ? o[k] : undefined; }
function isNum(v) { return typeof v === "number" && isFinite(v); }
function num(n) {
  if (!isNum(n)) return DASH;
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (a >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (n / 1e3).toFixed(1) + "k";
  if (a >= 100 || Number.isInteger(n)) return String(Math.round(n));
  return n.toFixed(a >= 10 ? 1 : 2);
}
function bytes(n) {
  if (!isNum(n)) return DASH;
  const u = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(Math.round(n))) + " " + u[i];
}
function ms(n) { return isNum(n) ? (n >= 100 ? Math.round(n) : n.toFixed(n >= 10 ? 1 : 2)) + " ms" : DASH; }
/** Per second from two cumulative values of successive polls. */
function perS(now, before, dt) { return isNum(now) && isNum(before) && dt > 0 ? Math.max(0, (now - before) / dt) : null; }
function rateCell(v) { return v === null ? DASH : num(v); }
function byteRateCell(v) { return v === null ? DASH : bytes(v) + "/s"; }
function toMs(t) { return isNum(t) ? t : typeof t === "string" ? Date.parse(t) : NaN; }
/** "3 min ago", with the ISO time as the cell's title. */
function ago(t) {
  const at = toMs(t);
  if (!isFinite(at)) return DASH;
  const s = Math.max(0, (Date.now() - at) / 1000);
  const text = s < 5 ? "just now" : s < 60 ? Math.floor(s) + " s ago" : s < 3600 ? Math.floor(s / 60) + " min ago" : s < 86400 ? Math.floor(s / 3600) + " h ago" : Math.floor(s / 86400) + " d ago";
  return { text, title: new Date(at).toISOString(), cls: "text" };
}
function duration(s) {
  return s < 60 ? s + " s" : s < 3600 ? Math.floor(s / 60) + " min" : s < 86400 ? (s / 3600).toFixed(1) + " h" : (s / 86400).toFixed(1) + " d";
}
function codes(m) {
  const e = Object.entries(m || {});
  return e.length ? e.map(([code, n]) => code + " " + n).join(", ") : "–";
}
function text(v) { return { text: v === undefined || v === null || v === "" ? DASH : String(v), cls: "text" }; }
function badge(label, kind) { return { text: label, badge: kind }; }

/** Rows are arrays of cells, or { cls, cells }; a cell is a value or { text, cls, title, badge }. */
function table(el, head, rows, empty) {
  el.replaceChildren();
  const tr = el.insertRow();
  for (const h of head) { const th = document.createElement("th"); th.textContent = h; tr.append(th); }
  if (rows.length === 0) {
    const td = el.insertRow().insertCell();
    td.colSpan = head.length; td.className = "none"; td.textContent = empty || DASH;
    return;
  }
  for (const row of rows) {
    const r = el.insertRow();
    const cells = Array.isArray(row) ? row : row.cells;
    if (!Array.isArray(row) && row.cls) r.className = row.cls;
    for (const cell of cells) {
      const td = r.insertCell();
      if (cell && typeof cell === "object") {
        if (cell.badge) {
          const b = document.createElement("span");
          b.className = "badge b-" + cell.badge; b.textContent = cell.text;
          td.append(b);
        } else td.textContent = cell.text;
        if (cell.cls) td.className = cell.cls;
        if (cell.title) td.title = cell.title;
      } else td.textContent = cell === undefined || cell === null ? DASH : String(cell);
    }
  }
}

// ---------------------------------------------------------------- plots

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs) e.setAttribute(k, String(attrs[k]));
  return e;
}
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
const H = 96, PL = 54, PR = 6, PT = 8, PB = 14;
/**
 * One chart: a box, three grid lines labelled with axis(), and one path per
 * line (a gap where a point is null; a lone point is a dot). Drawn in a
 * viewBox as wide as the chart is shown (W, chartWidth), so text keeps its
 * size. Hovering shows the values at that time in the legend; leaving shows
 * the latest.
 */
function chart(title, lines, t, windowS, fmt, axis, W) {
  const box = document.createElement("div");
  box.className = "chart";
  const head = document.createElement("div");
  head.className = "chart-title"; head.textContent = title;
  const s = svg("svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none", role: "img", "aria-label": title });
  const legend = document.createElement("div");
  legend.className = "legend";
  box.append(head, s, legend);
  let max = 0;
  for (const l of lines) for (const v of l.values) if (isNum(v) && v > max) max = v;
  const top = niceMax(max);
  // The x axis spans the window, or less while the history is younger than it (at least 2 min).
  const x1 = t.length ? t[t.length - 1] : Date.now();
  const spanS = Math.min(windowS, Math.max(120, t.length ? Math.ceil((x1 - t[0]) / 60000) * 60 + 60 : 120));
  const x0 = x1 - spanS * 1000;
  const xOf = (ti) => PL + ((ti - x0) / (x1 - x0)) * (W - PL - PR);
  const yOf = (v) => PT + (1 - v / top) * (H - PT - PB);
  for (const f of [0, 0.5, 1]) {
    const y = yOf(top * f);
    s.append(svg("line", { x1: PL, x2: W - PR, y1: y, y2: y, stroke: f ? "#eee" : "#bbb", "stroke-width": 1 }));
    const label = svg("text", { x: PL - 3, y: y + 3, "text-anchor": "end" });
    label.textContent = axis(top * f);
    s.append(label);
  }
  const left = svg("text", { x: PL, y: H - 2 }); left.textContent = "-" + Math.round(spanS / 60) + " min";
  const right = svg("text", { x: W - PR, y: H - 2, "text-anchor": "end" }); right.textContent = "now";
  s.append(left, right);
  for (const l of lines) {
    let d = "", pen = false, n = 0;
    for (let i = 0; i < l.values.length; i++) {
      const v = l.values[i];
      if (!isNum(v) || t[i] < x0) { pen = false; continue; }
      d += (pen ? "L" : "M") + xOf(t[i]).toFixed(1) + " " + yOf(v).toFixed(1);
      if (!pen && (i + 1 >= l.values.length || !isNum(l.values[i + 1]))) s.append(svg("circle", { cx: xOf(t[i]).toFixed(1), cy: yOf(v).toFixed(1), r: 2, fill: l.color }));
      pen = true; n++;
    }
    const p = svg("path", { d: d || "M0 0", class: "line", fill: "none", stroke: l.color, "stroke-width": 1.6, "stroke-linecap": "round", "stroke-linejoin": "round", "data-series": l.label, "data-points": n });
    if (l.dash) p.setAttribute("stroke-dasharray", "4 3");
    if (!d) p.setAttribute("visibility", "hidden");
    s.append(p);
  }
  const cursor = svg("line", { y1: PT, y2: H - PB, stroke: "#999", "stroke-width": 1, visibility: "hidden" });
  s.append(cursor);
  const show = (i) => {
    legend.replaceChildren();
    for (const l of lines) {
      const sp = document.createElement("span");
      const sw = document.createElement("i");
      sw.style.background = l.color;
      sp.append(sw);
      const v = i >= 0 ? l.values[i] : null;
      sp.append(document.createTextNode(l.label + " " + (isNum(v) ? fmt(v) : DASH)));
      legend.append(sp);
    }
    if (i >= 0 && i < t.length) legend.title = new Date(t[i]).toISOString();
  };
  show(t.length - 1);
  s.addEventListener("mousemove", (ev) => {
    if (!t.length) return;
    const r = s.getBoundingClientRect();
    const at = x0 + ((((ev.clientX - r.left) / r.width) * W - PL) / (W - PL - PR)) * (x1 - x0);
    let best = 0;
    for (let i = 1; i < t.length; i++) if (Math.abs(t[i] - at) < Math.abs(t[best] - at)) best = i;
    cursor.setAttribute("x1", xOf(t[best])); cursor.setAttribute("x2", xOf(t[best])); cursor.setAttribute("visibility", "visible");
    show(best);
  });
  s.addEventListener("mouseleave", () => { cursor.setAttribute("visibility", "hidden"); show(t.length - 1); });
  return box;
}

const CODE_COLOURS = ["#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
const rateFmt = (v) => num(v), byteFmt = (v) => bytes(v) + "/s", msFmt = (v) => ms(v);
/** Axis labels: short (the grid's top is a round number anyway). */
function shortBytes(v) {
  const u = ["B", "K", "M", "G", "T"];
  let i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (v >= 10 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(1)) + " " + u[i] + "/s";
}
const rateAxis = (v) => num(v), byteAxis = shortBytes, msAxis = (v) => (v === 0 ? "0" : ms(v));

/** The four charts of one listener, route or the totals; wide: shown alone, across the page. */
function seriesCard(title, sub, s, t, windowS, W) {
  const card = document.createElement("div");
  card.className = "card";
  card.setAttribute("data-name", s.name);
  const h = document.createElement("h3");
  h.textContent = title + " ";
  if (sub) { const small = document.createElement("small"); small.textContent = sub; h.append(small); }
  const charts = document.createElement("div");
  charts.className = "charts";
  charts.append(
    chart("connections/s", [{ label: "new", color: "#1f77b4", values: s.conn_per_s }, { label: "open", color: "#aaa", values: s.active, dash: true }], t, windowS, rateFmt, rateAxis, W),
    chart("bytes/s", [{ label: "in", color: "#1f77b4", values: s.bytes_in_per_s }, { label: "out", color: "#2ca02c", values: s.bytes_out_per_s }], t, windowS, byteFmt, byteAxis, W),
  );
  const byCode = Object.entries(s.errors_by_code || {});
  const errLines = byCode.length
    ? byCode.map(([code, v], i) => ({ label: code, color: CODE_COLOURS[i % CODE_COLOURS.length], values: v }))
    : [{ label: "errors", color: CODE_COLOURS[0], values: s.errors_per_s }];
  charts.append(
    chart("errors/s by code", errLines, t, windowS, rateFmt, rateAxis, W),
    chart("latency (p50, p99 dashed)", [
      { label: "handshake p50", color: "#1f77b4", values: s.handshake_p50_ms },
      { label: "p99", color: "#1f77b4", values: s.handshake_p99_ms, dash: true },
      { label: "connect p50", color: "#ff7f0e", values: opt(s, "connect_p50_ms") || [] },
      { label: "p99", color: "#ff7f0e", values: opt(s, "connect_p99_ms") || [], dash: true },
    ], t, windowS, msFmt, msAxis, W),
  );
  card.append(h, charts);
  return card;
}

/**
 * The width a chart is shown at, in CSS pixels, so its viewBox matches it and
 * text keeps its size: the grid's columns (CSS: minmax(560px, 1fr), gap
 * .7rem) unless \`cols\` is given, less the card's padding and the gap between
 * its two charts. 300 where there is no layout (a test's fake DOM).
 */
function chartWidth(grid, cols) {
  const rem = 16, width = grid.clientWidth || 0;
  if (!width) return 300;
  const gap = 0.7 * rem;
  const n = cols || Math.max(1, Math.floor((width + gap) / (560 + gap)));
  const card = (width - gap * (n - 1)) / n;
  return Math.max(160, Math.floor((card - 2 * 0.6 * rem - 2 - 0.8 * rem) / 2));
}
let resizeTimer = null;
if (typeof window !== "undefined") window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(renderPlots, 150); });

function renderPlots() {
  const note = $("history-note");
  if (!hist) { note.textContent = histError || "waiting for the first samples…"; return; }
  note.textContent = histError ? histError : "every " + hist.interval_s + " s; " + hist.t.length + " samples";
  const t = hist.t, w = view.window;
  $("total-plot").replaceChildren(seriesCard("all listeners", "totals", hist.total, t, w, chartWidth($("total-plot"), 1)));
  const list = view.kind === "routes" ? hist.routes : hist.listeners;
  const pick = $("plot-name");
  const names = list.map((s) => s.name);
  if (pick.getAttribute("data-names") !== names.join("\\n")) {
    pick.setAttribute("data-names", names.join("\\n"));
    const all = document.createElement("option");
    all.value = ""; all.textContent = "all (small multiples)";
    pick.replaceChildren(all);
    for (const n of names) { const o = document.createElement("option"); o.value = n; o.textContent = n; pick.append(o); }
    if (!names.includes(view.name)) view.name = "";
    pick.value = view.name;
  }
  const shown = view.name ? list.filter((s) => s.name === view.name) : list;
  const grid = $("plots");
  grid.className = shown.length === 1 ? "grid one" : "grid";
  const kind = view.kind === "routes" ? "route" : "listener";
  const cw = chartWidth(grid, shown.length === 1 ? 1 : 0);
  grid.replaceChildren(...shown.map((s) => seriesCard(s.name, kind + (s.current === false && s.name !== "_other" ? " (removed)" : ""), s, t, w, cw)));
}

// ---------------------------------------------------------------- tables

function render(s, dt) {
  const p = prev || { totals: {}, listeners: [], routes: [], tunnels: { list: [] } };
  const byKey = (list, key) => Object.fromEntries((list || []).map((x) => [key(x), x]));
  const pl = byKey(p.listeners, (x) => x.name), pr = byKey(p.routes, (x) => x.name);
  const started = ago(s.started_at);
  const meta = $("meta");
  meta.textContent = "version " + s.version + " · " + s.runtime + " · pid " + s.pid + " · up " + duration(s.uptime_seconds);
  meta.title = "started " + (typeof started === "object" ? started.title : s.started_at);

  const t = s.totals, pt = p.totals;
  const stat = (label, value) => {
    const d = document.createElement("div"); d.className = "stat";
    const b = document.createElement("b"); b.textContent = value;
    const sp = document.createElement("span"); sp.textContent = label;
    d.append(b, sp); return d;
  };
  $("summary").replaceChildren(
    stat("connections/s", rateCell(perS(t.accepted, pt.accepted, dt))),
    stat("open connections", num(t.active)),
    stat("in", byteRateCell(perS(t.bytes_in, pt.bytes_in, dt))),
    stat("out", byteRateCell(perS(t.bytes_out, pt.bytes_out, dt))),
    stat("errors/s", rateCell(perS(t.errors_total, pt.errors_total, dt))),
    stat("errors by code", codes(t.errors)),
    stat("agent sessions", num(s.tunnels.sessions)),
  );

  table($("workers"), ["worker", "thread", "state", "restarts", "heartbeat age", "open connections"], s.workers.map((w) => {
    const stale = w.heartbeat_age_ms === null || w.heartbeat_age_ms > 5000;
    const state = !w.up ? badge("down", "down") : stale ? badge("stale", "stale") : badge("up", "up");
    return [w.id, w.thread_id, state, w.restarts, w.heartbeat_age_ms === null ? DASH : w.heartbeat_age_ms + " ms", w.active_connections];
  }));

  table($("listeners"), ["listener", "kind", "address", "accepted", "conn/s", "open", "max", "refused", "errors", "by code", "in", "out", "in/s", "out/s"],
    s.listeners.map((l) => {
      const b = pl[l.name] || {};
      return [
        l.name, text(l.kind), text(l.address), l.accepted, rateCell(perS(l.accepted, b.accepted, dt)), l.active, l.max_connections || "∞", l.refused,
        l.errors_total, { text: codes(l.errors), cls: l.errors_total ? "text err" : "text" }, bytes(l.bytes_in), bytes(l.bytes_out),
        byteRateCell(perS(l.bytes_in, b.bytes_in, dt)), byteRateCell(perS(l.bytes_out, b.bytes_out, dt)),
      ];
    }));

  table($("routes"), ["route", "match", "targets", "connections", "conn/s", "open", "errors", "by code", "in", "out", "in/s", "out/s"],
    s.routes.map((r) => {
      const b = pr[r.name] || {};
      return [
        r.name, text(r.match), text(r.targets.join(", ")), r.connections, rateCell(perS(r.connections, b.connections, dt)), r.active,
        r.errors_total, { text: codes(r.errors), cls: r.errors_total ? "text err" : "text" }, bytes(r.bytes_in), bytes(r.bytes_out),
        byteRateCell(perS(r.bytes_in, b.bytes_in, dt)), byteRateCell(perS(r.bytes_out, b.bytes_out, dt)),
      ];
    }));

  const backends = opt(s, "backends");
  const pb = byKey(opt(p, "backends"), (x) => x.route + "\\n" + x.target);
  table($("backends"), ["route", "target", "state", "open", "connections", "conn/s", "failures", "connect p50", "connect p99", "last error"],
    (backends || []).map((b) => {
      const before = pb[b.route + "\\n" + b.target] || {};
      const st = opt(b, "state") || "unknown";
      const le = opt(b, "last_error");
      const when = le ? ago(opt(le, "at")) : null;
      return {
        cls: "st-" + st,
        cells: [
          b.route, text(b.target), badge(st === "cooling_down" ? "cooling down" : st, st), opt(b, "active"), opt(b, "connections"),
          rateCell(perS(opt(b, "connections"), opt(before, "connections"), dt)), opt(b, "failures"), ms(opt(b, "connect_p50_ms")), ms(opt(b, "connect_p99_ms")),
          le ? { text: opt(le, "code") + (when && typeof when === "object" ? " · " + when.text : ""), title: when && typeof when === "object" ? when.title : "", cls: "text err" } : text(null),
        ],
      };
    }), backends === undefined ? DASH + " (not reported by this edgemux)" : "no backends");

  const services = opt(s, "services");
  const ps = byKey(opt(p, "services"), (x) => x.name);
  table($("services"), ["service", "state", "agents", "streams", "streams/s", "open streams", "in", "out", "in/s", "out/s", "open failures"],
    (services || []).map((v) => {
      const before = ps[v.name] || {};
      const agents = (opt(v, "agents") || []).map((a) => a.agent + " (worker " + a.worker + ", " + a.session_id + ")").join(", ");
      return {
        cls: v.online ? "st-up" : "st-failing",
        cells: [
          v.name, v.online ? badge("online", "up") : badge("offline", "offline"), text(agents),
          opt(v, "streams"), rateCell(perS(opt(v, "streams"), opt(before, "streams"), dt)), opt(v, "active_streams"),
          bytes(opt(v, "bytes_in")), bytes(opt(v, "bytes_out")),
          byteRateCell(perS(opt(v, "bytes_in"), opt(before, "bytes_in"), dt)), byteRateCell(perS(opt(v, "bytes_out"), opt(before, "bytes_out"), dt)),
          opt(v, "open_failures"),
        ],
      };
    }), services === undefined ? DASH + " (not reported by this edgemux)" : "no services");

  const tu = s.tunnels;
  const pa = byKey(p.tunnels && p.tunnels.list, (x) => x.id);
  $("tunnels-title").textContent = "Tunnel sessions (" + tu.sessions + (tu.sessions > tu.list.length ? ", first " + tu.list.length + " shown" : "") + ")";
  table($("tunnels"), ["agent", "token", "peer", "listener", "worker", "transport", "roles", "services", "streams", "streams/s", "open", "in", "out", "in/s", "out/s", "since"],
    tu.list.map((a) => {
      const b = pa[a.id] || {};
      return [
        a.agent, text(a.token), text(a.peer), text(a.listener), a.worker, text(a.transport), text(a.roles.join(", ")), text(a.services.join(", ")),
        opt(a, "streams"), rateCell(perS(opt(a, "streams"), opt(b, "streams"), dt)), opt(a, "active_streams"),
        bytes(opt(a, "bytes_in")), bytes(opt(a, "bytes_out")),
        byteRateCell(perS(opt(a, "bytes_in"), opt(b, "bytes_in"), dt)), byteRateCell(perS(opt(a, "bytes_out"), opt(b, "bytes_out"), dt)),
        ago(a.since),
      ];
    }), "no agent sessions");
}

// ---------------------------------------------------------------- polling

$("plot-kind").addEventListener("change", (e) => { view.kind = e.target.value; view.name = ""; renderPlots(); });
$("plot-name").addEventListener("change", (e) => { view.name = e.target.value; renderPlots(); });
$("plot-window").addEventListener("change", (e) => { view.window = Number(e.target.value) || 900; histAt = -1e9; poll(true); });

async function loadHistory() {
  try {
    const res = await fetch("history?window=" + view.window, { cache: "no-store" });
    if (!res.ok) throw new Error("history " + res.status);
    hist = await res.json();
    histError = "";
  } catch (e) {
    histError = "history unavailable: " + e.message;
  }
}
let timer = null, polls = 0;
async function poll(once) {
  const now = performance.now();
  try {
    const want = now - histAt >= 5000;
    if (want) histAt = now;
    const [res] = await Promise.all([fetch("status", { cache: "no-store" }), want ? loadHistory() : null]);
    if (!res.ok) throw new Error("status " + res.status);
    const s = await res.json();
    render(s, prevAt ? (now - prevAt) / 1000 : 0);
    prev = s; prevAt = now;
    $("error").textContent = "";
  } catch (e) {
    $("error").textContent = "cannot reach the admin API: " + e.message;
  }
  try { renderPlots(); } catch (e) { $("error").textContent = "cannot draw the history: " + e.message; }
  if (once === true) return;
  // The second poll comes sooner, so the rates (differences between two polls) show quickly.
  timer = setTimeout(poll, prevAt && polls++ === 0 ? 1000 : 2000);
}
poll();
</script>
</body>
</html>
`;
