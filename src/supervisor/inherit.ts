/**
 * Socket activation: listening sockets another process opened for us.
 *
 * - systemd (sd_listen_fds(3)): descriptors 3, 4, ... `LISTEN_FDS` of them,
 *   meant for this process when `LISTEN_PID` is our pid, named by
 *   `LISTEN_FDNAMES` (colon-separated, from the socket unit's
 *   `FileDescriptorName=`).
 * - inetd "wait" mode, s6, runit and friends: `--listen-fd NAME=FD`, e.g.
 *   `--listen-fd public=0` for a listening socket on stdin.
 *
 * A socket goes to the listener of the same name, or else to the listener
 * with the same address. Its address must agree with the listener's (a
 * listener with port 0 takes the socket's port). The supervisor then asks
 * the runtime to adopt it, so every worker accepts on the inherited socket
 * instead of binding its own.
 */
import type { Config, ListenerConfig } from "../config/types.ts";
import { formatAddress, parseAddress } from "../config/mod.ts";
import { ProxyError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { Runtime } from "../runtime/types.ts";

/** sd_listen_fds(3): "SD_LISTEN_FDS_START 3". */
const SD_LISTEN_FDS_START = 3;
/** More inherited sockets than listeners can ever exist is a mistake; bound the loop. */
const MAX_PASSED = 64;
const LISTEN_FD_FLAG = /^([a-z0-9_-]{1,64})=(\d{1,5})$/;

export interface PassedSocket {
  fd: number;
  /** The name systemd gave it (`FileDescriptorName=`), or the flag's NAME; null when unnamed. */
  name: string | null;
  /** Where it came from, for messages: "LISTEN_FDS" or "--listen-fd". */
  source: string;
}

/**
 * The sockets passed to this process. Throws ProxyError(CONFIG) for a
 * malformed `--listen-fd` or `LISTEN_FDS`.
 */
export function passedSockets(env: (name: string) => string | undefined, pid: number, listenFdFlags: readonly string[] = []): PassedSocket[] {
  const out: PassedSocket[] = [];
  const listenPid = env("LISTEN_PID");
  const listenFds = env("LISTEN_FDS");
  // sd_listen_fds(3): the variables are for the process whose pid LISTEN_PID names; a child that inherited them ignores them.
  if (listenFds !== undefined && listenPid !== undefined && listenPid.trim() === String(pid)) {
    if (!/^\d{1,3}$/.test(listenFds) || Number(listenFds) > MAX_PASSED) {
      throw new ProxyError("CONFIG", "internal", `LISTEN_FDS: must be a count 0..${MAX_PASSED}, got ${JSON.stringify(listenFds.slice(0, 20))}`);
    }
    const names = (env("LISTEN_FDNAMES") ?? "").split(":");
    for (let i = 0; i < Number(listenFds); i++) {
      const name = names[i];
      // systemd names an unnamed socket "unknown" (or the socket unit's name, which matches no listener and falls back to the address).
      out.push({ fd: SD_LISTEN_FDS_START + i, name: name && name !== "unknown" ? name : null, source: "LISTEN_FDS" });
    }
  }
  for (const flag of listenFdFlags) {
    const m = LISTEN_FD_FLAG.exec(flag);
    if (!m) throw new ProxyError("CONFIG", "internal", `--listen-fd: must be NAME=FD (a listener name and a descriptor number, 0 = stdin), got ${JSON.stringify(flag.slice(0, 80))}`);
    const fd = Number(m[2]);
    if (out.some((s) => s.fd === fd)) throw new ProxyError("CONFIG", "internal", `--listen-fd: descriptor ${fd} is given twice`);
    out.push({ fd, name: m[1]!, source: "--listen-fd" });
  }
  return out;
}

export interface Adoption {
  listener: string;
  fd: number;
  address: string;
  /** The port workers ask for (the socket's own, also when the config says 0); 0 for unix. */
  port: number;
}

function sameHost(l: ListenerConfig, sock: { kind: "tcp"; hostname: string }): boolean {
  return l.address.kind === "tcp" && l.address.hostname === sock.hostname;
}

/**
 * Matches each passed socket with a listener, checks that their addresses
 * agree and has the runtime adopt it. Returns one entry per adopted socket;
 * throws ProxyError(CONFIG) naming the socket and the listener when they
 * cannot be matched, so that a socket is never left without anyone accepting.
 */
export function adoptPassedSockets(rt: Runtime, config: Config, sockets: readonly PassedSocket[], log: Logger): Adoption[] {
  if (sockets.length === 0) return [];
  const what = (s: PassedSocket) => `inherited socket ${s.name ? `"${s.name}" ` : ""}(descriptor ${s.fd}, from ${s.source})`;
  if (!rt.inherit) {
    throw new ProxyError(
      "CONFIG",
      "internal",
      `${what(sockets[0]!)}: edgemux on ${rt.name} cannot adopt an inherited listening socket; run the Bun build (dist/edgemux), or let edgemux bind its own addresses (reusePort)`,
    );
  }
  const taken = new Map<string, PassedSocket>();
  const out: Adoption[] = [];
  for (const s of sockets) {
    let l = s.name ? config.listeners.find((x) => x.name === s.name) : undefined;
    if (s.source === "--listen-fd" && !l) {
      throw new ProxyError("CONFIG", "internal", `--listen-fd ${s.name}=${s.fd}: no listener is named "${s.name}" (listeners: ${config.listeners.map((x) => x.name).join(", ")})`);
    }
    const info = rt.inherit.inspect(s.fd);
    if ("error" in info) throw new ProxyError("CONFIG", "internal", `${what(s)}: ${info.error}`);
    const sock = parseAddress(info.address, what(s), { allowPortZero: false, allowHostnames: false });
    if (!l) {
      l = config.listeners.find((x) =>
        sock.kind === "unix" ? x.address.kind === "unix" && x.address.path === sock.path : sameHost(x, sock) && x.address.kind === "tcp" && x.address.port === sock.port
      );
    }
    if (!l) {
      throw new ProxyError(
        "CONFIG",
        "internal",
        `${what(s)} is bound to ${formatAddress(sock)}, and no listener has that name or address; name the socket after a listener (systemd FileDescriptorName=) or give a listener that address`,
      );
    }
    const prev = taken.get(l.name);
    if (prev) throw new ProxyError("CONFIG", "internal", `listener "${l.name}" is given two inherited sockets: descriptors ${prev.fd} and ${s.fd}`);
    const a = l.address;
    const agrees = sock.kind === "unix"
      ? a.kind === "unix" && a.path === sock.path
      : a.kind === "tcp" && a.hostname === sock.hostname && (a.port === 0 || a.port === sock.port);
    if (!agrees) {
      throw new ProxyError(
        "CONFIG",
        "internal",
        `${what(s)} is bound to ${formatAddress(sock)} but listener "${l.name}" has address ${formatAddress(a)}; make them equal (a listener with port 0 takes the socket's port)`,
      );
    }
    taken.set(l.name, s);
    const port = sock.kind === "tcp" ? sock.port : 0;
    rt.inherit.adopt(s.fd, sock.kind === "unix" ? { unix: sock.path } : { hostname: sock.hostname, port });
    out.push({ listener: l.name, fd: s.fd, address: formatAddress(sock), port });
    log.info("adopted inherited socket", { listener: l.name, fd: s.fd, name: s.name, from: s.source, address: formatAddress(sock) });
  }
  return out;
}
