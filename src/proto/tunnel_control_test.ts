import { describe, expect, test } from "bun:test";
import { ProxyError } from "../errors/mod.ts";
import {
  checkMessage,
  CONTROL_MAX_MESSAGE,
  encodeTunnelMessage,
  OPEN_MAX_MESSAGE,
  TUNNEL_ERRORS,
  TunnelErrorCode,
  type TunnelMessage,
  TunnelMessageDecoder,
  tunnelErrorInfo,
} from "./tunnel_control.ts";

function drain(d: TunnelMessageDecoder): TunnelMessage[] {
  const out: TunnelMessage[] = [];
  for (let i = 0; i < 10_000; i++) {
    const m = d.next();
    if (m === null) return out;
    out.push(m);
  }
  throw new Error("decoder did not stop");
}

const SAMPLES: TunnelMessage[] = [
  { type: "hello", version: 1, agent: "laptop-1", roles: ["destination", "source"], services: [{ name: "web", proto: "tcp" }, { name: "dns", proto: "udp" }], token: "s3cret" },
  { type: "hello", version: 1, agent: "a", roles: ["source"], services: [] },
  { type: "welcome", session: "w0-17", peer: "127.0.0.1:5555", edge: "edgemux 0.1.0" },
  { type: "announce", add: [{ name: "db", proto: "tcp" }], remove: ["web"] },
  { type: "goaway", reconnectMs: 1500, reason: "draining" },
  { type: "error", code: TunnelErrorCode.BAD_TOKEN, message: "token not known" },
  { type: "open", service: "web", proto: "tcp", client: "[2001:db8::1]:443", server: "10.0.0.1:443", proxy: "v2" },
  { type: "ok" },
  { type: "open", service: "db", proto: "udp", client: "127.0.0.1:9", server: "", proxy: "none", connId: "w1.k3f9.2s" },
];

describe("tunnel control messages", () => {
  test("golden bytes: ok is a one-entry msgpack map behind a u32 BE length", () => {
    // 0x81 fixmap(1), 0xa4 "type", 0xa2 "ok" = 9 bytes.
    const want = [0, 0, 0, 9, 0x81, 0xa4, 0x74, 0x79, 0x70, 0x65, 0xa2, 0x6f, 0x6b];
    expect(Array.from(encodeTunnelMessage({ type: "ok" }))).toEqual(want);
    const d = new TunnelMessageDecoder();
    d.push(Uint8Array.from(want));
    expect(drain(d)).toEqual([{ type: "ok" }]);
  });

  test("goaway travels with a snake_case key (what other implementations read)", () => {
    const b = encodeTunnelMessage({ type: "goaway", reconnectMs: 7, reason: "" });
    expect(new TextDecoder().decode(b)).toContain("reconnect_ms");
  });

  test("every message round-trips", () => {
    for (const m of SAMPLES) {
      const d = new TunnelMessageDecoder();
      d.push(encodeTunnelMessage(m));
      expect(drain(d)).toEqual([m]);
    }
  });

  test("every split point of a message sequence gives the same messages", () => {
    const parts = SAMPLES.map((m) => encodeTunnelMessage(m));
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    for (let a = 0; a <= all.length; a++) {
      const d = new TunnelMessageDecoder();
      d.push(all.subarray(0, a));
      const got = drain(d);
      d.push(all.subarray(a));
      got.push(...drain(d));
      expect(got).toEqual(SAMPLES);
    }
  });

  test("open.conn: the connection id travels under the key conn when set, and is left out when not", () => {
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    const base = { type: "open", service: "web", proto: "tcp", client: "10.0.0.2:5000", server: "", proxy: "none" } as const;
    const withId = encodeTunnelMessage({ ...base, connId: "w0.zz01.1a" });
    expect(text(withId)).toContain("conn");
    expect(text(withId)).toContain("w0.zz01.1a");
    const d = new TunnelMessageDecoder(OPEN_MAX_MESSAGE);
    d.push(withId);
    expect(d.next()).toEqual({ ...base, connId: "w0.zz01.1a" });
    // Without one (what a peer before connection ids sends): no key on the wire, no field decoded.
    const without = encodeTunnelMessage(base);
    expect(text(without)).not.toContain("conn");
    const e = new TunnelMessageDecoder(OPEN_MAX_MESSAGE);
    e.push(without);
    const m = e.next()!;
    expect(m).toEqual(base);
    expect("connId" in m).toBe(false);
    // A nil conn (some msgpack writers send absent fields as nil) is the same as none.
    expect("connId" in checkMessage({ ...base, conn: null })).toBe(false);
  });

  test("open.conn is checked: it goes into the logs", () => {
    const base = { type: "open", service: "web", proto: "tcp", client: "", server: "", proxy: "none" };
    for (const bad of ["", "a b", "x".repeat(65), "id\nlevel=error", 7, ["a"]]) {
      expect(() => checkMessage({ ...base, conn: bad })).toThrow(/open.conn/);
    }
    expect((checkMessage({ ...base, conn: "a.0q7x.1" }) as { connId?: string }).connId).toBe("a.0q7x.1");
  });

  test("rest() hands over the raw bytes after the open request", () => {
    const open = encodeTunnelMessage(SAMPLES[6]!);
    const chunk = new Uint8Array(open.length + 3);
    chunk.set(open);
    chunk.set([7, 8, 9], open.length);
    const d = new TunnelMessageDecoder(OPEN_MAX_MESSAGE);
    d.push(chunk.subarray(0, 5));
    expect(d.next()).toBeNull();
    d.push(chunk.subarray(5));
    expect(d.next()!.type).toBe("open");
    const rest = d.rest();
    expect(rest.flatMap((r) => Array.from(r))).toEqual([7, 8, 9]);
    expect(d.bufferedBytes).toBe(0);
  });

  test("a length over the bound is refused before the body arrives", () => {
    const d = new TunnelMessageDecoder(OPEN_MAX_MESSAGE);
    d.push(Uint8Array.of(0, 0, 0x10, 0x01)); // 4097
    expect(() => d.next()).toThrow(/4097 bytes, over the 4096-byte bound/);
    expect(() => d.next()).toThrow(ProxyError); // stays dead
    const z = new TunnelMessageDecoder();
    z.push(Uint8Array.of(0, 0, 0, 0));
    expect(() => z.next()).toThrow(/empty/);
  });

  test("the encoder refuses a message over the bound", () => {
    const big: TunnelMessage = { type: "error", code: 1, message: "x".repeat(1000) };
    expect(() => encodeTunnelMessage(big, 100)).toThrow(/over the 100-byte bound/);
    expect(encodeTunnelMessage(big, CONTROL_MAX_MESSAGE).length).toBeGreaterThan(1000);
  });

  test("shape checks name the field", () => {
    const cases: [unknown, RegExp][] = [
      [[1, 2], /must be a map/],
      [{ type: "nope" }, /unknown message type "nope"/],
      [{ type: "hello", version: 1, agent: "bad name", roles: ["source"], services: [] }, /hello.agent/],
      [{ type: "hello", version: 1, agent: "a", roles: [], services: [] }, /hello.roles/],
      [{ type: "hello", version: 1, agent: "a", roles: ["source", "source"], services: [] }, /twice/],
      [{ type: "hello", version: 1, agent: "a", roles: ["admin"], services: [] }, /hello.roles\[0\]/],
      [{ type: "hello", version: 1, agent: "a", roles: ["source"], services: [{ name: "Web", proto: "tcp" }] }, /hello.services\[0\].name/],
      [{ type: "hello", version: 1, agent: "a", roles: ["source"], services: [{ name: "w", proto: "sctp" }] }, /proto/],
      [{ type: "hello", version: 1, agent: "a", roles: ["source"], services: [{ name: "w", proto: "tcp" }, { name: "w", proto: "udp" }] }, /twice/],
      [{ type: "hello", version: -1, agent: "a", roles: ["source"], services: [] }, /hello.version/],
      [{ type: "open", service: "web", proto: "tcp", client: "", server: "", proxy: "v3" }, /open.proxy/],
      [{ type: "open", service: "../x", proto: "tcp", client: "", server: "", proxy: "none" }, /open.service/],
      [{ type: "error", code: "1", message: "" }, /error.code/],
      [{ type: "goaway", reconnect_ms: 1.5, reason: "" }, /goaway.reconnect_ms/],
      [{ type: "announce", add: [], remove: "web" }, /announce.remove/],
    ];
    for (const [v, re] of cases) expect(() => checkMessage(v)).toThrow(re);
    const many = Array.from({ length: 257 }, (_, i) => ({ name: `s${i}`, proto: "tcp" }));
    expect(() => checkMessage({ type: "hello", version: 1, agent: "a", roles: ["destination"], services: many })).toThrow(/over 256/);
  });

  test("unknown keys are ignored (a newer peer may add some)", () => {
    expect(checkMessage({ type: "ok", extra: [1, 2, 3] })).toEqual({ type: "ok" });
  });

  test("random bytes only ever give messages or TUNNEL_PROTOCOL", () => {
    let seed = 99;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) & 0xff;
    for (let i = 0; i < 3000; i++) {
      const n = 1 + (rnd() % 40);
      const body = new Uint8Array(n);
      for (let j = 0; j < n; j++) body[j] = rnd();
      const framed = new Uint8Array(4 + n);
      framed[3] = n;
      framed.set(body, 4);
      const d = new TunnelMessageDecoder();
      d.push(i % 2 === 0 ? framed : body);
      try {
        drain(d);
      } catch (e) {
        expect(e).toBeInstanceOf(ProxyError);
        expect((e as ProxyError).code).toBe("TUNNEL_PROTOCOL");
      }
    }
  });

  test("every error code has a name, an action and a meaning; unknown codes retry", () => {
    for (const [name, code] of Object.entries(TunnelErrorCode)) {
      const info = TUNNEL_ERRORS[code];
      expect(info.name).toBe(name as keyof typeof TunnelErrorCode);
      expect(["exit", "retry", "stream"]).toContain(info.action);
    }
    expect(tunnelErrorInfo(9999).action).toBe("retry");
  });
});
