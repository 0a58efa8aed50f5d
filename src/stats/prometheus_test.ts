import { describe, expect, test } from "bun:test";
import { HANDSHAKE_BUCKETS } from "./layout.ts";
import { escapeHelp, escapeLabel, formatValue, type ProcessInfo, renderPrometheus } from "./prometheus.ts";
import { StatsRegistry } from "./registry.ts";
import { StatsWriter } from "./writer.ts";

const PROC: ProcessInfo = {
  version: "0.1.0",
  runtime: "bun 1.4.5",
  startTimeSeconds: 1_700_000_000.5,
  residentMemoryBytes: 52_428_800,
  cpuSecondsTotal: 3.25,
};

function sampleText(): string {
  const reg = new StatsRegistry(4);
  const { listeners, routes } = reg.assign(["tls"], ['we"ird\\name\nx', "plain"]);
  const slabs = [reg.createSlab(), reg.createSlab()];
  const [w0, w1] = slabs.map((s) => new StatsWriter(s));
  w0!.opened(listeners.tls!);
  w0!.handshake(listeners.tls!, 0.003);
  w0!.handshake(listeners.tls!, 0.0004);
  w1!.handshake(listeners.tls!, 30);
  w0!.error(listeners.tls!, "NO_ROUTE");
  w1!.error(listeners.tls!, "NO_ROUTE");
  w1!.opened(routes.plain!);
  w1!.bytes(routes.plain!, 12, 3400);
  w1!.heartbeat(1000);
  return renderPrometheus(reg.snapshot(slabs, { nowMs: 1500 }), PROC);
}

describe("escaping", () => {
  test("label values escape backslash, double quote and line feed, nothing else", () => {
    expect(escapeLabel('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeLabel("tab\there, ünïcode, {braces}=,")).toBe("tab\there, ünïcode, {braces}=,");
    expect(escapeLabel("\\n")).toBe("\\\\n"); // a literal backslash-n stays distinguishable from a line feed
  });
  test("help text escapes backslash and line feed but not quotes", () => {
    expect(escapeHelp('say "hi"\\\n')).toBe('say "hi"\\\\\\n');
  });
  test("values use Go float spelling", () => {
    expect(formatValue(Infinity)).toBe("+Inf");
    expect(formatValue(-Infinity)).toBe("-Inf");
    expect(formatValue(NaN)).toBe("NaN");
    expect(formatValue(2 ** 53)).toBe("9007199254740992");
    expect(formatValue(0.0005)).toBe("0.0005");
  });
});

describe("renderPrometheus", () => {
  const text = sampleText();
  const lines = text.split("\n");

  test("ends with one line feed and has no blank lines inside", () => {
    expect(text.endsWith("\n")).toBe(true);
    expect(lines.slice(0, -1).every((l) => l.length > 0)).toBe(true);
  });

  test("every family has HELP then TYPE before its samples, once, not interleaved", () => {
    const families: string[] = [];
    let currentFamily = "";
    for (let i = 0; i < lines.length - 1; i++) {
      const line = lines[i]!;
      if (line.startsWith("# HELP ")) {
        const name = line.split(" ")[2]!;
        expect(lines[i + 1]!.startsWith(`# TYPE ${name} `)).toBe(true);
        expect(families).not.toContain(name);
        families.push(name);
        currentFamily = name;
      } else if (!line.startsWith("# ")) {
        const metric = line.split(/[{ ]/)[0]!;
        expect([currentFamily, `${currentFamily}_bucket`, `${currentFamily}_sum`, `${currentFamily}_count`]).toContain(metric);
      }
    }
    // 34 edgemux_* (11 of them connect times, route targets and tunnel services) + process_cpu_seconds_total, process_resident_memory_bytes, process_start_time_seconds
    expect(families.length).toBe(37);
    for (const f of families) {
      const type = lines.find((l) => l.startsWith(`# TYPE ${f} `))!.split(" ")[3];
      if (type === "counter") expect(f.endsWith("_total")).toBe(true);
      else expect(f.endsWith("_total")).toBe(false);
    }
  });

  test("sample lines are well formed", () => {
    const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? (\+Inf|-Inf|NaN|-?[0-9.e+-]+)$/;
    for (const l of lines.slice(0, -1)) if (!l.startsWith("# ")) expect(l).toMatch(sample);
  });

  test("label values are escaped in samples", () => {
    expect(text).toContain('edgemux_route_connections_total{route="we\\"ird\\\\name\\nx"} 0\n');
  });

  test("histograms: cumulative buckets, +Inf equals _count, then _sum and _count", () => {
    const name = "edgemux_listener_handshake_seconds";
    const buckets = lines.filter((l) => l.startsWith(`${name}_bucket{listener="tls"`));
    expect(buckets.length).toBe(HANDSHAKE_BUCKETS.length + 1);
    expect(buckets[0]).toBe(`${name}_bucket{listener="tls",le="0.0005"} 1`);
    expect(buckets[3]).toBe(`${name}_bucket{listener="tls",le="0.005"} 2`);
    expect(buckets[HANDSHAKE_BUCKETS.length - 1]).toBe(`${name}_bucket{listener="tls",le="10"} 2`);
    expect(buckets[HANDSHAKE_BUCKETS.length]).toBe(`${name}_bucket{listener="tls",le="+Inf"} 3`);
    const values = buckets.map((b) => Number(b.split(" ")[1]));
    for (let i = 1; i < values.length; i++) expect(values[i]!).toBeGreaterThanOrEqual(values[i - 1]!);
    const at = lines.indexOf(buckets[HANDSHAKE_BUCKETS.length]!);
    expect(lines[at + 1]).toBe(`${name}_sum{listener="tls"} ${0.003 + 0.0004 + 30}`);
    expect(lines[at + 2]).toBe(`${name}_count{listener="tls"} 3`);
  });

  test("errors: only codes seen, summed over workers", () => {
    const errorLines = lines.filter((l) => l.startsWith("edgemux_listener_errors_total{"));
    expect(errorLines).toEqual(['edgemux_listener_errors_total{listener="tls",code="NO_ROUTE"} 2']);
    expect(lines.filter((l) => l.startsWith("edgemux_route_errors_total{"))).toEqual([]);
  });

  test("bytes by direction, workers, build info and process", () => {
    expect(text).toContain('edgemux_route_bytes_total{route="plain",direction="in"} 12\n');
    expect(text).toContain('edgemux_route_bytes_total{route="plain",direction="out"} 3400\n');
    expect(text).toContain('edgemux_worker_up{worker="0"} 0\n'); // never beat
    expect(text).toContain('edgemux_worker_up{worker="1"} 1\n');
    expect(text).toContain('edgemux_worker_heartbeat_age_seconds{worker="1"} 0.5\n');
    expect(text).not.toContain('edgemux_worker_heartbeat_age_seconds{worker="0"}');
    expect(text).toContain('edgemux_build_info{version="0.1.0",runtime="bun 1.4.5"} 1\n');
    expect(text).toContain("edgemux_process_start_time_seconds 1700000000.5\n");
    expect(text).toContain("edgemux_process_cpu_seconds_total 3.25\n");
  });

  test("the standard process_* families, as Prometheus' client libraries name them", () => {
    const reg = new StatsRegistry(1);
    const snap = reg.snapshot([reg.createSlab()], { nowMs: 1000 });
    const full = renderPrometheus(snap, { ...PROC, openFds: 17, maxFds: 1024 });
    expect(full).toContain("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 3.25\n");
    expect(full).toContain("# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 52428800\n");
    expect(full).toContain("# TYPE process_open_fds gauge\nprocess_open_fds 17\n");
    expect(full).toContain("# TYPE process_max_fds gauge\nprocess_max_fds 1024\n");
    expect(full).toContain("# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1700000000.5\n");
    // Where descriptors cannot be counted (no /proc), their families are left out, not shown empty.
    const bare = renderPrometheus(snap, PROC);
    expect(bare).toContain("process_cpu_seconds_total 3.25\n");
    expect(bare).not.toContain("process_open_fds");
    expect(bare).not.toContain("process_max_fds");
  });

  test("the supervisor's view of workers overrides heartbeat inference", () => {
    const reg = new StatsRegistry(1);
    const slabs = [reg.createSlab()];
    new StatsWriter(slabs[0]!).heartbeat(1000);
    const text = renderPrometheus(reg.snapshot(slabs, { nowMs: 1000 }), PROC, [{ id: 0, up: false, restarts: 4 }]);
    expect(text).toContain('edgemux_worker_up{worker="0"} 0\n');
    expect(text).toContain('edgemux_worker_restarts_total{worker="0"} 4\n');
  });

  test("tunnel sessions: one gauge series per listener and token, absent without a table", () => {
    const reg = new StatsRegistry(1);
    const snap = reg.snapshot([reg.createSlab()], { nowMs: 1000 });
    expect(renderPrometheus(snap, PROC)).not.toContain("edgemux_tunnel_sessions_active");
    const text = renderPrometheus(snap, PROC, undefined, [
      { listener: "tunnel", token: "dest", sessions: 2 },
      { listener: "tunnel", token: "src", sessions: 0 },
    ]);
    expect(text).toContain("# TYPE edgemux_tunnel_sessions_active gauge\n");
    expect(text).toContain('edgemux_tunnel_sessions_active{listener="tunnel",token="dest"} 2\n');
    expect(text).toContain('edgemux_tunnel_sessions_active{listener="tunnel",token="src"} 0\n');
  });

  test("connect times, route targets and tunnel services", () => {
    const reg = new StatsRegistry(4, { backends: 4, services: 4 });
    const slots = reg.assign(["tls"], ["r"], { r: ["10.0.0.1:443", "unix:/run/b.sock"] });
    const slabs = [reg.createSlab()];
    const w = new StatsWriter(slabs[0]!);
    w.connect(slots.listeners.tls!, 0.0002);
    w.connect(slots.routes.r!, 0.0002);
    const [a, b] = slots.backends.r!;
    w.backendConnected(a!, 0.0002, 1000);
    w.backendFailed(b!, "UPSTREAM_CONNECT_REFUSED", 1000, 3000);
    const web = w.serviceSlot("web");
    w.serviceOpened(web);
    w.serviceClosed(web, 5, 7);
    w.serviceFailed(web, "SERVICE_OFFLINE");
    const text = renderPrometheus(reg.snapshot(slabs, { nowMs: 1500 }), PROC);
    expect(text).toContain('edgemux_listener_connect_seconds_bucket{listener="tls",le="0.00025"} 1\n');
    expect(text).toContain('edgemux_route_connect_seconds_count{route="r"} 1\n');
    expect(text).toContain('edgemux_backend_connections_total{route="r",target="10.0.0.1:443"} 1\n');
    expect(text).toContain('edgemux_backend_connections_total{route="r",target="unix:/run/b.sock"} 0\n');
    expect(text).toContain('edgemux_backend_failures_total{route="r",target="unix:/run/b.sock",code="UPSTREAM_CONNECT_REFUSED"} 1\n');
    expect(text).toContain('edgemux_backend_active{route="r",target="10.0.0.1:443"} 1\n');
    expect(text).toContain('edgemux_backend_connect_seconds_count{route="r",target="10.0.0.1:443"} 1\n');
    expect(text).toContain('edgemux_backend_state{route="r",target="10.0.0.1:443",state="up"} 1\n');
    expect(text).toContain('edgemux_backend_state{route="r",target="unix:/run/b.sock",state="cooling_down"} 1\n');
    expect(text).toContain('edgemux_backend_state{route="r",target="unix:/run/b.sock",state="up"} 0\n');
    expect(text).toContain('edgemux_tunnel_service_streams_total{service="web"} 1\n');
    expect(text).toContain('edgemux_tunnel_service_active_streams{service="web"} 0\n');
    expect(text).toContain('edgemux_tunnel_service_bytes_total{service="web",direction="in"} 5\n');
    expect(text).toContain('edgemux_tunnel_service_bytes_total{service="web",direction="out"} 7\n');
    expect(text).toContain('edgemux_tunnel_service_open_failures_total{service="web",code="SERVICE_OFFLINE"} 1\n');
  });
});
