/**
 * Certificate files of http listeners, watched by polling: every
 * CHECK_INTERVAL_MS the supervisor stats each cert and key file named by
 * the running config (at most 256 pairs per listener) and, when one's
 * modification time or size changed since it was last seen, reloads the
 * config as SIGHUP does (an invalid new file is refused and the running
 * certificates stay). Polling rather than inotify: it works the same on both
 * runtimes and for files replaced by rename (certbot, Kubernetes secrets).
 */
import { statSync } from "node:fs";
import type { Config } from "../config/types.ts";

export const CHECK_INTERVAL_MS = 5_000;

export class CertificateWatch {
  /** path -> "mtime:size" as last seen ("" = missing). */
  private seen = new Map<string, string>();
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(private readonly config: () => Config, private readonly changed: (file: string) => void, intervalMs = CHECK_INTERVAL_MS) {
    this.rescan();
    this.timer = setInterval(() => this.check(), intervalMs);
    (this.timer as { unref?: () => void }).unref?.(); // never what keeps the process alive
  }

  /** The files of the running config, as they are now (after a load read them). */
  rescan(): void {
    this.seen = new Map(files(this.config()).map((f) => [f, stamp(f)]));
  }

  private check(): void {
    for (const [f, was] of this.seen) {
      if (stamp(f) === was) continue;
      this.changed(f);
      this.rescan(); // whether the reload took or not: report each change once
      return;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

function files(c: Config): string[] {
  const out = new Set<string>();
  for (const l of c.listeners) {
    if (l.kind !== "http" || l.tls === null) continue;
    for (const f of l.tls.certificates) out.add(f.certPath).add(f.keyPath);
  }
  return [...out];
}

function stamp(path: string): string {
  try {
    const s = statSync(path);
    return `${s.mtimeMs}:${s.size}`;
  } catch {
    return "";
  }
}
