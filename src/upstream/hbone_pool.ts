/**
 * The client side of HBONE, for routes whose targets are `hbone://host:port`
 * hops: each connection the route sends on becomes one HTTP/2 CONNECT stream
 * to the hop, over a pooled mTLS connection (many streams per connection, up
 * to the hop's SETTINGS_MAX_CONCURRENT_STREAMS; a new connection when all are
 * full or going away). `connect()` mirrors `Runtime.connect`: it resolves with
 * the stream as a `Conn` once the hop answered 200, so the SNI session
 * relays to it exactly as it would to a socket.
 */
import { NULL_HANDLER, wallMs } from "../runtime/mod.ts";
import type { HboneRouteConfig } from "../config/types.ts";
import { ProxyError } from "../errors/mod.ts";
import type { Conn, ConnHandler, Runtime } from "../runtime/types.ts";
import { H2Connection, type H2ConnectionOwner, type H2Stream } from "../mux/mod.ts";

/** A pooled connection with no streams is closed after this long. */
export const POOL_IDLE_MS = 30_000;
const MAX_HEADER_LIST = 16_384;

export interface HboneDial {
  hop: { hostname: string; port: number };
  config: HboneRouteConfig;
  /** CONNECT authority, "host:port". */
  authority: string;
  /** Extra request fields (forwarded, trace context). */
  fields?: [string, string][];
  timeoutMs: number;
  handler: ConnHandler;
}

interface PendingOpen {
  resolve: (c: Conn) => void;
  reject: (e: ProxyError) => void;
  timer: ReturnType<typeof setTimeout>;
  handler: ConnHandler;
}

interface PoolEntry {
  key: string;
  h2: H2Connection | null;
  ready: Promise<H2Connection>;
  idleTimer: ReturnType<typeof setTimeout> | null;
}


export class HbonePool implements H2ConnectionOwner {
  private readonly entries = new Map<string, PoolEntry[]>();
  private readonly byConn = new Map<H2Connection, PoolEntry>();

  constructor(private readonly runtime: Runtime) {}

  /** Opens a CONNECT stream to the hop; resolves after its 200. */
  async connect(o: HboneDial): Promise<Conn> {
    const deadline = wallMs() + o.timeoutMs;
    const entry = await this.connectionFor(o, deadline);
    const h2 = entry.h2!;
    if (entry.idleTimer) {
      clearTimeout(entry.idleTimer);
      entry.idleTimer = null;
    }
    const s = h2.openStream([[":method", "CONNECT"], [":authority", o.authority], ...(o.fields ?? [])]);
    return await new Promise<Conn>((resolve, reject) => {
      const left = Math.max(1, deadline - wallMs());
      const timer = setTimeout(() => {
        s.owner = null;
        s.close();
        reject(new ProxyError("UPSTREAM_CONNECT_TIMEOUT", "upstream", `HBONE hop ${hopName(o)} did not answer CONNECT ${o.authority} within ${o.timeoutMs} ms`));
      }, left);
      s.owner = { resolve, reject, timer, handler: o.handler } satisfies PendingOpen;
    });
  }

  /** A settled connection with room for a stream, or a new one. */
  private async connectionFor(o: HboneDial, deadline: number): Promise<PoolEntry> {
    const key = poolKey(o);
    const list = this.entries.get(key) ?? [];
    this.entries.set(key, list);
    for (const e of list) if (e.h2 !== null && e.h2.canOpen) return e;
    // One connection being set up is shared by the streams waiting for it.
    const pending = list.find((e) => e.h2 === null);
    if (pending) {
      await pending.ready;
      if (pending.h2?.canOpen) return pending;
    }
    const entry: PoolEntry = { key, h2: null, ready: null as unknown as Promise<H2Connection>, idleTimer: null };
    entry.ready = this.dialHop(o, deadline).then(
      (h2) => {
        entry.h2 = h2;
        this.byConn.set(h2, entry);
        return h2;
      },
      (err) => {
        this.remove(entry);
        throw err;
      },
    );
    list.push(entry);
    await entry.ready;
    return entry;
  }

  private async dialHop(o: HboneDial, deadline: number): Promise<H2Connection> {
    const c = o.config;
    const conn = await this.runtime.connect({
      address: o.hop,
      tls: { servername: c.servername ?? o.hop.hostname, ca: c.ca, cert: c.cert, key: c.key, alpn: ["h2"] },
      timeoutMs: Math.max(1, deadline - wallMs()),
      handler: NULL_HANDLER,
    });
    const h2 = new H2Connection(conn, this, { role: "client", maxConcurrentStreams: 0, maxHeaderListBytes: MAX_HEADER_LIST });
    h2.start();
    return h2;
  }

  onStreamHeaders(_c: H2Connection, s: H2Stream, fields: [string, string][]): void {
    const p = s.owner as PendingOpen | null;
    if (p === null) return;
    s.owner = null;
    clearTimeout(p.timer);
    const status = fields.find(([n]) => n === ":status")?.[1] ?? "";
    if (status === "200") {
      s.setHandler(p.handler);
      p.resolve(s);
      return;
    }
    const why = fields.find(([n]) => n === "edgemux-error")?.[1];
    s.close();
    p.reject(new ProxyError("UPSTREAM_CONNECT_REFUSED", "upstream", `HBONE hop answered ${status || "without a status"}${why ? ` (${why})` : ""}`));
  }

  onStreamClosed(c: H2Connection, s: H2Stream): void {
    const p = s.owner as PendingOpen | null;
    if (p !== null) {
      s.owner = null;
      clearTimeout(p.timer);
      p.reject(new ProxyError("UPSTREAM_RESET", "upstream", "HBONE hop closed the stream before answering"));
    }
    const e = this.byConn.get(c);
    if (e && c.activeStreams === 0 && !c.closed && e.idleTimer === null) {
      e.idleTimer = setTimeout(() => {
        e.idleTimer = null;
        if (c.activeStreams === 0) c.goaway();
      }, POOL_IDLE_MS);
    }
  }

  onConnectionClosed(c: H2Connection): void {
    const e = this.byConn.get(c);
    if (!e) return;
    this.byConn.delete(c);
    if (e.idleTimer) clearTimeout(e.idleTimer);
    this.remove(e);
    c.conn.close();
  }

  private remove(e: PoolEntry): void {
    const list = this.entries.get(e.key);
    if (!list) return;
    const i = list.indexOf(e);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.entries.delete(e.key);
  }

  /** Connections open now (for tests and status). */
  get connections(): number {
    return this.byConn.size;
  }

  closeAll(): void {
    for (const c of [...this.byConn.keys()]) c.abort();
  }
}

function hopName(o: HboneDial): string {
  return `${o.hop.hostname}:${o.hop.port}`;
}

function poolKey(o: HboneDial): string {
  const c = o.config;
  return `${o.hop.hostname}\0${o.hop.port}\0${c.servername ?? ""}\0${c.cert}\0${c.ca}`;
}

/**
 * The CONNECT authority for a routed connection: the route's fixed
 * authority; else Istio's SNI form `outbound_.<port>_.<subset>_.<fqdn>` →
 * `<fqdn>:<port>`; else `<sni>:<port>` with the route's port or, when 0,
 * the port the client connected to.
 */
export function hboneAuthority(c: HboneRouteConfig, serverName: string | null, listenerPort: number): string {
  if (c.authority !== null) return c.authority;
  if (serverName === null) throw new ProxyError("NO_ROUTE", "downstream", "An HBONE route needs the client's server name (SNI) to pick the CONNECT authority");
  const istio = /^outbound_\.(\d{1,5})_\.[^.]*_\.(.+)$/.exec(serverName);
  if (istio && Number(istio[1]) >= 1 && Number(istio[1]) <= 65535) return `${istio[2]}:${Number(istio[1])}`;
  return `${serverName}:${c.port || listenerPort}`;
}

/** RFC 7239 §6: `for=` with IPv6 quoted in brackets. */
export function forwardedFor(ip: string): string {
  const v4 = ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
  return v4.includes(":") ? `for="[${v4}]"` : `for=${v4}`;
}
