/**
 * Socket activation on Bun (Linux). `Bun.listen({ fd })` accepts on a
 * descriptor it is given and closes it when the listener stops, or when the
 * worker thread that owns it ends. Each adopter therefore gets its own
 * `dup()` of the inherited descriptor (through bun:ffi, libc): a worker that
 * drains or crashes closes only its copy, the socket stays open in the
 * process (the original descriptor is never closed) and in systemd, and a
 * restarted worker dups it again. Every copy is the same socket, so all
 * workers share one accept queue and connections that arrive while no worker
 * accepts wait in it instead of being refused.
 *
 * Which address adopts which descriptor travels to worker threads in the
 * environment variable below (Bun gives a worker a copy of the environment).
 */
import type { ListenAddress, SocketInheritance } from "./types.ts";
import { ipv6GroupsText } from "../proto/ip_text.ts";

/** Internal: JSON `{ "<key>": fd }`, set by `adopt` for worker threads spawned afterwards. */
export const ADOPT_ENV = "EDGEMUX_ADOPTED_FDS";

// Linux <sys/socket.h> values, the same on x86_64 and aarch64.
const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SO_ACCEPTCONN = 30;
const SOCK_STREAM = 1;
const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const EBADF = 9;
const ENOTSOCK = 88;

interface Libc {
  dup(fd: number): number;
  getsockopt(fd: number, level: number, name: number, value: Int32Array, len: Uint32Array): number;
  getsockname(fd: number, addr: Uint8Array, len: Uint32Array): number;
  errno(): number;
}

let libc: Libc | null | undefined;

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  if (process.platform !== "linux") return null;
  // bun:ffi is a Bun built-in; required lazily so Deno never resolves it.
  // deno-lint-ignore no-explicit-any
  const ffi = (import.meta as any).require("bun:ffi");
  const { i32, ptr, u64 } = ffi.FFIType;
  const defs = {
    dup: { args: [i32], returns: i32 },
    getsockopt: { args: [i32, i32, i32, ptr, ptr], returns: i32 },
    getsockname: { args: [i32, ptr, ptr], returns: i32 },
    __errno_location: { args: [], returns: u64 },
  };
  for (const name of ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1"]) {
    try {
      const s = ffi.dlopen(name, defs).symbols;
      libc = {
        dup: (fd) => s.dup(fd),
        getsockopt: (fd, level, opt, value, len) => s.getsockopt(fd, level, opt, value, len),
        getsockname: (fd, addr, len) => s.getsockname(fd, addr, len),
        errno: () => ffi.read.i32(Number(s.__errno_location())),
      };
      return libc;
    } catch { /* try the next name */ }
  }
  return null;
}

export function adoptKey(a: ListenAddress): string {
  return "unix" in a ? `unix:${a.unix}` : `${a.hostname}|${a.port}`;
}

/** This thread's table: from `adopt` on the main thread, from the environment in a worker. */
let table: Map<string, number> | null = null;

function adopted(): Map<string, number> {
  if (table) return table;
  table = new Map();
  const text = process.env[ADOPT_ENV];
  if (text) {
    try {
      for (const [k, fd] of Object.entries(JSON.parse(text) as Record<string, number>)) if (Number.isInteger(fd)) table.set(k, fd);
    } catch { /* not ours */ }
  }
  return table;
}

/** The environment a worker thread needs, or undefined when nothing was adopted (keep Bun's default). */
export function workerEnv(): Record<string, string> | undefined {
  const t = adopted();
  if (t.size === 0) return undefined;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  env[ADOPT_ENV] = JSON.stringify(Object.fromEntries(t));
  return env;
}

/** A fresh duplicate of the inherited descriptor for `address`, or null when none was adopted for it. */
export function takeAdopted(address: ListenAddress): number | null {
  const fd = adopted().get(adoptKey(address));
  if (fd === undefined) return null;
  const c = loadLibc();
  if (!c) throw new Error(`cannot duplicate inherited descriptor ${fd}: libc not reachable through bun:ffi`);
  const copy = c.dup(fd);
  if (copy < 0) throw new Error(`cannot duplicate inherited descriptor ${fd}: errno ${c.errno()}`);
  return copy;
}

function formatV6(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  return ipv6GroupsText(groups, false);
}

function describe(c: Libc, fd: number): { address: string } | { error: string } {
  const value = new Int32Array(1);
  const len = new Uint32Array([4]);
  if (c.getsockopt(fd, SOL_SOCKET, SO_TYPE, value, len) < 0) {
    const e = c.errno();
    if (e === EBADF) return { error: `descriptor ${fd} is not open` };
    if (e === ENOTSOCK) return { error: `descriptor ${fd} is not a socket` };
    return { error: `descriptor ${fd}: getsockopt failed, errno ${e}` };
  }
  if (value[0] !== SOCK_STREAM) return { error: `descriptor ${fd} is not a stream socket (TCP or unix stream)` };
  const listening = new Int32Array(1);
  len[0] = 4;
  if (c.getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, listening, len) < 0 || listening[0] === 0) {
    return { error: `descriptor ${fd} is a connected socket, not a listening one (systemd Accept=no / inetd "wait" pass the listening socket)` };
  }
  const sa = new Uint8Array(128);
  const salen = new Uint32Array([sa.length]);
  if (c.getsockname(fd, sa, salen) < 0) return { error: `descriptor ${fd}: getsockname failed, errno ${c.errno()}` };
  const family = sa[0]! | (sa[1]! << 8); // sa_family_t is host order (little-endian on the targets Bun ships for Linux)
  const port = (sa[2]! << 8) | sa[3]!; // network order
  if (family === AF_INET) return { address: `${sa.subarray(4, 8).join(".")}:${port}` };
  if (family === AF_INET6) return { address: `[${formatV6(sa.subarray(8, 24))}]:${port}` };
  if (family === AF_UNIX) {
    const end = Math.min(salen[0]!, sa.length);
    const pathBytes = sa.subarray(2, end);
    if (pathBytes[0] === 0) return { error: `descriptor ${fd} is an abstract unix socket, which edgemux cannot name` };
    const nul = pathBytes.indexOf(0);
    return { address: `unix:${new TextDecoder().decode(nul >= 0 ? pathBytes.subarray(0, nul) : pathBytes)}` };
  }
  return { error: `descriptor ${fd} has address family ${family}, not IPv4, IPv6 or unix` };
}

export const bunInheritance: SocketInheritance = {
  inspect(fd) {
    const c = loadLibc();
    if (!c) return { error: "socket activation needs Linux and its libc (bun:ffi); this system has neither" };
    return describe(c, fd);
  },
  adopt(fd, address) {
    adopted().set(adoptKey(address), fd);
  },
};
