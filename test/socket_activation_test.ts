/**
 * Socket activation: edgemux adopts a listening socket another process
 * opened, passed the systemd way (descriptor 3, LISTEN_FDS / LISTEN_PID /
 * LISTEN_FDNAMES) or on stdin as inetd's "wait" mode does (--listen-fd
 * NAME=0). A small perl program (perl-base is in every Debian) plays
 * systemd: it binds 127.0.0.1 port 0, puts the socket on the descriptor and
 * execs the command. Two edgemux processes can share one inherited socket,
 * which is the systemd hand-over: no refused connection, no sysctl needed.
 *
 * On Deno, edgemux cannot adopt a socket and says so (README, Deployment).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { edgemuxCommand, EdgemuxProcess, run, tempDir, waitFor } from "./support/edgemux.ts";
import { download, ShortLoad, type Target } from "./support/load.ts";
import { type TlsBackend, testPki, tlsBackend } from "./support/tls.ts";

const ON_DENO = !process.env.EDGEMUX_BIN && process.env.EDGEMUX_RUNTIME === "deno";

/** perl HOLDER MODE NAME CMD...: MODE systemd (fd 3 + LISTEN_*), stdin (fd 0) or fd3 (fd 3, no variables). */
const HOLDER = `
use strict; use warnings; use Socket; use POSIX ();
my ($mode, $name, @cmd) = @ARGV;
$^F = 1023; # descriptors opened from here on survive exec
socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1) or die "setsockopt: $!";
bind($s, pack_sockaddr_in(0, inet_aton("127.0.0.1"))) or die "bind: $!";
listen($s, 1024) or die "listen: $!";
my ($port) = unpack_sockaddr_in(getsockname($s));
print STDERR "holder port=$port\\n";
my $target = $mode eq "stdin" ? 0 : 3;
if (fileno($s) != $target) { defined(POSIX::dup2(fileno($s), $target)) or die "dup2: $!"; POSIX::close(fileno($s)); }
if ($mode eq "systemd") { $ENV{LISTEN_FDS} = 1; $ENV{LISTEN_PID} = $$; $ENV{LISTEN_FDNAMES} = $name; }
exec { $cmd[0] } @cmd or die "exec $cmd[0]: $!";
`;

let backend: TlsBackend;
let dir: string;
let holderPath: string;

beforeAll(async () => {
  backend = await tlsBackend("act.test");
  dir = tempDir("edgemux-activation-");
  holderPath = join(dir, "holder.pl");
  writeFileSync(holderPath, HOLDER);
});
afterAll(async () => {
  await backend?.close();
});

function config(address = "127.0.0.1:0"): string {
  return `
workers = 2
drain_timeout = "20s"
[log]
format = "json"
[admin]
address = "127.0.0.1:0"
[[listeners]]
name = "sni"
kind = "sni"
address = "${address}"
[[routes]]
match = "act.test"
targets = ["${backend.address}"]
`;
}

function writeConfig(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** Starts `perl holder MODE NAME edgemux serve ...` and waits for the ready line (or the exit). */
async function startHeld(mode: "systemd" | "stdin" | "fd3", name: string, args: string[]): Promise<EdgemuxProcess> {
  const { cmd, argv } = edgemuxCommand(["serve", "--log-format", "json", ...args]);
  const proc = spawn("perl", [holderPath, mode, name, cmd, ...argv], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const p = new EdgemuxProcess(proc, "");
  const ready = await Promise.race([
    p.waitForLine((l) => l.msg === "ready", 30_000),
    p.waitExit(30_000).then((code) => {
      throw new Error(`edgemux exited with ${code} before ready: ${p.stderr.join("")} ${JSON.stringify(p.lines.slice(-5))}`);
    }),
  ]);
  p.admin = String(ready.admin ?? "");
  p.listeners = (ready.listeners ?? {}) as Record<string, string>;
  return p;
}

function holderPort(p: EdgemuxProcess): number {
  const m = /holder port=(\d+)/.exec(p.stderr.join(""));
  if (!m) throw new Error(`no holder port in stderr: ${p.stderr.join("")}`);
  return Number(m[1]);
}

function target(port: number): Target {
  const pki = testPki();
  return { host: "127.0.0.1", port, servername: "act.test", caCertPath: pki.caCertPath, caCert: pki.caCert };
}

async function requests(port: number, n: number): Promise<string[]> {
  const { shortRequest } = await import("./support/load.ts");
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await shortRequest(target(port)));
  return out;
}

describe.skipIf(ON_DENO)("socket activation (Bun)", () => {
  test("systemd LISTEN_FDS: the named socket is adopted; it outlives a restarted worker", async () => {
    const em = await startHeld("systemd", "sni", ["--config", writeConfig("systemd.toml", config())]);
    try {
      const port = holderPort(em);
      // Port 0 in the config: the listener takes the inherited socket's port.
      expect(em.listeners.sni).toBe(`127.0.0.1:${port}`);
      const adopted = await em.waitForLine((l) => l.msg === "adopted inherited socket");
      expect(adopted).toMatchObject({ listener: "sni", fd: 3, name: "sni", from: "LISTEN_FDS", address: `127.0.0.1:${port}` });
      expect(await requests(port, 10)).toEqual(Array(10).fill("ok"));
      // Each worker accepts on its own duplicate: ending one leaves the socket open for the other and for its successor.
      for (const id of [0, 1]) {
        expect((await fetch(`http://${em.admin}/workers/${id}/restart`, { method: "POST" })).status).toBe(202);
        await waitFor(async () => {
          const s = await em.status();
          return s.workers[id]!.up && s.workers[id]!.restarts === 1;
        }, 15_000, `worker ${id} back`);
        expect(await requests(port, 10)).toEqual(Array(10).fill("ok"));
      }
      expect((await em.status()).listeners[0]!.accepted).toBe(30);
    } finally {
      expect(await em.stop()).toBe(0);
    }
  }, 60_000);

  test("stdin, as inetd's wait mode passes it: --listen-fd sni=0", async () => {
    const em = await startHeld("stdin", "-", ["--config", writeConfig("stdin.toml", config()), "--listen-fd", "sni=0"]);
    try {
      const port = holderPort(em);
      expect(em.listeners.sni).toBe(`127.0.0.1:${port}`);
      expect(await requests(port, 5)).toEqual(Array(5).fill("ok"));
    } finally {
      expect(await em.stop()).toBe(0);
    }
  }, 30_000);

  test("a socket that cannot be matched or used stops the start with the reason", async () => {
    // Named after no listener, and bound to an address no listener has.
    const other = await run("perl", [holderPath, "systemd", "other", ...flat(edgemuxCommand(["serve", "--config", writeConfig("other.toml", config())]))], { timeoutMs: 30_000 });
    expect(other.code).toBe(1);
    expect(other.stdout).toContain(`inherited socket \\"other\\" (descriptor 3, from LISTEN_FDS) is bound to 127.0.0.1:`);
    expect(other.stdout).toContain("no listener has that name or address");
    // Named after the listener, but the listener's address differs.
    const mismatch = await run("perl", [holderPath, "systemd", "sni", ...flat(edgemuxCommand(["serve", "--config", writeConfig("mismatch.toml", config("127.0.0.2:8443"))]))], { timeoutMs: 30_000 });
    expect(mismatch.code).toBe(1);
    expect(mismatch.stdout).toContain(`but listener \\"sni\\" has address 127.0.0.2:8443`);
    // Not open / not listening / no such listener / malformed flag.
    const cfg = writeConfig("plain.toml", config());
    const notOpen = await run(...cmdOf(["serve", "--config", cfg, "--listen-fd", "sni=9"]), { timeoutMs: 30_000 });
    expect(notOpen.code).toBe(1);
    expect(notOpen.stdout).toContain("descriptor 9 is not open");
    // Bun gives a child's stdin a connected socket pair: a socket, but not a listening one.
    const connected = await run(...cmdOf(["serve", "--config", cfg, "--listen-fd", "sni=0"]), { input: "", timeoutMs: 30_000 });
    expect(connected.code).toBe(1);
    expect(connected.stdout).toContain("descriptor 0 is a connected socket, not a listening one");
    const noListener = await run(...cmdOf(["serve", "--config", cfg, "--listen-fd", "web=0"]), { timeoutMs: 30_000 });
    expect(noListener.code).toBe(1);
    expect(noListener.stdout).toContain(`no listener is named \\"web\\"`);
    const malformed = await run(...cmdOf(["serve", "--config", cfg, "--listen-fd", "sni"]), { timeoutMs: 30_000 });
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain("--listen-fd: must be NAME=FD");
  }, 60_000);

  test("hand-over: two processes share the inherited socket; no refused connection, no broken transfer", async () => {
    // The shell holds descriptor 3 (like systemd) and starts A, then B when told, then reports both exit codes.
    const script = [
      'a_cfg=$1; b_cfg=$2; shift 2',
      '"$@" --config "$a_cfg" & a=$!',
      "read _go",
      '"$@" --config "$b_cfg" & b=$!',
      'wait $a; echo "{\\"msg\\":\\"a-exit\\",\\"code\\":$?}"',
      'wait $b; echo "{\\"msg\\":\\"b-exit\\",\\"code\\":$?}"',
    ].join("\n");
    const { cmd, argv } = edgemuxCommand(["serve", "--log-format", "json", "--listen-fd", "sni=3"]);
    const proc = spawn("perl", [holderPath, "fd3", "-", "sh", "-c", script, "sh", writeConfig("a.toml", config()), writeConfig("b.toml", config()), cmd, ...argv], {
      cwd: dir,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const p = new EdgemuxProcess(proc, "");
    let load: ShortLoad | null = null;
    try {
      const readyA = await p.waitForLine((l) => l.msg === "ready", 30_000);
      const port = holderPort(p);
      const t = target(port);
      load = new ShortLoad(t, 6);
      load.start();
      const transfer = download(t, 4 * 1024 * 1024, "1M");
      await waitFor(() => load!.ok() >= 40, 30_000, "requests through A");
      proc.stdin!.write("go\n");
      const readyB = await p.waitForLine((l) => l.msg === "ready" && l.pid !== readyA.pid, 30_000);
      process.kill(Number(readyA.pid), "SIGTERM");
      const aExit = await p.waitForLine((l) => l.msg === "a-exit", 30_000);
      expect(aExit.code).toBe(0);
      const after = Date.now();
      await waitFor(() => load!.ok(after) >= 40, 30_000, "requests through B after A exited");
      await load.stop();
      const done = await transfer;
      expect(load.failures()).toEqual({});
      expect(done).toMatchObject({ ok: true, checksumOk: true, bytes: 4 * 1024 * 1024 });
      // A stopped accepting while the download was still running on it.
      expect(p.lines.some((l) => l.msg === "stopped accepting" && Number(l.open) > 0)).toBe(true);
      process.kill(Number(readyB.pid), "SIGTERM");
      expect((await p.waitForLine((l) => l.msg === "b-exit", 30_000)).code).toBe(0);
    } finally {
      await load?.stop();
      proc.kill("SIGKILL");
      for (const l of p.lines) if (l.msg === "ready" && p.exitCode === null) try { process.kill(Number(l.pid), "SIGKILL"); } catch { /* gone */ }
    }
  }, 90_000);
});

describe.skipIf(!ON_DENO)("socket activation (Deno)", () => {
  test("refused with the reason: Deno cannot adopt an inherited socket", async () => {
    const r = await run("perl", [holderPath, "systemd", "sni", ...flat(edgemuxCommand(["serve", "--config", writeConfig("deno.toml", config())]))], { timeoutMs: 30_000 });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("edgemux on deno cannot adopt an inherited listening socket");
  }, 30_000);
});

function flat(c: { cmd: string; argv: string[] }): string[] {
  return [c.cmd, ...c.argv];
}

function cmdOf(args: string[]): [string, string[]] {
  const c = edgemuxCommand(args);
  return [c.cmd, c.argv];
}
