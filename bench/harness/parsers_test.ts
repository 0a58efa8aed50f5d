import { expect, test } from "bun:test";
import { parseArgs } from "./args.ts";
import { clientHelloParse, parseMitata } from "./micro.ts";
import { haproxyLimits, parseReadyLine } from "./peers.ts";
import { parseStat, parseStatusMem } from "./proc_stats.ts";
import { renderTemplate } from "./templates.ts";
import { parseWrkOutput } from "./wrk.ts";

test("parseStat copes with spaces and parentheses in comm", () => {
  const rest = "S 17 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 12345 1000 200";
  const st = parseStat(`4242 (bun (worker) 1) ${rest}`);
  expect(st).toEqual({ pid: 4242, ppid: 17, cpuTicks: 325 });
  expect(() => parseStat("garbage")).toThrow();
});

test("parseStatusMem reads VmRSS and VmHWM, zero when absent", () => {
  expect(parseStatusMem("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n")).toEqual({ rssKb: 1024, hwmKb: 2048 });
  expect(parseStatusMem("Name:\tzombie\nState:\tZ\n")).toEqual({ rssKb: 0, hwmKb: 0 });
});

test("renderTemplate fills holes and refuses missing ones", () => {
  expect(renderTemplate("bind 127.0.0.1:{{PORT}} # {{PORT}}", { PORT: 8443 })).toBe("bind 127.0.0.1:8443 # 8443");
  expect(() => renderTemplate("{{PORT}} {{BACKEND_PORT}}", { PORT: 1 })).toThrow(/BACKEND_PORT/);
});

test("parseWrkOutput reads the WRKJSON line", () => {
  const out = [
    "Running 1s test @ https://localhost:1/",
    'WRKJSON {"duration_us":1000000,"requests":2500,"bytes":100,"connect_errors":1,"read_errors":2,"write_errors":0,"status_errors":0,"timeouts":3,"lat_p50_us":900,"lat_p90_us":1500,"lat_p99_us":4000,"lat_mean_us":1000.5,"lat_max_us":9000}',
  ].join("\n");
  const r = parseWrkOutput(out)!;
  expect(r.requests).toBe(2500);
  expect(r.errors).toEqual({ connect: 1, read: 2, write: 0, status: 0, timeout: 3 });
  expect(r.latencyUs.p99).toBe(4000);
  expect(parseWrkOutput("no line")).toBeNull();
  expect(parseWrkOutput('WRKJSON {"requests":1}')).toBeNull();
});

const MITATA = `clk: ~1.91 GHz
cpu: AMD EPYC
runtime: bun 1.4.5 (x64-linux)

benchmark                   avg (min … max) p75 / p99    (min … top 1%)
------------------------------------------- -------------------------------
• ClientHello parse (new parser + push + next)
------------------------------------------- -------------------------------
curl 517 B, one chunk        412.35 ns/iter 415.00 ns     █
                       (380.00 ns … 1.05 µs) 650.50 ns ▂  ▅█
curl 517 B, two chunks         1.21 µs/iter   1.30 µs     █
                       (1.00 µs … 3.00 µs)   2.50 µs ▂  ▅█
bun PQ 1498 B, one chunk     802.10 ns/iter 810.00 ns     █
                       (700.00 ns … 2.00 µs) 1.10 µs ▂  ▅█

• hostname only
------------------------------------------- -------------------------------
canonicalHostnameBytes lowercase  147.27 ps/iter 149.17 ps      ▆▄ ▂█            !
                      (75.68 ps … 23.85 ns) 234.86 ps      ██████
`;

test("parseMitata reads groups, names and times in every unit", () => {
  const r = parseMitata(MITATA, "bench/micro/client_hello_bench.ts");
  expect(r.map((x) => x.name)).toEqual(["curl 517 B, one chunk", "curl 517 B, two chunks", "bun PQ 1498 B, one chunk", "canonicalHostnameBytes lowercase"]);
  expect(r[0]!.group).toBe("ClientHello parse (new parser + push + next)");
  expect(r[0]!.avgNs).toBeCloseTo(412.35);
  expect(r[0]!.p99Ns).toBeCloseTo(650.5);
  expect(r[1]!.avgNs).toBeCloseTo(1210);
  expect(r[3]!.group).toBe("hostname only");
  expect(r[3]!.avgNs).toBeCloseTo(0.14727);
});

test("clientHelloParse takes the slowest one-chunk parse", () => {
  const r = parseMitata(MITATA, "f");
  expect(clientHelloParse(r)?.name).toBe("bun PQ 1498 B, one chunk");
  expect(clientHelloParse(r.filter((x) => !x.name.includes("one chunk")))?.name).toBe("curl 517 B, two chunks");
  expect(clientHelloParse(r.filter((x) => x.group === "hostname only"))).toBeNull();
});

test("parseReadyLine finds the sni listener's port", () => {
  const line = JSON.stringify({ level: "info", msg: "ready", admin: "127.0.0.1:9901", listeners: { sni: "127.0.0.1:41234" } });
  expect(parseReadyLine(line)).toEqual({ port: 41234, admin: "127.0.0.1:9901" });
  const tcp = JSON.stringify({ msg: "ready", admin: null, listeners: { tcp: "127.0.0.1:5000" } });
  expect(parseReadyLine(tcp)).toEqual({ port: 5000, admin: null });
  const http = JSON.stringify({ msg: "ready", admin: "127.0.0.1:9901", listeners: { http: "127.0.0.1:5443" } });
  expect(parseReadyLine(http)).toEqual({ port: 5443, admin: "127.0.0.1:9901" });
  expect(parseReadyLine('{"msg":"starting"}')).toBeNull();
  expect(parseReadyLine("not json")).toBeNull();
});

test("HAProxy's descriptors stay under the 20,000 hard limit in every profile", () => {
  for (const p of ["conn", "bulk", "idle"] as const) {
    const l = haproxyLimits(p);
    expect(l.maxconn * 2 + l.maxpipes * 2).toBeLessThan(20_000);
    expect(l.splice).toBe(p === "bulk");
  }
  expect(haproxyLimits("idle").maxconn).toBeGreaterThanOrEqual(9500);
});

test("parseArgs: quick by default, --full, overrides and errors", () => {
  const q = parseArgs([]);
  expect(q.plan.mode).toBe("quick");
  expect(q.plan.rounds).toBeGreaterThanOrEqual(3);
  const f = parseArgs(["--", "--full", "--rounds", "4", "--only", "newconn,idle", "--no-micro"]);
  expect(f.plan.mode).toBe("full");
  expect(f.plan.rounds).toBe(4);
  expect(f.plan.micro).toBe(false);
  expect(f.scenarios).toEqual(["newconn", "idle"]);
  expect(() => parseArgs(["--only", "nope"])).toThrow(/unknown 'nope'/);
  expect(parseArgs(["--tcp"]).scenarios).toEqual(["tcp_newconn", "tcp_keepalive", "tcp_bulk1", "tcp_bulk4"]);
  expect(parseArgs(["--only", "tcp_bulk1,newconn"]).scenarios).toEqual(["newconn", "tcp_bulk1"]);
  expect(parseArgs(["--only", "sni,tcp_newconn"]).scenarios).toEqual(["newconn", "keepalive", "bulk1", "bulk4", "idle", "tcp_newconn"]);
  expect(parseArgs(["--http"]).scenarios).toEqual(["http_keepalive", "http_newconn"]);
  expect(parseArgs(["--only", "http"]).scenarios).toEqual(["http_keepalive", "http_newconn"]);
  expect(parseArgs(["--http", "--tcp"]).scenarios).toEqual(["tcp_newconn", "tcp_keepalive", "tcp_bulk1", "tcp_bulk4", "http_keepalive", "http_newconn"]);
  expect(parseArgs([]).scenarios).toBeNull(); // the default run has every section, http included
  expect(parseArgs(["--baseline", "/tmp/x"]).baseline).toBe("/tmp/x");
  expect(parseArgs([]).baseline).toBeNull();
  expect(() => parseArgs(["--idle-conns", "20000"])).toThrow(/1\.\.9500/);
  expect(() => parseArgs(["--bogus"])).toThrow(/unknown option/);
});
