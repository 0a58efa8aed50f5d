/**
 * `edgemux agent` settings: flags, the TOML file (examples/agent.toml stays
 * valid), every problem reported at once with its field, and the command's
 * exit status for bad flags.
 */
import { describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadAgentConfig } from "../src/agent/mod.ts";
import { ConfigError } from "../src/config/mod.ts";
import { edgemuxCommand, EdgemuxProcess, ROOT, run } from "./support/edgemux.ts";

async function problems(fn: () => Promise<unknown>): Promise<string[]> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("agent settings", () => {
  test("flags: exposes of every kind, forwards, defaults", async () => {
    const c = await loadAgentConfig({
      edge: "edge.example.com:7443",
      token: "t0k",
      expose: ["web=127.0.0.1:8080,proxy=v2", "sock=unix:/run/app.sock", "site=file:./public", "dns=udp:127.0.0.1:53"],
      forward: ["127.0.0.1:0=web"],
      "forward-udp": ["[::1]:5353=dns"],
    });
    expect(c.edge).toEqual({ hostname: "edge.example.com", port: 7443 });
    expect(c.servername).toBe("edge.example.com");
    expect(c.transport).toBe("upgrade");
    expect(c.exposes.map((x) => [x.name, x.target.kind, x.proxy])).toEqual([["web", "tcp", "v2"], ["sock", "unix", "none"], ["site", "files", "none"], ["dns", "udp", "none"]]);
    expect(c.forwards).toEqual([
      { listen: { hostname: "127.0.0.1", port: 0 }, service: "web", proto: "tcp" },
      { listen: { hostname: "::1", port: 5353 }, service: "dns", proto: "udp" },
    ]);
    expect([c.reconnectMinMs, c.reconnectMaxMs, c.connectTimeoutMs, c.udpIdleMs, c.status]).toEqual([500, 30_000, 10_000, 60_000, null]);
    expect([c.streamWindow, c.maxStreams]).toEqual([262_144, 16_384]);
  });

  test("stream window and stream limit: flags win over the file; bounds are named", async () => {
    const dir = mkdtempSync(join(tmpdir(), "agent-cfg-"));
    const path = join(dir, "a.toml");
    writeFileSync(path, `edge = "e:1"\nstream_window = 1048576\nmax_streams = 64\n[[forward]]\nlisten = "127.0.0.1:0"\nservice = "x"\n`);
    const file = await loadAgentConfig({ config: path });
    expect([file.streamWindow, file.maxStreams]).toEqual([1_048_576, 64]);
    const flag = await loadAgentConfig({ config: path, "stream-window": "65536" });
    expect([flag.streamWindow, flag.maxStreams]).toEqual([65_536, 64]);
    expect(await problems(() => loadAgentConfig({ edge: "e:1", forward: ["127.0.0.1:0=x"], "stream-window": "1k", "max-streams": "0" }))).toEqual([
      `--stream-window: must be an integer between 16384 and 4194304, got "1k"`,
      "--max-streams: must be an integer between 1 and 100000, got 0",
    ]);
    writeFileSync(path, `edge = "e:1"\nstream_window = 8388608\n[[forward]]\nlisten = "127.0.0.1:0"\nservice = "x"\n`);
    expect(await problems(() => loadAgentConfig({ config: path }))).toEqual(["stream_window: must be an integer between 16384 and 4194304, got 8388608"]);
  });

  test("the token comes from --token, else --token-file, else $EDGEMUX_TOKEN", async () => {
    const dir = mkdtempSync(join(tmpdir(), "agent-cfg-"));
    writeFileSync(join(dir, "tok"), "from-file\n");
    const base = { edge: "e:1", forward: ["127.0.0.1:0=x"] };
    expect((await loadAgentConfig({ ...base, token: "flag" }, () => "env")).token).toBe("flag");
    expect((await loadAgentConfig({ ...base, "token-file": join(dir, "tok") }, () => "env")).token).toBe("from-file");
    expect((await loadAgentConfig(base, (n) => (n === "EDGEMUX_TOKEN" ? "env" : undefined))).token).toBe("env");
    expect((await loadAgentConfig(base)).token).toBeNull();
  });

  test("every problem is reported, each naming its field or flag", async () => {
    expect(await problems(() => loadAgentConfig({ expose: ["Web=1.2.3.4:80", "x=file:", "d=udp:dns.example:53", "nope"], forward: ["127.0.0.1:99999=a"], transport: "quic", "reconnect-min": "1h", "reconnect-max": "1s" }))).toEqual([
      "edge: is required (--edge HOST:PORT)",
      `--transport: must be upgrade | websocket, got "quic"`,
      `--expose: service name must match [a-z0-9][a-z0-9_.-]{0,62}, got "Web"`,
      "--expose: file: needs a directory (file:./public)",
      `--expose: a udp: target must be an IP address, got "dns.example"`,
      `--expose: must be NAME=TARGET (e.g. web=127.0.0.1:8080, site=file:./public, dns=udp:127.0.0.1:53), got "nope"`,
      "--forward: port must be 0..65535, got 99999",
      "reconnect_max: must not be less than reconnect_min",
    ]);
    expect(await problems(() => loadAgentConfig({ edge: "e:1" }))).toEqual(["expose: nothing to do: give at least one --expose, --forward, --allow-files or --allow-shell"]);
  });

  test("examples/agent.toml is a valid agent file (with a token given on the command line)", async () => {
    const c = await loadAgentConfig({ config: join(ROOT, "examples/agent.toml"), token: "t" });
    expect(c.name).toBe("laptop");
    expect(c.exposes.map((x) => x.name)).toEqual(["laptop-https", "laptop-docs", "laptop-dns"]);
    expect(c.exposes[1]!.target).toEqual({ kind: "files", dir: join(ROOT, "examples/public") });
    expect(c.forwards.map((f) => `${f.proto}:${f.service}`)).toEqual(["tcp:build-ssh", "udp:office-dns"]);
    expect(c.status).toEqual({ hostname: "127.0.0.1", port: 9902 });
  });

  test("unknown keys in the file are errors; flags add to the file's lists", async () => {
    const dir = mkdtempSync(join(tmpdir(), "agent-cfg-"));
    const path = join(dir, "a.toml");
    writeFileSync(path, `edge = "e:1"\nedg = "typo"\n[[expose]]\nname = "a"\ntarget = "127.0.0.1:1"\nproxy = "v1"\n`);
    expect(await problems(() => loadAgentConfig({ config: path }))).toEqual(["edg: unknown key", "expose[0].proxy: unknown key"]);
    writeFileSync(path, `edge = "e:1"\n[[expose]]\nname = "a"\ntarget = "127.0.0.1:1"\n`);
    const c = await loadAgentConfig({ config: path, expose: ["b=127.0.0.1:2"], edge: "other:2" });
    expect(c.exposes.map((x) => x.name)).toEqual(["a", "b"]);
    expect(c.edge).toEqual({ hostname: "other", port: 2 });
  });

  test("the text ready line shows each forward, not [object Object]", async () => {
    // An "edge" that hangs up at once: the agent binds its forwards, prints ready, and keeps retrying.
    const edge = createServer((c) => c.destroy());
    await new Promise<void>((r) => edge.listen(0, "127.0.0.1", r));
    const port = (edge.address() as { port: number }).port;
    const { cmd, argv } = edgemuxCommand([
      "agent", "--edge", `127.0.0.1:${port}`, "--token", "t0k", "--name", "a1", "--log-format", "text",
      "--forward", "127.0.0.1:0=db", "--forward", "127.0.0.1:0=web", "--forward-udp", "127.0.0.1:0=dns",
    ]);
    const p = new EdgemuxProcess(spawn(cmd, argv, { cwd: mkdtempSync(join(tmpdir(), "agent-ready-")), stdio: ["ignore", "pipe", "pipe"] }), "");
    try {
      const ready = await Promise.race([
        p.waitForLine((l) => / level=info msg=ready /.test(l.msg), 30_000),
        p.waitExit(30_000).then((code) => {
          throw new Error(`agent exited with ${code} before ready: ${p.stderr.join("")} ${JSON.stringify(p.lines)}`);
        }),
      ]);
      const line = ready.msg;
      expect(line).not.toContain("[object Object]");
      expect(line).toMatch(/ forwards\.0\.listen=127\.0\.0\.1:[1-9]\d* forwards\.0\.service=db forwards\.0\.proto=tcp /);
      expect(line).toMatch(/ forwards\.1\.listen=127\.0\.0\.1:[1-9]\d* forwards\.1\.service=web forwards\.1\.proto=tcp /);
      expect(line).toMatch(/ forwards\.2\.listen=127\.0\.0\.1:[1-9]\d* forwards\.2\.service=dns forwards\.2\.proto=udp( |$)/);
    } finally {
      await p.stop();
      edge.close();
    }
  }, 60_000);

  test("edgemux agent with bad flags exits 2 and says why", async () => {
    const { cmd, argv } = edgemuxCommand(["agent", "--expose", "bad"]);
    const r = await run(cmd, argv, { timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("invalid agent configuration");
    expect(r.stderr).toContain("edge: is required");
  }, 40_000);
});
