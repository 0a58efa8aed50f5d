/** The command line, run as a real process (Bun, or Deno with EDGEMUX_RUNTIME=deno). */
import { describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { commands } from "../src/cli/commands.ts";
import { edgemuxCommand, EdgemuxProcess, run, startEdgemux, tempDir } from "./support/edgemux.ts";

async function edgemux(...args: string[]) {
  const { cmd, argv } = edgemuxCommand(args);
  return await run(cmd, argv, { timeoutMs: 30_000 });
}

/** A config with one sni listener named `name` on a kernel-chosen port and the admin API on one too. */
const servable = (name: string) =>
  `workers = 1\n[admin]\naddress = "127.0.0.1:0"\n[[listeners]]\nname = "${name}"\nkind = "sni"\naddress = "127.0.0.1:0"\n[[routes]]\nmatch = "*"\ntargets = ["127.0.0.1:8443"]\n`;

/** A port the kernel just handed out (and took back): free now, fixed from here on. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Runs `edgemux ARGS` until its ready line (JSON), then SIGTERM; the ready line and the exit code. */
async function serveUntilReady(args: string[], cwd: string) {
  const { cmd, argv } = edgemuxCommand([...args, "--log-format", "json"]);
  const p = new EdgemuxProcess(spawn(cmd, argv, { cwd, stdio: ["ignore", "pipe", "pipe"] }), "");
  try {
    const ready = await Promise.race([
      p.waitForLine((l) => l.msg === "ready", 30_000),
      p.waitExit(30_000).then((code) => {
        throw new Error(`edgemux exited with ${code} before ready: ${p.stderr.join("")}`);
      }),
    ]);
    return { ready, code: await p.stop() };
  } finally {
    await p.stop();
  }
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
    // Each problem names its line in the file and its [[listeners]] entry.
    expect(r.stderr).toContain(`${bad}:1: workers: must be 0..256, got 999`);
    expect(r.stderr).toContain(`${bad}:4: listeners[0]: adress: unknown key (did you mean "address"?)`);
    const flag = await edgemux("check-config", good, "--workers", "999");
    expect(flag.code).toBe(1);
    expect(flag.stderr).toContain("--workers: must be 0..256, got 999");
  });

  test("check-config checks every file named, each result under its file", async () => {
    const dir = tempDir();
    const good = join(dir, "good.toml");
    writeFileSync(good, `[[listeners]]\nkind = "sni"\naddress = "127.0.0.1:0"\n[[routes]]\nmatch = "*"\ntargets = ["127.0.0.1:8443"]\n`);
    const bad = join(dir, "bad.toml");
    writeFileSync(bad, `workers = 999\n[[listeners]]\nkind = "sni"\nadress = "127.0.0.1:0"\n`);
    const missing = join(dir, "missing.toml");
    const r = await edgemux("check-config", good, bad, missing);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(`${good}: ok (1 listener(s), 1 route(s))\n`);
    const errLines = r.stderr.trimEnd().split("\n");
    expect(errLines).toContain(`${bad}: invalid configuration (${errLines.filter((l) => l.startsWith(`${bad}:`)).length - 1} problems):`);
    expect(errLines).toContain(`${bad}:1: workers: must be 0..256, got 999`);
    expect(errLines).toContain(`${bad}:4: listeners[0]: adress: unknown key (did you mean "address"?)`);
    expect(errLines.find((l) => l.startsWith(`${missing}: cannot read the config file`))).toBeDefined();
    // Every line names the file it is about.
    for (const l of errLines) expect(l.startsWith(`${bad}:`) || l.startsWith(`${missing}: `)).toBe(true);
    const both = await edgemux("check-config", good, "--config", good);
    expect([both.code, both.stdout]).toEqual([0, `${good}: ok (1 listener(s), 1 route(s))\n`]);
  });

  test("check-config prints warnings under the file; --strict makes them fail the check", async () => {
    const dir = tempDir();
    const risky = join(dir, "risky.toml");
    // An open socks5 proxy off loopback, egress to private ranges, and an sni listener no route names. Nothing is bound.
    writeFileSync(
      risky,
      `[[listeners]]\nname = "pub"\nkind = "socks5"\naddress = "0.0.0.0:1080"\n[[listeners]]\nname = "a"\nkind = "sni"\naddress = "127.0.0.1:0"\n` +
        `[[listeners]]\nname = "b"\nkind = "sni"\naddress = "127.0.0.1:0"\n[[routes]]\nmatch = "*"\nlisteners = ["a"]\ntargets = ["127.0.0.1:8443"]\n[egress]\nallow_private = true\n`,
    );
    const r = await edgemux("check-config", risky);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${risky}: ok (3 listener(s), 1 route(s), 3 warning(s))\n`);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines.map((l) => l.slice(0, l.indexOf(": ", risky.length + 11)))).toEqual([
      `${risky}: warning: listeners[0].auth`,
      `${risky}: warning: listeners[2]`,
      `${risky}: warning: egress.allow_private`,
    ]);
    expect(lines[0]).toContain(`socks5 listener "pub" on 0.0.0.0 with auth = "none" is an open proxy`);
    const strict = await edgemux("check-config", "--strict", risky);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toBe("");
    expect(strict.stderr).toContain(`${risky}: refused by --strict (3 listener(s), 1 route(s), 3 warning(s))`);
    // A clean file passes --strict.
    const clean = join(dir, "clean.toml");
    writeFileSync(clean, `[[listeners]]\nkind = "sni"\naddress = "127.0.0.1:0"\n[[routes]]\nmatch = "*"\ntargets = ["127.0.0.1:8443"]\n`);
    const ok = await edgemux("check-config", "--strict", clean);
    expect([ok.code, ok.stdout, ok.stderr]).toEqual([0, `${clean}: ok (1 listener(s), 1 route(s))\n`, ""]);
  });

  test("serve refuses a port another process already answers on, unless --allow-shared-ports; warnings are logged", async () => {
    const dir = tempDir();
    // A fixed port, taken from the kernel: the point is two processes asking for the same one.
    const port = await freePort();
    const path = join(dir, "edge.toml");
    writeFileSync(path, servable("sni").replace('address = "127.0.0.1:0"\n[[routes]]', `address = "127.0.0.1:${port}"\n[[routes]]`) + `[egress]\nallow_private = true\n`);
    const first = await startEdgemux(readFileSync(path, "utf8"), { dir });
    try {
      expect(first.listeners.sni).toBe(`127.0.0.1:${port}`);
      expect(first.lines.find((l) => l.msg === "config warning")).toMatchObject({ level: "warn", field: "egress.allow_private" });
      const { cmd, argv } = edgemuxCommand(["serve", path, "--log-format", "json"]);
      const refused = await run(cmd, argv, { timeoutMs: 30_000 });
      expect(refused.code).toBe(1);
      const line = refused.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).find((l) => l.msg === "start refused");
      expect(line?.reason).toBe(
        `listeners[0].address: 127.0.0.1:${port} is already in use by another process (edgemux would share it through SO_REUSEPORT and split its traffic); stop it or pass --allow-shared-ports`,
      );
      expect(refused.stdout).not.toContain('"msg":"ready"');
      const shared = await serveUntilReady(["serve", path, "--allow-shared-ports"], dir);
      expect((shared.ready.listeners as Record<string, string>).sni).toBe(`127.0.0.1:${port}`);
      expect(shared.code).toBe(0);
    } finally {
      expect(await first.stop()).toBe(0);
    }
  }, 90_000);

  test("serve FILE is serve --config FILE", async () => {
    const dir = tempDir();
    const path = join(dir, "edge.toml");
    writeFileSync(path, servable("from-file"));
    const { ready, code } = await serveUntilReady(["serve", path], dir);
    expect(ready.config).toBe(path);
    expect(Object.keys(ready.listeners as Record<string, string>)).toEqual(["from-file"]);
    expect(code).toBe(0);
    // The same file both ways is fine.
    const twice = await serveUntilReady(["serve", path, "--config", path], dir);
    expect(Object.keys(twice.ready.listeners as Record<string, string>)).toEqual(["from-file"]);
  }, 60_000);

  test("serve FILE with an invalid file refuses it; two files, or a file and a different --config, are refused", async () => {
    const dir = tempDir();
    const bad = join(dir, "bad.toml");
    writeFileSync(bad, `[[listeners]]\nkind = "sni"\naddress = "127.0.0.1:70000"\n`);
    const other = join(dir, "other.toml");
    writeFileSync(other, servable("other"));
    const r = await edgemux("serve", bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}:3: listeners[0]: address: `);
    const two = await edgemux("serve", other, bad);
    expect(two.code).toBe(2);
    expect(two.stderr).toContain(`edgemux serve: runs one config file, got 2: "${other}" "${bad}"`);
    const clash = await edgemux("serve", other, "--config", bad);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain(`edgemux serve: two config files given, "${other}" (argument) and "${bad}" (--config): give one`);
  });

  test("commands that take no arguments refuse them", async () => {
    for (const args of [["version", "extra"], ["default-config", "edge.toml"], ["agent", "agent.toml"]]) {
      const r = await edgemux(...args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toContain(`edgemux ${args[0]}: takes no arguments, got "${args[1]}"`);
    }
  });

  test("serve refuses an invalid config before starting", async () => {
    const dir = tempDir();
    const bad = join(dir, "bad.toml");
    writeFileSync(bad, `[[listeners]]\nkind = "sni"\naddress = "127.0.0.1:70000"\n`);
    const r = await edgemux("serve", "--config", bad);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}:3: listeners[0]: address: `);
  });

  test("every command's --help lists its flags", async () => {
    const r = await edgemux("serve", "--help");
    expect(r.code).toBe(0);
    for (const f of ["--config", "--workers", "--admin", "--log-level", "--log-format", "--drain-timeout", "--allow-shared-ports"]) expect(r.stdout).toContain(f);
    expect(r.stdout).toContain("default");
    const main = await edgemux("--help");
    for (const c of ["serve", "check-config", "hostname", "default-config", "version"]) expect(main.stdout).toContain(c);
  });

  /** A usage error: exit 2, nothing on stdout, the first stderr line, and no help dump (at most a one-line pointer to it). */
  async function usageError(...args: string[]): Promise<string> {
    const r = await edgemux(...args);
    expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: "" });
    const lines = r.stderr.trimEnd().split("\n");
    expect({ args, lines: lines.length }).toEqual({ args, lines: 2 });
    expect(lines[1]).toMatch(/^run `edgemux help( [a-z-]+)?`/);
    return lines[0]!;
  }

  test("an unknown flag is named with the nearest flag of the command", async () => {
    expect(await usageError("serve", "--confg", "x")).toBe("edgemux serve: unknown flag --confg (did you mean --config?)");
    expect(await usageError("agent", "--edg", "edge:7443")).toBe("edgemux agent: unknown flag --edg (did you mean --edge?)");
    expect(await usageError("agent", "--log-levl", "debug")).toBe("edgemux agent: unknown flag --log-levl (did you mean --log-level?)");
    expect(await usageError("check-config", "x.toml", "--drain-timout", "5s")).toBe("edgemux check-config: unknown flag --drain-timout (did you mean --drain-timeout?)");
    expect(await usageError("hostname", "-x", "a.example")).toBe("edgemux hostname: unknown flag -x");
    expect(await usageError("servr")).toBe('edgemux: unknown command "servr" (did you mean serve?)');
  });

  test("a flag of another command is reported as such", async () => {
    expect(await usageError("serve", "--edge", "edge:7443")).toBe("edgemux serve: unknown flag --edge (--edge is a flag of `edgemux agent`, `edgemux shell`, `edgemux cp` and `edgemux agent-reload`)");
    expect(await usageError("agent", "--workers", "2")).toBe("edgemux agent: unknown flag --workers (--workers is a flag of `edgemux serve` and `edgemux check-config`)");
    expect(await usageError("version", "-c", "x")).toBe("edgemux version: unknown flag -c (-c is a flag of `edgemux serve`, `edgemux check-config` and `edgemux agent`)");
    expect(await usageError("--workers", "2")).toBe("edgemux: --workers is a flag of `edgemux serve` and `edgemux check-config`: give the command first");
  });

  test("a flag without its value, or a value for a flag that takes none, is named", async () => {
    expect(await usageError("serve", "--config")).toBe("edgemux serve: --config needs a value (--config FILE)");
    expect(await usageError("serve", "-w")).toBe("edgemux serve: -w needs a value (--workers N)");
    expect(await usageError("agent", "--expose", "web=127.0.0.1:80", "--edge")).toBe("edgemux agent: --edge needs a value (--edge HOST:PORT)");
    // A value that looks like a flag is taken for a forgotten value, as parseArgs does; `=` passes it.
    expect(await usageError("serve", "--config", "--workers", "2")).toBe('edgemux serve: --config needs a value (--config FILE), got the flag "--workers" (write --config=--workers if that is the value)');
    expect(await usageError("serve", "--help=yes")).toBe('edgemux serve: --help takes no value, got "yes"');
  });

  test("help COMMAND is COMMAND --help, and every flag that takes a value names it", async () => {
    for (const [name, cmd] of Object.entries(commands)) {
      const viaHelp = await edgemux("help", name);
      const viaFlag = await edgemux(name, "--help");
      expect({ name, code: viaHelp.code, stdout: viaHelp.stdout, stderr: viaHelp.stderr }).toEqual({ name, code: 0, stdout: viaFlag.stdout, stderr: "" });
      expect(viaFlag.code).toBe(0);
      expect(viaHelp.stdout).not.toContain("VALUE");
      for (const [flag, spec] of Object.entries(cmd.flags)) {
        if (spec.type === "string") expect(viaHelp.stdout).toContain(`--${flag} ${spec.placeholder} `);
      }
    }
    const serve = (await edgemux("help", "serve")).stdout;
    for (const f of ["-c, --config FILE ", "-w, --workers N ", "--admin ADDR|off ", "--log-level LEVEL ", "--drain-timeout DURATION ", "--listen-fd NAME=FD "]) expect(serve).toContain(f);
    const agent = (await edgemux("help", "agent")).stdout;
    for (const f of ["--edge HOST:PORT ", "--expose NAME=TARGET ", "--token-file FILE ", "--status ADDR|off "]) expect(agent).toContain(f);
  }, 120_000);

  test("help lists the commands; help of an unknown command suggests one", async () => {
    const list = await edgemux("help");
    expect(list.code).toBe(0);
    for (const name of Object.keys(commands)) expect(list.stdout).toContain(`  ${name} `);
    expect(list.stdout).toContain("edgemux help COMMAND");
    expect(await usageError("help", "nosuch")).toBe('edgemux help: unknown command "nosuch"');
    expect(await usageError("help", "chek-config")).toBe('edgemux help: unknown command "chek-config" (did you mean check-config?)');
  });

  test("no command: the short command list, exit 2", async () => {
    const r = await edgemux();
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines.length).toBeLessThanOrEqual(3);
    for (const name of Object.keys(commands)) expect(r.stderr).toContain(name);
    expect(r.stderr).toContain("edgemux help");
  });

  test("default-config prints the built-in config", async () => {
    const r = await edgemux("default-config");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('directory = "sni.d"');
  });
});
