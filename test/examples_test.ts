/**
 * What operators copy must keep working: every examples/*.toml passes
 * `edgemux check-config` (the real program: sources, Deno or the binary, as
 * EDGEMUX_RUNTIME / EDGEMUX_BIN say) and the in-process loader; the systemd
 * units in deploy/ keep their hardening and pass `systemd-analyze verify`
 * when it is installed.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfigFile } from "../src/config/mod.ts";
import { edgemuxCommand, ROOT, run, tempDir } from "./support/edgemux.ts";

const EXAMPLES = join(ROOT, "examples");
const UNITS = join(ROOT, "deploy/systemd");
// agent.toml is an `edgemux agent` file, checked by test/agent_config_test.ts.
const examples = readdirSync(EXAMPLES).filter((f) => f.endsWith(".toml") && f !== "agent.toml").sort();

describe("examples/*.toml", () => {
  test("the SNI edge example is there (the list below is never empty)", () => {
    expect(examples).toContain("sni-edge.toml");
    expect(examples).toContain("tunnel-edge.toml");
    expect(examples).toContain("hbone-gateway.toml");
  });

  for (const file of examples) {
    test(`${file}: edgemux check-config accepts it`, async () => {
      const path = join(EXAMPLES, file);
      const c = loadConfigFile(path); // throws ConfigError naming each problem
      expect(c.listeners.length).toBeGreaterThan(0);
      const { cmd, argv } = edgemuxCommand(["check-config", path]);
      const r = await run(cmd, argv, { timeoutMs: 30_000 });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`${path}: ok`);
    }, 40_000);
  }
});

/** `Key=value` lines of a unit file section, comments dropped. */
function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";") || line.startsWith("[")) continue;
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    const k = line.slice(0, eq);
    out.set(k, [...(out.get(k) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

describe("deploy/systemd", () => {
  const services = ["edgemux.service", "edgemux-handover.service"];

  for (const unit of services) {
    test(`${unit} is hardened and runs the config in /etc/edgemux`, () => {
      const d = directives(readFileSync(join(UNITS, unit), "utf8"));
      const one = (k: string) => d.get(k)?.at(-1);
      expect(one("DynamicUser")).toBe("yes");
      expect(one("User")).toBe("edgemux"); // both units share one uid: SO_REUSEPORT requires it
      expect(one("ProtectSystem")).toBe("strict");
      expect(one("CapabilityBoundingSet")).toBe("CAP_NET_BIND_SERVICE");
      expect(one("AmbientCapabilities")).toBe("CAP_NET_BIND_SERVICE");
      expect(one("NoNewPrivileges")).toBe("yes");
      expect(one("Type")).toBe("notify");
      expect(one("NotifyAccess")).toBe("all");
      // Both units may hold the ports at once (the hand-over): the shared-port check must let them.
      expect(one("ExecStart")).toBe("/usr/local/bin/edgemux serve --config /etc/edgemux/edgemux.toml --allow-shared-ports");
      expect(one("ExecReload")).toBe("/bin/kill -HUP $MAINPID");
      expect(d.has("MemoryDenyWriteExecute")).toBe(false); // the JIT needs W+X pages
    });
  }

  test("edgemux.socket names its socket after the example's public listener", () => {
    const d = directives(readFileSync(join(UNITS, "edgemux.socket"), "utf8"));
    expect(d.get("FileDescriptorName")).toEqual(["public"]);
    expect(d.get("ListenStream")).toEqual(["[::]:443"]);
    const example = loadConfigFile(join(EXAMPLES, "sni-edge.toml"));
    const pub = example.listeners.find((l) => l.name === "public");
    expect(pub?.address).toEqual({ kind: "tcp", hostname: "::", port: 443 });
  });

  const analyze = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" }).status === 0;
  test.skipIf(!analyze)("systemd-analyze verify: no warning", () => {
    // verify checks that ExecStart's program exists: point it at one that does.
    const dir = tempDir("edgemux-units-");
    const exe = process.env.EDGEMUX_BIN ?? process.execPath;
    for (const f of readdirSync(UNITS)) {
      let text = readFileSync(join(UNITS, f), "utf8").replaceAll("/usr/local/bin/edgemux", exe);
      if (f === "edgemux-handover.service") text = text.replace("#Sockets=edgemux.socket", "Sockets=edgemux.socket"); // verify the socket-activated form too
      writeFileSync(join(dir, f), text);
    }
    const r = spawnSync("systemd-analyze", ["verify", "--man=no", ...readdirSync(dir).map((f) => join(dir, f))], { cwd: dir, encoding: "utf8", timeout: 30_000 });
    expect(r.stderr.trim()).toBe("");
    expect(r.status).toBe(0);
  });
});
