export { type KernelPromotion, Relay, type RelayOwner } from "./relay.ts";
export { type InboundProxyResult, readInboundProxy } from "./inbound_proxy.ts";
