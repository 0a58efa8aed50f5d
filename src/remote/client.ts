/**
 * The operator's side of remote access (`edgemux shell`, `cp`,
 * `agent-reload`): a tunnel session with the role "operator" (an agent
 * session that exposes nothing and forwards nothing), over which each
 * request is one stream opened with a `remote` message. The edge checks the
 * token and passes the request to the agent; a refusal from either arrives
 * as an EdgeRefusal with its numbered code.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { parseAddress } from "../config/address.ts";
import { parseDuration } from "../config/durations.ts";
import { ConfigError } from "../config/issues.ts";
import { ProxyError } from "../errors/mod.ts";
import { nextConnId } from "../log/mod.ts";
import { MuxTicker } from "../mux/ticker.ts";
import type { RemoteMessage } from "../proto/tunnel_control.ts";
import type { Conn, Runtime } from "../runtime/types.ts";
import { AGENT_DEFAULTS } from "../agent/defaults.ts";
import { type ConnectFn, dialEdge, type DialSettings, EdgeRefusal } from "../agent/dial.ts";
import { AgentSession, type SessionEvents } from "../agent/session.ts";
import { FrameStream } from "./frame_stream.ts";

export { EdgeRefusal };

/** Flags every operator command takes (cli/commands.ts operatorFlags). */
export interface OperatorFlags {
  edge?: string;
  servername?: string;
  transport?: string;
  token?: string;
  "token-file"?: string;
  ca?: string;
  cert?: string;
  key?: string;
  "connect-timeout"?: string;
}

/** Dial settings from the flags (and $EDGEMUX_EDGE, $EDGEMUX_TOKEN); throws a ConfigError naming every problem. */
export function operatorSettings(flags: OperatorFlags, env: (name: string) => string | undefined): DialSettings {
  const problems: string[] = [];
  const edgeText = flags.edge ?? env("EDGEMUX_EDGE");
  let edge = { hostname: "", port: 0 };
  if (edgeText === undefined) problems.push("--edge: is required (or $EDGEMUX_EDGE): the edge's tunnel listener, HOST:PORT");
  else {
    try {
      const a = parseAddress(edgeText, "--edge", { allowPortZero: false, allowHostnames: true, allowUnix: false });
      if (a.kind === "tcp") edge = { hostname: a.hostname, port: a.port };
    } catch (e) {
      problems.push(...(e instanceof ConfigError ? e.issues : [(e as Error).message]));
    }
  }
  const read = (path: string | undefined, flag: string): string | null => {
    if (path === undefined) return null;
    try {
      return readFileSync(resolve(path), "utf8");
    } catch (e) {
      problems.push(`--${flag}: cannot read ${JSON.stringify(path)}: ${(e as Error).message}`);
      return null;
    }
  };
  let token = flags.token ?? null;
  if (token === null && flags["token-file"] !== undefined) token = read(flags["token-file"], "token-file")?.trim() ?? null;
  token ??= env("EDGEMUX_TOKEN") ?? null;
  if (token === null && flags.cert === undefined) problems.push("--token: an operator token is required (--token, --token-file or $EDGEMUX_TOKEN), or a client certificate (--cert, --key)");
  const transport = flags.transport ?? AGENT_DEFAULTS.transport;
  if (transport !== "upgrade" && transport !== "websocket") problems.push(`--transport: must be upgrade | websocket, got ${JSON.stringify(transport)}`);
  if ((flags.cert === undefined) !== (flags.key === undefined)) problems.push("--cert: --cert and --key go together");
  let connectTimeoutMs = 10_000;
  try {
    connectTimeoutMs = parseDuration(flags["connect-timeout"] ?? AGENT_DEFAULTS.connectTimeout, "--connect-timeout");
  } catch (e) {
    problems.push(...(e instanceof ConfigError ? e.issues : [(e as Error).message]));
  }
  if (problems.length > 0) throw new ConfigError(problems, "invalid flags");
  return {
    edge,
    servername: flags.servername ?? edge.hostname,
    transport: transport as "upgrade" | "websocket",
    token,
    ca: read(flags.ca, "ca"),
    cert: read(flags.cert, "cert"),
    key: read(flags.key, "key"),
    connectTimeoutMs,
  };
}

/** The name an operator session gives in its hello (the edge logs it beside the token's name). */
function operatorName(): string {
  return `op-${hostname().split(".")[0]!.replace(/[^A-Za-z0-9_.@-]/g, "-")}`.slice(0, 64);
}

export class OperatorClient implements SessionEvents {
  private readonly ticker = new MuxTicker(1000);
  private session: AgentSession | null = null;
  private ready!: { resolve: () => void; reject: (e: Error) => void };

  private constructor() {}

  /** Dials the edge and waits for its welcome; rejects with an EdgeRefusal (e.g. ROLE_DENIED for a token without "operator"). */
  static async connect(rt: Runtime, settings: DialSettings, connect?: ConnectFn): Promise<OperatorClient> {
    const c = new OperatorClient();
    const dialed = await dialEdge(settings, connect ?? ((o) => rt.connect(o)));
    await new Promise<void>((resolve, reject) => {
      c.ready = { resolve, reject };
      c.session = new AgentSession(dialed, { agent: operatorName(), roles: ["operator"], services: [] }, c, c.ticker, {
        openTimeoutMs: Math.max(settings.connectTimeoutMs, 30_000),
        helloTimeoutMs: settings.connectTimeoutMs,
        streamWindow: AGENT_DEFAULTS.streamWindow,
        maxStreams: 64,
      });
    });
    return c;
  }

  /** Opens one request; resolves after the agent's ok with the stream's frames, rejects with the refusal. */
  async open(m: Omit<RemoteMessage, "type" | "operator" | "connId">): Promise<FrameStream> {
    const s = this.session;
    if (s === null || s.closed) throw new ProxyError("UPSTREAM_RESET", "upstream", "the session to the edge is gone");
    const conn: Conn = await s.openService({ type: "remote", ...m, connId: nextConnId() });
    const fs = new FrameStream(conn);
    fs.onGone = () => s.streamDone();
    return fs;
  }

  close(): void {
    this.session?.close();
  }

  // ---- SessionEvents
  welcome(): void {
    this.ready.resolve();
  }
  refused(_s: AgentSession, r: EdgeRefusal): void {
    this.ready.reject(r);
  }
  goAway(): void {}
  incoming(_s: AgentSession, stream: Conn): void {
    stream.close();
  }
  remote(_s: AgentSession, stream: Conn): void {
    stream.close();
  }
  closed(_s: AgentSession, err?: ProxyError): void {
    this.ready.reject(err ?? new ProxyError("UPSTREAM_RESET", "upstream", "the edge closed the session"));
  }
}

/** One line for a failed operator command: the refusal's name, number and reason. */
export function describeFailure(e: unknown): string {
  if (e instanceof EdgeRefusal) return `${e.info.name} (${e.code}): ${e.reason}`;
  if (e instanceof RemoteFailure) return `${e.name_} (${e.code}): ${e.message}`;
  if (e instanceof ProxyError) return `${e.code}: ${e.message}`;
  return (e as Error).message ?? String(e);
}

/** A failure the agent reported after its ok (a `fail`/`error` MSG frame, e.g. CHECKSUM_MISMATCH). */
export class RemoteFailure extends Error {
  constructor(readonly code: number, readonly name_: string, message: string) {
    super(message);
  }
}
