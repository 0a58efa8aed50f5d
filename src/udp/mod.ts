export { UdpListener } from "./listener.ts";
