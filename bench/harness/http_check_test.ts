import { expect, test } from "bun:test";
import { judgeHttpRouting, parseHttpResponse } from "./http_check.ts";

test("parseHttpResponse: Content-Length, chunked and read-to-close bodies; incomplete is null", () => {
  expect(parseHttpResponse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n")).toEqual({ status: 200, body: "ok\n" });
  expect(parseHttpResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n1;x=y\r\n\n\r\n0\r\n\r\n")).toEqual({ status: 200, body: "ok\n" });
  expect(parseHttpResponse("HTTP/1.0 404 Not Found\r\nConnection: close\r\n\r\nno route\n")).toEqual({ status: 404, body: "no route\n" });
  expect(parseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok\n")).toBeNull();
  expect(parseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n")).toBeNull();
  expect(parseHttpResponse("\u0015\u0003\u0003\u0000\u0002\u0002\u0028")).toBeNull();
});

test("judgeHttpRouting: the routed Host must get the backend's body, the unrouted one a refusal", () => {
  const ok = { status: 200, body: "ok\n" };
  expect(judgeHttpRouting(ok, { status: 404, body: "no route\n" })).toBeNull();
  expect(judgeHttpRouting(ok, { status: 503, body: "<html>No server is available</html>" })).toBeNull();
  expect(judgeHttpRouting(ok, { error: "closed without an answer" })).toBeNull();
  expect(judgeHttpRouting(ok, ok)).toMatch(/does not route by Host/);
  expect(judgeHttpRouting(ok, { status: 404, body: "ok\n" })).toMatch(/does not route by Host/);
  expect(judgeHttpRouting({ status: 502, body: "bad gateway" }, { status: 404, body: "" })).toMatch(/did not get the backend's answer/);
  expect(judgeHttpRouting({ error: "ECONNREFUSED" }, { status: 404, body: "" })).toMatch(/got no answer: ECONNREFUSED/);
});
