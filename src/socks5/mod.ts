export { Socks5ListenerState } from "./listener.ts";
export { Socks5Session } from "./session.ts";
