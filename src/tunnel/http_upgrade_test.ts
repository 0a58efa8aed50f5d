import { describe, expect, test } from "bun:test";
import { ProxyError } from "../errors/mod.ts";
import { TunnelErrorCode } from "../proto/tunnel_control.ts";
import {
  checkUpgradeRequest,
  checkUpgradeResponse,
  HttpHeadParser,
  MAX_HEAD_BYTES,
  refusalResponse,
  switchingProtocols,
  upgradeRequest,
  wsAccept,
} from "./http_upgrade.ts";

const enc = new TextEncoder();

function parse(kind: "request" | "response", text: string | Uint8Array) {
  const p = new HttpHeadParser(kind);
  p.push(typeof text === "string" ? enc.encode(text) : text);
  return { head: p.next(), rest: p.rest() };
}

describe("HTTP upgrade", () => {
  test("RFC 6455 §1.3 example accept key", () => {
    expect(wsAccept("dGhlIHNhbXBsZSBub25jZQ==")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  });

  test("agent request → edge check, at every split point, with frames after the head", () => {
    const req = upgradeRequest({ host: "edge.example", transport: "smux", token: "tok-1" });
    const bytes = new Uint8Array(req.length + 3);
    bytes.set(req);
    bytes.set([2, 0, 0], req.length);
    for (let a = 0; a <= bytes.length; a++) {
      const p = new HttpHeadParser("request");
      p.push(bytes.slice(0, a));
      let head = p.next();
      p.push(bytes.slice(a));
      head ??= p.next();
      expect(head).not.toBeNull();
      const r = checkUpgradeRequest(head!);
      expect(r).toEqual({ transport: "smux", token: "tok-1", wsKey: null, wsSubprotocol: false });
      expect(p.rest().flatMap((c) => Array.from(c))).toEqual([2, 0, 0]);
    }
  });

  test("websocket request and the 101 that accepts it", () => {
    const key = "dGhlIHNhbXBsZSBub25jZQ==";
    const { head } = parse("request", upgradeRequest({ host: "e", transport: "websocket", token: null, wsKey: key }));
    const r = checkUpgradeRequest(head!);
    expect(r.transport).toBe("websocket");
    expect(r.wsSubprotocol).toBe(true);
    expect(r.token).toBeNull();
    const res = parse("response", switchingProtocols(r)).head!;
    expect(res.headers.get("sec-websocket-accept")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    expect(checkUpgradeResponse(res, "websocket", key)).toEqual({ ok: true });
    expect(checkUpgradeResponse(res, "websocket", "AAAAAAAAAAAAAAAAAAAAAA==").ok).toBe(false);
  });

  test("refusals carry the numbered code and the reason", () => {
    const res = parse("response", refusalResponse(TunnelErrorCode.BAD_TOKEN, "token not known")).head!;
    expect(res.line[1]).toBe("401");
    expect(checkUpgradeResponse(res, "smux")).toEqual({ ok: false, status: 401, code: 10, reason: "token not known" });
    const other = parse("response", "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n").head!;
    expect(checkUpgradeResponse(other, "smux")).toEqual({ ok: false, status: 502, code: TunnelErrorCode.INTERNAL, reason: "HTTP 502 Bad Gateway" });
  });

  test("malformed requests are TUNNEL_PROTOCOL errors naming the problem", () => {
    const bad: [string, RegExp][] = [
      ["POST / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: edgemux-smux/2\r\n\r\n", /must be GET/],
      ["GET / HTTP/1.1\r\nUpgrade: edgemux-smux/2\r\n\r\n", /Connection: Upgrade/],
      ["GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n", /Upgrade must be/],
      ["GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n", /16 bytes/],
      ["GET / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: edgemux-smux/2\r\nAuthorization: Basic abc\r\n\r\n", /Bearer/],
      ["GET / HTTP/1.0\r\n\r\n", /HTTP\/1.1/],
      ["GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", /malformed header/],
      ["GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", /folding/],
    ];
    for (const [text, re] of bad) {
      let err: unknown;
      try {
        checkUpgradeRequest(parse("request", text).head!);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ProxyError);
      expect((err as ProxyError).code).toBe("TUNNEL_PROTOCOL");
      expect((err as Error).message).toMatch(re);
    }
  });

  test("a head over the bound is refused without waiting for its end", () => {
    const p = new HttpHeadParser("request");
    p.push(enc.encode(`GET / HTTP/1.1\r\nX: ${"a".repeat(MAX_HEAD_BYTES)}`));
    expect(() => p.next()).toThrow(/over 8192 bytes/);
  });

  test("repeated headers are joined; LF-only line ends are accepted", () => {
    const { head } = parse("request", "GET / HTTP/1.1\nConnection: keep-alive\nConnection: Upgrade\nUpgrade: edgemux-smux/2\n\n");
    expect(head!.headers.get("connection")).toBe("keep-alive, Upgrade");
    expect(checkUpgradeRequest(head!).transport).toBe("smux");
  });
});
