/**
 * The README stays true: every metric family /metrics renders is documented,
 * every flag of every command is documented, and the version matches
 * package.json.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { commands } from "../src/cli/commands.ts";
import { renderPrometheus, StatsRegistry, StatsWriter } from "../src/stats/mod.ts";
import { VERSION } from "../src/version.ts";
import { ROOT } from "./support/edgemux.ts";

const readme = readFileSync(join(ROOT, "README.md"), "utf8");

describe("README", () => {
  test("documents every metric family", () => {
    const reg = new StatsRegistry(8);
    const slab = reg.createSlab();
    const slots = reg.assign(["sni"], ["r"]);
    const w = new StatsWriter(slab, 1);
    w.heartbeat(Date.now());
    w.opened(slots.listeners.sni!);
    w.error(slots.routes.r!, "NO_ROUTE");
    w.error(slots.listeners.sni!, "NO_ROUTE");
    const text = renderPrometheus(reg.snapshot([slab]), { version: VERSION, runtime: "bun", startTimeSeconds: 1, residentMemoryBytes: 1, cpuSecondsTotal: 1 }, [{ id: 0, up: true, restarts: 0 }], [{ listener: "t", token: "k", sessions: 1 }]);
    const families = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!);
    expect(families.length).toBeGreaterThan(10);
    for (const f of families) expect(readme).toContain(`\`${f}\``);
  });

  test("documents every command and flag", () => {
    for (const [name, cmd] of Object.entries(commands)) {
      expect(readme).toContain(name);
      for (const flag of Object.keys(cmd.flags)) expect(readme).toContain(`--${flag}`);
    }
  });

  test("version matches package.json", () => {
    expect(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version).toBe(VERSION);
  });
});
