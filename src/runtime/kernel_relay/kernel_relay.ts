/**
 * The kernel relay on Bun (Linux): established relays leave JavaScript for a
 * native epoll loop (relay.c, compiled at run time by bun:ffi's TinyCC) that
 * moves their bytes with splice(2). One loop thread per worker, started on
 * first use; see bench/README.md "Kernel relay" for the design and figures.
 *
 * Takeover: the loop `dup()`s both sockets, then Bun's copies are closed with
 * `socket.end()`, which on Bun 1.4 is epoll_ctl(DEL) + close(2) of its
 * descriptor and no shutdown(2) (checked with strace): closing one of two
 * descriptors of a socket sends nothing, so the peers see no FIN and Bun
 * never touches the socket again (it is out of Bun's epoll set before the
 * loop starts reading it).
 *
 * Completions come back through a socketpair that Bun watches as a socket
 * (`Bun.connect({ fd })`): the loop writes one byte when its completion ring
 * goes from empty to non-empty, and the `data` event drains the ring with
 * `kr_poll`. No JavaScript runs on the loop thread. Live byte counters are a
 * shared Float64Array (two per slot) read by the sweeper.
 *
 * Pipes: made at the kernel's default size; a direction whose read fills one
 * grows its pipe to 1 MiB (fs.pipe-max-size at most), within a per-worker
 * byte budget derived from the user's pipe quota (bigPipes below). Bulk bytes
 * per CPU-second: 64 KiB pipes ~0.9x HAProxy, 256 KiB ~1.1x, 1 MiB ~1.5x.
 */
import RELAY_C from "./relay.c" with { type: "text" };
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import type { Conn, KernelRelay, KernelRelayHandle, KernelRelayOptions, KernelRelayOwner } from "../types.ts";

// deno-lint-ignore no-explicit-any
const Bun: any = (globalThis as any).Bun;

/** What a runtime connection offers for a handover (BunConn in bun.ts). */
export interface HandoverConn {
  /** The socket's descriptor when it is plain TCP/unix with nothing queued and no FIN sent, else -1. */
  handoverFd(): number;
  /** Forget the socket after its descriptor was duplicated (Bun closes its copy; no event reaches the handler). */
  handedOver(): void;
}

function handover(c: Conn): HandoverConn | null {
  const h = c as unknown as Partial<HandoverConn>;
  return typeof h.handoverFd === "function" && typeof h.handedOver === "function" ? (h as HandoverConn) : null;
}

const DONE_FIELDS = 6;
const POLL_BATCH = 64;
const EBUSY = 16;
/** What a bulk direction's pipe grows to (its read filled the kernel's default 64 KiB pipe), at most fs.pipe-max-size. */
const BIG_PIPE = 1_048_576;
const MIB = 1_048_576;

function procInt(path: string): number | null {
  try {
    const v = Number(readFileSync(path, "utf8").trim());
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/**
 * The size bulk pipes grow to and this worker's budget for them. A user's
 * pipes share fs.pipe-user-pages-soft (16,384 pages = 64 MiB by default);
 * past it every new pipe of that user, Bun's own included, gets two pages.
 * So the enlarged pipes of all workers (one per core by default) stay within
 * a quarter of it: 8 MiB per worker on 2 cores, 8 bulk directions at 1 MiB;
 * the rest keep the default size. A refusal (EPERM) stops enlarging anyway.
 */
function bigPipes(pipeSize: number | undefined): { size: number; budget: number } {
  const max = procInt("/proc/sys/fs/pipe-max-size") ?? BIG_PIPE;
  const size = Math.min(pipeSize ?? BIG_PIPE, max, BIG_PIPE);
  const soft = procInt("/proc/sys/fs/pipe-user-pages-soft");
  const quota = soft === null || soft === 0 ? 256 * MIB : soft * 4096;
  const budget = Math.max(2 * MIB, Math.min(32 * MIB, Math.floor(quota / 4 / Math.max(1, availableParallelism()))));
  return { size, budget };
}

interface Native {
  /** The descriptor to watch for completions, or -errno. */
  kr_init(n: number, pipes: number, bigSize: number, bigBudget: number): number;
  kr_bytes(): number;
  kr_prepare(i: number, gen: number, client: number, upstream: number): number;
  kr_start(i: number, gen: number): number;
  kr_kill(i: number, gen: number): number;
  kr_poll(out: Float64Array, max: number): number;
  kr_pipes_open(): number;
  kr_stop(): number;
}

class Handle implements KernelRelayHandle {
  constructor(readonly relay: BunKernelRelay, readonly slot: number, readonly gen: number, readonly owner: KernelRelayOwner) {}
  get toUpstream(): number {
    return this.relay.counters![2 * this.slot]!;
  }
  get toClient(): number {
    return this.relay.counters![2 * this.slot + 1]!;
  }
  close(): void {
    this.relay.kill(this);
  }
}

export class BunKernelRelay implements KernelRelay {
  private native: Native | null = null;
  private reason: string | null = null;
  private started = false;
  /** The library and the notify socket, kept reachable for the worker's lifetime. */
  // deno-lint-ignore no-explicit-any
  private lib: any = null;
  // deno-lint-ignore no-explicit-any
  private notify: any = null;
  counters: Float64Array | null = null;
  private handles: (Handle | null)[] = [];
  private gens: Uint32Array = new Uint32Array(0);
  private free: number[] = [];
  private readonly doneBuf = new Float64Array(DONE_FIELDS * POLL_BATCH);
  private killing = new Set<Handle>();

  get active(): number {
    return this.handles.length - this.free.length;
  }

  start(opts: KernelRelayOptions): string | null {
    if (this.started) return this.reason;
    this.started = true;
    try {
      this.reason = this.boot(opts);
    } catch (err) {
      this.reason = `cannot start the native relay loop: ${err instanceof Error ? err.message : String(err)}`;
    }
    return this.reason;
  }

  private boot(opts: KernelRelayOptions): string | null {
    if (process.platform !== "linux") return `the kernel relay needs Linux (splice, epoll); this is ${process.platform}`;
    const relays = Math.floor(opts.maxPipes / 2);
    if (relays < 1) return "relay.max_pipes allows no relay (two pipes each)";
    // deno-lint-ignore no-explicit-any
    const ffi = (import.meta as any).require("bun:ffi");
    const { i32, u32, ptr } = ffi.FFIType;
    // cc reads a file; inside the single executable the source is only a string, so it is written to a private directory first.
    const dir = mkdtempSync(join(tmpdir(), "edgemux-relay-"));
    let lib;
    try {
      const src = join(dir, "relay.c");
      writeFileSync(src, RELAY_C, { mode: 0o600 });
      lib = ffi.cc({
        source: src,
        symbols: {
          kr_init: { args: [i32, i32, i32, i32], returns: i32 },
          kr_bytes: { args: [], returns: ptr },
          kr_prepare: { args: [i32, u32, i32, i32], returns: i32 },
          kr_start: { args: [i32, u32], returns: i32 },
          kr_kill: { args: [i32, u32], returns: i32 },
          kr_poll: { args: [ptr, i32], returns: i32 },
          kr_pipes_open: { args: [], returns: i32 },
          kr_stop: { args: [], returns: i32 },
        },
      });
    } catch (err) {
      return `cannot compile the native relay with bun:ffi's cc: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const native = lib.symbols as Native;
    const big = bigPipes(opts.pipeSize);
    const notifyFd = native.kr_init(relays, relays * 2, big.size, big.budget);
    if (notifyFd < 0) return `the native relay loop did not start (errno ${-notifyFd})`;
    this.lib = lib;
    this.native = native;
    this.counters = new Float64Array(ffi.toArrayBuffer(native.kr_bytes(), 0, relays * 2 * 8));
    this.handles = new Array<Handle | null>(relays).fill(null);
    this.gens = new Uint32Array(relays);
    for (let i = relays - 1; i >= 0; i--) this.free.push(i);
    // The JS end of the pair, watched by Bun's own event loop; unref'd so it never keeps a worker alive.
    const self = this;
    Bun.connect({
      fd: notifyFd,
      socket: {
        data() {
          self.drainCompletions();
        },
        close() {},
        error() {},
      },
    }).then((s: { unref(): void }) => {
      s.unref();
      this.notify = s;
    });
    // A worker that ends (drain, restart) stops its loop first: the thread runs code that belongs to this worker.
    process.on("exit", () => this.stop());
    return null;
  }

  canAdopt(client: Conn, upstream: Conn): boolean {
    if (this.native === null) return false;
    const a = handover(client);
    const b = handover(upstream);
    return a !== null && b !== null && a.handoverFd() >= 0 && b.handoverFd() >= 0;
  }

  adopt(client: Conn, upstream: Conn, owner: KernelRelayOwner): KernelRelayHandle | null {
    const native = this.native;
    if (native === null || this.free.length === 0) return null;
    const a = handover(client);
    const b = handover(upstream);
    if (a === null || b === null) return null;
    const fa = a.handoverFd();
    const fb = b.handoverFd();
    if (fa < 0 || fb < 0) return null;
    const slot = this.free.pop()!;
    // Modular, kept below 2^31 so it stays an int32 for bun:ffi; only equality matters.
    const gen = (this.gens[slot] = (this.gens[slot]! + 1) & 0x7fffffff);
    const r = native.kr_prepare(slot, gen, fa | 0, fb | 0);
    if (r !== 0) {
      this.free.push(slot);
      if (r !== -EBUSY) this.failures++;
      return null;
    }
    // From here the loop holds its own descriptors: Bun lets go of its copies, then the loop starts.
    a.handedOver();
    b.handedOver();
    const h = new Handle(this, slot, gen, owner);
    this.handles[slot] = h;
    native.kr_start(slot, gen);
    return h;
  }

  /** kr_prepare failures other than an empty pool (EMFILE and the like), for the status line. */
  failures = 0;

  kill(h: Handle): void {
    if (this.handles[h.slot] !== h || this.killing.has(h)) return;
    this.killing.add(h);
    this.native!.kr_kill(h.slot, h.gen);
  }

  private drainCompletions(): void {
    const native = this.native;
    if (native === null) return;
    const buf = this.doneBuf;
    for (;;) {
      const n = native.kr_poll(buf, POLL_BATCH);
      for (let k = 0; k < n; k++) {
        const o = k * DONE_FIELDS;
        // `| 0`: a number read from a Float64Array is a double, and bun:ffi passes a double to an i32 argument as 0.
        const slot = buf[o]! | 0;
        const h = this.handles[slot];
        if (h === null || h === undefined || h.gen !== buf[o + 1]) continue;
        this.handles[slot] = null;
        this.free.push(slot);
        this.killing.delete(h);
        const errno = buf[o + 2]!;
        const side = buf[o + 3]!;
        h.owner.kernelRelayEnded(buf[o + 4]!, buf[o + 5]!, errno === 0 ? null : side === 0 ? "client" : "upstream", errno);
      }
      if (n < POLL_BATCH) return;
    }
  }

  /** Pipes the loop holds (in use and pooled). */
  pipesOpen(): number {
    return this.native?.kr_pipes_open() ?? 0;
  }

  stop(): void {
    const native = this.native;
    if (native === null) return;
    this.native = null;
    native.kr_stop();
    this.notify?.end?.();
  }
}
