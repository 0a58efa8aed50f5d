/**
 * Dialing the edge: TLS connect, the HTTP/1.1 upgrade request, the answer.
 * Resolves with the Conn that carries smux frames from then on (the TLS
 * connection itself, or a WsConn over it) and the bytes that already followed
 * the 101; rejects with an `EdgeRefusal` carrying the edge's numbered code
 * when the edge said no, or another error when the network did.
 */
import { NULL_HANDLER } from "../runtime/mod.ts";
import { ProxyError } from "../errors/mod.ts";
import { type TunnelErrorInfo, tunnelErrorInfo } from "../proto/tunnel_control.ts";
import type { Conn, ConnectOptions, ConnHandler } from "../runtime/types.ts";
import { checkUpgradeResponse, upgradeRequest, upgradeResponseParser, type UpgradeTransport, WsConn } from "../tunnel/transport/mod.ts";
import { base64 } from "../proto/sha1.ts";
import { VERSION } from "../version.ts";
import type { AgentConfig } from "./config.ts";

/** The edge refused the agent: the numbered code, what it means, and what to do. */
export class EdgeRefusal extends Error {
  readonly info: TunnelErrorInfo;
  constructor(readonly code: number, readonly reason: string, readonly status: number | null) {
    const info = tunnelErrorInfo(code);
    super(`${info.name} (${code}): ${reason}`);
    this.info = info;
  }
}

export type ConnectFn = (opts: ConnectOptions) => Promise<Conn>;

export interface Dialed {
  conn: Conn;
  rest: Uint8Array[];
  transport: UpgradeTransport;
}


/** Reads the upgrade answer; settles once. */
class UpgradeReader implements ConnHandler {
  readonly parser = upgradeResponseParser();
  conn: Conn | null = null;
  settled = false;
  constructor(
    readonly transport: UpgradeTransport,
    readonly wsKey: string | undefined,
    readonly resolve: (d: Dialed) => void,
    readonly reject: (e: Error) => void,
  ) {}

  onData(c: Conn, chunk: Uint8Array): void {
    if (this.settled) return;
    this.parser.push(chunk);
    let head;
    try {
      head = this.parser.next();
    } catch (e) {
      return this.fail(c, e as Error);
    }
    if (head === null) return;
    const r = checkUpgradeResponse(head, this.transport, this.wsKey);
    if (!r.ok) return this.fail(c, new EdgeRefusal(r.code, r.reason, r.status));
    this.settled = true;
    c.setHandler(NULL_HANDLER);
    c.pause();
    const rest = this.parser.rest();
    const conn = this.transport === "websocket" ? new WsConn(c, "client") : c;
    this.resolve({ conn, rest, transport: this.transport });
  }
  onDrain(): void {}
  onEnd(c: Conn): void {
    this.fail(c, new ProxyError("UPSTREAM_RESET", "upstream", "the edge closed the connection before answering the upgrade"));
  }
  onClose(c: Conn, err?: Error): void {
    this.fail(c, err ?? new ProxyError("UPSTREAM_RESET", "upstream", "the edge closed the connection before answering the upgrade"));
  }
  fail(c: Conn, e: Error): void {
    if (this.settled) return;
    this.settled = true;
    c.close();
    this.reject(e);
  }
}

/** What dialing the edge needs (an agent's config, or an operator command's flags). */
export type DialSettings = Pick<AgentConfig, "edge" | "servername" | "transport" | "token" | "ca" | "cert" | "key" | "connectTimeoutMs">;

/** Connects to the edge and upgrades; bounded by `connectTimeoutMs` end to end. */
export function dialEdge(cfg: DialSettings, connect: ConnectFn): Promise<Dialed> {
  const transport: UpgradeTransport = cfg.transport === "websocket" ? "websocket" : "smux";
  // Web Crypto, not node:crypto (which costs an agent ~4 MB of resident memory to load).
  const wsKey = transport === "websocket" ? base64(crypto.getRandomValues(new Uint8Array(16))) : undefined;
  return new Promise<Dialed>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const reader = new UpgradeReader(transport, wsKey, (d) => {
      if (timer) clearTimeout(timer);
      resolve(d);
    }, (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    timer = setTimeout(() => {
      if (reader.conn) reader.fail(reader.conn, new ProxyError("UPSTREAM_CONNECT_TIMEOUT", "upstream", `no upgrade answer from the edge within ${cfg.connectTimeoutMs} ms`));
      else {
        reader.settled = true;
        reject(new ProxyError("UPSTREAM_CONNECT_TIMEOUT", "upstream", `connecting to the edge took over ${cfg.connectTimeoutMs} ms`));
      }
    }, cfg.connectTimeoutMs);
    connect({
      address: { hostname: cfg.edge.hostname, port: cfg.edge.port },
      tls: {
        servername: cfg.servername,
        ...(cfg.ca ? { ca: cfg.ca } : {}),
        ...(cfg.cert ? { cert: cfg.cert, key: cfg.key! } : {}),
      },
      timeoutMs: cfg.connectTimeoutMs,
      handler: reader,
    }).then(
      (c) => {
        if (reader.settled) {
          c.close();
          return;
        }
        reader.conn = c;
        c.setNoDelay(true);
        c.write(upgradeRequest({
          host: cfg.servername,
          transport,
          token: cfg.token,
          wsKey,
          userAgent: `edgemux-agent/${VERSION}`,
        }));
      },
      (e: Error) => {
        if (reader.settled) return;
        reader.settled = true;
        if (timer) clearTimeout(timer);
        reject(e);
      },
    );
  });
}
