/**
 * Before `serve` binds: is one of its TCP ports already answered by another
 * process? Every listener binds with SO_REUSEPORT, so a second edgemux of
 * the same user started on the same config (or a stale one left running)
 * would not fail to bind: the kernel would silently split new connections
 * between the two. A plain connect tells: something accepting answers.
 *
 * Not probed: port 0 (the kernel picks a free one), unix and udp listeners
 * (no connect can tell), and listeners that adopt an inherited socket (they
 * do not bind, and the socket answering is their own). The zero-downtime
 * upgrade shares ports on purpose and passes `--allow-shared-ports`.
 */
import { type Config, type ListenerConfig, parseAddress } from "../config/mod.ts";
import { formatHostPort } from "../proto/mod.ts";
import type { Conn, ConnHandler, Runtime } from "../runtime/types.ts";

/** Loopback answers within microseconds; the bound only matters for a filtered specific address. */
export const PROBE_TIMEOUT_MS = 300;

/** A wildcard address is probed on the loopback of its family. */
function probeHost(hostname: string): string {
  if (hostname === "0.0.0.0") return "127.0.0.1";
  if (hostname === "::") return "::1";
  return hostname;
}

const ignore: ConnHandler = {
  onData() {},
  onDrain() {},
  onEnd() {},
  onClose() {},
};

async function answers(rt: Runtime, hostname: string, port: number): Promise<boolean> {
  let conn: Conn;
  try {
    conn = await rt.connect({ address: { hostname, port }, timeoutMs: PROBE_TIMEOUT_MS, handler: ignore });
  } catch {
    // Refused (nobody listens), unreachable, or no answer in time: nothing we would share the port with.
    return false;
  }
  conn.close();
  return true;
}

/**
 * The message for the first listener whose port another process already
 * answers on, or null. `skip` names listeners that adopt an inherited socket.
 */
export async function sharedPortProblem(rt: Runtime, config: Config, skip: ReadonlySet<string>): Promise<string | null> {
  const probed = config.listeners.map((l, i) => ({ l, i })).filter(({ l }) => probeable(l) && !skip.has(l.name));
  const hits = await Promise.all(probed.map(({ l }) => {
    const a = l.address as Extract<ListenerConfig["address"], { kind: "tcp" }>;
    return answers(rt, probeHost(a.hostname), a.port);
  }));
  const at = hits.indexOf(true);
  if (at < 0) return null;
  const { l, i } = probed[at]!;
  const a = l.address as Extract<ListenerConfig["address"], { kind: "tcp" }>;
  return `listeners[${i}].address: ${formatHostPort(a.hostname, a.port)} is already in use by another process (edgemux would share it through SO_REUSEPORT and split its traffic); stop it or pass --allow-shared-ports`;
}

function probeable(l: ListenerConfig): boolean {
  return l.kind !== "udp" && l.address.kind === "tcp" && l.address.port !== 0;
}

/**
 * The listeners that will adopt one of the `inherited` sockets (matched as
 * the supervisor matches them: by name, else by address), or null when that
 * cannot be told here (the runtime cannot adopt, or a socket cannot be
 * inspected): then the start fails on its own, with the reason.
 */
export function adoptingListeners(rt: Runtime, config: Config, inherited: readonly { fd: number; name: string | null }[]): Set<string> | null {
  const out = new Set<string>();
  for (const s of inherited) {
    const named = s.name === null ? undefined : config.listeners.find((l) => l.name === s.name);
    if (named) {
      out.add(named.name);
      continue;
    }
    const info = rt.inherit?.inspect(s.fd);
    if (info === undefined || "error" in info) return null;
    let sock;
    try {
      sock = parseAddress(info.address, "inherited socket", { allowPortZero: false, allowHostnames: false });
    } catch {
      return null;
    }
    for (const l of config.listeners) {
      const a = l.address;
      if (sock.kind === "tcp" && a.kind === "tcp" && a.hostname === sock.hostname && a.port === sock.port) out.add(l.name);
    }
  }
  return out;
}
