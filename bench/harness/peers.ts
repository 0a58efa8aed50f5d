/**
 * Every entry a scenario runs against is one PeerDef: "direct" (no proxy),
 * edgemux, the naive Bun forwarder, HAProxy, nginx stream and sniproxy, and
 * with `--baseline DIR` "edgemux-before" (the edgemux of another checkout).
 * Each proxy starts on 127.0.0.1 from a checked-in template (bench/peers/)
 * with its best settings for the scenario's profile. In the SNI section it
 * must route by SNI: only "localhost" goes to the backend (checked by
 * sni_check.ts before measuring); in the tcp section it forwards every
 * connection to the one target (edgemux `kind = "tcp"`, HAProxy `mode tcp`,
 * nginx `stream` with a fixed `proxy_pass`); in the http section it
 * terminates TLS with the run's certificate and routes each request by Host
 * (edgemux `kind = "http"`, HAProxy `mode http`, nginx `proxy_pass`; checked
 * by http_check.ts).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import type { BenchCert } from "./backends.ts";
import type { Managed, ProcessRegistry } from "./procs.ts";
import { freePort, waitForPort } from "./ports.ts";
import type { Routing } from "./scenarios.ts";
import { renderTemplate } from "./templates.ts";

/** What the scenario needs from the proxy's configuration. */
export type Profile = "conn" | "bulk" | "idle";

export interface PeerContext {
  reg: ProcessRegistry;
  /** Scratch directory of this run (configs, pid files, logs). */
  dir: string;
  repoRoot: string;
  backendPort: number;
  /** Where "direct" connects (the http section's backend has a TLS port of its own); else backendPort. */
  directPort?: number;
  /** The run's certificate: what a proxy that terminates TLS serves (http section). */
  tls?: BenchCert;
  profile: Profile;
  /** SNI routing (SNI section), plain forwarding to the one target (tcp section) or HTTPS routing by Host (http section). */
  routing: Routing;
  cores: number;
}

/**
 * Idle upstream connections a reverse proxy keeps (edgemux per route and
 * worker, nginx per worker): as many as wrk's keep-alive connections, so
 * keep-alive never opens and closes upstream connections.
 */
export const HTTP_UPSTREAM_KEEPALIVE = 64;

function needTls(ctx: PeerContext): BenchCert {
  if (!ctx.tls) throw new Error("the http section needs the run's certificate (Backend.tls)");
  return ctx.tls;
}

export interface RunningPeer {
  name: string;
  /** Where clients connect (127.0.0.1). */
  port: number;
  /** Root of the process tree whose CPU and memory are the proxy's; null for direct. */
  pid: number | null;
  proc: Managed | null;
  /** Settings that matter for the comparison, recorded in the results. */
  settings: Record<string, string | number>;
  /** Extra facts (e.g. edgemux's admin address). */
  info: Record<string, unknown>;
  stop(): Promise<void>;
}

export interface PeerDef {
  name: string;
  kind: "direct" | "proxy";
  /** False only for the naive forwarder, which sends everything to one target by design. */
  routesBySni: boolean;
  /** The sections it can take part in (sniproxy and edgemux-before have no plain tcp forwarding, the naive forwarder and sniproxy no HTTP). */
  routings: readonly Routing[];
  /** null when runnable here, else why not. */
  unavailable(repoRoot: string): string | null;
  version(repoRoot: string): string;
  start(ctx: PeerContext): Promise<RunningPeer>;
}

const STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";

function which(bin: string): string | null {
  for (const d of (process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin").split(":").concat(["/usr/sbin", "/sbin"])) {
    const p = join(d, bin);
    if (existsSync(p)) return p;
  }
  return null;
}

function firstLine(cmd: string, args: string[]): string {
  try {
    const out = execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 10_000 });
    return out.split("\n")[0]!.trim();
  } catch (e) {
    // nginx -v and friends print to stderr
    const err = e as { stderr?: string; stdout?: string };
    return String(err.stderr || err.stdout || "").split("\n")[0]!.trim() || "unknown";
  }
}

/** First line of stderr, else stdout (nginx -v prints to stderr and exits 0). */
function stderrLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 10_000 });
  return (r.stderr || r.stdout || "unknown").split("\n")[0]!.trim();
}

function template(ctx: PeerContext, file: string): string {
  return readFileSync(join(ctx.repoRoot, "bench", "peers", file), "utf8");
}

/** Starts a proxy on a pre-picked free port; retries when the port was taken meanwhile. */
async function startOnFreePort(
  ctx: PeerContext,
  name: string,
  launch: (port: number) => { proc: Managed; settings: Record<string, string | number> },
): Promise<RunningPeer> {
  let lastErr: unknown = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const { proc, settings } = launch(port);
    try {
      await Promise.race([
        waitForPort(port, 10_000),
        proc.exited.then((c) => {
          throw new Error(`${name} exited with ${c} during start:\n${proc.tail(20)}`);
        }),
      ]);
      return { name, port, pid: proc.pid, proc, settings, info: {}, stop: () => proc.stop() };
    } catch (e) {
      lastErr = e;
      await proc.stop();
    }
  }
  throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
}

/**
 * Parses a ready line `{"msg":"ready","listeners":{"sni":"127.0.0.1:P"},"admin":"..."}`:
 * the port of the listener named "sni", else "tcp", else "http", else the first one.
 */
export function parseReadyLine(line: string): { port: number; admin: string | null } | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const o = v as { msg?: unknown; listeners?: Record<string, unknown>; admin?: unknown };
  if (o.msg !== "ready" || typeof o.listeners !== "object" || o.listeners === null) return null;
  const addr = o.listeners["sni"] ?? o.listeners["tcp"] ?? o.listeners["http"] ?? Object.values(o.listeners)[0];
  if (typeof addr !== "string") return null;
  const m = /:(\d+)$/.exec(addr);
  if (!m) return null;
  return { port: Number(m[1]), admin: typeof o.admin === "string" ? o.admin : null };
}

async function startWithReadyLine(
  ctx: PeerContext,
  name: string,
  cmd: string,
  args: string[],
  settings: Record<string, string | number>,
  cwd = ctx.repoRoot,
): Promise<RunningPeer> {
  const proc = ctx.reg.spawn(name, cmd, args, { cwd, logFile: join(ctx.dir, `${name}.log`) });
  try {
    const line = await proc.waitForLine((l) => parseReadyLine(l) !== null, 20_000);
    const ready = parseReadyLine(line)!;
    return {
      name,
      port: ready.port,
      pid: proc.pid,
      proc,
      settings,
      info: ready.admin ? { admin: ready.admin } : {},
      stop: () => proc.stop(),
    };
  } catch (e) {
    await proc.stop();
    throw e;
  }
}

export const direct: PeerDef = {
  name: "direct",
  kind: "direct",
  routesBySni: true,
  routings: ["sni", "tcp", "http"],
  unavailable: () => null,
  version: () => "no proxy: the client talks to the backend",
  async start(ctx) {
    return { name: "direct", port: ctx.directPort ?? ctx.backendPort, pid: null, proc: null, settings: {}, info: {}, stop: async () => {} };
  },
};

/** "0.1.0 (abc1234, 3 files changed under src/)" for the checkout at `root`. */
export function checkoutVersion(root: string): string {
  let rev = "uncommitted";
  let dirty = "";
  try {
    rev = execFileSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const changed = execFileSync("git", ["-C", root, "status", "--porcelain", "--", "src"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] })
      .split("\n")
      .filter(Boolean).length;
    if (changed > 0) dirty = `, ${changed} file${changed === 1 ? "" : "s"} changed under src/`;
  } catch {
    // no commit yet
  }
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version?: string };
  return `${pkg.version ?? "?"} (${rev}${dirty})`;
}

/**
 * edgemux of the checkout at `root` (its src/cli/main.ts, run with that
 * checkout as the working directory). Both this tree's edgemux and
 * "edgemux-before" (`--baseline DIR`) get the same config from this tree's
 * templates, so the comparison is code against code.
 */
function edgemuxOf(name: string, baseline: string | null, routings: readonly Routing[]): PeerDef {
  const rootOf = (repoRoot: string) => baseline ?? repoRoot;
  return {
    name,
    kind: "proxy",
    routesBySni: true,
    routings,
    unavailable: (root) => (existsSync(join(rootOf(root), "src", "cli", "main.ts")) ? null : `${join(rootOf(root), "src/cli/main.ts")} does not exist`),
    version: (root) => `edgemux ${checkoutVersion(rootOf(root))}${baseline ? ` at ${baseline}` : ""} on bun ${firstLine("bun", ["--version"])}`,
    async start(ctx) {
      const cfg = join(ctx.dir, `${name}_${ctx.routing}_${ctx.profile}.toml`);
      const settings: Record<string, string | number> = { workers: ctx.cores, listener: `kind = ${ctx.routing}` };
      if (ctx.routing === "http") {
        const tls = needTls(ctx);
        writeFileSync(
          cfg,
          renderTemplate(template(ctx, "edgemux_http.toml.tmpl"), {
            WORKERS: ctx.cores,
            BACKEND_PORT: ctx.backendPort,
            CERT: tls.cert,
            KEY: tls.key,
            UPSTREAM_KEEPALIVE: HTTP_UPSTREAM_KEEPALIVE,
          }),
        );
        Object.assign(settings, { tls: "[listeners.tls] cert/key", route: "match = localhost (Host)", upstream_keepalive: HTTP_UPSTREAM_KEEPALIVE });
      } else {
        const file = ctx.routing === "tcp" ? "edgemux_tcp.toml.tmpl" : "edgemux.toml.tmpl";
        writeFileSync(cfg, renderTemplate(template(ctx, file), { WORKERS: ctx.cores, BACKEND_PORT: ctx.backendPort }));
      }
      return startWithReadyLine(
        ctx,
        name,
        "bun",
        ["src/cli/main.ts", "serve", "--config", cfg, "--workers", String(ctx.cores), "--log-format", "json", "--log-level", "warn"],
        settings,
        rootOf(ctx.repoRoot),
      );
    },
  };
}

export const edgemux: PeerDef = edgemuxOf("edgemux", null, ["sni", "tcp", "http"]);

/** The edgemux of another checkout (`--baseline DIR`), SNI section only: a tree from before the tcp listener has none. */
export function edgemuxBefore(baselineDir: string): PeerDef {
  return edgemuxOf("edgemux-before", baselineDir, ["sni"]);
}

export const naiveBun: PeerDef = {
  name: "naive_bun",
  kind: "proxy",
  routesBySni: false,
  routings: ["sni", "tcp"],
  unavailable: () => (which("bun") ? null : "bun not on PATH"),
  version: () => `bun ${firstLine("bun", ["--version"])} Bun.listen→Bun.connect, 1 thread, no SNI parsing`,
  start: (ctx) =>
    startWithReadyLine(ctx, "naive_bun", "bun", ["bench/peers/naive_bun.ts", "--target", `127.0.0.1:${ctx.backendPort}`], {
      threads: 1,
      sni: "none (fixed target)",
    }),
};

/** HAProxy fds: 2 per connection + 2 per pipe must stay under the 20,000 hard limit. */
export function haproxyLimits(profile: Profile): { maxconn: number; maxpipes: number; splice: boolean; bufsize: number } {
  switch (profile) {
    case "bulk":
      return { maxconn: 4000, maxpipes: 4000, splice: true, bufsize: 262144 };
    case "idle":
      return { maxconn: 9900, maxpipes: 0, splice: false, bufsize: 16384 };
    default:
      return { maxconn: 9000, maxpipes: 0, splice: false, bufsize: 16384 };
  }
}

export const haproxy: PeerDef = {
  name: "haproxy",
  kind: "proxy",
  routesBySni: true,
  routings: ["sni", "tcp", "http"],
  unavailable: () => (which("haproxy") ? null : "haproxy not installed (scripts/bench_deps.sh)"),
  version: () => firstLine("haproxy", ["-v"]),
  start: (ctx) =>
    startOnFreePort(ctx, "haproxy", (port) => {
      if (ctx.routing === "http") return haproxyHttp(ctx, port);
      const lim = haproxyLimits(ctx.profile);
      const cfg = join(ctx.dir, `haproxy_${ctx.routing}_${ctx.profile}.cfg`);
      writeFileSync(
        cfg,
        renderTemplate(template(ctx, ctx.routing === "tcp" ? "haproxy_tcp.cfg.tmpl" : "haproxy.cfg.tmpl"), {
          THREADS: ctx.cores,
          MAXCONN: lim.maxconn,
          MAXPIPES: lim.maxpipes,
          SPLICE: lim.splice ? "option splice-auto" : "# no splicing for this profile",
          TUNE: lim.bufsize !== 16384 ? `tune.bufsize ${lim.bufsize}` : "# default tune.bufsize (16384)",
          DIR: ctx.dir,
          PORT: port,
          BACKEND_PORT: ctx.backendPort,
        }),
      );
      const proc = ctx.reg.spawn("haproxy", "haproxy", ["-f", cfg, "-db"], { logFile: join(ctx.dir, "haproxy.log") });
      return {
        proc,
        settings: { mode: ctx.routing === "tcp" ? "tcp, default_backend" : "tcp, req.ssl_sni", nbthread: ctx.cores, maxconn: lim.maxconn, maxpipes: lim.maxpipes, splice: lim.splice ? "splice-auto" : "off", bufsize: lim.bufsize },
      };
    }),
};

/** HAProxy `mode http` terminating TLS (`bind ... ssl crt`), routing by Host, `http-reuse always`. */
function haproxyHttp(ctx: PeerContext, port: number): { proc: Managed; settings: Record<string, string | number> } {
  const lim = haproxyLimits(ctx.profile);
  const cfg = join(ctx.dir, `haproxy_http_${ctx.profile}.cfg`);
  writeFileSync(
    cfg,
    renderTemplate(template(ctx, "haproxy_http.cfg.tmpl"), {
      THREADS: ctx.cores,
      MAXCONN: lim.maxconn,
      PEM: needTls(ctx).pem,
      DIR: ctx.dir,
      PORT: port,
      BACKEND_PORT: ctx.backendPort,
    }),
  );
  const proc = ctx.reg.spawn("haproxy", "haproxy", ["-f", cfg, "-db"], { logFile: join(ctx.dir, "haproxy.log") });
  return { proc, settings: { mode: "http, bind ssl crt, Host acl", nbthread: ctx.cores, maxconn: lim.maxconn, "http-reuse": "always", alpn: "http/1.1" } };
}

export function nginxProxyBuffer(profile: Profile): string {
  return profile === "bulk" ? "256k" : "16k";
}

export const nginxStream: PeerDef = {
  name: "nginx",
  kind: "proxy",
  routesBySni: true,
  routings: ["sni", "tcp", "http"],
  unavailable: () =>
    !which("nginx") ? "nginx not installed (scripts/bench_deps.sh)" : !existsSync(STREAM_MODULE) ? "libnginx-mod-stream not installed" : null,
  version: () => `${stderrLine("nginx", ["-v"])} stream (ssl_preread / plain proxy_pass); http section: http proxy_pass`,
  start: (ctx) =>
    startOnFreePort(ctx, "nginx", (port) => {
      if (ctx.routing === "http") return nginxHttp(ctx, port);
      const cfg = join(ctx.dir, `nginx_stream_${ctx.routing}_${ctx.profile}.conf`);
      const buffer = nginxProxyBuffer(ctx.profile);
      writeFileSync(
        cfg,
        renderTemplate(template(ctx, ctx.routing === "tcp" ? "nginx_stream_tcp.conf.tmpl" : "nginx_stream.conf.tmpl"), {
          MODULE: STREAM_MODULE,
          WORKERS: ctx.cores,
          DIR: ctx.dir,
          PORT: port,
          BACKEND_PORT: ctx.backendPort,
          PROXY_BUFFER: buffer,
        }),
      );
      const proc = ctx.reg.spawn("nginx", "nginx", ["-c", cfg, "-p", ctx.dir, "-e", join(ctx.dir, "nginx_stream_error.log")], {
        logFile: join(ctx.dir, "nginx.log"),
      });
      return { proc, settings: { worker_processes: ctx.cores, proxy_buffer_size: buffer, reuseport: "on", proxy_pass: ctx.routing === "tcp" ? "fixed" : "map $ssl_preread_server_name" } };
    }),
};

/** nginx http as an HTTPS reverse proxy: server_name routing, proxy_pass to an upstream keepalive pool. */
function nginxHttp(ctx: PeerContext, port: number): { proc: Managed; settings: Record<string, string | number> } {
  const tls = needTls(ctx);
  const cfg = join(ctx.dir, `nginx_http_${ctx.profile}.conf`);
  writeFileSync(
    cfg,
    renderTemplate(template(ctx, "nginx_http.conf.tmpl"), {
      WORKERS: ctx.cores,
      DIR: ctx.dir,
      PORT: port,
      BACKEND_PORT: ctx.backendPort,
      CERT: tls.cert,
      KEY: tls.key,
      UPSTREAM_KEEPALIVE: HTTP_UPSTREAM_KEEPALIVE,
    }),
  );
  const proc = ctx.reg.spawn("nginx", "nginx", ["-c", cfg, "-p", ctx.dir, "-e", join(ctx.dir, "nginx_http_error.log")], {
    logFile: join(ctx.dir, "nginx.log"),
  });
  return { proc, settings: { worker_processes: ctx.cores, reuseport: "on", http2: "off", proxy_pass: "upstream, server_name localhost", "upstream keepalive": HTTP_UPSTREAM_KEEPALIVE } };
}

export const sniproxy: PeerDef = {
  name: "sniproxy",
  kind: "proxy",
  routesBySni: true,
  routings: ["sni"],
  unavailable: () => (which("sniproxy") ? null : "sniproxy not installed (scripts/bench_deps.sh)"),
  version: () => firstLine("sniproxy", ["-V"]),
  start: (ctx) =>
    startOnFreePort(ctx, "sniproxy", (port) => {
      const cfg = join(ctx.dir, `sniproxy_${ctx.profile}.conf`);
      writeFileSync(
        cfg,
        renderTemplate(template(ctx, "sniproxy.conf.tmpl"), { DIR: ctx.dir, PORT: port, BACKEND_PORT: ctx.backendPort }),
      );
      const proc = ctx.reg.spawn("sniproxy", "sniproxy", ["-f", "-c", cfg], { logFile: join(ctx.dir, "sniproxy.log") });
      return { proc, settings: { threads: 1 } };
    }),
};

/** In run order: A B C … each round. */
export const ALL_PEERS: readonly PeerDef[] = [direct, edgemux, naiveBun, haproxy, nginxStream, sniproxy];

/** ALL_PEERS, with "edgemux-before" right after edgemux when a baseline checkout is given. */
export function peersFor(baselineDir: string | null): PeerDef[] {
  if (!baselineDir) return [...ALL_PEERS];
  return ALL_PEERS.flatMap((p) => (p === edgemux ? [p, edgemuxBefore(baselineDir)] : [p]));
}
