import { describe, expect, test } from "bun:test";
import { clientResponseFields, clientResponseHeadText, encodeRequestHead, encodeResponseHead, forwardedElement, latin1With, upstreamRequestFields, upstreamRequestHeadText } from "./fields.ts";

const client = { clientIp: "192.0.2.7", trusted: false, proto: "https" as const, host: "app.example" };
const plain = { upgrade: null, dropAuthorization: false };

describe("the request sent upstream", () => {
  test("hop-by-hop fields and the fields Connection names are removed; Host and framing stay", () => {
    const out = upstreamRequestFields([
      ["host", "app.example"],
      ["connection", "keep-alive, X-Secret, content-length, host"],
      ["keep-alive", "timeout=5"],
      ["x-secret", "1"],
      ["te", "trailers"],
      ["proxy-authorization", "Basic x"],
      ["content-length", "3"],
      ["accept", "*/*"],
    ], client, plain);
    expect(out.slice(0, 3)).toEqual([["host", "app.example"], ["content-length", "3"], ["accept", "*/*"]]);
  });

  test("an untrusted client's forwarded fields are replaced", () => {
    const out = upstreamRequestFields([
      ["host", "app.example"],
      ["x-forwarded-for", "6.6.6.6"],
      ["x-forwarded-proto", "http"],
      ["x-forwarded-host", "evil"],
      ["forwarded", "for=6.6.6.6"],
    ], client, plain);
    expect(out).toEqual([
      ["host", "app.example"],
      ["x-forwarded-for", "192.0.2.7"],
      ["x-forwarded-proto", "https"],
      ["x-forwarded-host", "app.example"],
      ["forwarded", "for=192.0.2.7;host=app.example;proto=https"],
    ]);
  });

  test("a trusted proxy's are kept (several lines joined) and appended to", () => {
    const out = upstreamRequestFields([
      ["x-forwarded-for", "203.0.113.1"],
      ["x-forwarded-for", "10.0.0.1"],
      ["x-forwarded-proto", "http"],
      ["forwarded", "for=203.0.113.1"],
    ], { ...client, trusted: true }, plain);
    expect(out).toEqual([
      ["x-forwarded-for", "203.0.113.1, 10.0.0.1, 192.0.2.7"],
      ["x-forwarded-proto", "http"],
      ["x-forwarded-host", "app.example"],
      ["forwarded", "for=203.0.113.1, for=192.0.2.7;host=app.example;proto=https"],
    ]);
  });

  test("RFC 7239 nodes and values: IPv6 bracketed and quoted, a host with a port quoted, mapped IPv4 unmapped", () => {
    expect(forwardedElement({ ...client, clientIp: "2001:db8::1", host: "a.example:8443" })).toBe('for="[2001:db8::1]";host="a.example:8443";proto=https');
    expect(forwardedElement({ ...client, clientIp: "::ffff:192.0.2.9", host: null })).toBe("for=192.0.2.9;proto=https");
    expect(forwardedElement({ ...client, clientIp: "", host: null })).toBe("for=unknown;proto=https");
  });

  test("an upgrade keeps Connection: upgrade and Upgrade; Basic credentials the proxy used are dropped", () => {
    const out = upstreamRequestFields([["connection", "Upgrade"], ["upgrade", "websocket"], ["authorization", "Basic eA=="]], client, { upgrade: "websocket", dropAuthorization: true });
    expect(out.slice(-2)).toEqual([["connection", "upgrade"], ["upgrade", "websocket"]]);
    expect(out.some(([n]) => n === "authorization")).toBe(false);
  });

  test("the head is latin1, obs-text unchanged", () => {
    const b = encodeRequestHead("GET", "/", [["x-a", "caf\u00e9"]]);
    expect([...b.subarray(b.length - 6, b.length - 3)]).toEqual([0x66, 0xe9, 0x0d]);
  });
});

describe("the response sent to the client", () => {
  test("hop-by-hop gone, route fields replace the backend's, close said when closing", () => {
    const out = clientResponseFields(
      [["content-type", "text/plain"], ["connection", "keep-alive"], ["keep-alive", "timeout=5"], ["strict-transport-security", "max-age=1"], ["transfer-encoding", "chunked"]],
      [["Strict-Transport-Security", "max-age=63072000"]],
      { close: true, switching: false },
    );
    expect(out).toEqual([["content-type", "text/plain"], ["transfer-encoding", "chunked"], ["Strict-Transport-Security", "max-age=63072000"], ["connection", "close"]]);
  });
  test("a 101 keeps Upgrade", () => {
    expect(clientResponseFields([["upgrade", "websocket"], ["connection", "Upgrade"], ["sec-websocket-accept", "x"]], [], { close: false, switching: true })).toEqual([
      ["upgrade", "websocket"],
      ["sec-websocket-accept", "x"],
      ["connection", "upgrade"],
    ]);
  });
});

describe("heads as text (the HTTP/1.1 hot path) say what the field lists say", () => {
  const requests: [string, string][][] = [
    [["host", "app.example"], ["accept", "*/*"]],
    [["host", "app.example"], ["connection", "keep-alive, X-Secret"], ["x-secret", "1"], ["x-forwarded-for", "6.6.6.6"], ["authorization", "Basic eA=="], ["content-length", "3"]],
    [["host", "app.example"], ["forwarded", "for=1.2.3.4"], ["x-forwarded-proto", "http"], ["x-forwarded-host", "a"], ["user-agent", "caf\u00e9"]],
  ];
  for (const [i, fields] of requests.entries()) {
    for (const c of [client, { ...client, trusted: true, host: null }, { ...client, clientIp: "::ffff:10.0.0.1" }]) {
      for (const r of [plain, { upgrade: "websocket", dropAuthorization: true }]) {
        test(`request ${i}, trusted ${c.trusted}, upgrade ${r.upgrade}`, () => {
          const text = upstreamRequestHeadText("GET", "/x?y", fields, c, r);
          expect(latin1With(text, null, 0)).toEqual(encodeRequestHead("GET", "/x?y", upstreamRequestFields(fields, c, r)));
        });
      }
    }
  }

  const responses: [string, string][][] = [
    [["server", "nginx"], ["content-length", "3"], ["connection", "keep-alive"]],
    [["strict-transport-security", "max-age=1"], ["keep-alive", "timeout=5"], ["connection", "X-Hop"], ["x-hop", "1"], ["transfer-encoding", "chunked"]],
  ];
  for (const [i, fields] of responses.entries()) {
    for (const set of [[], [["Strict-Transport-Security", "max-age=63072000"]] as [string, string][]]) {
      for (const close of [false, true]) {
        test(`response ${i}, ${set.length} route fields, close ${close}`, () => {
          const text = clientResponseHeadText(200, "", fields, set, close);
          expect(latin1With(text, null, 0)).toEqual(encodeResponseHead(200, "", clientResponseFields(fields, set, { close, switching: false })));
        });
      }
    }
  }

  test("a body rides after the head in the same buffer", () => {
    const out = latin1With("HTTP/1.1 200 OK\r\n\r\n", [new Uint8Array([0x6f, 0x6b]), new Uint8Array([0x0a])], 3);
    expect(new TextDecoder().decode(out)).toBe("HTTP/1.1 200 OK\r\n\r\nok\n");
  });
});
