export { Socks5Listener } from "./listener.ts";
