/** The command line, run as a real process (Bun, or Deno with EDGEMUX_RUNTIME=deno). */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { edgemuxCommand, run, tempDir } from "./support/edgemux.ts";

async function edgemux(...args: string[]) {
  const { cmd, argv } = edgemuxCommand(args);
  return await run(cmd, argv, { timeoutMs: 30_000 });
}

describe("edgemux CLI", () => {
  test("--version names version and runtime", async () => {
    const r = await edgemux("--version");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^edgemux \d+\.\d+\.\d+ \((bun|deno) \d+\.\d+\.\d+/);
  });

  test("hostname prints the canonical form and rejects invalid names", async () => {
    const ok = await edgemux("hostname", "Bücher.Example.", "WWW.EXAMPLE.COM");
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe("xn--bcher-kva.example\nwww.example.com\n");
    const bad = await edgemux("hostname", "a..b");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('"a..b"');
  });

  test("check-config: ok, and every problem named with its field", async () => {
    const dir = tempDir();
    const good = join(dir, "good.toml");
    writeFileSync(good, `[[listeners]]\nkind = "sni"\naddress = "127.0.0.1:0"\n[[routes]]\nmatch = "*"\ntargets = ["127.0.0.1:8443"]\n`);
    const ok = await edgemux("check-config", good);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("ok (1 listener(s), 1 route(s))");
    const bad = join(dir, "bad.toml");
    writeFileSync(bad, `workers = 999\n[[listeners]]\nkind = "sni"\nadress = "127.0.0.1:0"\n`);
    const r = await edgemux("check-config", bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("workers: must be 0..256, got 999");
    expect(r.stderr).toContain('listeners[0].adress: unknown key (did you mean "address"?)');
    const flag = await edgemux("check-config", good, "--workers", "999");
    expect(flag.code).toBe(1);
    expect(flag.stderr).toContain("--workers: must be 0..256, got 999");
  });

  test("serve refuses an invalid config before starting", async () => {
    const dir = tempDir();
    const bad = join(dir, "bad.toml");
    writeFileSync(bad, `[[listeners]]\nkind = "sni"\naddress = "127.0.0.1:70000"\n`);
    const r = await edgemux("serve", "--config", bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("listeners[0].address");
  });

  test("every command's --help lists its flags", async () => {
    const r = await edgemux("serve", "--help");
    expect(r.code).toBe(0);
    for (const f of ["--config", "--workers", "--admin", "--log-level", "--log-format", "--drain-timeout"]) expect(r.stdout).toContain(f);
    expect(r.stdout).toContain("default");
    const main = await edgemux("--help");
    for (const c of ["serve", "check-config", "hostname", "default-config", "version"]) expect(main.stdout).toContain(c);
  });

  test("default-config prints the built-in config", async () => {
    const r = await edgemux("default-config");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('directory = "sni.d"');
  });
});
