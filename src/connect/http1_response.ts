/**
 * HTTP/1.1 responses of the CONNECT listener: the 200 that turns the
 * connection into a tunnel, and the refusals (each closes the connection).
 */
const REASONS: Record<number, string> = {
  200: "Connection established",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

const enc = new TextEncoder();

export const CONNECTION_ESTABLISHED = enc.encode("HTTP/1.1 200 Connection established\r\n\r\n");

/**
 * A refusal: status line, the error code in `Edgemux-Error`, a one-line text
 * body, `Connection: close`. `extra` adds fields (Proxy-Authenticate, Allow).
 */
export function refusal(status: number, code: string, message: string, extra: [string, string][] = []): Uint8Array {
  // The message is ours, but it quotes client input: keep it one printable line.
  const body = `${code}: ${message.replace(/[^\x20-\x7e]/g, "?")}\n`;
  let head = `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\n`;
  for (const [k, v] of extra) head += `${k}: ${v}\r\n`;
  head += `Edgemux-Error: ${code}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
  return enc.encode(head + body);
}
