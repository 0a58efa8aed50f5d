/**
 * sniproxy directory mode (compatible with jameysharp/sniproxy-rs): the
 * backend for a hostname is found on disk at each connection, so adding or
 * removing a hostname needs no reload.
 *
 *   <dir>/<hostname>/tls-socket     the backend's unix socket (required)
 *   <dir>/<hostname>/send-proxy-v1  if present (even empty): send PROXY v1
 *
 * Symlinks: followed anywhere. The hostname directory may be a symlink (many
 * names served by one backend) and `tls-socket` may be a symlink (swap it
 * atomically to move a host to a new backend process). The protection is on
 * the *name*, never on the link target: the name is refused unless it is a
 * single safe path component (see `isSafeHostEntry`), so a client cannot
 * walk out of `<dir>`; where an operator's symlink points is the operator's
 * decision, as in sniproxy.
 *
 * `socketPath` is returned un-resolved (`<dir>/<hostname>/tls-socket`), so
 * the kernel follows the symlinks at connect time and an atomic swap takes
 * effect on the next connection even while the lookup is cached. Only when
 * that path would not fit a unix socket address (sun_path, 108 bytes with
 * its NUL) is it replaced by its realpath, which is often shorter.
 *
 * A missing entry (or one that is not a socket, or not readable) is `null`:
 * the listener answers `unrecognized_name`, as sniproxy does. Other file
 * system errors throw `ProxyError("INTERNAL")` (not the client's fault).
 *
 * The lookups use synchronous `stat`: two stats per lookup, at most once per
 * name per `ttlMs` thanks to `DirectoryResolver`'s cache.
 */

import { realpathSync, statSync } from "node:fs";
import { ProxyError } from "../errors/mod.ts";

export interface DirectoryBackend {
  /** Unix socket path to connect to. */
  readonly socketPath: string;
  /** Prefix the connection with a PROXY protocol v1 line. */
  readonly proxyV1: boolean;
}

/** Longest canonical hostname (RFC 1035 §2.3.4, without the trailing dot). */
const MAX_NAME = 253;
/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const MAX_SUN_PATH = 107;

/**
 * Whether `name` may be used as one path component under the directory:
 * 1..253 characters of `[a-z0-9._-]`, not starting with "." (which also
 * refuses "." and ".." and hidden entries). No "/" or NUL can appear since
 * they are outside the character set. The SNI listener already hands over
 * canonical names; this check does not trust that.
 */
export function isSafeHostEntry(name: string): boolean {
  const n = name.length;
  if (n === 0 || n > MAX_NAME) return false;
  if (name.charCodeAt(0) === 0x2e) return false; // ".", "..", ".hidden"
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    const ok =
      (c >= 0x61 && c <= 0x7a) || // a-z
      (c >= 0x30 && c <= 0x39) || // 0-9
      c === 0x2e || // .
      c === 0x2d || // -
      c === 0x5f; // _
    if (!ok) return false;
  }
  return true;
}

/** Errors that mean "this name is not served here" rather than a broken system. */
function isNotServed(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "ENOENT" || code === "ENOTDIR" || code === "EACCES" || code === "ELOOP" || code === "ENAMETOOLONG";
}

function utf8Length(s: string): number {
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4; // a surrogate pair is one 4-byte code point
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Looks `serverName` up under `dir` (uncached; see `DirectoryResolver`).
 * Returns null for an unsafe name or a missing / non-socket `tls-socket`.
 */
export function resolveDirectory(dir: string, serverName: string): DirectoryBackend | null {
  if (!isSafeHostEntry(serverName)) return null;
  const hostDir = dir.endsWith("/") ? dir + serverName : dir + "/" + serverName;
  let socketPath = hostDir + "/tls-socket";
  try {
    // statSync follows symlinks, both for the host directory and the socket.
    const st = statSync(socketPath, { throwIfNoEntry: false });
    if (st === undefined || !st.isSocket()) return null;
    const marker = statSync(hostDir + "/send-proxy-v1", { throwIfNoEntry: false });
    if (socketPath.length > MAX_SUN_PATH && utf8Length(socketPath) > MAX_SUN_PATH) {
      socketPath = realpathSync(socketPath);
    }
    return { socketPath, proxyV1: marker !== undefined };
  } catch (err) {
    if (isNotServed(err)) return null;
    throw new ProxyError("INTERNAL", "internal", `directory lookup of ${JSON.stringify(serverName)} in ${dir} failed: ${String((err as Error)?.message ?? err)}`, { cause: err });
  }
}

export interface DirectoryResolverOptions {
  /** How long a lookup (found or not) is reused; default 1000 ms. */
  ttlMs?: number;
  /** Cache bound; the oldest entry is dropped beyond it. Default 10,000. */
  maxEntries?: number;
  /** The uncached lookup; tests may count calls. Default `resolveDirectory`. */
  lookup?: (dir: string, serverName: string) => DirectoryBackend | null;
}

interface CacheEntry {
  value: DirectoryBackend | null;
  expiresAt: number;
}

/**
 * `resolveDirectory` with a short cache of positive and negative answers, so
 * a flood of connections for one (random or real) name stats the disk at
 * most once per name per `ttlMs`. A flood of *distinct* names still stats
 * each once; the cache stays bounded by `maxEntries` (first in, first out:
 * refreshed entries move to the back).
 */
export class DirectoryResolver {
  readonly ttlMs: number;
  readonly maxEntries: number;
  private readonly lookup: (dir: string, serverName: string) => DirectoryBackend | null;
  private readonly cache = new Map<string, CacheEntry>();

  constructor(
    readonly dir: string,
    options: DirectoryResolverOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 1000;
    this.maxEntries = Math.max(1, options.maxEntries ?? 10_000);
    this.lookup = options.lookup ?? resolveDirectory;
  }

  /**
   * The backend for `serverName` now, or null (no SNI, unsafe name, or not
   * served). Called once per connection by the listener.
   */
  resolve(serverName: string | null, nowMs: number): DirectoryBackend | null {
    // Without SNI there is no name to look up: directory mode cannot route it.
    if (serverName === null || !isSafeHostEntry(serverName)) return null;
    const hit = this.cache.get(serverName);
    if (hit !== undefined) {
      if (nowMs < hit.expiresAt) return hit.value;
      this.cache.delete(serverName);
    }
    const value = this.lookup(this.dir, serverName);
    if (this.cache.size >= this.maxEntries) {
      // Map iterates in insertion order: the first key is the oldest entry.
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(serverName, { value, expiresAt: nowMs + this.ttlMs });
    return value;
  }

  /** Entries currently cached (for tests and /status). */
  get size(): number {
    return this.cache.size;
  }

  clear(): void {
    this.cache.clear();
  }
}
