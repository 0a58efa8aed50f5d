/**
 * HTTP/1.1 responses of the CONNECT listener: the 200 that turns the
 * connection into a tunnel, and the refusals (each closes the connection).
 * The reason phrases and the encoder are proto/'s, shared with the tunnel
 * listener's refusals.
 */
import { encodeClosingResponse } from "../proto/mod.ts";

export const CONNECTION_ESTABLISHED = new TextEncoder().encode("HTTP/1.1 200 Connection established\r\n\r\n");

/**
 * A refusal: status line, `extra` fields (Proxy-Authenticate, Allow), the
 * error code in `Edgemux-Error`, a one-line text body, `Connection: close`.
 */
export function refusal(status: number, code: string, message: string, extra: [string, string][] = []): Uint8Array {
  // The message is ours, but it quotes client input: the encoder keeps it one printable line.
  return encodeClosingResponse(status, [...extra, ["Edgemux-Error", code]], `${code}: ${message}`);
}
