/**
 * Every entry a scenario runs against is one PeerDef: "direct" (no proxy),
 * edgemux, the naive Bun forwarder, HAProxy, nginx stream and sniproxy. Each
 * proxy starts on 127.0.0.1 from a checked-in template (bench/peers/) with
 * its best settings for the scenario's profile, and must route by SNI: only
 * "localhost" goes to the backend (checked by sni_check.ts before measuring).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import type { Managed, ProcessRegistry } from "./procs.ts";
import { freePort, waitForPort } from "./ports.ts";
import { renderTemplate } from "./templates.ts";

/** What the scenario needs from the proxy's configuration. */
export type Profile = "conn" | "bulk" | "idle";

export interface PeerContext {
  reg: ProcessRegistry;
  /** Scratch directory of this run (configs, pid files, logs). */
  dir: string;
  repoRoot: string;
  backendPort: number;
  profile: Profile;
  cores: number;
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

/** Parses a ready line `{"msg":"ready","listeners":{"sni":"127.0.0.1:P"},"admin":"..."}`. */
export function parseReadyLine(line: string): { sniPort: number; admin: string | null } | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null) return null;
  const o = v as { msg?: unknown; listeners?: Record<string, unknown>; admin?: unknown };
  if (o.msg !== "ready" || typeof o.listeners !== "object" || o.listeners === null) return null;
  const addr = o.listeners["sni"] ?? Object.values(o.listeners)[0];
  if (typeof addr !== "string") return null;
  const m = /:(\d+)$/.exec(addr);
  if (!m) return null;
  return { sniPort: Number(m[1]), admin: typeof o.admin === "string" ? o.admin : null };
}

async function startWithReadyLine(
  ctx: PeerContext,
  name: string,
  cmd: string,
  args: string[],
  settings: Record<string, string | number>,
): Promise<RunningPeer> {
  const proc = ctx.reg.spawn(name, cmd, args, { cwd: ctx.repoRoot, logFile: join(ctx.dir, `${name}.log`) });
  try {
    const line = await proc.waitForLine((l) => parseReadyLine(l) !== null, 20_000);
    const ready = parseReadyLine(line)!;
    return {
      name,
      port: ready.sniPort,
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
  unavailable: () => null,
  version: () => "no proxy: the client talks to the backend",
  async start(ctx) {
    return { name: "direct", port: ctx.backendPort, pid: null, proc: null, settings: {}, info: {}, stop: async () => {} };
  },
};

export const edgemux: PeerDef = {
  name: "edgemux",
  kind: "proxy",
  routesBySni: true,
  unavailable: (root) => (existsSync(join(root, "src", "cli", "main.ts")) ? null : "src/cli/main.ts does not exist yet"),
  version(root) {
    let rev = "uncommitted";
    try {
      rev = execFileSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
      // no commit yet
    }
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version?: string };
    return `edgemux ${pkg.version ?? "?"} (${rev}) on bun ${firstLine("bun", ["--version"])}`;
  },
  async start(ctx) {
    const cfg = join(ctx.dir, `edgemux_${ctx.profile}.toml`);
    writeFileSync(cfg, renderTemplate(template(ctx, "edgemux.toml.tmpl"), { WORKERS: ctx.cores, BACKEND_PORT: ctx.backendPort }));
    return startWithReadyLine(
      ctx,
      "edgemux",
      "bun",
      ["src/cli/main.ts", "serve", "--config", cfg, "--workers", String(ctx.cores), "--log-format", "json", "--log-level", "warn"],
      { workers: ctx.cores },
    );
  },
};

export const naiveBun: PeerDef = {
  name: "naive_bun",
  kind: "proxy",
  routesBySni: false,
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
  unavailable: () => (which("haproxy") ? null : "haproxy not installed (scripts/bench_deps.sh)"),
  version: () => firstLine("haproxy", ["-v"]),
  start: (ctx) =>
    startOnFreePort(ctx, "haproxy", (port) => {
      const lim = haproxyLimits(ctx.profile);
      const cfg = join(ctx.dir, `haproxy_${ctx.profile}.cfg`);
      writeFileSync(
        cfg,
        renderTemplate(template(ctx, "haproxy.cfg.tmpl"), {
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
      return { proc, settings: { nbthread: ctx.cores, maxconn: lim.maxconn, maxpipes: lim.maxpipes, splice: lim.splice ? "splice-auto" : "off", bufsize: lim.bufsize } };
    }),
};

export function nginxProxyBuffer(profile: Profile): string {
  return profile === "bulk" ? "256k" : "16k";
}

export const nginxStream: PeerDef = {
  name: "nginx",
  kind: "proxy",
  routesBySni: true,
  unavailable: () =>
    !which("nginx") ? "nginx not installed (scripts/bench_deps.sh)" : !existsSync(STREAM_MODULE) ? "libnginx-mod-stream not installed" : null,
  version: () => `${stderrLine("nginx", ["-v"])} stream ssl_preread`,
  start: (ctx) =>
    startOnFreePort(ctx, "nginx", (port) => {
      const cfg = join(ctx.dir, `nginx_stream_${ctx.profile}.conf`);
      const buffer = nginxProxyBuffer(ctx.profile);
      writeFileSync(
        cfg,
        renderTemplate(template(ctx, "nginx_stream.conf.tmpl"), {
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
      return { proc, settings: { worker_processes: ctx.cores, proxy_buffer_size: buffer, reuseport: "on" } };
    }),
};

export const sniproxy: PeerDef = {
  name: "sniproxy",
  kind: "proxy",
  routesBySni: true,
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
