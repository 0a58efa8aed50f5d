import { expect, test } from "bun:test";
import { httpStatusFor, socksReplyFor } from "../errors/mod.ts";
import { CONNECTION_ESTABLISHED, refusal } from "./http1_response.ts";

test("HTTP/1.1 statuses of the CONNECT listener (README)", () => {
  const codes = ["HTTP_BAD_REQUEST", "HTTP_HEADER_TOO_LARGE", "HTTP_METHOD_NOT_ALLOWED", "AUTH_REQUIRED", "AUTH_DENIED", "EGRESS_DENIED", "IDENTITY_DENIED", "HANDSHAKE_TIMEOUT", "UPSTREAM_CONNECT_REFUSED", "UPSTREAM_DNS", "UPSTREAM_CONNECT_TIMEOUT", "LISTENER_FULL"] as const;
  expect(codes.map(httpStatusFor)).toEqual([400, 431, 405, 407, 403, 403, 403, 408, 502, 503, 504, 503]);
});

test("SOCKS5 replies (RFC 1928 §6)", () => {
  const codes = ["EGRESS_DENIED", "AUTH_REQUIRED", "UPSTREAM_DNS", "UPSTREAM_CONNECT_REFUSED", "UPSTREAM_CONNECT_TIMEOUT", "INTERNAL"] as const;
  expect(codes.map(socksReplyFor)).toEqual([2, 2, 4, 5, 6, 1]);
});

test("responses", () => {
  expect(new TextDecoder().decode(CONNECTION_ESTABLISHED)).toBe("HTTP/1.1 200 Connection established\r\n\r\n");
  const r = new TextDecoder().decode(refusal(407, "AUTH_REQUIRED", "need a token\r\nInjected: yes", [["Proxy-Authenticate", 'Basic realm="edgemux"']]));
  expect(r).toBe(
    'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="edgemux"\r\nEdgemux-Error: AUTH_REQUIRED\r\nContent-Type: text/plain\r\nContent-Length: 43\r\nConnection: close\r\n\r\nAUTH_REQUIRED: need a token??Injected: yes\n',
  );
});
