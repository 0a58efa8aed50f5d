/**
 * In-process tunnel fixtures: an edge (EdgeSessions on a fake listener host,
 * fed by memory pairs) and agents whose dialer hands them the other end of
 * each pair, so the whole edge ⇄ agent protocol runs in one process with
 * real local services on 127.0.0.1.
 */
import { Agent, type AgentConfig, type Expose, type Forward } from "../../src/agent/mod.ts";
import { Logger } from "../../src/log/mod.ts";
import { MuxTicker } from "../../src/mux/mod.ts";
import { memoryPair } from "../../src/runtime/memory.ts";
import { type Conn, type ConnHandler, type ConnectOptions, detectRuntime } from "../../src/runtime/mod.ts";
import { StatsRegistry, StatsWriter } from "../../src/stats/mod.ts";
import { hashToken, TokenStore } from "../../src/auth/mod.ts";
import type { TokenConfig } from "../../src/config/types.ts";
import { createSessionCells, SessionCounters } from "../../src/stats/mod.ts";
import {
  EdgeSession,
  TunnelHub,
  type TunnelSessionConfig,
  type TunnelSessionHost,
} from "../../src/tunnel/edge/mod.ts";

export const TOKENS: Record<string, TokenConfig> = {
  dest: { name: "dest", sha256: hashToken("dest-token"), roles: ["destination"], services: ["*"], allow: [], deny: [], maxSessions: 0 },
  src: { name: "src", sha256: hashToken("src-token"), roles: ["source"], services: ["*"], allow: [], deny: [], maxSessions: 0 },
  both: { name: "both", sha256: hashToken("both-token"), roles: ["source", "destination"], services: ["web-*", "echo", "udp-echo", "site"], allow: [], deny: [], maxSessions: 0 },
  one: { name: "one", sha256: hashToken("one-token"), roles: ["destination"], services: ["*"], allow: [], deny: [], maxSessions: 1 },
  denied: { name: "denied", sha256: hashToken("denied-token"), roles: ["destination", "source"], services: ["*"], allow: [], deny: ["127.0.0.0/8"], maxSessions: 0 },
};

export interface LogRecord {
  level: string;
  msg: string;
  [k: string]: unknown;
}

export class TestEdge implements TunnelSessionHost {
  readonly lines: LogRecord[] = [];
  readonly log = new Logger("debug", "json", {}, (l) => this.lines.push(JSON.parse(l)));
  readonly ticker = new MuxTicker(1000);
  readonly hub: TunnelHub;
  readonly authority: TokenStore;
  readonly counters: SessionCounters;
  readonly stats: StatsWriter;
  readonly listenerSlot = 0;
  readonly logConnections = true;
  readonly sessions = new Set<EdgeSession>();
  sessionConfig: TunnelSessionConfig = {
    name: "tunnel",
    handshakeTimeoutMs: 2000,
    idleTimeoutMs: 0,
    maxStreams: 1024,
    streamWindow: 65536,
    keepaliveIntervalMs: 10_000,
    keepaliveTimeoutMs: 30_000,
    openTimeoutMs: 2000,
    goawayDelayMs: 50,
    clientCert: "none",
  };
  private seq = 0;

  constructor(tokens: TokenConfig[] = Object.values(TOKENS), workerId = 0, cells = createSessionCells(1)) {
    this.counters = new SessionCounters(cells, workerId);
    this.hub = new TunnelHub({ workerId, log: this.log, counters: this.counters });
    this.authority = new TokenStore(tokens);
    this.stats = new StatsWriter(new StatsRegistry(8).createSlab(), 1);
  }

  nextSessionId(): string {
    return `t-${++this.seq}`;
  }
  agentSessionEnded(s: EdgeSession): void {
    this.sessions.delete(s);
  }

  /** A new agent connection: returns the agent's end. */
  accept(remote = "127.0.0.1"): Conn {
    const [a, b] = memoryPair();
    (b as unknown as { remoteAddress: string }).remoteAddress = remote;
    const s = new EdgeSession(b, this, Date.now());
    b.setHandler(s);
    this.sessions.add(s);
    return a;
  }

  /** The dialer an Agent uses to reach this edge. */
  connector(remote = "127.0.0.1"): (o: ConnectOptions) => Promise<Conn> {
    return (o) => {
      const a = this.accept(remote);
      a.setHandler(o.handler);
      return Promise.resolve(a);
    };
  }

  goAwayAll(): void {
    for (const s of this.sessions) s.sendGoAway("test");
  }

  closeAll(): void {
    for (const s of [...this.sessions]) s.abort("DRAINING");
  }

  find(msg: string, pred: (l: LogRecord) => boolean = () => true): LogRecord | undefined {
    return this.lines.find((l) => l.msg === msg && pred(l));
  }
}

export function agentConfig(over: Partial<AgentConfig> & { exposes?: Expose[]; forwards?: Forward[] }): AgentConfig {
  return {
    edge: { hostname: "127.0.0.1", port: 1 },
    servername: "edge.test",
    transport: "upgrade",
    token: null,
    ca: null,
    cert: null,
    key: null,
    name: "agent",
    exposes: [],
    forwards: [],
    status: null,
    reconnectMinMs: 20,
    reconnectMaxMs: 200,
    connectTimeoutMs: 2000,
    openTimeoutMs: 2000,
    udpIdleMs: 60_000,
    streamWindow: 262_144,
    maxStreams: 16_384,
    log: { level: "debug", format: "json" },
    ...over,
  };
}

export function startAgent(edge: TestEdge, cfg: AgentConfig, remote = "127.0.0.1"): { agent: Agent; lines: LogRecord[] } {
  const lines: LogRecord[] = [];
  const log = new Logger("debug", "json", { agent: cfg.name }, (l) => lines.push(JSON.parse(l)));
  const agent = new Agent(cfg, { runtime, log, connect: edge.connector(remote), random: () => 0.5 });
  return { agent, lines };
}

/** Polls `cond` (yielding to the event loop) until true; throws after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** A TCP echo server on 127.0.0.1 (runtime adapter), with backpressure and half-close. */
export function echoServer(): { port: number; close(): void; accepted: number } {
  const st = { port: 0, accepted: 0, close() {} };
  const l = runtime.listen({
    address: { hostname: "127.0.0.1", port: 0 },
    onAccept(_c: Conn): ConnHandler {
      st.accepted++;
      return {
        onData(c, chunk) {
          if (!c.write(chunk)) c.pause();
        },
        onDrain(c) {
          c.resume();
        },
        onEnd(c) {
          c.end();
        },
        onClose() {},
      };
    },
  });
  st.port = l.port;
  st.close = () => l.close();
  return st;
}

/** Connects to 127.0.0.1:port, writes `data`, half-closes, and collects the answer until the peer closes. */
export async function roundTrip(port: number, data: Uint8Array, timeoutMs = 5000): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let done!: () => void;
  let failed!: (e: Error) => void;
  const finished = new Promise<void>((res, rej) => {
    done = res;
    failed = rej;
  });
  const conn = await runtime.connect({
    address: { hostname: "127.0.0.1", port },
    timeoutMs,
    handler: {
      onData(_c, chunk) {
        parts.push(chunk.slice());
      },
      onDrain() {},
      onEnd(c) {
        c.end();
      },
      onClose() {
        done();
      },
    },
  });
  // Write in pieces with backpressure.
  let off = 0;
  const pump = () => {
    while (off < data.length) {
      const piece = data.subarray(off, Math.min(data.length, off + 65536));
      off += piece.length;
      if (!conn.write(piece)) return;
    }
    conn.end();
  };
  conn.setHandler({
    onData(_c, chunk) {
      parts.push(chunk.slice());
    },
    onDrain: pump,
    onEnd(c) {
      c.end();
    },
    onClose() {
      done();
    },
  });
  pump();
  const t = setTimeout(() => failed(new Error("round trip timed out")), timeoutMs);
  await finished;
  clearTimeout(t);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---------------------------------------------------------------- real processes

import { spawn } from "node:child_process";
import { edgemuxCommand, EdgemuxProcess, tempDir } from "./edgemux.ts";
import { testPki } from "./tls.ts";

const runtime = detectRuntime();

/** Starts `edgemux agent ARGS --log-format json`; resolves after its ready line (or rejects with its output if it exits first). */
export async function startAgentProcess(args: string[], opts: { env?: Record<string, string> } = {}): Promise<EdgemuxProcess> {
  const { cmd, argv } = edgemuxCommand(["agent", "--log-format", "json", ...args]);
  const proc = spawn(cmd, argv, { cwd: tempDir("edgemux-agent-"), stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...opts.env } });
  const p = new EdgemuxProcess(proc, "");
  const ready = await Promise.race([
    p.waitForLine((l) => l.msg === "ready", 30_000),
    p.waitExit(30_000).then((code) => {
      throw new Error(`agent exited with ${code} before ready: ${p.stderr.join("")} ${JSON.stringify(p.lines)}`);
    }),
  ]);
  p.listeners = Object.fromEntries(((ready.forwards ?? []) as { listen: string; service: string; proto: string }[]).map((f) => [`${f.proto}:${f.service}`, f.listen]));
  p.admin = String(ready.status ?? "");
  return p;
}

/** Runs `edgemux agent ARGS` expecting it to exit; resolves with its exit code and output. */
export async function runAgentToExit(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; p: EdgemuxProcess }> {
  const { cmd, argv } = edgemuxCommand(["agent", "--log-format", "json", ...args]);
  const proc = spawn(cmd, argv, { cwd: tempDir("edgemux-agent-"), stdio: ["ignore", "pipe", "pipe"], env: { ...process.env } });
  const p = new EdgemuxProcess(proc, "");
  const code = await p.waitExit(timeoutMs);
  return { code, p };
}

/** The edge's TLS files for the tunnel listener (certificate for "localhost"). */
export function edgeTls(): { cert: string; key: string; ca: string } {
  const pki = testPki();
  const c = pki.issue("localhost", ["localhost", "IP:127.0.0.1"]);
  return { cert: c.certPath, key: c.keyPath, ca: pki.caCertPath };
}
