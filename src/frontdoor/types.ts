/**
 * The contract between a worker and its listeners, and between the front door
 * and a listener kind.
 */
import type { AccessList } from "../auth/mod.ts";
import type { Config, ListenerConfig } from "../config/types.ts";
import type { ErrorCode, ProxyError } from "../errors/mod.ts";
import type { Logger } from "../log/mod.ts";
import type { RouteBackends } from "../router/mod.ts";
import type { ConnHandler, Listener, Runtime } from "../runtime/types.ts";
import type { KernelPromotion } from "../relay/mod.ts";
import type { StatsWriter } from "../stats/mod.ts";
import type { Dialed, UpstreamContext } from "../upstream/mod.ts";
import type { FrontSession } from "./session.ts";

/** Stats slots of the worker's config: one per listener and per route, plus the overflow ones. */
export interface Slots {
  listeners: Record<string, number>;
  routes: Record<string, number>;
  overflowListener: number;
  overflowRoute: number;
}

/** What every listener of a worker shares for the worker's lifetime. */
export interface ListenerDeps {
  runtime: Runtime;
  stats: StatsWriter;
  /** max_connections cells, indexed by listener slot. */
  limits: Int32Array;
  log: Logger;
  /** The worker's ways out (tunnel hub, HBONE pool). */
  upstream: UpstreamContext;
  /** The kernel relay and when relays move to it ([relay]); null or absent: every relay stays in JavaScript. */
  relay?: KernelPromotion | null;
}

/** What a listener is (re)configured with: the whole config plus what the worker compiled once for all listeners. */
export interface ListenerSettings {
  config: Config;
  listener: ListenerConfig;
  access: AccessList;
  /** One holder per config route (shared balancers and directory caches). */
  backends: readonly RouteBackends[];
  slots: Slots;
}

export interface DataPlaneListener {
  readonly name: string;
  /** Bind (reusePort) and start accepting. */
  start(hostname: string, port: number): Listener | Promise<Listener>;
  /** New routes, limits, policies (SIGHUP); open connections keep what they had. */
  update(settings: ListenerSettings): void;
  /** About twice a second: handshake, idle and linger deadlines. */
  sweep(nowMs: number): void;
  stopAccepting(): void;
  /** Drain deadline: close what is still open. */
  abortAll(): void;
  /** Connections (or flows) open now. */
  readonly open: number;
}

/** One accepted connection as its listener tracks it. */
export interface FrontConnection extends ConnHandler {
  /** Deadlines: handshake, idle, linger. */
  sweep(nowMs: number): void;
  /** Close now, recording why (drain deadline). */
  abort(code: ErrorCode): void;
  /** Stop taking new work on this connection (HTTP/2 GOAWAY, tunnel go-away); open work finishes. */
  drain(): void;
}

/**
 * What a listener kind supplies for one connection: its sans-I/O preamble
 * reader with the policy that decides on it, the dial it asks for, and the
 * encoder of what the client is told (TLS alert, HTTP status, SOCKS reply).
 * The front session (session.ts) does everything else, once.
 */
export interface Preamble {
  /** True when there is nothing to read before dialing (tcp): the session dials at once. */
  readonly immediate: boolean;
  /**
   * Client bytes of the preamble. Returns true once it is complete and the
   * session may dial; false for more bytes. Throws a ProxyError to refuse.
   * May answer mid-way with `s.reply()` (SOCKS5 method choice).
   */
  push(chunk: Uint8Array, s: FrontSession): boolean;
  /** Connects to what the preamble asked for, with `s` as the new connection's handler. */
  dial(s: FrontSession): Promise<Dialed>;
  /** Client bytes for the upstream ahead of everything read later (the ClientHello, bytes behind a CONNECT head); taken once. */
  takeRest(): Uint8Array[];
  /** What the client is told once the upstream is up (HTTP 200, SOCKS5 success), or null. */
  accepted(up: Dialed, s: FrontSession): Uint8Array | null;
  /** What the client is told when refused during the preamble or the dial, or null to just close. */
  refusal(err: ProxyError, s: FrontSession): Uint8Array | null;
  /** The code of a client that half-closed before its preamble was complete. */
  readonly incomplete: ErrorCode;
  /** The message of the connection's log line ("connection", "tunnel"). */
  readonly logMessage: string;
  /** This kind's fields of the log line, added to the common ones. */
  logFields(s: FrontSession, into: Record<string, unknown>): void;
}
