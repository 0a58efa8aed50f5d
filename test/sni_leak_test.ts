/**
 * Leak check: many connections through the proxy (completed, refused,
 * abandoned mid-hello), then the process's descriptor count and open
 * connections return to where they started.
 */
import { expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { startEdgemux, waitFor } from "./support/edgemux.ts";
import { exchange, fixtureHello, recordingServer, rewriteSni } from "./support/net.ts";

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

test("descriptors and gauges return to their baseline after 1,500 connections", async () => {
  // The backend answers each connection with a few bytes and closes it.
  const backend = await recordingServer({ onConn: (s) => s.once("data", () => s.end("bye")) });
  const em = await startEdgemux(`
workers = 2
[log]
connections = false
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "sni"
kind = "sni"
address = "127.0.0.1:0"
handshake_timeout = "1s"
[[routes]]
match = "leak.test"
targets = ["${backend.address}"]
`);
  try {
    const pid = em.proc.pid!;
    await waitFor(async () => (await em.status()).workers.every((w) => w.up) || null);
    const baseline = fdCount(pid);
    const target = em.hostPort("sni");
    const good = rewriteSni(fixtureHello(), "leak.test");
    const kinds = [
      () => exchange(target, [good], { timeoutMs: 5000 }), // relayed, backend closes
      () => exchange(target, [fixtureHello()], { timeoutMs: 5000 }), // no route: alert + close
      () => exchange(target, [good.subarray(0, 40)], { timeoutMs: 5000, end: true }), // truncated, FIN
    ];
    for (let round = 0; round < 10; round++) {
      const results = await Promise.all(Array.from({ length: 150 }, (_, i) => kinds[i % 3]!()));
      expect(results.every((r) => r.closed)).toBe(true);
    }
    const s = await waitFor(async () => {
      const st = await em.status();
      return st.totals.active === 0 ? st : null;
    });
    expect(s.totals.accepted).toBe(1500);
    await waitFor(() => fdCount(pid) <= baseline || null, 10_000, `fd count back to ${baseline} (now ${fdCount(pid)})`);
  } finally {
    await em.stop();
    await backend.close();
  }
}, 120_000);
