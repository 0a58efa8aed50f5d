import { describe, expect, test } from "bun:test";
import { ProxyError } from "../../errors/mod.ts";
import { TunnelErrorCode } from "../../proto/tunnel_control.ts";
import { fieldValue, type HttpRequestHead, type HttpResponseHead } from "../../proto/mod.ts";
import {
  checkUpgradeRequest,
  checkUpgradeResponse,
  MAX_HEAD_BYTES,
  refusalResponse,
  switchingProtocols,
  upgradeRequest,
  upgradeRequestParser,
  upgradeResponseParser,
  wsAccept,
} from "./http_upgrade.ts";

const enc = new TextEncoder();

function request(text: string | Uint8Array): HttpRequestHead {
  const p = upgradeRequestParser();
  p.push(typeof text === "string" ? enc.encode(text) : text);
  return p.next()!;
}

function response(text: string | Uint8Array): HttpResponseHead {
  const p = upgradeResponseParser();
  p.push(typeof text === "string" ? enc.encode(text) : text);
  return p.next()!;
}

/** The error a request gets, from the parser or from the upgrade check. */
function refusalOf(text: string): ProxyError | null {
  try {
    checkUpgradeRequest(request(text));
  } catch (e) {
    expect(e).toBeInstanceOf(ProxyError);
    return e as ProxyError;
  }
  return null;
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
      const p = upgradeRequestParser();
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
    const r = checkUpgradeRequest(request(upgradeRequest({ host: "e", transport: "websocket", token: null, wsKey: key })));
    expect(r.transport).toBe("websocket");
    expect(r.wsSubprotocol).toBe(true);
    expect(r.token).toBeNull();
    const res = response(switchingProtocols(r));
    expect(fieldValue(res, "sec-websocket-accept")).toBe("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    expect(checkUpgradeResponse(res, "websocket", key)).toEqual({ ok: true });
    expect(checkUpgradeResponse(res, "websocket", "AAAAAAAAAAAAAAAAAAAAAA==").ok).toBe(false);
  });

  test("refusals carry the numbered code and the reason", () => {
    const res = response(refusalResponse(TunnelErrorCode.BAD_TOKEN, "token not known"));
    expect(res.status).toBe(401);
    expect(checkUpgradeResponse(res, "smux")).toEqual({ ok: false, status: 401, code: 10, reason: "token not known" });
    const other = response("HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
    expect(checkUpgradeResponse(other, "smux")).toEqual({ ok: false, status: 502, code: TunnelErrorCode.INTERNAL, reason: "HTTP 502 Bad Gateway" });
  });

  test("malformed requests are refused naming the problem: by the strict parser (400) or by the upgrade check", () => {
    const H = "Host: e\r\n";
    const UP = "Connection: upgrade\r\nUpgrade: edgemux-smux/2\r\n";
    const bad: [string, string, RegExp][] = [
      [`POST / HTTP/1.1\r\n${H}${UP}\r\n`, "TUNNEL_PROTOCOL", /must be GET/],
      [`GET / HTTP/1.1\r\n${H}Upgrade: edgemux-smux/2\r\n\r\n`, "TUNNEL_PROTOCOL", /Connection: Upgrade/],
      [`GET / HTTP/1.1\r\n${H}Connection: upgrade\r\nUpgrade: h2c\r\n\r\n`, "TUNNEL_PROTOCOL", /Upgrade must be/],
      [`GET / HTTP/1.1\r\n${H}Connection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n`, "TUNNEL_PROTOCOL", /16 bytes/],
      [`GET / HTTP/1.1\r\n${H}Connection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n`, "TUNNEL_PROTOCOL", /more than one Sec-WebSocket-Key/],
      [`GET / HTTP/1.1\r\n${H}${UP}Authorization: Basic abc\r\n\r\n`, "TUNNEL_PROTOCOL", /Bearer/],
      [`GET / HTTP/1.0\r\n${UP}\r\n`, "TUNNEL_PROTOCOL", /HTTP\/1.1/],
      [`GET / HTTP/1.1\r\n${H}${UP}Content-Length: 3\r\n\r\n`, "TUNNEL_PROTOCOL", /no body: Content-Length/],
      [`GET / HTTP/1.1\r\n${H}${UP}Transfer-Encoding: chunked\r\n\r\n`, "TUNNEL_PROTOCOL", /no body: Transfer-Encoding/],
      // The strict parser's refusals (the session answers them with 400 too).
      [`GET / HTTP/1.1\r\n${H}Bad Header: x\r\n\r\n`, "HTTP_BAD_REQUEST", /not a token/],
      [`GET / HTTP/1.1\r\n${H}A: b\r\n folded\r\n\r\n`, "HTTP_BAD_REQUEST", /obs-fold/],
      [`GET / HTTP/1.1\n${H.replace("\r", "")}${UP.replaceAll("\r", "")}\n`, "HTTP_BAD_REQUEST", /Bare LF/],
      [`GET / HTTP/1.1\r\n${H}${UP}X: a\x00b\r\n\r\n`, "HTTP_BAD_REQUEST", /0x00/],
      [`GET / HTTP/1.1\r\n${UP}\r\n`, "HTTP_BAD_REQUEST", /without a Host/],
      [`GET / HTTP/1.1\r\n${H}${H}${UP}\r\n`, "HTTP_BAD_REQUEST", /more than one Host/i],
      [`GET / HTTP/1.1\r\n${H}${UP}Content-Length: 0\r\nContent-Length: 0\r\n\r\n`, "HTTP_BAD_REQUEST", /Content-Length/],
      [`GET / HTTP/1.1\r\n${H}${UP}Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n`, "HTTP_BAD_REQUEST", /Both/],
      [`GET / HTTP/1.1\r\n${H}${UP}Authorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n`, "HTTP_BAD_REQUEST", /Authorization/],
    ];
    for (const [text, code, re] of bad) {
      const err = refusalOf(text);
      expect(`${JSON.stringify(text)} ${err?.code}`).toBe(`${JSON.stringify(text)} ${code}`);
      expect(err!.message).toMatch(re);
    }
    // Content-Length: 0 is no body: allowed.
    expect(refusalOf(`GET / HTTP/1.1\r\n${H}${UP}Content-Length: 0\r\n\r\n`)).toBeNull();
  });

  test("a head over the bound is refused without waiting for its end", () => {
    const p = upgradeRequestParser();
    p.push(enc.encode(`GET / HTTP/1.1\r\nX: ${"a".repeat(MAX_HEAD_BYTES)}`));
    expect(() => p.next()).toThrow(/over 8192 bytes/);
  });

  test("list fields may repeat (Connection, Upgrade); the agent's answer parser is as strict as the edge's", () => {
    const head = request("GET / HTTP/1.1\r\nHost: e\r\nConnection: keep-alive\r\nConnection: Upgrade\r\nUpgrade: edgemux-smux/2\r\n\r\n");
    expect(checkUpgradeRequest(head).transport).toBe("smux");
    const p = upgradeResponseParser();
    p.push(enc.encode("HTTP/1.1 101 Switching Protocols\nUpgrade: edgemux-smux/2\n\n"));
    expect(() => p.next()).toThrow(expect.objectContaining({ code: "TUNNEL_PROTOCOL" }));
    const ws = response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
    expect(checkUpgradeResponse(ws, "websocket", "dGhlIHNhbXBsZSBub25jZQ==").ok).toBe(false);
  });
});
