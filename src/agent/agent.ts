/**
 * `edgemux agent`: keeps one tunnel session to the edge and serves both roles
 * over it.
 *
 * - Destination: the edge opens a stream per client of an exposed service;
 *   the agent connects to the service (TCP, unix socket, the built-in file
 *   server, or UDP), answers ok (or error SERVICE_UNREACHABLE), optionally
 *   sends a PROXY header with the original client's address, and relays.
 * - Source: a local listener per `--forward`; each accepted connection opens
 *   a stream to the named service through the edge (`--forward-udp`: one
 *   stream per client address, datagrams framed as DESIGN.md says).
 *
 * Reconnects with exponential backoff and jitter (equal jitter: half the
 * delay fixed, half random), starting again from the minimum after a welcome.
 * A refusal whose code says "exit" (bad token, wrong role, CIDR denied,
 * service name not allowed, protocol/version mismatch) ends the agent with
 * exit status 3 after printing the reason; other refusals and network errors
 * are retried. A go-away keeps the old session until its streams finish and
 * dials a new one after the edge's delay.
 */
import { NULL_HANDLER, wallMs } from "../runtime/mod.ts";
import { type ErrorCode, ProxyError } from "../errors/mod.ts";
import { type Logger, nextConnId } from "../log/mod.ts";
// mux/ticker.ts, not mux/mod.ts: the barrel also loads the HTTP/2 (HBONE) multiplexer, which an agent never uses.
import { MuxTicker } from "../mux/ticker.ts";
import {
  encodeProxyV1,
  encodeProxyV2,
  type ProxyAddresses,
  proxyV1Length,
  proxyV2Length,
} from "../proto/proxy_protocol.ts";
import { encodeTunnelMessage, OPEN_MAX_MESSAGE, type OpenMessage, type RemoteMessage, TunnelErrorCode, tunnelErrorInfo, type WelcomeMessage } from "../proto/tunnel_control.ts";
import { Relay, type RelayOwner } from "../relay/mod.ts";
import type { Conn, ConnHandler, HttpServer, Listener, Runtime } from "../runtime/types.ts";
import { formatPeer } from "../proto/ip_text.ts";
import { VERSION } from "../version.ts";
import { type AgentConfig, describeTarget, type Expose, type FilesConfig, type Forward, type ShellConfig } from "./config.ts";
import { type ConnectFn, dialEdge, EdgeRefusal } from "./dial.ts";
import { AgentSession, type SessionEvents } from "./session.ts";
import { UdpDestination, type UdpHost, UdpSource } from "./udp.ts";

export type AgentState = "connecting" | "connected" | "backoff" | "stopped" | "refused";

/** Exit status when the edge refused the agent for a reason retrying cannot fix. */
export const EXIT_REFUSED = 3;

export interface AgentDeps {
  runtime: Runtime;
  log: Logger;
  /** Defaults to runtime.connect (tests inject their own). */
  connect?: ConnectFn;
  /** Jitter source, [0, 1). */
  random?: () => number;
  /** Re-reads and validates the agent's config (`edgemux agent-reload`); absent: reload is refused. */
  reload?: () => Promise<AgentConfig>;
  /** With --state-dir: remembers an edge this agent reached (state.ts recordEdge). */
  recordEdge?: (r: { edge: string; session: string; seen_as: string; at: string }) => void;
}

interface Counters {
  streams: number;
  open: number;
  bytesIn: number;
  bytesOut: number;
  errors: number;
}

function counters(): Counters {
  return { streams: 0, open: 0, bytesIn: 0, bytesOut: 0, errors: 0 };
}

/** What a stream's log record names: its service, the connection's id (open.conn) and client. */
interface StreamTag {
  service: string;
  connId: string | null;
  client: string;
}

/** Pairs a local connection with a tunnel stream; counts bytes for the status endpoint; logs the stream's one record. */
class AgentRelay implements RelayOwner {
  private readonly startedAt = wallMs();
  private bytesFromEdge = 0;
  private bytesToEdge = 0;
  constructor(
    private readonly agent: Agent,
    private readonly session: AgentSession,
    private readonly c: Counters,
    /** True when the relay's client is the tunnel stream (destination side). */
    private readonly streamIsClient: boolean,
    private readonly tag: StreamTag,
  ) {}
  relayBytes(_r: Relay, toUpstream: number, toClient: number): void {
    // Bytes in = from the edge, bytes out = to the edge.
    const fromEdge = this.streamIsClient ? toUpstream : toClient;
    const toEdge = this.streamIsClient ? toClient : toUpstream;
    this.bytesFromEdge += fromEdge;
    this.bytesToEdge += toEdge;
    this.c.bytesIn += fromEdge;
    this.c.bytesOut += toEdge;
    this.agent.bytesIn += fromEdge;
    this.agent.bytesOut += toEdge;
  }
  relayClosed(_r: Relay, code: ErrorCode | null): void {
    this.c.open--;
    if (code !== null) this.c.errors++;
    this.session.streamDone();
    this.agent.log.info("tunnel stream", {
      role: this.streamIsClient ? "destination" : "source",
      service: this.tag.service,
      conn: this.tag.connId,
      client: this.tag.client,
      bytes_in: this.bytesFromEdge,
      bytes_out: this.bytesToEdge,
      duration_ms: Math.round(wallMs() - this.startedAt),
      error: code,
    });
  }
}


export class Agent implements SessionEvents, UdpHost {
  state: AgentState = "connecting";
  session: AgentSession | null = null;
  /** Sessions that got a go-away and still finish their streams. */
  private readonly leaving = new Set<AgentSession>();
  readonly ticker = new MuxTicker(1000);
  private readonly connect: ConnectFn;
  private readonly random: () => number;
  private readonly exposes = new Map<string, Expose>();
  /** Where each exposed service is really reached (file servers resolve to a local HTTP port). */
  private readonly targets = new Map<string, Expose["target"]>();
  readonly serviceCounters = new Map<string, Counters>();
  readonly forwardCounters = new Map<Forward, Counters & { refused: number }>();
  /** Each forward's bound address (its configured port may be 0: the kernel picks). */
  private readonly boundListen = new Map<Forward, string>();
  private readonly listeners: Listener[] = [];
  private readonly fileServers: HttpServer[] = [];
  private readonly udpSources: UdpSource[] = [];
  private readonly udpDestinations = new Set<UdpDestination>();
  private stopped = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private wakeRetry: (() => void) | null = null;
  private exitResolve!: (code: number) => void;
  readonly exited: Promise<number>;
  reconnects = 0;
  bytesIn = 0;
  bytesOut = 0;
  lastError: { code: number | null; name: string; reason: string; at: string } | null = null;
  welcomeMsg: WelcomeMessage | null = null;
  connectedSince: number | null = null;
  private udpSweep: ReturnType<typeof setInterval> | null = null;
  /** Remote access as configured now (agent-reload replaces these). */
  files: FilesConfig | null;
  shell: ShellConfig | null;
  /** Operator streams by kind: accepted, refused, failed. */
  readonly remoteCounters = new Map<string, { streams: number; refused: number; errors: number }>();
  /** Live remote shells, ended on stop. */
  readonly shells = new Set<{ close(): void }>();

  constructor(readonly cfg: AgentConfig, private readonly deps: AgentDeps) {
    this.files = cfg.files ?? null;
    this.shell = cfg.shell ?? null;
    this.connect = deps.connect ?? ((o) => deps.runtime.connect(o));
    this.random = deps.random ?? Math.random;
    for (const x of cfg.exposes) {
      this.exposes.set(x.name, x);
      this.targets.set(x.name, x.target);
      this.serviceCounters.set(x.name, counters());
    }
    for (const f of cfg.forwards) this.forwardCounters.set(f, { ...counters(), refused: 0 });
    this.exited = new Promise<number>((r) => (this.exitResolve = r));
  }

  get log(): Logger {
    return this.deps.log;
  }
  get runtime(): Runtime {
    return this.deps.runtime;
  }

  /** Binds the local forwards and file servers, then keeps a session to the edge until `stop()` or a fatal refusal. */
  async start(): Promise<{ forwards: { listen: string; service: string; proto: string }[] }> {
    const rt = this.deps.runtime;
    for (const x of this.cfg.exposes) {
      if (x.target.kind !== "files") continue;
      // The file server (and node:stream under it) loads only for a `file:` service.
      const { startFileServer } = await import("./files.ts");
      const server = await startFileServer(rt, x.target.dir);
      this.fileServers.push(server);
      this.targets.set(x.name, { kind: "tcp", hostname: "127.0.0.1", port: server.port });
    }
    const bound: { listen: string; service: string; proto: string }[] = [];
    for (const f of this.cfg.forwards) {
      if (f.proto === "udp") {
        const u = await UdpSource.bind(this, f, this.forwardCounters.get(f)!);
        this.udpSources.push(u);
        bound.push({ listen: formatPeer(f.listen.hostname, u.port), service: f.service, proto: "udp" });
        this.boundListen.set(f, bound.at(-1)!.listen);
        continue;
      }
      const l = rt.listen({
        address: { hostname: f.listen.hostname, port: f.listen.port },
        onAccept: (conn) => this.acceptForward(conn, f),
      });
      this.listeners.push(l);
      bound.push({ listen: formatPeer(f.listen.hostname, l.port), service: f.service, proto: "tcp" });
      this.boundListen.set(f, bound.at(-1)!.listen);
    }
    this.udpSweep = setInterval(() => this.sweepUdp(), 1000);
    void this.loop();
    return { forwards: bound };
  }

  // ---------------------------------------------------------------- connection loop

  private async loop(): Promise<void> {
    while (!this.stopped) {
      this.state = "connecting";
      let dialed;
      try {
        dialed = await dialEdge(this.cfg, this.connect);
      } catch (e) {
        if (this.handleFailure(e as Error)) return;
        await this.backoff();
        continue;
      }
      if (this.stopped) {
        dialed.conn.close();
        return;
      }
      const s = new AgentSession(
        dialed,
        {
          agent: this.cfg.name,
          roles: this.roles(),
          services: this.cfg.exposes.map((x) => ({ name: x.name, proto: x.target.kind === "udp" ? "udp" as const : "tcp" as const })),
        },
        this,
        this.ticker,
        {
          openTimeoutMs: this.cfg.openTimeoutMs,
          helloTimeoutMs: this.cfg.connectTimeoutMs,
          streamWindow: this.cfg.streamWindow,
          maxStreams: this.cfg.maxStreams,
        },
      );
      this.session = s;
      // Wait until this session is over or asked to go; then dial again (after a go-away's delay, or a backoff).
      const next = await new Promise<{ kind: "closed"; err?: ProxyError } | { kind: "goaway"; delayMs: number } | { kind: "fatal" }>((resolve) => {
        this.sessionWaiter = resolve;
      });
      this.sessionWaiter = null;
      if (this.stopped) return;
      if (next.kind === "fatal") return;
      if (next.kind === "goaway") {
        await this.sleep(next.delayMs);
        this.reconnects++;
        continue;
      }
      if (this.session === s) this.session = null;
      this.connectedSince = null;
      if (s.refusal !== null) {
        // Already logged by refused().
      } else if (s.welcomed === null) {
        // Closed before welcome without a refusal message: a network or protocol problem.
        this.handleFailure(next.err ?? new ProxyError("UPSTREAM_RESET", "upstream", "the edge closed the session before welcome"));
      } else {
        this.log.warn("tunnel session lost; reconnecting", { error: next.err?.code ?? null, reason: next.err?.message ?? "closed by the edge" });
      }
      await this.backoff();
    }
  }

  private sessionWaiter: ((r: { kind: "closed"; err?: ProxyError } | { kind: "goaway"; delayMs: number } | { kind: "fatal" }) => void) | null = null;

  private roles(): ("source" | "destination")[] {
    const r: ("source" | "destination")[] = [];
    // Remote access (shell, files, reload) makes this agent a destination of operator streams.
    if (this.cfg.exposes.length > 0 || this.files !== null || this.shell !== null) r.push("destination");
    if (this.cfg.forwards.length > 0) r.push("source");
    return r;
  }

  /** Records a failure; returns true when the agent must stop (fatal refusal). */
  private handleFailure(e: Error): boolean {
    if (e instanceof EdgeRefusal) {
      this.lastError = { code: e.code, name: e.info.name, reason: e.reason, at: new Date().toISOString() };
      if (e.info.action === "exit") {
        this.fatal(e);
        return true;
      }
      this.log.warn("the edge refused the session; retrying", { code: e.code, error: e.info.name, reason: e.reason });
      return false;
    }
    const code = e instanceof ProxyError ? e.code : "UPSTREAM_CONNECT_REFUSED";
    this.lastError = { code: null, name: code, reason: e.message, at: new Date().toISOString() };
    this.log.warn("cannot reach the edge; retrying", { edge: `${this.cfg.edge.hostname}:${this.cfg.edge.port}`, error: code, reason: e.message });
    return false;
  }

  private fatal(e: EdgeRefusal): void {
    this.state = "refused";
    this.log.error("the edge refused this agent; not retrying", { code: e.code, error: e.info.name, reason: e.reason, meaning: e.info.meaning });
    this.shutdown();
    this.exitResolve(EXIT_REFUSED);
  }

  /** Exponential backoff with equal jitter: delay = d/2 + random·d/2, d = min(max, min·2^attempt). */
  backoffDelay(attempt: number): number {
    const d = Math.min(this.cfg.reconnectMaxMs, this.cfg.reconnectMinMs * 2 ** Math.min(attempt, 30));
    return Math.round(d / 2 + this.random() * (d / 2));
  }

  private async backoff(): Promise<void> {
    if (this.stopped) return;
    this.state = "backoff";
    const ms = this.backoffDelay(this.attempt++);
    this.log.debug("reconnecting after backoff", { delay_ms: ms, attempt: this.attempt });
    await this.sleep(ms);
    this.reconnects++;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wakeRetry = resolve;
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.wakeRetry = null;
        resolve();
      }, ms);
    });
  }

  // ---------------------------------------------------------------- SessionEvents

  welcome(s: AgentSession, w: WelcomeMessage): void {
    if (s !== this.session) return;
    this.state = "connected";
    this.attempt = 0;
    this.welcomeMsg = w;
    this.connectedSince = wallMs();
    try {
      this.deps.recordEdge?.({ edge: `${this.cfg.edge.hostname}:${this.cfg.edge.port}`, session: w.session, seen_as: w.peer, at: new Date().toISOString() });
    } catch (e) {
      this.log.warn("cannot write the state dir", { reason: (e as Error).message });
    }
    this.log.info("connected to the edge", {
      session: w.session,
      edge: w.edge,
      seen_as: w.peer,
      transport: s.dialed.transport,
      services: this.cfg.exposes.map((x) => x.name),
      forwards: this.cfg.forwards.map((f) => `${f.proto}:${formatPeer(f.listen.hostname, f.listen.port)}=${f.service}`),
    });
  }

  refused(s: AgentSession, r: EdgeRefusal): void {
    s.refusal = r;
    this.lastError = { code: r.code, name: r.info.name, reason: r.reason, at: new Date().toISOString() };
    if (r.info.action === "exit") {
      this.fatal(r);
      this.sessionWaiter?.({ kind: "fatal" });
    } else {
      this.log.warn("the edge refused the session; retrying", { code: r.code, error: r.info.name, reason: r.reason });
    }
  }

  goAway(s: AgentSession, delayMs: number, reason: string): void {
    this.log.info("the edge sent go-away: finishing streams, reconnecting", { delay_ms: delayMs, reason, open_streams: s.streams });
    if (s === this.session) {
      this.session = null;
      this.connectedSince = null;
      this.state = "backoff";
    }
    this.leaving.add(s);
    this.sessionWaiter?.({ kind: "goaway", delayMs });
  }

  incoming(s: AgentSession, stream: Conn, open: OpenMessage): void {
    const x = this.exposes.get(open.service);
    const target = this.targets.get(open.service);
    const c = this.serviceCounters.get(open.service);
    const refuse = (code: number, reason: string) => {
      this.log.info("tunnel stream refused", { service: open.service, conn: open.connId ?? null, client: open.client, code, reason });
      if (c) c.errors++;
      stream.write(encodeTunnelMessage({ type: "error", code, message: reason }, OPEN_MAX_MESSAGE));
      stream.end();
      stream.setHandler({ ...NULL_HANDLER, onEnd: (cc) => cc.close() });
      stream.resume();
      s.streamDone();
    };
    if (!x || !target || !c) return refuse(TunnelErrorCode.SERVICE_UNKNOWN, `this agent does not expose '${open.service}'`);
    const isUdp = target.kind === "udp";
    if ((open.proto === "udp") !== isUdp) return refuse(TunnelErrorCode.SERVICE_UNREACHABLE, `service '${open.service}' is ${isUdp ? "udp" : "tcp"}, not ${open.proto}`);
    c.streams++;
    c.open++;
    if (target.kind === "udp") {
      stream.write(encodeTunnelMessage({ type: "ok" }, OPEN_MAX_MESSAGE));
      const d = new UdpDestination(this, s, stream, target, c, () => this.udpDestinations.delete(d));
      this.udpDestinations.add(d);
      return;
    }
    if (target.kind === "files") return refuse(TunnelErrorCode.SERVICE_UNREACHABLE, `file server for '${open.service}' is not running`);
    const address = target.kind === "unix" ? { unix: target.path } : { hostname: target.hostname, port: target.port };
    this.deps.runtime.connect({ address, timeoutMs: this.cfg.openTimeoutMs, handler: NULL_HANDLER }).then(
      (local) => {
        if (s.closed) {
          local.close();
          c.open--;
          return;
        }
        stream.write(encodeTunnelMessage({ type: "ok" }, OPEN_MAX_MESSAGE));
        const preamble: Uint8Array[] = [];
        const wish = open.proxy !== "none" ? open.proxy : x.proxy;
        if (wish !== "none") preamble.push(proxyHeader(wish, open));
        const relay = new Relay(stream, local, new AgentRelay(this, s, c, true, { service: open.service, connId: open.connId ?? null, client: open.client }));
        relay.start(preamble);
      },
      (e: Error) => {
        c.open--;
        c.streams--;
        refuse(TunnelErrorCode.SERVICE_UNREACHABLE, `agent '${this.cfg.name}' cannot reach ${describeTarget(target)}: ${e.message}`);
      },
    );
  }

  // ---------------------------------------------------------------- operator streams

  /**
   * An operator stream (the edge checked the operator's token and its
   * `agents` patterns): a shell, a file copy or a reload, if this agent
   * offers it. Logged with the operator's token name (the edge's audit line
   * has the same `conn`).
   */
  remote(s: AgentSession, stream: Conn, m: RemoteMessage): void {
    const c = this.remoteCounters.get(m.kind) ?? { streams: 0, refused: 0, errors: 0 };
    this.remoteCounters.set(m.kind, c);
    const tag = { kind: m.kind, operator: m.operator ?? null, conn: m.connId ?? null, path: m.path ?? null, command: m.command ?? null };
    const startedAt = wallMs();
    let answered = false;
    const reply = {
      log: this.log,
      ok: () => {
        answered = true;
        c.streams++;
        stream.write(encodeTunnelMessage({ type: "ok" }, OPEN_MAX_MESSAGE));
        this.log.info("remote access", tag);
      },
      refuse: (code: number, reason: string) => {
        answered = true;
        c.refused++;
        this.log.info("remote access refused", { ...tag, code, error: tunnelErrorInfo(code).name, reason });
        stream.write(encodeTunnelMessage({ type: "error", code, message: reason.slice(0, 1000) }, OPEN_MAX_MESSAGE));
        stream.end();
        stream.setHandler({ ...NULL_HANDLER, onEnd: (cc) => cc.close() });
        stream.resume();
        s.streamDone();
      },
      finished: (o: { bytes: number; error: string | null; status?: number }) => {
        if (o.error !== null) c.errors++;
        this.log.info("remote access ended", { ...tag, bytes: o.bytes, status: o.status ?? null, duration_ms: Math.round(wallMs() - startedAt), error: o.error });
        s.streamDone();
      },
    };
    const failed = (e: Error) => {
      if (!answered) reply.refuse(TunnelErrorCode.FILE_FAILED, e.message);
      else {
        stream.close();
        reply.finished({ bytes: 0, error: e.message });
      }
    };
    switch (m.kind) {
      case "reload":
        void this.reloadConfig(stream, reply).catch(failed);
        return;
      case "shell": {
        const shell = this.shell;
        if (shell === null) return reply.refuse(TunnelErrorCode.REMOTE_DISABLED, `agent '${this.cfg.name}' does not allow shells (start it with --allow-shell, or a [shell] table)`);
        if (this.deps.runtime.spawnPty === undefined) {
          return reply.refuse(TunnelErrorCode.REMOTE_DISABLED, `agent '${this.cfg.name}' runs on ${this.deps.runtime.name}, which has no pseudo-terminal: shells need the agent on Bun`);
        }
        void import("./remote_shell.ts").then(({ serveShell }) => serveShell(this, shell, stream, m, reply)).catch(failed);
        return;
      }
      default: {
        const files = this.files;
        if (files === null) return reply.refuse(TunnelErrorCode.REMOTE_DISABLED, `agent '${this.cfg.name}' does not allow file copies (start it with --allow-files DIR, or a [files] table)`);
        void import("./remote_files.ts").then(({ serveFiles }) => serveFiles(files, stream, m, reply)).catch(failed);
      }
    }
  }

  /**
   * `edgemux agent-reload`: re-read the config file. A file that does not
   * validate changes nothing (RELOAD_FAILED, with every problem); a valid one
   * replaces the remote-access settings ([files], [shell]) at once; settings
   * that need a new session or listener (edge, token, services, forwards) are
   * named as needing a restart.
   */
  private async reloadConfig(stream: Conn, reply: { ok(): void; refuse(code: number, reason: string): void; finished(o: { bytes: number; error: string | null }): void }): Promise<void> {
    if (this.deps.reload === undefined || !this.cfg.configPath) {
      return reply.refuse(TunnelErrorCode.RELOAD_FAILED, `agent '${this.cfg.name}' was started without --config: there is no file to re-read`);
    }
    let next: AgentConfig;
    try {
      next = await this.deps.reload();
    } catch (e) {
      const problems = (e as { issues?: string[] }).issues ?? [(e as Error).message];
      this.log.warn("agent-reload: the config file does not validate; nothing changed", { file: this.cfg.configPath, problems });
      return reply.refuse(TunnelErrorCode.RELOAD_FAILED, `${this.cfg.configPath}: ${problems.join("; ")}`);
    }
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const restart: string[] = [];
    const checks: [string, unknown, unknown][] = [
      ["edge", this.cfg.edge, next.edge], ["servername", this.cfg.servername, next.servername], ["transport", this.cfg.transport, next.transport],
      ["token", this.cfg.token, next.token], ["name", this.cfg.name, next.name], ["expose", this.cfg.exposes, next.exposes],
      ["forward", this.cfg.forwards, next.forwards], ["status", this.cfg.status, next.status], ["state_dir", this.cfg.stateDir, next.stateDir], ["ca", this.cfg.ca, next.ca], ["cert", this.cfg.cert, next.cert],
    ];
    for (const [k, a, b] of checks) if (!same(a, b)) restart.push(k);
    const applied: string[] = [];
    if (!same(this.files, next.files ?? null)) applied.push("files");
    if (!same(this.shell, next.shell ?? null)) applied.push("shell");
    this.files = next.files ?? null;
    this.shell = next.shell ?? null;
    this.log.info("agent-reload: config re-read", { file: this.cfg.configPath, applied, restart_needed: restart });
    reply.ok();
    const { FrameStream } = await import("../remote/frame_stream.ts");
    const { encodeMsg } = await import("../remote/frames.ts");
    const fs = new FrameStream(stream);
    fs.write(encodeMsg({ done: true, valid: true, file: this.cfg.configPath, applied, restart_needed: restart }));
    fs.end();
    reply.finished({ bytes: 0, error: null });
  }

  closed(s: AgentSession, err?: ProxyError): void {
    this.leaving.delete(s);
    if (s === this.session) this.sessionWaiter?.({ kind: "closed", err });
  }

  // ---------------------------------------------------------------- source role

  private acceptForward(conn: Conn, f: Forward): ConnHandler | null {
    const c = this.forwardCounters.get(f)!;
    const s = this.session;
    if (s === null || s.welcomed === null || s.closed) {
      c.refused++;
      this.log.info("local connection refused: not connected to the edge", { service: f.service, client: formatPeer(conn.remoteAddress, conn.remotePort) });
      conn.close();
      return null;
    }
    conn.pause();
    c.streams++;
    c.open++;
    const open: OpenMessage = {
      type: "open",
      service: f.service,
      proto: "tcp",
      client: formatPeer(conn.remoteAddress, conn.remotePort),
      server: formatPeer(conn.localAddress, conn.localPort),
      proxy: "none",
      connId: nextConnId(),
    };
    // Until the edge answers, the local side's events only need to notice it going away.
    let gone = false;
    const waiting: ConnHandler = { onData() {}, onDrain() {}, onEnd() {}, onClose: () => (gone = true) };
    s.openService(open).then(
      (stream) => {
        if (gone) {
          stream.close();
          c.open--;
          s.streamDone();
          return;
        }
        const relay = new Relay(conn, stream, new AgentRelay(this, s, c, false, { service: f.service, connId: open.connId!, client: open.client }));
        relay.start([]);
        stream.resume();
      },
      (e: Error) => {
        c.open--;
        c.errors++;
        const why = e instanceof EdgeRefusal ? { code: e.code, error: e.info.name, reason: e.reason } : { error: (e as ProxyError).code ?? "ERROR", reason: e.message };
        this.log.warn("cannot open tunnel stream", { service: f.service, conn: open.connId, client: open.client, ...why });
        conn.close();
      },
    );
    return waiting;
  }

  /** The current session, if welcomed (UDP sources open streams on it). */
  readySession(): AgentSession | null {
    const s = this.session;
    return s !== null && s.welcomed !== null && !s.closed ? s : null;
  }

  private sweepUdp(): void {
    const now = wallMs();
    for (const u of this.udpSources) u.sweep(now);
    for (const d of this.udpDestinations) d.sweep(now);
  }

  // ---------------------------------------------------------------- stopping

  /** Stop: close listeners and sessions; resolves `exited` with 0. */
  stop(): void {
    if (this.stopped) return;
    this.shutdown();
    this.state = "stopped";
    this.exitResolve(0);
  }

  private shutdown(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    if (this.udpSweep) clearInterval(this.udpSweep);
    for (const l of this.listeners) l.close();
    for (const u of this.udpSources) u.close();
    for (const d of this.udpDestinations) d.close();
    for (const f of this.fileServers) void f.close();
    for (const sh of [...this.shells]) sh.close();
    this.session?.close();
    for (const s of this.leaving) s.close();
    this.sessionWaiter?.({ kind: "fatal" });
  }

  /** JSON for the status endpoint. */
  status(): Record<string, unknown> {
    const s = this.session;
    return {
      agent: this.cfg.name,
      version: VERSION,
      runtime: `${this.deps.runtime.name} ${this.deps.runtime.version}`,
      state: this.state,
      edge: `${this.cfg.edge.hostname}:${this.cfg.edge.port}`,
      transport: this.cfg.transport,
      session: s?.welcomed
        ? { id: s.welcomed.session, seen_as: s.welcomed.peer, edge: s.welcomed.edge, since: new Date(this.connectedSince ?? s.startedAt).toISOString(), streams: s.streams }
        : null,
      leaving_sessions: this.leaving.size,
      reconnects: this.reconnects,
      last_error: this.lastError,
      services: [...this.exposes.values()].map((x) => {
        const c = this.serviceCounters.get(x.name)!;
        return { name: x.name, target: describeTarget(x.target), proxy_protocol: x.proxy, streams: c.streams, open: c.open, errors: c.errors, bytes_in: c.bytesIn, bytes_out: c.bytesOut };
      }),
      forwards: [...this.forwardCounters.entries()].map(([f, c]) => ({
        listen: this.boundListen.get(f) ?? formatPeer(f.listen.hostname, f.listen.port),
        service: f.service,
        proto: f.proto,
        streams: c.streams,
        open: c.open,
        refused: c.refused,
        errors: c.errors,
        bytes_in: c.bytesIn,
        bytes_out: c.bytesOut,
      })),
      bytes: { in: this.bytesIn, out: this.bytesOut },
      remote: {
        files: this.files === null ? null : { roots: this.files.roots, max_size: this.files.maxSize, read_only: this.files.readOnly },
        shell: this.shell === null ? null : { command: this.shell.command, allow: this.shell.allow, idle_timeout_ms: this.shell.idleTimeoutMs, pty: this.deps.runtime.spawnPty !== undefined },
        streams: Object.fromEntries(this.remoteCounters),
      },
    };
  }
}

/** PROXY v1/v2 header carrying the original client (from the edge's open request). */
function proxyHeader(wish: "v1" | "v2", open: OpenMessage): Uint8Array {
  const split = (s: string): [string, number] => {
    const i = s.lastIndexOf(":");
    return i <= 0 ? ["", 0] : [s.slice(0, i).replace(/^\[|\]$/g, ""), Number(s.slice(i + 1)) || 0];
  };
  const [src, srcPort] = split(open.client);
  const [dst, dstPort] = split(open.server);
  const addrs: ProxyAddresses = src === "" || dst === "" || src.includes(":") !== dst.includes(":")
    ? { family: "unknown", srcAddress: "", srcPort: 0, dstAddress: "", dstPort: 0 }
    : { family: src.includes(":") ? "tcp6" : "tcp4", srcAddress: src, srcPort, dstAddress: dst, dstPort };
  const out = new Uint8Array(wish === "v1" ? proxyV1Length(addrs) : proxyV2Length(addrs));
  const n = wish === "v1" ? encodeProxyV1(addrs, out, 0) : encodeProxyV2(addrs, out, 0);
  return out.subarray(0, n);
}
