/**
 * Zero-downtime upgrade with reusePort: a new edgemux binds the same
 * address, prints "ready", the old one gets SIGTERM, drains and exits 0,
 * all under load (test/support/upgrade_scenario.ts). Asserted: no refused or
 * reset connection, no broken transfer (sizes and SHA-256), transfers that
 * crossed the switch, both processes served traffic.
 *
 * Closing a listening socket resets the connections still in its accept
 * queue unless Linux moves them to another socket of the reuseport group,
 * which it does when net.ipv4.tcp_migrate_req=1 (kernel 5.14+). The scenario
 * therefore runs in a network namespace of its own (`unshare -n`, root),
 * where the test can set that sysctl without touching the host's.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ROOT, run } from "./support/edgemux.ts";

const MIGRATE_SYSCTL = "/proc/sys/net/ipv4/tcp_migrate_req";

function whyNot(): string | null {
  if (!existsSync(MIGRATE_SYSCTL)) return `${MIGRATE_SYSCTL} is missing (kernel older than 5.14)`;
  const probe = spawnSync("unshare", ["-n", "sh", "-c", "ip link set lo up && echo 1 > /proc/sys/net/ipv4/tcp_migrate_req"], { encoding: "utf8" });
  if (probe.status !== 0) return `cannot create a network namespace here (unshare -n needs root): ${(probe.stderr || String(probe.error)).trim()}`;
  return null;
}

const reason = whyNot();
if (reason) console.warn(`upgrade_test skipped: ${reason}`);

/**
 * The kernel fact the procedure rests on, shown with two SO_REUSEPORT
 * sockets in perl (perl-base is in every Debian): 40 connections queue, the
 * first socket is closed without accepting, and we count what the second
 * socket accepts and how many clients were reset.
 */
const MIGRATE_PROBE = `
use strict; use warnings; use Socket; use IO::Select;
my $SO_REUSEPORT = 15;
sub lsock { my ($port) = @_; socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!"; setsockopt($s, SOL_SOCKET, $SO_REUSEPORT, 1) or die "reuseport: $!"; bind($s, pack_sockaddr_in($port, inet_aton("127.0.0.1"))) or die "bind: $!"; listen($s, 128) or die "listen: $!"; return $s; }
my $a = lsock(0); my ($port) = unpack_sockaddr_in(getsockname($a)); my $b = lsock($port);
my @c; for (1..40) { socket(my $c, PF_INET, SOCK_STREAM, 0) or die; connect($c, pack_sockaddr_in($port, inet_aton("127.0.0.1"))) or die "connect: $!"; push @c, $c; }
close($a);
my $acc = 0; my $sel = IO::Select->new($b); while ($sel->can_read(0.5)) { accept(my $x, $b) or last; $acc++; syswrite($x, "x"); close($x); last if $acc == 40; }
my ($ok, $reset) = (0, 0); for my $c (@c) { my $n = sysread($c, my $buf, 1); if (defined $n && $n == 1) { $ok++ } else { $reset++ } }
print "accepted=$acc answered=$ok reset=$reset\n";
`;

async function migrateProbe(sysctl: 0 | 1): Promise<{ accepted: number; answered: number; reset: number }> {
  const r = await run("unshare", ["-n", "sh", "-c", `ip link set lo up && echo ${sysctl} > /proc/sys/net/ipv4/tcp_migrate_req && exec perl -e "$0"`, MIGRATE_PROBE], { timeoutMs: 20_000 });
  const m = /accepted=(\d+) answered=(\d+) reset=(\d+)/.exec(r.stdout);
  if (!m) throw new Error(`probe failed (exit ${r.code}): ${r.stderr}`);
  return { accepted: Number(m[1]), answered: Number(m[2]), reset: Number(m[3]) };
}

interface TransferResult {
  kind: string;
  ok: boolean;
  bytes: number;
  expectedBytes: number;
  checksumOk: boolean;
}

describe("zero-downtime upgrade (reusePort)", () => {
  test.skipIf(reason !== null)("the kernel: closing a reuseport socket resets its queue, unless tcp_migrate_req=1", async () => {
    const off = await migrateProbe(0);
    expect(off.reset).toBeGreaterThan(0); // 40 connections all hashed to the surviving socket: odds 2^-40
    expect(off.answered + off.reset).toBe(40);
    const on = await migrateProbe(1);
    expect(on).toEqual({ accepted: 40, answered: 40, reset: 0 });
  }, 30_000);

  test.skipIf(reason !== null)("new process ready → SIGTERM old: no refused connection, no broken transfer", async () => {
    const started = Date.now();
    const script = join(ROOT, "test/support/upgrade_scenario.ts");
    const r = await run(
      "unshare",
      ["-n", "sh", "-c", 'ip link set lo up && echo 1 > /proc/sys/net/ipv4/tcp_migrate_req && exec "$0" "$1"', process.execPath, script],
      { timeoutMs: 120_000 },
    );
    const line = r.stdout.split("\n").find((l) => l.startsWith("RESULT "));
    if (!line) throw new Error(`the scenario printed no result (exit ${r.code}): ${r.stderr.slice(-2000)}`);
    const res = JSON.parse(line.slice(7));
    if (res.error) throw new Error(`the scenario failed: ${res.error}; stderr: ${r.stderr.slice(-2000)}`);

    expect(res.sysctl_tcp_migrate_req).toBe("1");
    expect(res.new_port).toBe(res.port); // the same address, bound by both processes at once
    expect(res.old_exit).toBe(0);
    // Load ran before, across and after the switch, and nothing failed.
    expect(res.short_failures).toEqual({});
    expect(res.short_ok_after_old_exit).toBeGreaterThanOrEqual(60);
    expect(Object.keys(res.storm_outcomes)).toEqual(["ok"]);
    expect(res.old_connections_logged).toBeGreaterThan(0);
    expect(res.new_accepted).toBeGreaterThan(0);
    // The long transfers were running when the old process was told to stop, and all arrived intact.
    expect(res.transfers_crossed_switch).toBe(true);
    expect(res.open_at_drain).toBeGreaterThan(0);
    const transfers = res.transfers as TransferResult[];
    expect(transfers.length).toBe(3);
    for (const t of transfers) expect(t).toMatchObject({ ok: true, checksumOk: true, bytes: t.expectedBytes });
    expect(Date.now() - started).toBeLessThan(90_000);
  }, 130_000);
});
