export { TcpListener } from "./listener.ts";
