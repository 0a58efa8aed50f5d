/**
 * systemd `Type=notify`: tell the service manager when edgemux is ready
 * (after the "ready" line: every worker listens) and when it starts to
 * drain, so `systemctl start` returns only once the new process accepts;
 * the zero-downtime upgrade (README, Deployment) depends on that order.
 *
 * The message goes through systemd-notify(1): neither Bun nor Deno can send
 * on the unix datagram socket NOTIFY_SOCKET names. The unit needs
 * `NotifyAccess=all` because the sender is that child process; `--pid`
 * names edgemux as the main process. Nothing happens without NOTIFY_SOCKET.
 */
import { execFile } from "node:child_process";
import type { Logger } from "../log/mod.ts";
import type { Runtime } from "../runtime/types.ts";

const NOTIFY_TIMEOUT_MS = 5_000;

export function notifySystemd(rt: Runtime, log: Logger, state: "READY=1" | "STOPPING=1"): Promise<void> {
  if (!rt.env("NOTIFY_SOCKET")) return Promise.resolve();
  return new Promise((resolve) => {
    execFile("systemd-notify", [`--pid=${rt.pid}`, state], { timeout: NOTIFY_TIMEOUT_MS }, (err) => {
      if (err) log.warn("systemd-notify failed; is it installed, and does the unit say NotifyAccess=all?", { state, reason: err.message });
      resolve();
    });
  });
}
