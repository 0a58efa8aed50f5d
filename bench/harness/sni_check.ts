/**
 * Proof that a proxy routes by SNI: a ClientHello naming "localhost" must
 * reach the backend (it answers), one naming an unknown host must not (the
 * proxy closes or answers a TLS alert). Run before measuring every proxy.
 * The tcp section's check is plainer: a few bytes of HTTP must reach the
 * backend and be answered (every backend answers any first bytes).
 */
import { connect } from "node:net";
import { buildClientHello } from "./client_hello.ts";

export interface ProbeResult {
  /** Bytes came back and they are not a TLS alert record (content type 21). */
  routed: boolean;
  detail: string;
}

/** Sends a ClientHello naming `serverName`, or with serverName null a plain `GET / HTTP/1.0`. */
export function probe(port: number, serverName: string | null, timeoutMs = 3000): Promise<ProbeResult> {
  const first = serverName === null ? new TextEncoder().encode("GET / HTTP/1.0\r\nHost: localhost\r\n\r\n") : buildClientHello({ serverName, alpn: ["http/1.1"] });
  return new Promise((resolve) => {
    let settled = false;
    const sock = connect({ port, host: "127.0.0.1" }, () => sock.write(first));
    const finish = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ routed: false, detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
    sock.once("data", (b: Buffer) => {
      if (b[0] === 21) finish({ routed: false, detail: `TLS alert ${b.length >= 7 ? b[6] : "?"}` });
      else finish({ routed: true, detail: `answer starts 0x${b[0]!.toString(16)} (${b.length} bytes)` });
    });
    sock.once("error", (e) => finish({ routed: false, detail: e.message }));
    sock.once("close", () => finish({ routed: false, detail: "closed without an answer" }));
  });
}

/** null when the proxy routes "localhost" and refuses "unrouted.invalid"; else what went wrong. */
export async function checkSniRouting(port: number): Promise<string | null> {
  const good = await probe(port, "localhost");
  if (!good.routed) return `SNI "localhost" did not reach the backend: ${good.detail}`;
  const bad = await probe(port, "unrouted.invalid");
  if (bad.routed) return `SNI "unrouted.invalid" reached the backend (${bad.detail}): the proxy does not route by SNI`;
  return null;
}

/** null when plain bytes sent to the proxy reach the backend and are answered; else what went wrong. */
export async function checkTcpForwarding(port: number): Promise<string | null> {
  const p = await probe(port, null);
  return p.routed ? null : `plain bytes did not reach the backend: ${p.detail}`;
}
