/**
 * The udp listener against a fake runtime and a fake tunnel hub: what the end-to-end
 * test cannot time — the bounded queue while a flow's socket binds or its
 * stream opens, drops under stream backpressure, the replies' source check,
 * idle ends swept at a given time, drain, and worker 0 binding alone where
 * UDP ports cannot be shared.
 */
import { describe, expect, test } from "bun:test";
import { compileAccessList } from "../auth/mod.ts";
import { parseConfig } from "../config/mod.ts";
import { type ErrorCode, ProxyError } from "../errors/mod.ts";
import type { ListenerDeps, ListenerSettings } from "../frontdoor/mod.ts";
import type { Logger } from "../log/mod.ts";
import { UdpFrameDecoder, udpFrame } from "../proto/udp_frame.ts";
import { tickClock } from "../runtime/mod.ts";
import { createRouteBackends } from "../router/mod.ts";
import type { Conn, ConnHandler, Runtime, UdpBindOptions, UdpSocket } from "../runtime/types.ts";
import type { StatsWriter } from "../stats/mod.ts";
import type { TunnelOpen, UpstreamContext } from "../upstream/mod.ts";
import { MAX_PENDING } from "./flow.ts";
import { UdpListener } from "./listener.ts";

const L = 0; // listener slot
const R = 1; // route slot

interface FakeSocket extends UdpSocket {
  opts: UdpBindOptions;
  sent: { data: Uint8Array; port: number; address: string }[];
  closed: boolean;
}

function fakeRuntime(reusePort = true) {
  const sockets: FakeSocket[] = [];
  /** Binds wait for `release()` when `hold` is set. */
  const held: (() => void)[] = [];
  let hold = false;
  const rt = {
    udpReusePort: reusePort,
    bindUdp(opts: UdpBindOptions): Promise<UdpSocket> {
      const s: FakeSocket = {
        opts,
        hostname: opts.hostname,
        port: opts.port === 0 ? 40000 + sockets.length : opts.port,
        sent: [],
        closed: false,
        send(data, port, address) {
          this.sent.push({ data, port, address });
          return true;
        },
        close() {
          this.closed = true;
        },
      };
      sockets.push(s);
      if (!hold) return Promise.resolve(s);
      return new Promise((r) => held.push(() => r(s)));
    },
  };
  return {
    rt: rt as unknown as Runtime,
    sockets,
    holdBinds(on: boolean) {
      hold = on;
    },
    releaseBinds() {
      for (const r of held.splice(0)) r();
    },
  };
}

function fakeStats() {
  const calls: string[] = [];
  const errors: [number, ErrorCode][] = [];
  const bytes = [0, 0];
  const stats = {
    opened: (s: number) => calls.push(`opened ${s}`),
    refused: (s: number) => calls.push(`refused ${s}`),
    closed: (s: number) => calls.push(`closed ${s}`),
    duration: () => {},
    bytes: (s: number, i: number, o: number) => {
      if (s === L) {
        bytes[0] += i;
        bytes[1] += o;
      }
    },
    error: (s: number, c: ErrorCode) => errors.push([s, c]),
  };
  return { stats: stats as unknown as StatsWriter, calls, errors, bytes };
}

/** A tunnel stream: records what the listener writes, answers writes with `writable`. */
class FakeStream {
  handler: ConnHandler | null = null;
  written: Uint8Array[] = [];
  writable = true;
  closed = false;
  write(d: Uint8Array): boolean {
    this.written.push(d);
    return this.writable;
  }
  setHandler(h: ConnHandler): void {
    this.handler = h;
  }
  resume(): void {}
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handler?.onClose(this as unknown as Conn);
  }
  records(): { port: number; length: number }[] {
    const d = new UdpFrameDecoder();
    const out: { port: number; length: number }[] = [];
    for (const w of this.written) d.push(w);
    for (let r = d.next(); r !== null; r = d.next()) out.push({ port: r.port, length: r.payload.length });
    return out;
  }
}

function setup(opts: { target?: string; extra?: string; reusePort?: boolean; workerId?: number } = {}) {
  const config = parseConfig(`
[log]
connections = true
[[listeners]]
name = "u"
kind = "udp"
address = "127.0.0.1:5300"
max_flows = 2
max_datagram = 600
idle_timeout = "5s"
${opts.extra ?? ""}
[[routes]]
name = "r"
match = "*"
listeners = ["u"]
targets = ["${opts.target ?? "127.0.0.1:53"}"]
`);
  const fr = fakeRuntime(opts.reusePort ?? true);
  const st = fakeStats();
  const lines: Record<string, unknown>[] = [];
  const log = { info: (msg: string, f: Record<string, unknown>) => lines.push({ msg, ...f }), debug() {}, enabled: () => false } as unknown as Logger;
  const opens: { req: TunnelOpen; resolve: (c: Conn) => void; reject: (e: Error) => void }[] = [];
  const upstream = {
    runtime: fr.rt,
    tunnels: { open: (req: TunnelOpen) => new Promise<Conn>((resolve, reject) => opens.push({ req, resolve, reject })) },
    hbone: () => {
      throw new Error("no hbone");
    },
  } as unknown as UpstreamContext;
  const settings: ListenerSettings = {
    config,
    listener: config.listeners[0]!,
    access: compileAccessList(config.access),
    backends: createRouteBackends(config.routes),
    slots: { listeners: { u: L }, routes: { r: R }, overflowListener: 2, overflowRoute: 3 },
  };
  const deps = { runtime: fr.rt, stats: st.stats, limits: new Int32Array(4), log, upstream } as ListenerDeps;
  const l = new UdpListener(settings, deps, opts.workerId ?? 0);
  return { l, ...fr, ...st, lines, opens };
}

const tick = () => new Promise((r) => setTimeout(r, 0));
const bytes = (n: number) => new Uint8Array(n).fill(1);

describe("UdpListener", () => {
  test("host flow: one upstream socket per client, replies only from the target, idle end with a log line", async () => {
    tickClock(1_000_000);
    const f = setup();
    await f.l.start("127.0.0.1", 5300);
    const front = f.sockets[0]!;
    expect(front.opts.reusePort).toBe(true);
    front.opts.onDatagram(bytes(10), 1111, "127.0.0.1");
    await tick();
    const up = f.sockets[1]!;
    expect(up.opts.hostname).toBe("0.0.0.0");
    expect(up.sent.map((s) => [s.data.length, s.port, s.address])).toEqual([[10, 53, "127.0.0.1"]]);
    // A reply from the target goes to the client; one from anyone else is ignored.
    up.opts.onDatagram(bytes(20), 53, "127.0.0.1");
    up.opts.onDatagram(bytes(30), 54, "127.0.0.1");
    up.opts.onDatagram(bytes(30), 53, "127.0.0.2");
    expect(front.sent.map((s) => [s.data.length, s.port, s.address])).toEqual([[20, 1111, "127.0.0.1"]]);
    expect(f.bytes).toEqual([10, 20]);
    expect(f.l.open).toBe(1);
    // Idle: not before idle_timeout, then the flow ends, its socket closes, one log line.
    f.l.sweep(1_000_000 + 4_999);
    expect(f.l.open).toBe(1);
    f.l.sweep(1_000_000 + 5_000);
    expect(f.l.open).toBe(0);
    expect(up.closed).toBe(true);
    expect(f.lines).toEqual([expect.objectContaining({
      msg: "flow", listener: "u", client: "127.0.0.1:1111", route: "r", backend: "127.0.0.1:53",
      datagrams_in: 1, bytes_in: 10, datagrams_out: 1, bytes_out: 20, dropped: 0, error: null,
    })]);
    expect(f.calls).toEqual([`opened ${L}`, `opened ${R}`, `closed ${L}`, `closed ${R}`]);
  });

  test("max_flows and max_datagram: refused and dropped datagrams are counted", async () => {
    const f = setup();
    await f.l.start("127.0.0.1", 5300);
    const front = f.sockets[0]!;
    front.opts.onDatagram(bytes(601), 1, "10.0.0.1"); // too large: no flow
    front.opts.onDatagram(bytes(600), 1, "10.0.0.1");
    front.opts.onDatagram(bytes(1), 2, "10.0.0.1");
    front.opts.onDatagram(bytes(1), 3, "10.0.0.1"); // third client: past max_flows = 2
    expect(f.l.open).toBe(2);
    expect(f.calls.filter((c) => c === `refused ${L}`).length).toBe(1);
    expect(f.errors).toEqual([[L, "DATAGRAM_TOO_LARGE"], [L, "LISTENER_FULL"]]);
    await tick();
    // A reply over max_datagram is dropped and counted on the listener and the route.
    const up = f.sockets[1]!;
    up.opts.onDatagram(bytes(601), 53, "127.0.0.1");
    expect(front.sent.length).toBe(0);
    expect(f.errors.slice(2)).toEqual([[L, "DATAGRAM_TOO_LARGE"], [R, "DATAGRAM_TOO_LARGE"]]);
  });

  test("[access] is checked per new flow", async () => {
    const f = setup({ extra: "[access]\ndeny = [\"10.9.0.0/16\"]" });
    await f.l.start("127.0.0.1", 5300);
    f.sockets[0]!.opts.onDatagram(bytes(1), 1, "10.9.1.1");
    f.sockets[0]!.opts.onDatagram(bytes(1), 1, "10.8.1.1");
    expect(f.l.open).toBe(1);
    expect(f.errors).toEqual([[L, "ACCESS_DENIED"]]);
  });

  test(`at most ${MAX_PENDING} datagrams wait while the upstream socket binds`, async () => {
    const f = setup();
    await f.l.start("127.0.0.1", 5300);
    f.holdBinds(true);
    for (let i = 0; i < MAX_PENDING + 6; i++) f.sockets[0]!.opts.onDatagram(bytes(1), 1, "10.0.0.1");
    f.releaseBinds();
    await tick();
    expect(f.sockets[1]!.sent.length).toBe(MAX_PENDING);
    f.l.abortAll();
    expect(f.lines[0]).toEqual(expect.objectContaining({ datagrams_in: MAX_PENDING + 6, dropped: 6, error: "DRAINING" }));
  });

  test("tunnel flow: records while opening (bounded), replies decoded, drops under backpressure", async () => {
    const f = setup({ target: "tunnel:dns" });
    await f.l.start("127.0.0.1", 5300);
    const front = f.sockets[0]!;
    for (let i = 0; i < MAX_PENDING + 3; i++) front.opts.onDatagram(bytes(5), 7777, "192.0.2.1");
    expect(f.opens.length).toBe(1);
    expect(f.opens[0]!.req).toMatchObject({ service: "dns", proto: "udp", client: "192.0.2.1:7777", server: "127.0.0.1:5300", proxy: "none" });
    // The flow's connection id travels to the agent (logged there with the same value).
    expect(f.opens[0]!.req.connId).toMatch(/^[a-z0-9]+\.[a-z0-9]{4}\.[a-z0-9]+$/);
    const s = new FakeStream();
    f.opens[0]!.resolve(s as unknown as Conn);
    await tick();
    expect(s.records().length).toBe(MAX_PENDING);
    expect(s.records()[0]).toEqual({ port: 7777, length: 5 });
    // Replies: two records in one chunk, one split across chunks; one over max_datagram.
    const a = udpFrame(7777, bytes(3));
    const b = udpFrame(7777, bytes(601));
    const c = udpFrame(7777, bytes(4));
    s.handler!.onData(s as unknown as Conn, new Uint8Array([...a, ...b, ...c.subarray(0, 2)]));
    s.handler!.onData(s as unknown as Conn, c.subarray(2));
    expect(front.sent.map((x) => [x.data.length, x.port, x.address])).toEqual([[3, 7777, "192.0.2.1"], [4, 7777, "192.0.2.1"]]);
    // Backpressure: the write that returns false is the last until drain.
    s.writable = false;
    front.opts.onDatagram(bytes(5), 7777, "192.0.2.1");
    front.opts.onDatagram(bytes(5), 7777, "192.0.2.1");
    expect(s.records().length).toBe(MAX_PENDING + 1);
    s.handler!.onDrain(s as unknown as Conn);
    s.writable = true;
    front.opts.onDatagram(bytes(5), 7777, "192.0.2.1");
    expect(s.records().length).toBe(MAX_PENDING + 2);
    // The agent ends the stream: the flow is over.
    s.handler!.onEnd(s as unknown as Conn);
    expect(f.l.open).toBe(0);
    expect(s.closed).toBe(true);
    expect(f.lines[0]).toEqual(expect.objectContaining({ backend: "tunnel:dns", datagrams_out: 2, dropped: 3 + 1 + 1, error: null }));
  });

  test("a refused tunnel open ends the flow with its code", async () => {
    const f = setup({ target: "tunnel:dns" });
    await f.l.start("127.0.0.1", 5300);
    f.sockets[0]!.opts.onDatagram(bytes(5), 7777, "192.0.2.1");
    f.opens[0]!.reject(new ProxyError("SERVICE_UNKNOWN", "upstream", "no agent exposes dns"));
    await tick();
    expect(f.l.open).toBe(0);
    expect(f.lines[0]).toEqual(expect.objectContaining({ error: "SERVICE_UNKNOWN" }));
  });

  test("stopAccepting closes the socket and ends the flows", async () => {
    const f = setup();
    await f.l.start("127.0.0.1", 5300);
    f.sockets[0]!.opts.onDatagram(bytes(1), 1, "10.0.0.1");
    await tick();
    f.l.stopAccepting();
    expect(f.sockets[0]!.closed).toBe(true);
    expect(f.sockets[1]!.closed).toBe(true);
    expect(f.l.open).toBe(0);
  });

  test("where UDP ports cannot be shared, only worker 0 binds", async () => {
    const w1 = setup({ reusePort: false, workerId: 1 });
    expect(await w1.l.start("127.0.0.1", 5300)).toEqual(expect.objectContaining({ hostname: "127.0.0.1", port: 5300 }));
    expect(w1.sockets.length).toBe(0);
    const w0 = setup({ reusePort: false, workerId: 0 });
    await w0.l.start("127.0.0.1", 0);
    expect(w0.sockets.length).toBe(1);
    expect(w0.sockets[0]!.opts.reusePort).toBe(false);
  });
});
