/**
 * `edgemux serve`: start the supervisor and its workers, the admin API, and
 * the signal handlers; print one "ready" line with every bound address
 * (always, whatever the log level: tests and scripts read it).
 */
import { existsSync } from "node:fs";
import { type Config, type ConfigFlags, warnings } from "../config/mod.ts";
import { formatHostPort } from "../proto/mod.ts";
import { Logger } from "../log/mod.ts";
import type { Runtime } from "../runtime/types.ts";
import { type PassedSocket, startAdmin, Supervisor, workerEntryUrl } from "../supervisor/mod.ts";
import { notifySystemd } from "./notify.ts";
import { adoptingListeners, sharedPortProblem } from "./shared_ports.ts";

export interface ServeOptions {
  /** Start even when another process answers on a listener's port (the zero-downtime upgrade's second process). */
  allowSharedPorts?: boolean;
}

export async function serve(
  rt: Runtime,
  config: Config,
  configPath: string | null,
  flags: ConfigFlags,
  inherited: PassedSocket[] = [],
  opts: ServeOptions = {},
): Promise<null | number> {
  const log = new Logger(config.log.level, config.log.format, {});
  for (const w of warnings(config)) log.warn("config warning", { field: w.field, warning: w.message });
  if (!opts.allowSharedPorts) {
    const adopting = adoptingListeners(rt, config, inherited);
    const problem = adopting === null ? null : await sharedPortProblem(rt, config, adopting);
    if (problem !== null) {
      log.error("start refused", { reason: problem });
      return 1;
    }
  }
  const sup = new Supervisor({ runtime: rt, log, config, configPath, flags, workerUrl: workerEntryUrl(), inherited });
  try {
    await sup.start();
  } catch (err) {
    log.error("start failed", { reason: (err as Error).message });
    await sup.drain();
    return 1;
  }
  let admin: string | null = null;
  if (config.admin.address) {
    try {
      const server = await startAdmin(sup, config.admin.address);
      sup.setAdmin(server);
      admin = formatHostPort(server.hostname, server.port);
    } catch (err) {
      log.error("admin API failed to start", { reason: (err as Error).message });
      await sup.drain();
      return 1;
    }
  }
  let stopping = false;
  const stop = async (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info("signal received", { signal: sig });
    await Promise.all([sup.drain(), notifySystemd(rt, log, "STOPPING=1")]);
    log.info("stopped");
    rt.exit(0);
  };
  rt.onSignal("SIGTERM", () => void stop("SIGTERM"));
  rt.onSignal("SIGINT", () => void stop("SIGINT"));
  rt.onSignal("SIGHUP", () => void sup.reload());
  // Every way out leaves a line: a drained stop logs "stopped" first; anything else shows up here.
  rt.onExit((code) => {
    if (!stopping) log.error("process exiting without a drain", { code });
  });
  for (const r of config.routes) {
    if (r.directory !== null && !existsSync(r.directory)) {
      log.warn("route directory does not exist yet: its connections get unrecognized_name until it does", { route: r.name, directory: r.directory });
    }
  }
  log.always("ready", {
    version: sup.version,
    runtime: `${rt.name} ${rt.version}`,
    pid: rt.pid,
    // Which file is in force, so running the built-in config by mistake shows.
    config: configPath ?? "built-in",
    workers: sup.workers.length,
    admin,
    listeners: sup.addresses(),
  });
  await notifySystemd(rt, log, "READY=1");
  return null;
}
