/**
 * Tunnel control messages (DESIGN.md "Tunnel session (edge ⇄ agent)"), sans-I/O.
 *
 * Every message is one msgpack map (string keys, no extension types, so any
 * msgpack library can read it) behind a length prefix:
 *
 *   length u32 BE | msgpack map[length]
 *
 * `length` is bounded by the reader (64 KiB on the control stream, 4 KiB on a
 * data stream's open exchange) before anything is buffered past it.
 *
 * The control stream is the first stream the agent opens. The agent sends
 * `hello`; the edge answers `welcome` or `error` (then closes the session).
 * Later either side may send `announce` (agent: services added or removed),
 * the edge `goaway` (drain: reconnect after `reconnect_ms`) or `error`.
 * Every data stream starts with one `open` from the side that opened it,
 * answered by `ok` or `error`; raw bytes follow.
 *
 * Decoding checks the shape of each message: a field of the wrong type, a
 * name outside its grammar or a list over its bound is a TUNNEL_PROTOCOL
 * error. Keys this version does not know are ignored (a newer peer may add
 * some); a message `type` it does not know is an error.
 */
import { ChunkQueue } from "./chunk_queue.ts";
// The small msgpack codec of proto/ rather than a general library: every agent loads this module, and
// msgpackr (with its native string extractor) cost an idle agent several MB of resident memory.
import { decodeMsgpack, encodeMsgpack } from "./msgpack.ts";
import { ProxyError, TunnelErrorCode } from "../errors/mod.ts";

/** Protocol version carried in hello; the edge refuses others with VERSION. */
export const TUNNEL_VERSION = 1;
export const TUNNEL_PREFIX_BYTES = 4;
/** Bound for one control-stream message. */
export const CONTROL_MAX_MESSAGE = 64 * 1024;
/** Bound for the open / ok / error exchange that starts a data stream. */
export const OPEN_MAX_MESSAGE = 4 * 1024;
/** Services one hello or announce may name. */
export const MAX_SERVICES = 256;
export const MAX_TOKEN_BYTES = 4096;
export const MAX_TEXT = 1024;

/** `[a-z0-9]`, then up to 62 of `[a-z0-9_.-]`: what `tunnel:NAME` targets and `--expose NAME=` accept. */
export const SERVICE_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
/** Agent names: letters, digits and `_ . @ -`, 1..64. */
export const AGENT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
/** Connection ids (open.conn): `[A-Za-z0-9._:-]`, 1..64. A peer's id goes into our logs, so its shape is checked. */
export const CONN_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export type TunnelRole = "source" | "destination" | "operator";
export type ServiceProto = "tcp" | "udp";
export type ProxyWish = "none" | "v1" | "v2";

export interface ServiceSpec {
  name: string;
  proto: ServiceProto;
}

export interface HelloMessage {
  type: "hello";
  version: number;
  agent: string;
  roles: TunnelRole[];
  services: ServiceSpec[];
  /** Bearer token, for agents that could not send an Authorization header (WebSocket clients). */
  token?: string;
}

export interface WelcomeMessage {
  type: "welcome";
  /** Session id the edge logs under. */
  session: string;
  /** The agent's address as the edge sees it. */
  peer: string;
  /** Edge software and version. */
  edge: string;
}

export interface AnnounceMessage {
  type: "announce";
  add: ServiceSpec[];
  remove: string[];
}

export interface GoAwayMessage {
  type: "goaway";
  /** Reconnect after this long (the edge is draining or restarting). */
  reconnectMs: number;
  reason: string;
}

export interface ErrorMessage {
  type: "error";
  /** A TunnelErrorCode value. */
  code: number;
  message: string;
}

export interface OpenMessage {
  type: "open";
  service: string;
  proto: ServiceProto;
  /** The original client, "ip:port" ("[v6]:port"), or "" when unknown. */
  client: string;
  /** The address the original client connected to, same form, or "". */
  server: string;
  /** PROXY header the destination should put in front of the bytes to its service. */
  proxy: ProxyWish;
  /**
   * The connection's id (wire key `conn`), logged by every side as `conn`:
   * the edge's id of the client connection, or a source agent's id of its
   * local connection. Optional: peers before it neither send nor read it.
   */
  connId?: string;
}

export interface OkMessage {
  type: "ok";
}

/** What an operator stream asks of an agent. */
export type RemoteKind = "shell" | "put" | "get" | "list" | "mkdir" | "reload";
export const REMOTE_KINDS: readonly RemoteKind[] = ["shell", "put", "get", "list", "mkdir", "reload"];

/**
 * Opens an operator stream (remote access: a shell, a file, a reload) to the
 * agent named `agent`. An operator client sends it to the edge, which checks
 * its token (role "operator", `agents` patterns), sets `operator` to the
 * token's name and passes it to the agent; the agent answers ok or error
 * (a numbered refusal), then the stream carries remote/frames.ts frames.
 * Fields apply per kind; absent ones are left out on the wire.
 */
export interface RemoteMessage {
  type: "remote";
  kind: RemoteKind;
  agent: string;
  /** Set by the edge: the [[tokens]] name the operator authenticated as (what the agent logs). Ignored from clients. */
  operator?: string;
  /** put/get/list/mkdir: a path relative to the agent's file roots (`/` separated). */
  path?: string;
  /** put: the whole file's size in bytes. */
  size?: number;
  /** put: the whole file's SHA-256, 64 lowercase hex digits. */
  sha256?: string;
  /** put: permission bits for the new file; shell: unused. */
  mode?: number;
  /** get: the byte to start at (a resumed copy already has the bytes before it). */
  offset?: number;
  /** shell: the command and its arguments; absent = the agent's configured shell. */
  command?: string[];
  /** shell: the terminal's size and type. */
  cols?: number;
  rows?: number;
  term?: string;
  /** The operator connection's id, logged by both sides. */
  connId?: string;
}

export type TunnelMessage = HelloMessage | WelcomeMessage | AnnounceMessage | GoAwayMessage | ErrorMessage | OpenMessage | OkMessage | RemoteMessage;

/**
 * Numbered, stable error codes carried in `error` messages and in the
 * `Edgemux-Error` header of a refused upgrade. `exit`: the agent prints the
 * reason and exits (retrying cannot help); otherwise it retries with backoff
 * (session errors) or fails only that stream (stream errors).
 */
// The numbers live in errors/ (its wire table reads them; importing them from here would be a cycle).
export { TunnelErrorCode };
export type TunnelErrorCodeValue = (typeof TunnelErrorCode)[keyof typeof TunnelErrorCode];

export interface TunnelErrorInfo {
  name: keyof typeof TunnelErrorCode;
  /** What the agent does: exit, retry the session, or fail the one stream. */
  action: "exit" | "retry" | "stream";
  meaning: string;
}

export const TUNNEL_ERRORS: Readonly<Record<TunnelErrorCodeValue, TunnelErrorInfo>> = {
  1: { name: "PROTOCOL", action: "exit", meaning: "malformed or unexpected message" },
  2: { name: "VERSION", action: "exit", meaning: "the edge does not speak this protocol version" },
  3: { name: "HELLO_TIMEOUT", action: "retry", meaning: "no hello within the handshake timeout" },
  10: { name: "BAD_TOKEN", action: "exit", meaning: "the token (or client certificate) is not known" },
  11: { name: "ROLE_DENIED", action: "exit", meaning: "the token does not grant the role asked for" },
  12: { name: "CIDR_DENIED", action: "exit", meaning: "the agent's address is outside the token's allow list or in its deny list" },
  13: { name: "SERVICE_DENIED", action: "exit", meaning: "a service name is outside the token's service pattern" },
  14: { name: "SESSION_LIMIT", action: "retry", meaning: "the token's max_sessions are in use" },
  15: { name: "AUTH_REQUIRED", action: "exit", meaning: "neither a token nor a client certificate was presented" },
  20: { name: "SERVICE_UNKNOWN", action: "stream", meaning: "no service of that name is exposed" },
  21: { name: "SERVICE_OFFLINE", action: "stream", meaning: "the service's destination agent went away" },
  22: { name: "SERVICE_UNREACHABLE", action: "stream", meaning: "the destination agent could not reach its local service" },
  30: { name: "DRAINING", action: "retry", meaning: "the edge is shutting down" },
  31: { name: "INTERNAL", action: "retry", meaning: "internal error on the edge" },
  40: { name: "AGENT_DENIED", action: "stream", meaning: "the operator token's agents patterns do not name that agent" },
  41: { name: "AGENT_UNKNOWN", action: "stream", meaning: "no agent of that name is connected" },
  42: { name: "REMOTE_DISABLED", action: "stream", meaning: "the agent does not offer this (no --allow-shell / --allow-files, no PTY, or read-only)" },
  43: { name: "COMMAND_DENIED", action: "stream", meaning: "the command is outside the agent's [shell] allow list" },
  44: { name: "PATH_DENIED", action: "stream", meaning: "the path is absolute, has a .. segment, or leaves the agent's file roots through a symlink" },
  45: { name: "FILE_TOO_LARGE", action: "stream", meaning: "the file is over the agent's [files] max_size" },
  46: { name: "FILE_FAILED", action: "stream", meaning: "no such file, not a regular file or directory, or an I/O error on the agent" },
  47: { name: "CHECKSUM_MISMATCH", action: "stream", meaning: "the bytes received do not have the sender's SHA-256 (the partial copy was discarded)" },
  48: { name: "RELOAD_FAILED", action: "stream", meaning: "the agent's config file does not validate; nothing was applied" },
};

export function tunnelErrorInfo(code: number): TunnelErrorInfo {
  return TUNNEL_ERRORS[code as TunnelErrorCodeValue] ?? { name: "INTERNAL", action: "retry", meaning: `unknown error code ${code}` };
}

// ---------------------------------------------------------------- encoding


/** The wire form of each message (snake_case keys, absent optional fields left out). */
function wireForm(m: TunnelMessage): Record<string, unknown> {
  switch (m.type) {
    case "hello": {
      const w: Record<string, unknown> = { type: m.type, version: m.version, agent: m.agent, roles: m.roles, services: m.services };
      if (m.token !== undefined) w.token = m.token;
      return w;
    }
    case "goaway":
      return { type: m.type, reconnect_ms: m.reconnectMs, reason: m.reason };
    case "open": {
      const w: Record<string, unknown> = { type: m.type, service: m.service, proto: m.proto, client: m.client, server: m.server, proxy: m.proxy };
      if (m.connId !== undefined) w.conn = m.connId;
      return w;
    }
    case "remote": {
      const w: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(m)) if (v !== undefined) w[k === "connId" ? "conn" : k] = v;
      return w;
    }
    default:
      return m as unknown as Record<string, unknown>;
  }
}

/** One length-prefixed message in a fresh buffer. Throws when it would exceed `max`. */
export function encodeTunnelMessage(m: TunnelMessage, max = CONTROL_MAX_MESSAGE): Uint8Array {
  const body = encodeMsgpack(wireForm(m));
  if (body.length > max) {
    throw new ProxyError("TUNNEL_PROTOCOL", "internal", `tunnel ${m.type} message is ${body.length} bytes, over the ${max}-byte bound`);
  }
  const out = new Uint8Array(TUNNEL_PREFIX_BYTES + body.length);
  const n = body.length;
  out[0] = n >>> 24;
  out[1] = (n >>> 16) & 0xff;
  out[2] = (n >>> 8) & 0xff;
  out[3] = n & 0xff;
  out.set(body, TUNNEL_PREFIX_BYTES);
  return out;
}

// ---------------------------------------------------------------- decoding

export class TunnelMessageDecoder {
  private readonly queue = new ChunkQueue();
  private dead: ProxyError | null = null;

  /** `maxMessage`: the bound on one message body (CONTROL_MAX_MESSAGE or OPEN_MAX_MESSAGE). */
  constructor(readonly maxMessage = CONTROL_MAX_MESSAGE, private readonly source: "downstream" | "upstream" = "downstream") {}

  get bufferedBytes(): number {
    return this.queue.length;
  }

  push(chunk: Uint8Array): void {
    if (this.dead === null) this.queue.push(chunk);
  }

  /** The next whole message, or null when more bytes are needed. Throws ProxyError("TUNNEL_PROTOCOL"); then it stays dead. */
  next(): TunnelMessage | null {
    if (this.dead !== null) throw this.dead;
    const q = this.queue;
    if (q.length < TUNNEL_PREFIX_BYTES) return null;
    const p = q.peek(TUNNEL_PREFIX_BYTES);
    const length = ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
    if (length === 0) this.fail("empty message");
    if (length > this.maxMessage) this.fail(`message of ${length} bytes, over the ${this.maxMessage}-byte bound`);
    if (q.length < TUNNEL_PREFIX_BYTES + length) return null;
    q.skip(TUNNEL_PREFIX_BYTES);
    const body = q.take(length);
    let value: unknown;
    try {
      value = decodeMsgpack(body);
    } catch (err) {
      this.fail(`not msgpack: ${(err as Error).message}`);
    }
    try {
      return checkMessage(value);
    } catch (err) {
      this.fail((err as Error).message);
    }
  }

  /** Bytes pushed after the last returned message (raw stream data), as views; the decoder is empty after. */
  rest(): Uint8Array[] {
    return this.queue.drain();
  }

  private fail(message: string): never {
    this.dead = new ProxyError("TUNNEL_PROTOCOL", this.source, `tunnel message: ${message}`);
    this.queue.clear();
    throw this.dead;
  }
}

// ---------------------------------------------------------------- shape checks

class ShapeError extends Error {}

function bad(msg: string): never {
  throw new ShapeError(msg);
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function str(o: Obj, key: string, what: string, max = MAX_TEXT): string {
  const v = o[key];
  if (typeof v !== "string") bad(`${what}.${key} must be a string`);
  if (v.length > max) bad(`${what}.${key} is longer than ${max} characters`);
  return v;
}

function uint(o: Obj, key: string, what: string, max: number): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) bad(`${what}.${key} must be an integer 0..${max}`);
  return v;
}

function oneOf<T extends string>(o: Obj, key: string, what: string, values: readonly T[]): T {
  const v = o[key];
  if (typeof v !== "string" || !(values as readonly string[]).includes(v)) bad(`${what}.${key} must be one of ${values.join(" | ")}`);
  return v as T;
}

function serviceName(v: unknown, what: string): string {
  if (typeof v !== "string" || !SERVICE_NAME.test(v)) bad(`${what} must be a service name ([a-z0-9][a-z0-9_.-]{0,62})`);
  return v;
}

function services(v: unknown, what: string): ServiceSpec[] {
  if (!Array.isArray(v)) bad(`${what} must be an array`);
  if (v.length > MAX_SERVICES) bad(`${what} has ${v.length} entries, over ${MAX_SERVICES}`);
  const seen = new Set<string>();
  return v.map((s, i) => {
    if (!isObj(s)) bad(`${what}[${i}] must be a map`);
    const name = serviceName(s.name, `${what}[${i}].name`);
    if (seen.has(name)) bad(`${what}[${i}].name ${name} is listed twice`);
    seen.add(name);
    return { name, proto: oneOf(s, "proto", `${what}[${i}]`, ["tcp", "udp"] as const) };
  });
}

const ROLES = ["source", "destination", "operator"] as const;
/** Bounds of a remote open (the whole message is also under OPEN_MAX_MESSAGE). */
export const MAX_REMOTE_PATH = 1024;
export const MAX_COMMAND_ARGS = 64;
/** 2^53 - 1: sizes and offsets are exact in a double. */
const MAX_FILE_SIZE = Number.MAX_SAFE_INTEGER;
const PROXY_WISHES = ["none", "v1", "v2"] as const;

/** Validates a decoded msgpack value into a TunnelMessage; throws a ShapeError naming the field. */
export function checkMessage(v: unknown): TunnelMessage {
  if (!isObj(v)) bad("a message must be a map");
  const type = v.type;
  switch (type) {
    case "hello": {
      const agent = str(v, "agent", "hello", 64);
      if (!AGENT_NAME.test(agent)) bad("hello.agent must match [A-Za-z0-9][A-Za-z0-9_.@-]{0,63}");
      const rolesRaw = v.roles;
      if (!Array.isArray(rolesRaw) || rolesRaw.length === 0 || rolesRaw.length > ROLES.length) bad(`hello.roles must list 1 to ${ROLES.length} roles`);
      const roles = rolesRaw.map((r, i) => {
        if (typeof r !== "string" || !(ROLES as readonly string[]).includes(r)) bad(`hello.roles[${i}] must be source | destination | operator`);
        return r as TunnelRole;
      });
      if (new Set(roles).size !== roles.length) bad("hello.roles lists a role twice");
      const m: HelloMessage = {
        type,
        version: uint(v, "version", "hello", 0xffff),
        agent,
        roles,
        services: services(v.services, "hello.services"),
      };
      if (v.token !== undefined && v.token !== null) m.token = str(v, "token", "hello", MAX_TOKEN_BYTES);
      return m;
    }
    case "welcome":
      return { type, session: str(v, "session", "welcome", 128), peer: str(v, "peer", "welcome", 128), edge: str(v, "edge", "welcome", 128) };
    case "announce": {
      const remove = v.remove;
      if (!Array.isArray(remove) || remove.length > MAX_SERVICES) bad(`announce.remove must be an array of at most ${MAX_SERVICES} names`);
      return { type, add: services(v.add, "announce.add"), remove: remove.map((n, i) => serviceName(n, `announce.remove[${i}]`)) };
    }
    case "goaway":
      return { type, reconnectMs: uint(v, "reconnect_ms", "goaway", 86_400_000), reason: str(v, "reason", "goaway") };
    case "error":
      return { type, code: uint(v, "code", "error", 0xffff), message: str(v, "message", "error") };
    case "open": {
      const m: OpenMessage = {
        type,
        service: serviceName(v.service, "open.service"),
        proto: oneOf(v, "proto", "open", ["tcp", "udp"] as const),
        client: str(v, "client", "open", 64),
        server: str(v, "server", "open", 64),
        proxy: oneOf(v, "proxy", "open", PROXY_WISHES),
      };
      if (v.conn !== undefined && v.conn !== null) {
        if (typeof v.conn !== "string" || !CONN_ID.test(v.conn)) bad("open.conn must be 1..64 of [A-Za-z0-9._:-]");
        m.connId = v.conn;
      }
      return m;
    }
    case "ok":
      return { type };
    case "remote":
      return checkRemote(v);
    default:
      bad(`unknown message type ${typeof type === "string" ? JSON.stringify(type.slice(0, 32)) : typeof type}`);
  }
}

function optUint(o: Obj, key: string, what: string, max: number): number | undefined {
  return o[key] === undefined || o[key] === null ? undefined : uint(o, key, what, max);
}

/** A remote open: every field checked against its grammar and bound; fields a kind does not use are dropped. */
function checkRemote(v: Obj): RemoteMessage {
  const kind = oneOf(v, "kind", "remote", REMOTE_KINDS);
  const agent = str(v, "agent", "remote", 64);
  if (!AGENT_NAME.test(agent)) bad("remote.agent must match [A-Za-z0-9][A-Za-z0-9_.@-]{0,63}");
  const m: RemoteMessage = { type: "remote", kind, agent };
  if (v.operator !== undefined && v.operator !== null) m.operator = str(v, "operator", "remote", 253);
  if (v.conn !== undefined && v.conn !== null) {
    if (typeof v.conn !== "string" || !CONN_ID.test(v.conn)) bad("remote.conn must be 1..64 of [A-Za-z0-9._:-]");
    m.connId = v.conn;
  }
  if (kind === "put" || kind === "get" || kind === "list" || kind === "mkdir") {
    const path = str(v, "path", "remote", MAX_REMOTE_PATH);
    if (path.includes("\0")) bad("remote.path must not contain NUL");
    m.path = path;
  }
  if (kind === "put") {
    m.size = uint(v, "size", "remote", MAX_FILE_SIZE);
    const sha = str(v, "sha256", "remote", 64);
    if (!/^[0-9a-f]{64}$/.test(sha)) bad("remote.sha256 must be 64 lowercase hex digits");
    m.sha256 = sha;
    const mode = optUint(v, "mode", "remote", 0o7777);
    if (mode !== undefined) m.mode = mode;
  }
  if (kind === "get") {
    const offset = optUint(v, "offset", "remote", MAX_FILE_SIZE);
    if (offset !== undefined) m.offset = offset;
  }
  if (kind === "shell") {
    if (v.command !== undefined && v.command !== null) {
      const c = v.command;
      if (!Array.isArray(c) || c.length === 0 || c.length > MAX_COMMAND_ARGS) bad(`remote.command must list 1..${MAX_COMMAND_ARGS} strings`);
      m.command = c.map((a, i) => {
        if (typeof a !== "string" || a.length > MAX_TEXT || a.includes("\0")) bad(`remote.command[${i}] must be a string of at most ${MAX_TEXT} characters without NUL`);
        return a;
      });
      if (m.command[0] === "") bad("remote.command[0] must not be empty");
    }
    const cols = optUint(v, "cols", "remote", 0xffff);
    const rows = optUint(v, "rows", "remote", 0xffff);
    if (cols !== undefined) m.cols = cols;
    if (rows !== undefined) m.rows = rows;
    if (v.term !== undefined && v.term !== null) {
      const term = str(v, "term", "remote", 64);
      if (!/^[A-Za-z0-9._+-]{1,64}$/.test(term)) bad("remote.term must be 1..64 of [A-Za-z0-9._+-]");
      m.term = term;
    }
  }
  return m;
}
