/**
 * Session options and their defaults. The wire-visible ones (frame size,
 * buffers, keepalive) default to what Go smux v2 peers use (DESIGN.md); the
 * rest bound memory on our side.
 */
import { ProxyError } from "../errors/mod.ts";
import { SMUX_MAX_FRAME_LENGTH } from "../proto/smux.ts";

export interface MuxOptions {
  /** True on the dialing side: it opens odd stream ids (3, 5, ...), the other side even ids (2, 4, ...). */
  client: boolean;
  /** smux protocol version; both sides must agree. Default 2. */
  version?: 1 | 2;
  /** Largest PSH payload we send (Go: MaxFrameSize). We accept up to 65535 from the peer, as Go does. Default 32768. */
  maxFrameSize?: number;
  /**
   * Bytes received but not yet taken by stream consumers, for the whole session
   * (Go: MaxReceiveBuffer). Past it the session stops reading its connection
   * until consumers catch up, as Go's recvLoop does. Default 4 MiB.
   */
  maxReceiveBuffer?: number;
  /** v2: the window each stream advertises to the peer in UPD (Go: MaxStreamBuffer). Default 64 KiB. */
  maxStreamBuffer?: number;
  /** Send NOP this often; 0 disables keepalive (and the timeout). Default 10 s. */
  keepAliveIntervalMs?: number;
  /**
   * A session that received nothing for this long is dead. Also bounds how long a
   * stream whose peer sent FIN may wait for a window update (see MuxStream). Default 30 s.
   */
  keepAliveTimeoutMs?: number;
  /** Open streams per session, both directions. A peer SYN beyond it is refused with FIN. Default 1024. */
  maxStreams?: number;
  /** Queued outgoing bytes per stream at which `write()` returns false. Default 64 KiB. */
  streamHighWater?: number;
  /**
   * Hard bound on queued outgoing bytes per stream. A writer that ignores
   * `write() === false` past it gets its stream closed with an error. Default 1 MiB.
   */
  maxStreamPending?: number;
  /** Queued outgoing bytes across the session at which every stream's `write()` returns false. Default 8 MiB. */
  sessionHighWater?: number;
}

export type ResolvedMuxOptions = Required<MuxOptions>;

export const MUX_DEFAULTS: Omit<ResolvedMuxOptions, "client"> = {
  version: 2,
  maxFrameSize: 32768,
  maxReceiveBuffer: 4 * 1024 * 1024,
  maxStreamBuffer: 65536,
  keepAliveIntervalMs: 10_000,
  keepAliveTimeoutMs: 30_000,
  maxStreams: 1024,
  streamHighWater: 64 * 1024,
  maxStreamPending: 1024 * 1024,
  sessionHighWater: 8 * 1024 * 1024,
};

function bad(field: string, rule: string, got: unknown): never {
  throw new ProxyError("CONFIG", "internal", `mux.${field}: ${rule}, got ${String(got)}`);
}

function positiveInt(o: ResolvedMuxOptions, field: keyof ResolvedMuxOptions, max = Number.MAX_SAFE_INTEGER): void {
  const v = o[field] as number;
  if (!Number.isInteger(v) || v <= 0 || v > max) bad(field, `must be an integer 1..${max}`, v);
}

/** Fills defaults and checks the same rules as Go's VerifyConfig, plus our own bounds. */
export function resolveMuxOptions(opts: MuxOptions): ResolvedMuxOptions {
  const o: ResolvedMuxOptions = { ...MUX_DEFAULTS, ...stripUndefined(opts) } as ResolvedMuxOptions;
  if (o.version !== 1 && o.version !== 2) bad("version", "must be 1 or 2", o.version);
  positiveInt(o, "maxFrameSize", SMUX_MAX_FRAME_LENGTH);
  positiveInt(o, "maxReceiveBuffer");
  // Go: "max stream buffer cannot be larger than 2147483647" (it travels as a u32 window).
  positiveInt(o, "maxStreamBuffer", 0x7fffffff);
  // Go: "max stream buffer must not be larger than max receive buffer".
  if (o.maxStreamBuffer > o.maxReceiveBuffer) bad("maxStreamBuffer", `must not exceed maxReceiveBuffer (${o.maxReceiveBuffer})`, o.maxStreamBuffer);
  if (!Number.isInteger(o.keepAliveIntervalMs) || o.keepAliveIntervalMs < 0) {
    bad("keepAliveIntervalMs", "must be an integer >= 0 (0 disables keepalive)", o.keepAliveIntervalMs);
  }
  // Go: "keep-alive timeout must be larger than keep-alive interval".
  if (o.keepAliveIntervalMs > 0 && !(o.keepAliveTimeoutMs >= o.keepAliveIntervalMs)) {
    bad("keepAliveTimeoutMs", `must be >= keepAliveIntervalMs (${o.keepAliveIntervalMs})`, o.keepAliveTimeoutMs);
  }
  positiveInt(o, "maxStreams");
  positiveInt(o, "streamHighWater");
  positiveInt(o, "sessionHighWater");
  positiveInt(o, "maxStreamPending");
  // A writer that pauses on `false` may still add one chunk (its read in flight); leave room for it.
  if (o.maxStreamPending < 2 * o.streamHighWater) {
    bad("maxStreamPending", `must be at least 2 × streamHighWater (${2 * o.streamHighWater})`, o.maxStreamPending);
  }
  return o;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
