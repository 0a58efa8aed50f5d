/**
 * Proof that a proxy of the http section routes by Host: over HTTPS (SNI
 * "localhost" both times, so the name in the TLS handshake cannot be what
 * decides), a request with `Host: localhost` must come back `200` with the
 * backend's body, and one with `Host: unrouted.invalid` must be refused by the
 * proxy (a 4xx/5xx status or a closed connection, never the backend's body).
 * Run before measuring every proxy, like sni_check.ts in the other sections.
 */
import { connect } from "node:tls";
import { HTTP_ROUTED_HOST } from "./scenarios.ts";

/** What bench/peers/backend_nginx.conf.tmpl answers on `/`. */
export const BACKEND_BODY = "ok\n";
export const UNROUTED_HOST = "unrouted.invalid";

export interface HttpAnswer {
  status: number;
  body: string;
}

/**
 * Parses one HTTP/1.1 response read to the connection's end: status line,
 * fields, and a body framed by Content-Length, chunked, or the close. null
 * when the bytes are not a complete response.
 */
export function parseHttpResponse(raw: string): HttpAnswer | null {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const lines = raw.slice(0, end).split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? "");
  if (!m) return null;
  const fields = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    if (i > 0) fields.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
  }
  let rest = raw.slice(end + 4);
  let body: string;
  if ((fields.get("transfer-encoding") ?? "").toLowerCase() === "chunked") {
    body = "";
    for (;;) {
      const eol = rest.indexOf("\r\n");
      if (eol < 0) return null;
      const size = Number.parseInt(rest.slice(0, eol).split(";")[0]!, 16);
      if (!Number.isFinite(size)) return null;
      if (size === 0) break;
      if (rest.length < eol + 2 + size) return null;
      body += rest.slice(eol + 2, eol + 2 + size);
      rest = rest.slice(eol + 2 + size + 2);
    }
  } else if (fields.has("content-length")) {
    const n = Number(fields.get("content-length"));
    if (!Number.isInteger(n) || rest.length < n) return null;
    body = rest.slice(0, n);
  } else body = rest;
  return { status: Number(m[1]), body };
}

/** One HTTPS request with SNI "localhost" and the given Host, `Connection: close`, read to the end. */
export function httpsGet(port: number, host: string, timeoutMs = 5000): Promise<HttpAnswer | { error: string }> {
  return new Promise((resolve) => {
    let settled = false;
    const chunks: Buffer[] = [];
    const sock = connect({ port, host: "127.0.0.1", servername: HTTP_ROUTED_HOST, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] }, () => {
      sock.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: edgemux-bench-check\r\nConnection: close\r\n\r\n`);
    });
    const finish = (r: HttpAnswer | { error: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ error: `no complete answer within ${timeoutMs} ms` }), timeoutMs);
    sock.on("data", (b: Buffer) => chunks.push(b));
    sock.once("error", (e) => finish(chunks.length ? answerOf(chunks) : { error: e.message }));
    sock.once("close", () => finish(answerOf(chunks)));
  });
}

function answerOf(chunks: Buffer[]): HttpAnswer | { error: string } {
  if (chunks.length === 0) return { error: "closed without an answer" };
  const raw = Buffer.concat(chunks).toString("latin1");
  return parseHttpResponse(raw) ?? { error: `not an HTTP response: ${JSON.stringify(raw.slice(0, 80))}` };
}

/**
 * null when the routed Host reaches the backend and the unrouted one is
 * refused by the proxy; else what went wrong.
 */
export function judgeHttpRouting(good: HttpAnswer | { error: string }, bad: HttpAnswer | { error: string }): string | null {
  if ("error" in good) return `Host "${HTTP_ROUTED_HOST}" got no answer: ${good.error}`;
  if (good.status !== 200 || good.body !== BACKEND_BODY) {
    return `Host "${HTTP_ROUTED_HOST}" did not get the backend's answer: status ${good.status}, body ${JSON.stringify(good.body.slice(0, 60))}`;
  }
  if ("error" in bad) return null; // refused by closing
  if (bad.status < 400 || bad.body === BACKEND_BODY) {
    return `Host "${UNROUTED_HOST}" was answered ${bad.status} ${JSON.stringify(bad.body.slice(0, 60))}: the proxy does not route by Host`;
  }
  return null;
}

/** The check itself; the unrouted answer's status goes into the report ("404"). */
export async function checkHttpRouting(port: number): Promise<{ problem: string | null; unrouted: string }> {
  const good = await httpsGet(port, HTTP_ROUTED_HOST);
  const bad = await httpsGet(port, UNROUTED_HOST);
  return { problem: judgeHttpRouting(good, bad), unrouted: "error" in bad ? bad.error : String(bad.status) };
}
