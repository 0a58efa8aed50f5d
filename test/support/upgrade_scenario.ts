/**
 * The zero-downtime upgrade, as an operator runs it, under load:
 *
 *   old edgemux serving → start the new one on the same ports (reusePort,
 *   `--allow-shared-ports`) → wait for its "ready" line → SIGTERM the old one → it drains and exits 0.
 *
 * Meanwhile short TLS requests run in a few loops and long transfers
 * (downloads and an echo of random bytes) cross the switch. Prints one line
 * `RESULT {json}` for test/upgrade_test.ts, which runs this script inside a
 * network namespace of its own where net.ipv4.tcp_migrate_req=1 (so that
 * connections queued on the old process's sockets move to the new ones).
 *
 *   bun test/support/upgrade_scenario.ts      (EDGEMUX_BIN / EDGEMUX_RUNTIME as in edgemux.ts)
 */
import { readFileSync } from "node:fs";
import { type EdgemuxProcess, startEdgemux, tempDir, waitFor } from "./edgemux.ts";
import { download, echo, helloStorm, ShortLoad, type Target, type TransferResult } from "./load.ts";
import { fixtureHello, rewriteSni } from "./net.ts";
import { testPki, tlsBackend } from "./tls.ts";

const CONCURRENCY = Number(process.env.UPGRADE_CONCURRENCY ?? 6);
/** Short requests that must succeed before the switch, and again after the old process is gone. */
const OK_BEFORE = 60;
const OK_AFTER = 60;
/** Raw connections per storm around the switch. */
const STORM = Number(process.env.UPGRADE_STORM ?? 150);

function config(port: number, backend: string): string {
  return `
workers = 2
drain_timeout = "30s"
[log]
format = "json"
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "sni"
kind = "sni"
address = "127.0.0.1:${port}"
[[routes]]
match = "up.test"
targets = ["${backend}"]
`;
}

function readSysctl(): string {
  try {
    return readFileSync("/proc/sys/net/ipv4/tcp_migrate_req", "utf8").trim();
  } catch {
    return "absent";
  }
}

async function main(): Promise<Record<string, unknown>> {
  const backend = await tlsBackend("up.test");
  const pki = testPki();
  const dir = tempDir("edgemux-upgrade-");
  let oldP: EdgemuxProcess | null = null;
  let newP: EdgemuxProcess | null = null;
  const marks: Record<string, number> = {};
  const t0 = Date.now();
  const mark = (name: string) => (marks[name] = Date.now() - t0);
  try {
    oldP = await startEdgemux(config(0, backend.address), { dir: tempDir("edgemux-old-") });
    const { port } = oldP.hostPort("sni");
    mark("old_ready");
    const target: Target = { host: "127.0.0.1", port, servername: "up.test", caCertPath: pki.caCertPath, caCert: pki.caCert };

    const load = new ShortLoad(target, CONCURRENCY);
    load.start();
    const transfers: Promise<TransferResult>[] = [
      download(target, 8 * 1024 * 1024, "2M"),
      download(target, 4 * 1024 * 1024, "1M"),
      echo(target, dir, 3 * 1024 * 1024, "700K"),
    ];
    let transfersDone = false;
    const allTransfers = Promise.all(transfers).then((r) => {
      transfersDone = true;
      return r;
    });
    await waitFor(() => load.ok() >= OK_BEFORE, 30_000, `${OK_BEFORE} requests through the old process`);
    mark("load_running");

    // The new process binds the same address (reusePort) and must be ready before the old one is told to go.
    // Sharing the port is the point here, so it says so: without the flag edgemux refuses a port another process answers on.
    newP = await startEdgemux(config(port, backend.address), { dir: tempDir("edgemux-new-"), args: ["--allow-shared-ports"] });
    mark("new_ready");
    const newPort = newP.hostPort("sni").port;
    const transfersCrossed = !transfersDone;
    // Storms of raw connections around the moment the old process closes its listeners: some of them are
    // in its accept queues then, and must move to the new process (tcp_migrate_req) rather than be reset.
    const hello = rewriteSni(fixtureHello(), "up.test");
    const storms: Promise<Record<string, number>>[] = [helloStorm(target, hello, STORM)];
    oldP.signal("SIGTERM");
    mark("old_sigterm");
    storms.push(helloStorm(target, hello, STORM));
    const oldStopped = oldP.waitForLine((l) => l.msg === "stopped accepting", 10_000);
    for (let i = 0; i < 20 && oldP.lines.filter((l) => l.msg === "stopped accepting").length < 2; i++) {
      storms.push(helloStorm(target, hello, STORM));
      await Promise.race([oldStopped, storms[storms.length - 1]]);
    }
    storms.push(helloStorm(target, hello, STORM));
    const openAtDrain = await oldP.waitForLine((l) => l.msg === "stopped accepting", 10_000).then(() =>
      oldP!.lines.filter((l) => l.msg === "stopped accepting").reduce((n, l) => n + Number(l.open ?? 0), 0)
    );
    const oldExit = await oldP.waitExit(45_000);
    mark("old_exit");
    const oldGone = Date.now();
    await waitFor(() => load.ok(oldGone) >= OK_AFTER, 30_000, `${OK_AFTER} requests through the new process`);
    mark("after_ok");
    await load.stop();
    const results = await allTransfers;
    const stormOutcomes: Record<string, number> = {};
    for (const h of await Promise.all(storms)) for (const [k, v] of Object.entries(h)) stormOutcomes[k] = (stormOutcomes[k] ?? 0) + v;
    mark("transfers_done");
    const newStatus = await newP.status();
    const oldConnections = oldP.lines.filter((l) => l.msg === "connection").length;
    return {
      sysctl_tcp_migrate_req: readSysctl(),
      port,
      new_port: newPort,
      old_exit: oldExit,
      old_connections_logged: oldConnections,
      open_at_drain: openAtDrain,
      new_accepted: newStatus.listeners[0]?.accepted ?? 0,
      transfers_crossed_switch: transfersCrossed,
      short_total: load.outcomes.length,
      short_ok: load.ok(),
      short_ok_after_old_exit: load.ok(oldGone),
      short_failures: load.failures(),
      failure_times_ms: load.outcomes.filter((o) => o.outcome !== "ok").slice(0, 20).map((o) => `${o.at - t0}:${o.outcome}`),
      storm_outcomes: stormOutcomes,
      transfers: results,
      marks_ms: marks,
    };
  } finally {
    await newP?.stop();
    await oldP?.stop();
    await backend.close();
  }
}

const result = await main().catch((e: Error) => ({ error: e.message }));
console.log(`RESULT ${JSON.stringify(result)}`);
process.exit(0);
