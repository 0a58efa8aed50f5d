/** A socks5 listener inside one worker: plain TCP, one Socks5Session per connection. */
import type { Socks5ListenerConfig } from "../config/types.ts";
import type { Conn, ListenOptions } from "../runtime/types.ts";
import { ProxyListener, type ProxySession } from "../connect/mod.ts";
import { Socks5Session } from "./session.ts";

export class Socks5ListenerState extends ProxyListener<Socks5ListenerConfig> {
  protected listenTls(): ListenOptions["tls"] {
    return undefined;
  }

  protected createSession(conn: Conn, nowMs: number): ProxySession {
    return new Socks5Session(conn, this, nowMs);
  }
}
