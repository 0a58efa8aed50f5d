/**
 * SOCKS5 server side, sans-I/O: the client's greeting (RFC 1928 §3), its
 * username/password sub-negotiation (RFC 1929 §2) and its request (RFC 1928
 * §4), plus the encoders for our answers. The caller drives the phases,
 * because what follows the greeting depends on the method we chose:
 *
 *   p.push(bytes); p.next("greeting") → { methods } | null
 *   p.next("auth")    → { username, password } | null      (after we chose 0x02)
 *   p.next("request") → { command, host, hostKind, port } | null
 *   p.rest()          → bytes after the request (the client's first payload)
 *
 * Malformed input throws ProxyError("SOCKS_PROTOCOL") carrying `reply`, the
 * RFC 1928 REP code to answer with when a reply is still due (0x08 for an
 * unknown address type, 0x01 otherwise). Every length is a single byte, so
 * the largest message is 1 + 1 + 255 + 1 + 255 = 513 bytes (auth); the
 * parser never buffers more than one message plus what the client pipelined.
 */
import { ProxyError } from "../errors/mod.ts";
import { canonicalIPv6, parseHost } from "./authority.ts";

export const SOCKS_VERSION = 5;
/** RFC 1929 §2: "The VER field contains the current version of the subnegotiation, which is X'01'". */
export const SOCKS_AUTH_VERSION = 1;

export const SocksMethod = {
  noAuth: 0x00,
  gssapi: 0x01,
  usernamePassword: 0x02,
  noAcceptable: 0xff,
} as const;

export const SocksCommand = { connect: 0x01, bind: 0x02, udpAssociate: 0x03 } as const;
export const SocksAddressType = { ipv4: 0x01, domain: 0x03, ipv6: 0x04 } as const;

/**
 * The largest message (auth: 1 + 1 + 255 + 1 + 255). Every length field is one
 * byte, so an incomplete message never holds more than this: the parser's
 * buffer is bounded by one message plus the chunk that completed it, and what
 * a client pipelines behind its request is the caller's to bound (rest()).
 */
export const MAX_SOCKS_MESSAGE = 513;

export interface SocksGreeting {
  kind: "greeting";
  methods: number[];
}
export interface SocksAuth {
  kind: "auth";
  username: string;
  password: string;
}
export interface SocksRequest {
  kind: "request";
  command: number;
  /** Canonical host: dotted quad, RFC 5952 IPv6, or a canonical DNS name. */
  host: string;
  hostKind: "ipv4" | "ipv6" | "name";
  port: number;
}

export type SocksPhase = "greeting" | "auth" | "request";

export class SocksError extends ProxyError {
  constructor(message: string, readonly reply: number) {
    super("SOCKS_PROTOCOL", "downstream", message);
  }
}

const latin1 = (b: Uint8Array) => String.fromCharCode.apply(null, b as unknown as number[]);

export class Socks5Parser {
  private buf: Uint8Array = new Uint8Array(0);
  private error: SocksError | null = null;

  /** Copies when bytes are already buffered: messages are tiny and arrive once per connection. */
  push(chunk: Uint8Array): void {
    if (this.error !== null || chunk.length === 0) return;
    if (this.buf.length === 0) {
      this.buf = chunk;
      return;
    }
    const n = new Uint8Array(this.buf.length + chunk.length);
    n.set(this.buf, 0);
    n.set(chunk, this.buf.length);
    this.buf = n;
  }

  get bufferedBytes(): number {
    return this.buf.length;
  }

  next(phase: "greeting"): SocksGreeting | null;
  next(phase: "auth"): SocksAuth | null;
  next(phase: "request"): SocksRequest | null;
  next(phase: SocksPhase): SocksGreeting | SocksAuth | SocksRequest | null {
    if (this.error !== null) throw this.error;
    const b = this.buf;
    switch (phase) {
      case "greeting": {
        // RFC 1928 §3: VER (1) | NMETHODS (1) | METHODS (1 to 255)
        if (b.length < 1) return null;
        if (b[0] !== SOCKS_VERSION) this.fail(new SocksError(`Not SOCKS5: version byte ${b[0]}`, 0x01));
        if (b.length < 2) return null;
        const n = b[1]!;
        if (n === 0) this.fail(new SocksError("Greeting offers no methods", 0x01));
        if (b.length < 2 + n) return null;
        const methods = Array.from(b.subarray(2, 2 + n));
        this.consume(2 + n);
        return { kind: "greeting", methods };
      }
      case "auth": {
        // RFC 1929 §2: VER (1) | ULEN (1) | UNAME (1 to 255) | PLEN (1) | PASSWD (1 to 255)
        if (b.length < 1) return null;
        if (b[0] !== SOCKS_AUTH_VERSION) this.fail(new SocksError(`Username/password version must be 1, got ${b[0]}`, 0x01));
        if (b.length < 2) return null;
        const ulen = b[1]!;
        if (ulen === 0) this.fail(new SocksError("Empty username", 0x01));
        if (b.length < 3 + ulen) return null;
        const plen = b[2 + ulen]!;
        if (plen === 0) this.fail(new SocksError("Empty password", 0x01));
        if (b.length < 3 + ulen + plen) return null;
        const username = latin1(b.subarray(2, 2 + ulen));
        const password = latin1(b.subarray(3 + ulen, 3 + ulen + plen));
        this.consume(3 + ulen + plen);
        return { kind: "auth", username, password };
      }
      case "request": {
        // RFC 1928 §4: VER | CMD | RSV (X'00') | ATYP | DST.ADDR | DST.PORT (2, network order)
        if (b.length < 1) return null;
        if (b[0] !== SOCKS_VERSION) this.fail(new SocksError(`Request version must be 5, got ${b[0]}`, 0x01));
        if (b.length < 4) return null;
        if (b[2] !== 0) this.fail(new SocksError(`Reserved byte must be 0, got ${b[2]}`, 0x01));
        const atyp = b[3]!;
        let addrLen: number;
        let start = 4;
        if (atyp === SocksAddressType.ipv4) addrLen = 4;
        else if (atyp === SocksAddressType.ipv6) addrLen = 16;
        else if (atyp === SocksAddressType.domain) {
          if (b.length < 5) return null;
          addrLen = b[4]!;
          start = 5;
          if (addrLen === 0) this.fail(new SocksError("Empty domain name", 0x01));
        } else {
          // RFC 1928 §6: X'08' Address type not supported
          this.fail(new SocksError(`Unknown address type ${atyp}`, 0x08));
        }
        if (b.length < start + addrLen! + 2) return null;
        const a = b.subarray(start, start + addrLen!);
        const port = (b[start + addrLen!]! << 8) | b[start + addrLen! + 1]!;
        let host: string;
        let hostKind: SocksRequest["hostKind"];
        if (atyp === SocksAddressType.ipv4) {
          host = `${a[0]}.${a[1]}.${a[2]}.${a[3]}`;
          hostKind = "ipv4";
        } else if (atyp === SocksAddressType.ipv6) {
          const groups: string[] = [];
          for (let i = 0; i < 16; i += 2) groups.push(((a[i]! << 8) | a[i + 1]!).toString(16));
          host = canonicalIPv6(groups.join(":"))!;
          hostKind = "ipv6";
        } else {
          // A domain may also be an IP literal: curl --socks5-hostname sends them as names.
          try {
            const h = parseHost(latin1(a));
            host = h.host;
            hostKind = h.kind;
          } catch {
            this.fail(new SocksError("Domain is not a valid host name or IP address", 0x04));
          }
        }
        if (port === 0) this.fail(new SocksError("Destination port 0", 0x01));
        this.consume(start + addrLen! + 2);
        return { kind: "request", command: b[1]!, host: host!, hostKind: hostKind!, port };
      }
    }
  }

  /** Bytes after the last message taken (the client's first payload, if it sent any early). */
  rest(): Uint8Array {
    return this.buf;
  }

  private consume(n: number): void {
    this.buf = this.buf.subarray(n);
  }

  private fail(err: SocksError): never {
    this.error = err;
    this.buf = new Uint8Array(0);
    throw err;
  }
}

/** RFC 1928 §3: VER | METHOD. */
export function encodeMethodChoice(method: number): Uint8Array {
  return Uint8Array.of(SOCKS_VERSION, method);
}

/** RFC 1929 §2: VER | STATUS; "A STATUS field of X'00' indicates success." */
export function encodeAuthStatus(ok: boolean): Uint8Array {
  return Uint8Array.of(SOCKS_AUTH_VERSION, ok ? 0x00 : 0x01);
}

/**
 * RFC 1928 §6: VER | REP | RSV | ATYP | BND.ADDR | BND.PORT. `bound` is the
 * address we connected from (success) or null (failures send 0.0.0.0:0).
 */
export function encodeReply(rep: number, bound: { address: string; port: number } | null): Uint8Array {
  const addr = bound?.address ?? "0.0.0.0";
  const port = bound?.port ?? 0;
  const v4 = addr.startsWith("::ffff:") && addr.includes(".") ? addr.slice(7) : addr;
  if (!v4.includes(":")) {
    const o = v4.split(".").map(Number);
    if (o.length === 4 && o.every((x) => x >= 0 && x <= 255)) {
      return Uint8Array.of(SOCKS_VERSION, rep, 0, SocksAddressType.ipv4, o[0]!, o[1]!, o[2]!, o[3]!, port >> 8, port & 255);
    }
  }
  const canon = canonicalIPv6(v4);
  if (canon !== null) {
    const out = new Uint8Array(22);
    out.set([SOCKS_VERSION, rep, 0, SocksAddressType.ipv6]);
    const [head, tail] = canon.includes("::") ? canon.split("::") as [string, string] : [canon, ""];
    const hs = head === "" ? [] : head.split(":");
    const ts = tail === "" ? [] : tail.split(":");
    const groups = [...hs, ...new Array(8 - hs.length - ts.length).fill("0"), ...ts].map((g) => parseInt(g, 16));
    groups.forEach((g, i) => {
      out[4 + i * 2] = g >> 8;
      out[5 + i * 2] = g & 255;
    });
    out[20] = port >> 8;
    out[21] = port & 255;
    return out;
  }
  return Uint8Array.of(SOCKS_VERSION, rep, 0, SocksAddressType.ipv4, 0, 0, 0, 0, 0, 0);
}
