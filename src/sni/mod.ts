export { SniListener } from "./listener.ts";
